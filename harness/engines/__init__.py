"""The engines that run a sweep's hosts: each one reaches every host, runs the agent
there and feeds what it reports to the sweep (:mod:`harness.sweep.context`).

- :mod:`harness.engines.base` -- the ``Engine`` protocol.
- :mod:`harness.engines.registry` -- the engines by name (``--engine``), the one table
  the CLI and the sweep read.
- :mod:`harness.engines.ssh` -- ``ssh`` (the default): a thread per host, each over its
  own :mod:`harness.transport` connection.
- :mod:`harness.engines.ansible` -- ``ansible``: ansible-runner drives the fleet,
  ``--forks`` hosts at a time, with the playbooks of :mod:`harness.engines.playbooks`.
"""
