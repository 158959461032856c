"""LocalTransport: run the agent on this machine as a subprocess.

The working directory is a fresh private ``mkdtemp`` (mode 0700) unless the
host names ``harness_workdir``: a missing one is created 0700 and removed on
close; an existing one gets a fresh private ``harness.*`` directory inside it,
so nothing of the user's is ever deleted.

Each command runs in its own session (``start_new_session=True``), so a
timeout kills its whole process group with ``os.killpg``. stdout is streamed
line by line as it arrives; stderr is read concurrently (no pipe deadlock)
and its tail goes into :class:`CommandFailed`.

The streaming itself is :func:`harness.transport.streams.stream_lines`, shared with the
SSH transport.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import CommandFailed, TransportError
from harness.transport.base import check_name
from harness.transport.streams import stream_lines

if TYPE_CHECKING:
    from harness.plan.inventory import Host
    from harness.transport.base import CommandInput

__all__ = ["LocalTransport"]


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
