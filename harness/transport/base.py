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

A command's standard input is empty unless ``run`` is given a
:class:`CommandInput`: then the caller can write to it while reading the lines
(the agent's ``run -`` sends its fingerprint first and then reads the plan made
from it), close it, and ``extend`` the command's timeout once it knows how long
the command may take.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable


def check_name(name: str) -> str:
    """Refuse a ``put`` target that is not a plain file name."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or "\n" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


class CommandInput:
    """The standard input of one command ``run`` starts, and more time for it.

    The transport attaches the command's input when it starts it. Writing to a
    command that has already exited is not an error here: the command's own exit
    status and stderr, which the line iterator reports, say what went wrong.
    """

    def __init__(self) -> None:
        self._extra_s = 0.0
        self._write: Callable[[bytes], None] | None = None
        self._close: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def attach(self, write: Callable[[bytes], None], close: Callable[[], None]) -> None:
        """Called by the transport that started the command."""
        self._write, self._close = write, close

    def write(self, data: bytes) -> None:
        if self._write is None:
            raise RuntimeError("the command has not been started")
        with contextlib.suppress(OSError, EOFError):
            self._write(data)

    def close(self) -> None:
        """End the input: the command reads end-of-file; idempotent."""
        close, self._close = self._close, None
        if close is not None:
            with contextlib.suppress(OSError, EOFError):
                close()

    def extend(self, seconds: float) -> None:
        """Add ``seconds`` to the command's ``timeout``."""
        with self._lock:
            self._extra_s += seconds

    def extra_time(self) -> float:
        with self._lock:
            return self._extra_s


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
        stdin: CommandInput | None = None,
    ) -> Iterator[str]:
        """Run ``argv`` on the host and yield its stdout lines as they arrive."""
        ...

    def close(self) -> None:
        """Remove the working directory and release the connection."""
        ...

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc: object) -> None: ...
