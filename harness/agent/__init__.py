"""The agent: stdlib-only code that runs on every benchmarked host.

Nothing in this package may import from the controller (``harness`` outside
``harness.agent``) or from any third-party package, except ``psutil`` when the
host happens to have it. It must run on CPython 3.9+ including free-threaded
builds.
"""
