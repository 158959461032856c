"""Engines that drive a whole sweep at once instead of one transport per host.

``ssh`` (the default) is not here: it is ``harness.sweep``'s thread per host
over :mod:`harness.transport`. ``ansible`` (:mod:`harness.engines.ansible`)
hands the fan-out to ansible-runner for large fleets.
"""

from __future__ import annotations

ENGINES = ("ssh", "ansible")

__all__ = ["ENGINES"]
