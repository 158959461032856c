"""Choose and open the transport for a host record: local subprocess or SSH."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.transport.local import LocalTransport
from harness.transport.ssh import DEFAULT_CONNECT_TIMEOUT, SSHTransport

if TYPE_CHECKING:
    from harness.plan.inventory import Host
    from harness.transport.base import Transport

__all__ = ["open_transport"]


def open_transport(
    host: Host,
    *,
    accept_new_host_keys: bool = False,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    known_hosts: Path | str | None = None,
) -> Transport:
    """Open the transport ``host.connection`` names, with its working directory ready.

    ``known_hosts`` is an extra known_hosts file checked besides
    ``~/.ssh/known_hosts`` (and where newly accepted keys are recorded).
    Raises TransportError (HostKeyError, TransportTimeout) when the host
    cannot be reached.
    """
    if host.connection == "local":
        return LocalTransport(host)
    return SSHTransport(
        host,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
        known_hosts=known_hosts,
    )
