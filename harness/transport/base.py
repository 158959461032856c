"""The transport protocol every way of reaching a host implements.

A transport is a context manager. Opening it prepares a private working
directory on the host (mode 0700, fresh unless the inventory names
``harness_workdir``); closing it removes that directory (also after a failure)
and releases the connection.

    with make_transport(host) as t:
        remote = t.put(Path("agent.pyz"), "agent.pyz")
        for line in t.run([python, remote, "probe"], timeout=60):
            ...

``run`` takes an argv list, never a shell string: a transport that needs a
shell (SSH) quotes every element itself. It yields the command's stdout line by
line as the lines arrive (str, without the newline). When the command exits
non-zero, it raises :class:`harness.errors.CommandFailed` after the last line,
with the tail of stderr. Reaching the host failing raises
:class:`harness.errors.TransportError`; only those are retried by the caller.
``timeout`` bounds the whole command; ``idle_timeout`` bounds the silence
between two lines (the agent sends keepalives). Either expiring kills the
command's whole process tree on the host and raises TransportTimeout.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class Transport(Protocol):
    """What every transport offers; see the module docstring."""

    name: str
    workdir: str

    def put(self, local: Path, name: str) -> str:
        """Copy ``local`` into the working directory as ``name``; return its path there."""
        ...

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        idle_timeout: float | None = None,
        env: dict[str, str] | None = None,
    ) -> Iterator[str]:
        """Run ``argv`` on the host and yield its stdout lines as they arrive."""
        ...

    def close(self) -> None:
        """Remove the working directory and release the connection."""
        ...

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc: object) -> None: ...
