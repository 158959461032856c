"""SSHTransport: reach a host over SSH with paramiko, one connection per host.

How the host is reached, as OpenSSH would: the inventory's ``ansible_host``,
``ansible_port``, ``ansible_user`` and ``ansible_ssh_private_key_file`` win;
``~/.ssh/config`` fills the rest (``HostName``, ``User``, ``Port``,
``IdentityFile``, ``ProxyJump``, ``ProxyCommand``); the ssh agent is used.

Host keys are checked against ``~/.ssh/known_hosts`` and, when given, an
extra known_hosts file. An unknown key is refused with a :class:`HostKeyError`
showing its SHA256 fingerprint, unless ``accept_new_host_keys`` is set: then
it is appended to the known_hosts file (the extra one if given, else
``~/.ssh/known_hosts``). A changed key is always refused. ``AutoAddPolicy`` is
never used.

Opening the transport creates a private working directory over SFTP, as
``mktemp -d`` would: ``/tmp/harness.<random>``, mode 0700 -- or the
inventory's ``harness_workdir``: created 0700 (with its missing parents) if
missing, else a fresh ``harness.*`` directory inside it -- and closing removes
it (over SFTP too; ``rm -rf`` when a command was still running or the tree is
large). SFTP runs no shell command, so a login shell's start-up files (read for
every ``ssh host command``) are paid only by the commands ``run`` starts.

A host whose sshd refuses the SFTP subsystem (hardened hosts drop the ``Subsystem
sftp`` line) is reached as Ansible's ``ssh_transfer_method = smart`` would in the
end: the working directory is made and removed by shell commands and files are
piped through a command's standard input (:mod:`harness.transport.shell_files`),
with the same 0700 directory and cleanup. ``transfer`` says which way was taken
(``"sftp"`` or ``"shell"``) and ``sftp_refused`` why SFTP was not used.
``run`` quotes every argv element with :func:`shlex.quote`, runs the
command as the leader of its own process group (``setsid``; the pid is written
to a file in the working directory) and, on a timeout or an early close,
kills that whole group with ``kill -KILL -- -PGID``.

Connecting lives in :mod:`harness.transport.ssh_connect`, the SFTP working directory in
:mod:`harness.transport.sftp` (over the command channel in
:mod:`harness.transport.shell_files`), the line streaming in
:mod:`harness.transport.streams`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shlex
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from harness.errors import TransportError, TransportTimeout
from harness.transport.base import check_name
from harness.transport.sftp import make_workdir, sftp_rmtree
from harness.transport.shell_files import shell_make_workdir, shell_put
from harness.transport.ssh_connect import Connector
from harness.transport.streams import stream_lines

if TYPE_CHECKING:
    from harness.plan.inventory import Host
    from harness.transport.base import CommandInput

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "SSHTransport"]

DEFAULT_CONNECT_TIMEOUT = 15.0
DEFAULT_KEEPALIVE = 15
_HELPER_TIMEOUT = 30.0
# A copy over the command channel: the longest wait for the host to take more bytes.
_PUT_TIMEOUT = 60.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _StderrReader:
    """``read(n)`` over a channel's stderr, returning whatever has arrived."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def read(self, size: int = 65536) -> bytes:
        return self._channel.recv_stderr(size)


class _SftpRefused(TransportError):
    """The host answers commands but refuses the SFTP subsystem."""


class SSHTransport:
    """A connection to one host; see the module docstring."""

    name = "ssh"

    def __init__(
        self,
        host: Host,
        *,
        accept_new_host_keys: bool = False,
        known_hosts: Path | str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        keepalive_interval: int = DEFAULT_KEEPALIVE,
        ssh_config: Path | str | None = None,
        user_known_hosts: Path | str | None = None,
    ) -> None:
        self.host = host
        self.connect_timeout = connect_timeout
        self._connector = Connector(
            host,
            accept_new_host_keys=accept_new_host_keys,
            known_hosts=Path(known_hosts).expanduser() if known_hosts else None,
            user_known_hosts=Path(
                user_known_hosts if user_known_hosts else "~/.ssh/known_hosts").expanduser(),
            ssh_config=(Path(ssh_config).expanduser() if ssh_config
                        else Path("~/.ssh/config").expanduser()),
            connect_timeout=connect_timeout,
            keepalive_interval=keepalive_interval,
        )
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()
        self._running: dict[int, tuple[paramiko.Channel, str]] = {}
        self._counter = itertools.count(1)
        self._closed = False
        self.workdir = ""
        self._created_top = ""  # the topmost directory making the workdir created
        self.transfer = "sftp"  # how files travel: "sftp", or "shell" (no SFTP subsystem)
        self.sftp_refused = ""  # why SFTP could not be used
        try:
            self._client = self._connector.connect()
            self.workdir, self._created_top = self._make_workdir()
        except BaseException:
            self._release()
            raise

    @property
    def endpoint(self) -> str:
        """The target's ``user@host:port`` (empty until connecting reached it)."""
        return self._connector.endpoint

    # -- remote helpers -----------------------------------------------------

    def _open_channel(self) -> paramiko.Channel:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError(f"{self.host.name}: connection to {self.endpoint} is closed")
        try:
            return transport.open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{self.host.name}: cannot open a session: {exc}") from exc

    def _exec(self, command: str, timeout: float = _HELPER_TIMEOUT) -> tuple[int, str, str]:
        """Run a small shell command; return (status, stdout, stderr)."""
        status, out, err = self._exec_bytes(command, None, timeout)
        return status, out.decode(errors="replace"), err.decode(errors="replace")

    def _exec_bytes(self, command: str, data: bytes | None = None,
                    timeout: float = _HELPER_TIMEOUT) -> tuple[int, bytes, bytes]:
        """Run a small shell command with ``data`` as its standard input (None: empty);
        return (status, stdout, stderr). ``timeout`` bounds each wait for the host."""
        channel = self._open_channel()
        try:
            channel.settimeout(timeout)
            channel.exec_command(command)
            if data:
                try:
                    channel.sendall(data)
                except TimeoutError:
                    raise
                except (OSError, EOFError):
                    pass  # it stopped reading: its status and stderr say why
            channel.shutdown_write()
            out = channel.makefile("rb").read()
            err = channel.makefile_stderr("rb").read()
            if not channel.status_event.wait(timeout):
                raise TransportTimeout(f"{self.host.name}: helper command timed out")
            return channel.exit_status, out, err
        except TimeoutError as exc:
            raise TransportTimeout(f"{self.host.name}: helper command timed out") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{self.host.name}: connection lost: {exc}") from exc
        finally:
            channel.close()

    def _exec_put(self, command: str, data: bytes | None) -> tuple[int, bytes, bytes]:
        return self._exec_bytes(command, data, _PUT_TIMEOUT)

    def _make_workdir(self) -> tuple[str, str]:
        """The working directory and the topmost directory made: over SFTP, or over the
        command channel when the host refuses the SFTP subsystem."""
        try:
            sftp = self._sftp_client()
        except _SftpRefused as exc:
            self.transfer, self.sftp_refused = "shell", str(exc)
            return shell_make_workdir(self._exec_put, self.host.name, self.host.workdir)
        return make_workdir(sftp, self.host.name, self.host.workdir)

    def _sftp_client(self) -> paramiko.SFTPClient:
        """The connection's one SFTP session (opened on first use); _SftpRefused when
        the host refuses it while the connection stays up."""
        if self._sftp is None:
            try:
                self._sftp = self._client.open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                transport = self._client.get_transport()
                if isinstance(exc, TimeoutError) or transport is None or (
                        not transport.is_active()):
                    raise TransportError(f"{self.host.name}: cannot open SFTP: {exc}") from exc
                reason = str(exc).rstrip(".") or type(exc).__name__
                raise _SftpRefused(reason) from exc
            channel = self._sftp.get_channel()
            if channel is not None:
                channel.settimeout(max(self.connect_timeout, 60.0))
        return self._sftp

    # -- the Transport protocol --------------------------------------------

    def __repr__(self) -> str:
        return f"SSHTransport(host={self.host.name!r}, endpoint={self.endpoint!r})"

    def put(self, local: Path, name: str) -> str:
        """Copy ``local`` into the working directory (over SFTP, or through a command's
        stdin when the host has no SFTP); return its remote path."""
        self._check_open()
        remote = f"{self.workdir}/{check_name(name)}"
        if self.transfer == "shell":
            shell_put(self._exec_put, self.host.name, local, remote)
            return remote
        try:
            sftp = self._sftp_client()
            sftp.put(str(local), remote, confirm=True)
            sftp.chmod(remote, 0o600 | (os.stat(local).st_mode & 0o100))
        except FileNotFoundError as exc:
            if not Path(local).exists():
                raise TransportError(f"{self.host.name}: no local file {local}") from exc
            raise TransportError(f"{self.host.name}: cannot write {remote}: {exc}") from exc
        except TimeoutError as exc:
            raise TransportTimeout(f"{self.host.name}: copying {local} timed out") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(
                f"{self.host.name}: cannot copy {local} to {remote}: {exc}"
            ) from exc
        return remote

    def command_line(self, argv: Sequence[str], env: dict[str, str] | None, pid_file: str) -> str:
        """The shell line ``run`` sends: every argv element quoted, run under setsid."""
        words = [str(a) for a in argv]
        if env:
            bad = [k for k in env if not _ENV_NAME.match(k)]
            if bad:
                raise ValueError(f"invalid environment variable name {bad[0]!r}")
            words = ["env", *(f"{k}={v}" for k, v in env.items()), *words]
        quoted = " ".join(shlex.quote(w) for w in words)
        # $$ of the inner sh is the leader of the new session and process group.
        inner = shlex.quote(f'echo $$ > {shlex.quote(pid_file)} && exec "$@"')
        return (
            f"cd {shlex.quote(self.workdir)} && "
            "if command -v setsid >/dev/null 2>&1; "
            f"then exec setsid -w sh -c {inner} harness {quoted}; "
            f"else exec sh -c {inner} harness {quoted}; fi"
        )

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        idle_timeout: float | None = None,
        env: dict[str, str] | None = None,
        stdin: CommandInput | None = None,
    ) -> Iterator[str]:
        """Run ``argv`` in the working directory; yield its stdout lines as they arrive."""
        self._check_open()
        if not argv:
            raise ValueError("run needs a non-empty argv")
        number = next(self._counter)
        pid_file = f"{self.workdir}/.run{number}.pid"
        command = self.command_line(argv, env, pid_file)
        channel = self._open_channel()
        try:
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            channel.close()
            raise TransportError(f"{self.host.name}: cannot start a command: {exc}") from exc
        what = f"{self.host.name}: {os.path.basename(str(argv[0]))}"
        if stdin is not None:
            stdin.attach(channel.sendall, channel.shutdown_write)
        else:
            with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
                channel.shutdown_write()  # an empty stdin, as the local transport gives
        return self._stream(number, channel, pid_file, what, timeout, idle_timeout, stdin)

    def _stream(
        self,
        number: int,
        channel: paramiko.Channel,
        pid_file: str,
        what: str,
        timeout: float,
        idle_timeout: float | None,
        stdin: CommandInput | None = None,
    ) -> Iterator[str]:
        with self._lock:
            self._running[number] = (channel, pid_file)

        def wait_exit(seconds: float) -> int | None:
            if not channel.status_event.wait(seconds):
                return None
            status = channel.exit_status
            if status == -1:
                transport = self._client.get_transport()
                if transport is None or not transport.is_active():
                    raise TransportError(f"{what}: connection lost while the command ran")
            return status

        def kill() -> None:
            self._kill(channel, pid_file)

        try:
            yield from stream_lines(
                channel.makefile("rb"),
                _StderrReader(channel),  # type: ignore[arg-type]
                wait_exit=wait_exit,
                kill=kill,
                timeout=timeout,
                idle_timeout=idle_timeout,
                what=what,
                extra_time=stdin.extra_time if stdin is not None else None,
            )
        finally:
            if channel.exit_status_ready() and channel.exit_status not in (0, -1):
                # The command died (killed, crashed): what it started may still run.
                self._kill(channel, pid_file, even_if_exited=True)
            channel.close()
            with self._lock:
                self._running.pop(number, None)

    def _kill(self, channel: paramiko.Channel, pid_file: str, even_if_exited: bool = False
              ) -> None:
        """Kill the command's whole process group on the host, then drop the channel."""
        if channel.exit_status_ready() and channel.exit_status != -1 and not even_if_exited:
            channel.close()
            return
        quoted = shlex.quote(pid_file)
        script = (
            f"i=0; while [ ! -s {quoted} ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
            f'pgid=$(cat {quoted} 2>/dev/null) && [ -n "$pgid" ] && '
            f'{{ kill -KILL -- -"$pgid" 2>/dev/null || kill -KILL "$pgid" 2>/dev/null; }}; true'
        )
        with contextlib.suppress(TransportError):
            self._exec(script, timeout=10.0)
        channel.close()

    def close(self) -> None:
        """Kill what still runs, remove the working directory, disconnect; idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            running = list(self._running.values())
        for channel, pid_file in running:
            with contextlib.suppress(Exception):
                self._kill(channel, pid_file)
        remove = self._created_top or self.workdir
        if remove and not (not running and self._sftp is not None
                           and sftp_rmtree(self._sftp, remove)):
            with contextlib.suppress(TransportError):
                self._exec(f"rm -rf -- {shlex.quote(remove)}")
        self._release()

    def _release(self) -> None:
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                self._sftp.close()
            self._sftp = None
        for client in reversed(self._connector.clients):
            with contextlib.suppress(Exception):
                client.close()
        self._connector.clients.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError(f"{self.host.name}: transport is closed")

    def __enter__(self) -> SSHTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
