"""Streaming a command's output: stdout line by line as it arrives, stderr's tail.

:func:`stream_lines` is the core every transport runs a command through (a local
subprocess's pipes, an SSH channel's files). Two daemon threads read the command's
streams so neither pipe can fill and deadlock it: stdout lines go through a bounded
queue to the caller, stderr is kept as a bounded tail (:class:`StderrTail`) for the
error message. The caller's loop enforces the whole-command timeout (which the caller
may extend while reading) and the idle timeout between two lines.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO

from harness.errors import CommandFailed, TransportError, TransportTimeout
from harness.formatting import one_line

__all__ = ["STDERR_TAIL_BYTES", "StderrTail", "stream_lines"]

STDERR_TAIL_BYTES = 8192
_QUEUE_LINES = 1024
_EOF = object()


def _decode(line: bytes) -> str:
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line.decode("utf-8", errors="replace")


class StderrTail:
    """The last :data:`STDERR_TAIL_BYTES` (at least) of a stream, read to its end."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def read_from(self, stderr: IO[bytes]) -> None:
        """Read ``stderr`` until it ends, keeping its tail; errors end the reading (stderr
        is best effort: stdout reports a broken connection)."""
        try:
            while True:
                chunk = stderr.read1(65536) if hasattr(stderr, "read1") else stderr.read(4096)
                if not chunk:
                    return
                self._append(chunk)
        except Exception:
            return

    def _append(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        while self._size - len(self._chunks[0]) >= STDERR_TAIL_BYTES and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        data = b"".join(self._chunks)[-STDERR_TAIL_BYTES:]
        return data.decode("utf-8", errors="replace")


def _put(lines: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put ``item`` on the bounded queue, waiting while it is full; False if ``stop``
    was set first (the reader went away)."""
    while not stop.is_set():
        try:
            lines.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _pump_stdout(stdout: IO[bytes], lines: queue.Queue[object], stop: threading.Event,
                 read_error: list[BaseException]) -> None:
    """Move ``stdout``'s lines onto ``lines``, then the end marker; a read error (a
    broken connection surfaces here) is kept in ``read_error``."""
    try:
        for raw in iter(stdout.readline, b""):
            if not _put(lines, raw, stop):
                return
    except BaseException as exc:
        read_error.append(exc)
    finally:
        _put(lines, _EOF, stop)


def _next_item(lines: queue.Queue[object], *, start: float, deadline: float,
               idle_timeout: float | None, kill: Callable[[], None], what: str,
               clock: Callable[[], float]) -> object:
    """The next stdout line (or the end marker); on the timeout or the idle timeout the
    command is killed and :class:`TransportTimeout` raised."""
    remaining = deadline - clock()
    wait = remaining if idle_timeout is None else min(remaining, idle_timeout)
    if remaining <= 0:
        kill()
        raise TransportTimeout(f"{what}: timed out after {deadline - start:g}s")
    try:
        return lines.get(timeout=max(wait, 0.0))
    except queue.Empty:
        kill()
        if idle_timeout is not None and clock() < deadline:
            raise TransportTimeout(
                f"{what}: no output for {idle_timeout:g}s (idle timeout)"
            ) from None
        raise TransportTimeout(f"{what}: timed out after {deadline - start:g}s") from None


def _command_failed(what: str, rc: int, tail_text: str) -> CommandFailed:
    """The error of a command that exited ``rc``: its last stderr line in the message,
    the tail attached."""
    last = one_line(tail_text, 200, pick="last")
    detail = f": {last}" if last else ""
    return CommandFailed(f"{what} exited with status {rc}{detail}", rc, tail_text)


def stream_lines(
    stdout: IO[bytes],
    stderr: IO[bytes],
    *,
    wait_exit: Callable[[float], int | None],
    kill: Callable[[], None],
    timeout: float,
    idle_timeout: float | None,
    what: str,
    clock: Callable[[], float] = time.monotonic,
    extra_time: Callable[[], float] | None = None,
) -> Iterator[str]:
    """Yield ``stdout`` lines as they arrive, then check the exit status.

    ``wait_exit(seconds)`` returns the exit status, or None if the command is
    still running after ``seconds``. ``kill()`` kills the command's process
    tree. On ``timeout`` (whole command) or ``idle_timeout`` (between two
    lines) the tree is killed and :class:`TransportTimeout` raised; a non-zero
    exit raises :class:`CommandFailed` with the stderr tail. Closing the
    generator early also kills the command. ``extra_time()``, when given, is added
    to ``timeout`` (read again at every line: the caller may extend it).
    """
    start = clock()

    def deadline_now() -> float:
        return start + timeout + (extra_time() if extra_time is not None else 0.0)

    deadline = deadline_now()
    lines: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_LINES)
    tail = StderrTail()
    stop = threading.Event()
    read_error: list[BaseException] = []
    stderr_reader = threading.Thread(target=tail.read_from, args=(stderr,),
                                     name=f"{what}-stderr", daemon=True)
    threading.Thread(target=_pump_stdout, args=(stdout, lines, stop, read_error),
                     name=f"{what}-stdout", daemon=True).start()
    stderr_reader.start()

    finished = False
    try:
        while True:
            deadline = deadline_now()
            item = _next_item(lines, start=start, deadline=deadline, idle_timeout=idle_timeout,
                              kill=kill, what=what, clock=clock)
            if item is _EOF:
                break
            assert isinstance(item, bytes)
            yield _decode(item)
        stderr_reader.join(max(0.0, min(deadline - clock(), 5.0)))
        rc = wait_exit(max(0.0, deadline - clock()))
        if rc is None:
            kill()
            raise TransportTimeout(
                f"{what}: timed out after {deadline - start:g}s (output closed)")
        if read_error and rc < 0:
            raise TransportError(f"{what}: lost while reading output: {read_error[0]}")
        finished = True
        if rc != 0:
            raise _command_failed(what, rc, tail.text())
    finally:
        stop.set()
        if not finished:
            with contextlib.suppress(Exception):
                kill()
