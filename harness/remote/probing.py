"""Fingerprint hosts without running workloads (``harness probe``), and time their speed
probe for a few seconds to judge their stability (``harness probe --noise``)."""

from __future__ import annotations

import json
import math
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, OptionError, ProtocolError
from harness.plan.cells import profile_id
from harness.plan.inventory import Host, host_pythons
from harness.remote.bundle import build_agent
from harness.remote.owner import HOST_WAIT_DEFAULT_S, HostBusy, busy_reason, host_lock_spec
from harness.remote.session import PROBE_TIMEOUT_S, AgentSession
from harness.stability import Verdict, assess
from harness.transport.factory import open_transport

NOISE_DEFAULT_S = 5.0
NOISE_MAX_S = 600.0  # harness.agent.speed.MAX_SECONDS


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

    @property
    def noise(self) -> Mapping[str, Any] | None:
        """What ``harness probe --noise`` measured (the agent's ``noise`` entry)."""
        noise = self.env.get("noise") if self.env is not None else None
        return noise if isinstance(noise, Mapping) else None

    @property
    def verdict(self) -> Verdict | None:
        """The stability verdict on the probe series (``--noise`` only)."""
        noise = self.noise
        if noise is None:
            return None
        return assess(noise.get("probes") or (), [noise.get("steal_pct")],
                      [noise.get("loadavg_1m")])


# How one interpreter of a host is probed: (session, python) -> its env message.
Prober = Callable[[AgentSession, str], Mapping[str, Any]]


def _probe_host(host: Host, agent: Path, accept_new: bool, known_hosts: Path | None,
                out: list[ProbeResult], prober: Prober | None = None) -> None:
    pythons = host_pythons(host)
    try:
        with open_transport(host, accept_new_host_keys=accept_new,
                            known_hosts=known_hosts) as transport:
            session = AgentSession(transport, agent, host.name)
            for python in pythons:
                try:
                    env = (prober or AgentSession.probe)(session, python)
                    out.append(ProbeResult(host.name, python, env, None))
                except HarnessError as exc:
                    out.append(ProbeResult(host.name, python, None, str(exc)))
    except HarnessError as exc:
        done = {r.python for r in out if r.host == host.name}
        out.extend(ProbeResult(host.name, py, None, str(exc)) for py in pythons
                   if py not in done)


def probe_hosts(hosts: tuple[Host, ...], *, accept_new_host_keys: bool = False,
                known_hosts: Path | None = None,
                prober: Prober | None = None) -> list[ProbeResult]:
    """Probe every host in parallel; results in inventory order. ``prober``: how each
    interpreter is probed (default: its fingerprint, AgentSession.probe)."""
    per_host: dict[str, list[ProbeResult]] = {h.name: [] for h in hosts}
    with tempfile.TemporaryDirectory(prefix="harness-agent-") as tmp:
        agent = build_agent(Path(tmp))
        threads = [threading.Thread(target=_probe_host, daemon=True, args=(
            h, agent, accept_new_host_keys, known_hosts, per_host[h.name], prober))
            for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return [r for h in hosts for r in per_host[h.name]]


# --------------------------------------------------------------------------- --noise


# The holder's "sweep" a waiting sweep sees while `harness probe --noise` holds a host.
NOISE_LOCK_NAME = "probe --noise"


def check_noise_seconds(seconds: float) -> float:
    """``--noise SECONDS`` in (0, NOISE_MAX_S], else an OptionError."""
    if not math.isfinite(seconds) or not 0 < seconds <= NOISE_MAX_S:
        raise OptionError(f"--noise {seconds:g}: SECONDS must be more than 0 and at most "
                          f"{NOISE_MAX_S:g}", hint=f"e.g. --noise {NOISE_DEFAULT_S:g}")
    return seconds


class _MachineTurns:
    """One lock per physical machine (machine-id + boot-id): hosts that are one machine
    time their probes one after another, not over each other's busy loops."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def lock_for(self, env: Mapping[str, Any]) -> threading.Lock:
        key = (str(env.get("machine_id") or ""), str(env.get("boot_id") or ""))
        if not all(key):  # unknown machine: no turn to wait for
            return threading.Lock()
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


def noise_prober(seconds: float) -> Prober:
    """A prober that times the speed probe for ``seconds`` (the agent's ``noise``
    command) on each interpreter, hosts of one machine taking turns."""
    turns = _MachineTurns()

    def prober(session: AgentSession, python: str) -> Mapping[str, Any]:
        fingerprint = session.probe(python)
        with turns.lock_for(fingerprint):
            return _noise(session, python, seconds)

    return prober


def _noise(session: AgentSession, python: str, seconds: float) -> Mapping[str, Any]:
    """The agent's ``noise``, holding the host lock as a sweep's agents do (it measures):
    ``harness probe --noise`` waits for a sweep on the host, at most HOST_WAIT_DEFAULT_S."""
    env: Mapping[str, Any] | None = None
    lock = host_lock_spec(NOISE_LOCK_NAME, HOST_WAIT_DEFAULT_S)
    stream = session.messages(python, ["noise", repr(float(seconds)), json.dumps(lock)],
                              timeout=seconds + PROBE_TIMEOUT_S + HOST_WAIT_DEFAULT_S)
    for msg in stream:
        if msg["type"] == "env":
            env = msg["env"]
        elif msg["type"] in ("error", "protocol_error"):
            raise ProtocolError(f"{session.host}: noise under {python!r}: {msg['message']}")
        elif msg["type"] == "busy":
            raise HostBusy(f"{session.host}: {busy_reason(msg)}")
    if env is None or not isinstance(env.get("noise"), Mapping):
        raise ProtocolError(f"{session.host}: noise under {python!r} sent no probe series")
    return env


def noise_hosts(hosts: tuple[Host, ...], seconds: float = NOISE_DEFAULT_S, *,
                accept_new_host_keys: bool = False,
                known_hosts: Path | None = None) -> list[ProbeResult]:
    """Time the speed probe for ``seconds`` on every host and interpreter (hosts in
    parallel, those of one machine in turn); each result's ``verdict`` judges it."""
    check_noise_seconds(seconds)
    return probe_hosts(hosts, accept_new_host_keys=accept_new_host_keys,
                       known_hosts=known_hosts, prober=noise_prober(seconds))
