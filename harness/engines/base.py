"""The Engine protocol: what runs one sweep's hosts.

An engine reaches every host of the sweep, probes its interpreters, runs the agent
with each environment's plan and feeds the agent's messages to the environment's
recorder; the sweep context (:class:`harness.sweep.context.Sweep`) plans, stores and
counts. Engines are found by name in :mod:`harness.engines.registry`.
"""

from __future__ import annotations

from typing import Any, Protocol


class Engine(Protocol):
    """One way of running a sweep's hosts."""

    # The name ``--engine`` takes.
    name: str
    # Whether a cell's repeats are spread over the profile's runs, each a new agent
    # process (pyperf's processes), or all taken in one agent run.
    spreads_runs: bool

    def run(self, sweep: Any) -> None:
        """Run every host of ``sweep`` (a harness.sweep.context.Sweep: typed Any so that
        this protocol, which the sweep imports, does not import the sweep back); failures
        are recorded through it, not raised.

        KeyboardInterrupt goes through (the sweep then stops every host)."""
        ...
