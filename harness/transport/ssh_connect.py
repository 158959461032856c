"""Opening an SSH connection to a host as OpenSSH would, with paramiko.

The inventory's ``ansible_host``, ``ansible_port``, ``ansible_user`` and
``ansible_ssh_private_key_file`` win; ``~/.ssh/config`` fills the rest (``HostName``,
``User``, ``Port``, ``IdentityFile``, ``ProxyJump``, ``ProxyCommand``); the ssh agent
is used. Host keys are checked against ``~/.ssh/known_hosts`` and an optional extra
known_hosts file: an unknown key is refused (:class:`HostKeyError` with its SHA256
fingerprint) unless new keys are accepted, then it is recorded; a changed key is always
refused. :class:`Connector` opens the chain (jump hosts first, the target last) and
keeps every client it opened so the transport can close them.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

from harness.errors import HostKeyError, TransportError, TransportTimeout

if TYPE_CHECKING:
    from harness.plan.inventory import Host

__all__ = ["Connector", "fingerprint"]

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


class Connector:
    """Connects to one host (through its jump hosts); ``clients`` holds every client
    opened, jump hosts first, and ``endpoint`` the target's ``user@host:port``."""

    def __init__(self, host: Host, *, accept_new_host_keys: bool, known_hosts: Path | None,
                 user_known_hosts: Path, ssh_config: Path, connect_timeout: float,
                 keepalive_interval: int) -> None:
        self.host = host
        self.connect_timeout = connect_timeout
        self._accept_new = accept_new_host_keys
        self._extra_known_hosts = known_hosts
        self._user_known_hosts = user_known_hosts
        self._keepalive = keepalive_interval
        self.clients: list[paramiko.SSHClient] = []  # jump hosts first, target last
        self.endpoint = ""
        self._ssh_config = self._load_ssh_config(ssh_config)

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

    def connect(self) -> paramiko.SSHClient:
        """The connected client of the target host (through its jump hosts)."""
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

    def _secret(self, names: tuple[str, ...]) -> Any:
        """The first of the inventory's secret variables ``names`` the host sets."""
        return next((self.host.secrets[k] for k in names if k in self.host.secrets), None)

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
        key_files = _key_files(label, key_file, conf)
        password = self._secret(_PASSWORD_VARS) if secrets else None
        passphrase = self._secret(_PASSPHRASE_VARS) if secrets else None
        where = f"{user}@{hostname}:{port}"
        if label == self.host.name:
            self.endpoint = where
        client = self._new_client()
        self.clients.append(client)
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


def _key_files(label: str, key_file: str | None, conf: Any) -> list[str]:
    """The private keys to offer: the inventory's (which must exist), else the
    ``IdentityFile`` entries of ~/.ssh/config that exist."""
    if key_file:
        key_path = os.path.expanduser(key_file)
        if not os.path.isfile(key_path):
            raise TransportError(f"{label}: private key file {key_path} does not exist")
        return [key_path]
    return [
        p
        for p in (os.path.expanduser(f) for f in conf.get("identityfile", []))
        if os.path.isfile(p)
    ]
