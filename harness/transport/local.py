"""LocalTransport: run the agent on this machine as a subprocess.

The working directory is a fresh private ``mkdtemp`` (mode 0700) unless the
host names ``harness_workdir``: a missing one is created 0700 and removed on
close; an existing one gets a fresh private ``harness.*`` directory inside it,
so nothing of the user's is ever deleted.

Each command runs in its own session (``start_new_session=True``), so a
timeout kills its whole process group with ``os.killpg``. stdout is streamed
line by line as it arrives; stderr is read concurrently (no pipe deadlock)
and its tail goes into :class:`CommandFailed`.

:func:`stream_lines` is the streaming core shared with the SSH transport.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from harness.errors import CommandFailed, TransportError, TransportTimeout

if TYPE_CHECKING:
    from harness.inventory import Host
    from harness.transport.base import CommandInput

__all__ = ["STDERR_TAIL_BYTES", "LocalTransport", "check_name", "stream_lines"]

STDERR_TAIL_BYTES = 8192
_QUEUE_LINES = 1024
_EOF = object()


def check_name(name: str) -> str:
    """Refuse a ``put`` target that is not a plain file name."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or "\n" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def _decode(line: bytes) -> str:
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line.decode("utf-8", errors="replace")


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
    tail: deque[bytes] = deque()
    tail_size = [0]
    stop = threading.Event()
    read_error: list[BaseException] = []

    def read_stdout() -> None:
        try:
            for raw in iter(stdout.readline, b""):
                while not stop.is_set():
                    try:
                        lines.put(raw, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # a broken connection surfaces here
            read_error.append(exc)
        finally:
            while not stop.is_set():
                try:
                    lines.put(_EOF, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def read_stderr() -> None:
        try:
            while True:
                chunk = stderr.read1(65536) if hasattr(stderr, "read1") else stderr.read(4096)
                if not chunk:
                    return
                tail.append(chunk)
                tail_size[0] += len(chunk)
                while tail_size[0] - len(tail[0]) >= STDERR_TAIL_BYTES and len(tail) > 1:
                    tail_size[0] -= len(tail.popleft())
        except Exception:  # stderr is best effort; stdout reports broken connections
            return

    def stderr_tail() -> str:
        data = b"".join(tail)[-STDERR_TAIL_BYTES:]
        return data.decode("utf-8", errors="replace")

    threads = [
        threading.Thread(target=read_stdout, name=f"{what}-stdout", daemon=True),
        threading.Thread(target=read_stderr, name=f"{what}-stderr", daemon=True),
    ]
    for thread in threads:
        thread.start()

    finished = False
    try:
        while True:
            now = clock()
            deadline = deadline_now()
            remaining = deadline - now
            wait = remaining if idle_timeout is None else min(remaining, idle_timeout)
            if remaining <= 0:
                kill()
                raise TransportTimeout(f"{what}: timed out after {deadline - start:g}s")
            try:
                item = lines.get(timeout=max(wait, 0.0))
            except queue.Empty:
                kill()
                if idle_timeout is not None and clock() < deadline:
                    raise TransportTimeout(
                        f"{what}: no output for {idle_timeout:g}s (idle timeout)"
                    ) from None
                raise TransportTimeout(
                    f"{what}: timed out after {deadline - start:g}s") from None
            if item is _EOF:
                break
            assert isinstance(item, bytes)
            yield _decode(item)
        threads[1].join(max(0.0, min(deadline - clock(), 5.0)))
        rc = wait_exit(max(0.0, deadline - clock()))
        if rc is None:
            kill()
            raise TransportTimeout(
                f"{what}: timed out after {deadline - start:g}s (output closed)")
        if read_error and rc < 0:
            raise TransportError(f"{what}: lost while reading output: {read_error[0]}")
        finished = True
        if rc != 0:
            tail_text = stderr_tail()
            last = next((ln for ln in reversed(tail_text.splitlines()) if ln.strip()), "")
            detail = f": {last.strip()[:200]}" if last else ""
            raise CommandFailed(f"{what} exited with status {rc}{detail}", rc, tail_text)
    finally:
        stop.set()
        if not finished:
            with contextlib.suppress(Exception):
                kill()


class LocalTransport:
    """Run commands on this machine; see the module docstring."""

    name = "local"

    def __init__(self, host: Host | None = None, *, workdir: str | None = None) -> None:
        self.host = host
        self._host_name = host.name if host is not None else "localhost"
        wanted = workdir if workdir is not None else (host.workdir if host else None)
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._closed = False
        try:
            if wanted is None:
                self.workdir = tempfile.mkdtemp(prefix="harness.")
            else:
                base = Path(wanted).expanduser()
                if base.exists():
                    self.workdir = tempfile.mkdtemp(prefix="harness.", dir=base)
                else:
                    base.mkdir(parents=True, mode=0o700)
                    self.workdir = str(base)
            os.chmod(self.workdir, 0o700)
        except OSError as exc:
            raise TransportError(
                f"{self._host_name}: cannot create a working directory: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"LocalTransport(host={self._host_name!r}, workdir={self.workdir!r})"

    def put(self, local: Path, name: str) -> str:
        """Copy ``local`` into the working directory as ``name``; return its path."""
        self._check_open()
        target = os.path.join(self.workdir, check_name(name))
        try:
            shutil.copyfile(local, target)
            os.chmod(target, 0o600 | (os.stat(local).st_mode & 0o100))
        except OSError as exc:
            raise TransportError(f"{self._host_name}: cannot copy {local}: {exc}") from exc
        return target

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        idle_timeout: float | None = None,
        env: dict[str, str] | None = None,
        stdin: CommandInput | None = None,
    ) -> Iterator[str]:
        """Run ``argv`` in the working directory and yield its stdout lines."""
        self._check_open()
        if not argv:
            raise ValueError("run needs a non-empty argv")
        argv = [str(a) for a in argv]
        full_env = {**os.environ, **env} if env else None
        what = f"{self._host_name}: {os.path.basename(argv[0])}"
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=full_env,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            # The command could not start at all: report it like a failed command.
            raise CommandFailed(f"{what}: cannot start: {exc}", 127, str(exc)) from exc
        if stdin is not None:
            pipe = proc.stdin
            assert pipe is not None

            def write(data: bytes) -> None:
                pipe.write(data)
                pipe.flush()

            stdin.attach(write, pipe.close)
        return self._stream(proc, what, timeout, idle_timeout, stdin)

    def _stream(
        self,
        proc: subprocess.Popen[bytes],
        what: str,
        timeout: float,
        idle_timeout: float | None,
        stdin: CommandInput | None = None,
    ) -> Iterator[str]:
        with self._lock:
            self._running.add(proc)

        def wait_exit(seconds: float) -> int | None:
            try:
                return proc.wait(seconds)
            except subprocess.TimeoutExpired:
                return None

        def kill() -> None:
            _kill_group(proc)

        assert proc.stdout is not None and proc.stderr is not None
        try:
            yield from stream_lines(
                proc.stdout,
                proc.stderr,
                wait_exit=wait_exit,
                kill=kill,
                timeout=timeout,
                idle_timeout=idle_timeout,
                what=what,
                extra_time=stdin.extra_time if stdin is not None else None,
            )
        finally:
            if stdin is not None:
                stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.returncode not in (0, None):
                _kill_group(proc)  # it died: what it started may still run
            for stream in (proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    stream.close()
            with self._lock:
                self._running.discard(proc)

    def close(self) -> None:
        """Kill what still runs and remove the working directory; idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            running = list(self._running)
        for proc in running:
            _kill_group(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError(f"{self._host_name}: transport is closed")

    def __enter__(self) -> LocalTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group the command leads (it was started in a new session)."""
    if proc.poll() is not None:
        # The leader is gone; members of its group may remain.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
