"""Fingerprint hosts without running workloads (``harness probe``)."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.bundle import build_agent
from harness.errors import HarnessError
from harness.inventory import Host
from harness.plan import profile_id
from harness.remote import AgentSession
from harness.sweep import host_pythons
from harness.transport.factory import open_transport


@dataclass(frozen=True)
class ProbeResult:
    """One host × interpreter: its fingerprint, or why there is none."""

    host: str
    python: str
    env: Mapping[str, Any] | None
    error: str | None

    @property
    def profile_id(self) -> str | None:
        return profile_id(self.env) if self.env is not None else None


def _probe_host(host: Host, agent: Path, accept_new: bool, known_hosts: Path | None,
                out: list[ProbeResult]) -> None:
    pythons = host_pythons(host)
    try:
        with open_transport(host, accept_new_host_keys=accept_new,
                            known_hosts=known_hosts) as transport:
            session = AgentSession(transport, agent, host.name)
            for python in pythons:
                try:
                    out.append(ProbeResult(host.name, python, session.probe(python), None))
                except HarnessError as exc:
                    out.append(ProbeResult(host.name, python, None, str(exc)))
    except HarnessError as exc:
        done = {r.python for r in out if r.host == host.name}
        out.extend(ProbeResult(host.name, py, None, str(exc)) for py in pythons
                   if py not in done)


def probe_hosts(hosts: tuple[Host, ...], *, accept_new_host_keys: bool = False,
                known_hosts: Path | None = None) -> list[ProbeResult]:
    """Probe every host in parallel; results in inventory order."""
    per_host: dict[str, list[ProbeResult]] = {h.name: [] for h in hosts}
    with tempfile.TemporaryDirectory(prefix="harness-agent-") as tmp:
        agent = build_agent(Path(tmp))
        threads = [threading.Thread(target=_probe_host, daemon=True, args=(
            h, agent, accept_new_host_keys, known_hosts, per_host[h.name])) for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return [r for h in hosts for r in per_host[h.name]]
