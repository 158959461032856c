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
``run`` quotes every argv element with :func:`shlex.quote`, runs the
command as the leader of its own process group (``setsid``; the pid is written
to a file in the working directory) and, on a timeout or an early close,
kills that whole group with ``kill -KILL -- -PGID``.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import itertools
import os
import posixpath
import re
import shlex
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from secrets import token_hex
from typing import TYPE_CHECKING, Any

import paramiko

from harness.errors import HostKeyError, TransportError, TransportTimeout
from harness.transport.local import check_name, stream_lines

if TYPE_CHECKING:
    from harness.inventory import Host
    from harness.transport.base import CommandInput

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "SSHTransport", "fingerprint"]

DEFAULT_CONNECT_TIMEOUT = 15.0
DEFAULT_KEEPALIVE = 15
_HELPER_TIMEOUT = 30.0
# A working directory with more entries than this is removed with one ``rm -rf``.
_SFTP_RMTREE_MAX = 200
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PASSWORD_VARS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
_PASSPHRASE_VARS = (
    "ansible_ssh_private_key_passphrase",
    "ansible_paramiko_private_key_passphrase",
)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _known_name(hostname: str, port: int) -> str:
    return hostname if port == 22 else f"[{hostname}]:{port}"


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown keys, or accept and record them when asked to."""

    def __init__(self, label: str, accept_new: bool, record_to: Path) -> None:
        self.label = label
        self.accept_new = accept_new
        self.record_to = record_to

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        fp = fingerprint(key)
        if not self.accept_new:
            raise HostKeyError(
                f"{self.label}: unknown host key for {hostname} "
                f"({key.get_name()} {fp}); refusing to connect "
                "(verify it, then pass --accept-new-host-keys to trust it)",
                hint=f"or add the key to {self.record_to} yourself",
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        try:
            self.record_to.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.record_to, "a", encoding="ascii") as known:
                known.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        except OSError as exc:
            raise TransportError(
                f"{self.label}: accepted host key {fp} but cannot record it in "
                f"{self.record_to}: {exc.strerror or exc}"
            ) from exc


class _StderrReader:
    """``read(n)`` over a channel's stderr, returning whatever has arrived."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def read(self, size: int = 65536) -> bytes:
        return self._channel.recv_stderr(size)


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
        self._accept_new = accept_new_host_keys
        self._extra_known_hosts = Path(known_hosts).expanduser() if known_hosts else None
        self._user_known_hosts = Path(
            user_known_hosts if user_known_hosts else "~/.ssh/known_hosts"
        ).expanduser()
        self._ssh_config = self._load_ssh_config(
            Path(ssh_config).expanduser() if ssh_config else Path("~/.ssh/config").expanduser()
        )
        self._keepalive = keepalive_interval
        self._clients: list[paramiko.SSHClient] = []  # jump hosts first, target last
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()
        self._running: dict[int, tuple[paramiko.Channel, str]] = {}
        self._counter = itertools.count(1)
        self._closed = False
        self.workdir = ""
        self._created_top = ""  # the topmost directory _make_workdir created
        self.endpoint = ""
        try:
            self._client = self._connect_chain()
            self.workdir = self._make_workdir()
        except BaseException:
            self._release()
            raise

    # -- connecting -------------------------------------------------------

    def _load_ssh_config(self, path: Path) -> paramiko.SSHConfig:
        if path.is_file():
            try:
                return paramiko.SSHConfig.from_path(str(path))
            except (OSError, paramiko.SSHException, ValueError) as exc:
                raise TransportError(f"{self.host.name}: cannot read {path}: {exc}") from exc
        return paramiko.SSHConfig()

    def _new_client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self._user_known_hosts.is_file():
            try:
                client.load_system_host_keys(str(self._user_known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise TransportError(
                    f"{self.host.name}: cannot read {self._user_known_hosts}: {exc}"
                ) from exc
        if self._extra_known_hosts is not None and self._extra_known_hosts.is_file():
            try:
                client.get_host_keys().load(str(self._extra_known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise TransportError(
                    f"{self.host.name}: cannot read {self._extra_known_hosts}: {exc}"
                ) from exc
        record_to = self._extra_known_hosts or self._user_known_hosts
        client.set_missing_host_key_policy(
            _HostKeyPolicy(self.host.name, self._accept_new, record_to)
        )
        return client

    def _connect_chain(self) -> paramiko.SSHClient:
        target = self._ssh_config.lookup(self.host.address)
        jumps = [j.strip() for j in str(target.get("proxyjump", "")).split(",") if j.strip()]
        if jumps and jumps[0].lower() == "none":
            jumps = []
        sock: Any = None
        if not jumps and target.get("proxycommand", "none").lower() != "none":
            sock = paramiko.ProxyCommand(target["proxycommand"])
        for jump in jumps:
            user, _, rest = jump.rpartition("@")
            name, _, port = rest.partition(":")
            conf = self._ssh_config.lookup(name)
            jump_client = self._connect_one(
                label=f"jump host {name}",
                conf=conf,
                address=name,
                user=user or None,
                port=int(port) if port else None,
                key_file=None,
                sock=sock,
                secrets=False,
            )
            sock = self._open_tunnel(jump_client, conf, name)
        client = self._connect_one(
            label=self.host.name,
            conf=target,
            address=self.host.address,
            user=self.host.user,
            port=self.host.port,
            key_file=self.host.key_file,
            sock=sock,
            secrets=True,
        )
        return client

    def _open_tunnel(self, jump: paramiko.SSHClient, conf: Any, name: str) -> paramiko.Channel:
        target = self._ssh_config.lookup(self.host.address)
        hostname = str(target.get("hostname", self.host.address))
        port = self.host.port or int(target.get("port", 22))
        transport = jump.get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip", (hostname, port), ("127.0.0.1", 0), timeout=self.connect_timeout
            )
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(
                f"{self.host.name}: jump host {name} cannot reach {hostname}:{port}: {exc}"
            ) from exc

    def _connect_one(
        self,
        *,
        label: str,
        conf: Any,
        address: str,
        user: str | None,
        port: int | None,
        key_file: str | None,
        sock: Any,
        secrets: bool,
    ) -> paramiko.SSHClient:
        hostname = str(conf.get("hostname", address))
        port = port or int(conf.get("port", 22))
        user = user or conf.get("user") or getpass.getuser()
        if key_file:
            key_path = os.path.expanduser(key_file)
            if not os.path.isfile(key_path):
                raise TransportError(f"{label}: private key file {key_path} does not exist")
            key_files = [key_path]
        else:
            key_files = [
                p
                for p in (os.path.expanduser(f) for f in conf.get("identityfile", []))
                if os.path.isfile(p)
            ]
        password = passphrase = None
        if secrets:
            password = next(
                (self.host.secrets[k] for k in _PASSWORD_VARS if k in self.host.secrets), None
            )
            passphrase = next(
                (self.host.secrets[k] for k in _PASSPHRASE_VARS if k in self.host.secrets), None
            )
        where = f"{user}@{hostname}:{port}"
        if label == self.host.name:
            self.endpoint = where
        client = self._new_client()
        self._clients.append(client)
        timeout = self.connect_timeout
        try:
            client.connect(
                hostname,
                port=port,
                username=user,
                password=str(password) if password is not None else None,
                passphrase=str(passphrase) if passphrase is not None else None,
                key_filename=key_files or None,
                allow_agent=True,
                look_for_keys=not key_files,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
                sock=sock,
            )
        except HostKeyError:
            raise
        except paramiko.BadHostKeyException as exc:
            raise HostKeyError(
                f"{label}: host key for {_known_name(hostname, port)} has CHANGED "
                f"(known {fingerprint(exc.expected_key)}, offered {fingerprint(exc.key)}); "
                "refusing to connect",
                hint="if the change is expected, remove the old key from known_hosts",
            ) from exc
        except paramiko.AuthenticationException as exc:
            err = TransportError(
                f"{label}: authentication failed as {where}: {exc}",
                hint="check ansible_user, the key file, ~/.ssh/config and the ssh agent",
            )
            err.retryable = False  # type: ignore[misc]
            raise err from exc
        except TimeoutError as exc:
            raise TransportTimeout(
                f"{label}: connecting to {where} timed out after {timeout:g}s"
            ) from exc
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            reasons = "; ".join(sorted({e.strerror or str(e) for e in exc.errors.values()}))
            raise TransportError(f"{label}: cannot connect to {where}: {reasons}") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise TransportError(f"{label}: cannot connect to {where}: {reason}") from exc
        transport = client.get_transport()
        if transport is not None and self._keepalive:
            transport.set_keepalive(self._keepalive)
        return client

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
        channel = self._open_channel()
        try:
            channel.settimeout(timeout)
            channel.exec_command(command)
            out = channel.makefile("rb").read()
            err = channel.makefile_stderr("rb").read()
            if not channel.status_event.wait(timeout):
                raise TransportTimeout(f"{self.host.name}: helper command timed out")
            return channel.exit_status, out.decode(errors="replace"), err.decode(errors="replace")
        except TimeoutError as exc:
            raise TransportTimeout(f"{self.host.name}: helper command timed out") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{self.host.name}: connection lost: {exc}") from exc
        finally:
            channel.close()

    def _sftp_client(self) -> paramiko.SFTPClient:
        """The connection's one SFTP session (opened on first use)."""
        if self._sftp is None:
            try:
                self._sftp = self._client.open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise TransportError(f"{self.host.name}: cannot open SFTP: {exc}") from exc
            channel = self._sftp.get_channel()
            if channel is not None:
                channel.settimeout(max(self.connect_timeout, 60.0))
        return self._sftp

    def _make_workdir(self) -> str:
        """Create the private working directory over SFTP; remember the topmost directory
        this transport created (parents of a missing ``harness_workdir`` too), which close
        removes.

        SFTP runs no shell command: on hosts whose login shell does costly start-up work
        for every command (``~/.bashrc`` is read for each ``ssh host cmd``), connecting
        costs one SFTP session instead of a shell. A fresh directory is made as ``mktemp
        -d`` makes one: a random name, created with ``mkdir`` (which fails on any existing
        name, so nothing planted there is used), mode 0700.
        """
        sftp = self._sftp_client()
        try:
            home = sftp.normalize(".")
            wanted = self.host.workdir
            if wanted is None:
                path = self._sftp_mkdtemp(sftp, "/tmp")
                top = path
            else:
                if wanted == "~" or wanted.startswith("~/"):
                    wanted = wanted[2:]
                target = posixpath.normpath(posixpath.join(home, wanted))
                if self._sftp_exists(sftp, target):
                    # An existing directory is the user's: work in a fresh one inside it.
                    path = self._sftp_mkdtemp(sftp, target)
                    top = path
                else:
                    top = self._sftp_makedirs(sftp, target)
                    path = target
            path = sftp.normalize(path)
            top = sftp.normalize(top)
            sftp.chmod(path, 0o700)
        except TransportError:
            raise
        except TimeoutError as exc:
            raise TransportTimeout(
                f"{self.host.name}: creating a working directory timed out") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise TransportError(
                f"{self.host.name}: cannot create a working directory: {reason}") from exc
        self._created_top = top
        return path

    @staticmethod
    def _sftp_exists(sftp: paramiko.SFTPClient, path: str) -> bool:
        try:
            sftp.stat(path)  # follows symlinks, as ``[ -e ]`` does
        except FileNotFoundError:
            return False
        return True

    @staticmethod
    def _sftp_mkdtemp(sftp: paramiko.SFTPClient, parent: str) -> str:
        for _ in range(20):
            path = f"{parent.rstrip('/') or ''}/harness.{token_hex(6)}"
            try:
                sftp.mkdir(path, 0o700)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError) or not SSHTransport._sftp_exists(
                        sftp, path):
                    raise
                continue  # the name is taken: draw another
            return path
        raise TransportError(f"cannot find a free directory name in {parent}")

    @staticmethod
    def _sftp_makedirs(sftp: paramiko.SFTPClient, target: str) -> str:
        """``mkdir -p target`` (the leaf 0700); return the topmost directory created."""
        missing = [target]
        parent = posixpath.dirname(target)
        while parent not in ("/", "") and not SSHTransport._sftp_exists(sftp, parent):
            missing.append(parent)
            parent = posixpath.dirname(parent)
        for directory in reversed(missing):
            sftp.mkdir(directory, 0o700 if directory == target else 0o777)
        return missing[-1]

    def _sftp_rmtree(self, root: str) -> bool:
        """Remove ``root`` over SFTP (symlinks are removed, never followed); False when
        that did not work or the tree is large (the caller falls back to ``rm -rf``)."""
        budget = [_SFTP_RMTREE_MAX]

        def remove(path: str) -> None:
            assert self._sftp is not None
            for entry in self._sftp.listdir_attr(path):  # lstat attributes
                budget[0] -= 1
                if budget[0] < 0:
                    raise OSError("too many entries")
                child = f"{path}/{entry.filename}"
                if stat.S_ISDIR(entry.st_mode or 0):
                    remove(child)
                else:
                    self._sftp.remove(child)
            self._sftp.rmdir(path)

        if self._sftp is None:
            return False
        try:
            remove(root)
        except FileNotFoundError:
            return not self._sftp_exists(self._sftp, root)
        except (paramiko.SSHException, OSError, EOFError):
            return False
        return True

    # -- the Transport protocol --------------------------------------------

    def __repr__(self) -> str:
        return f"SSHTransport(host={self.host.name!r}, endpoint={self.endpoint!r})"

    def put(self, local: Path, name: str) -> str:
        """Copy ``local`` into the working directory over SFTP; return its remote path."""
        self._check_open()
        remote = f"{self.workdir}/{check_name(name)}"
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
        if remove and not (self._sftp_rmtree(remove) if not running else False):
            with contextlib.suppress(TransportError):
                self._exec(f"rm -rf -- {shlex.quote(remove)}")
        self._release()

    def _release(self) -> None:
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                self._sftp.close()
            self._sftp = None
        for client in reversed(self._clients):
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError(f"{self.host.name}: transport is closed")

    def __enter__(self) -> SSHTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
