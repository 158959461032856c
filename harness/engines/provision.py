"""``harness provision``: CPython builds on every host, through playbooks/provision-python.yml.

The playbook (readable and runnable with ``ansible-playbook`` alone) groups the hosts
by platform, builds each requested version once per group (on the controller when
its platform matches, else on the group's first host), unpacks the build's archive on
every host into ``<prefix>/<version>/``, verifies it there and writes a manifest,
``harness-python.json``. This module runs it through ansible-runner with the
ansible engine's :class:`~harness.engines.playbooks.PlaybookRunner` (host keys
checked, a private directory for Ansible's sockets and artifacts) and reads its
events into one :class:`HostOutcome` per host: ``ok`` (nothing to do), ``changed``
or ``failed`` with the reason (a failing host never stops the others).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.engines.playbooks import PLAYBOOK_SLACK_S, PlaybookRunner
from harness.errors import HarnessError, OptionError
from harness.formatting import one_line
from harness.paths import PLAYBOOKS_DIR
from harness.plan.inventory import load_inventory

PLAYBOOK = PLAYBOOKS_DIR / "provision-python.yml"
SOURCES = ("debian", "tarball", "url")
DEFAULT_PREFIX = "~/.cache/harness/pythons"
MANIFEST = "harness-python.json"
# Seconds one build may take (a CPython build is ~3 min on two cores), per version.
BUILD_BUDGET_S = 1800.0
_VERSION = re.compile(r"^[0-9]+\.[0-9]+t?$")
_BUILT_TASK = "harness provision built"
_LIST_TASK = "harness provision installed"


def check_version(version: str, option: str = "--python") -> str:
    """``3.13`` or ``3.13t`` (MAJOR.MINOR, ``t`` for the free-threaded build)."""
    if not _VERSION.match(version):
        raise OptionError(f"{option} {version!r}: a version looks like 3.13 or 3.13t",
                          hint="MAJOR.MINOR, with a t for the free-threaded build")
    return version


@dataclass(frozen=True)
class ProvisionOptions:
    """One ``harness provision`` run; values are checked here, once."""

    inventory: Path
    limit: str | None = None
    pythons: tuple[str, ...] = ()
    source: str = "debian"
    source_from: str | None = None
    prefix: str | None = None
    build_root: str | None = None
    build_on_controller: bool = True
    forks: int = 8
    become: bool = False
    accept_new_host_keys: bool = False
    known_hosts: Path | None = None
    list_only: bool = False
    remove: str | None = None

    def __post_init__(self) -> None:
        for version in self.pythons:
            check_version(version)
        if self.remove is not None:
            check_version(self.remove, "--remove")
        modes = sum((bool(self.pythons), self.list_only, self.remove is not None))
        if modes != 1:
            raise OptionError("give --python VERSION (repeatable), or --list, or --remove "
                              "VERSION: exactly one of them",
                              hint="harness provision -i lab.ini --python 3.13t")
        if self.source not in SOURCES:
            raise OptionError(f"--source {self.source!r}: one of {', '.join(SOURCES)}")
        if self.source == "debian" and self.source_from:
            raise OptionError("--from goes with --source tarball or --source url")
        if self.source != "debian" and not self.source_from:
            raise OptionError(f"--source {self.source} needs --from "
                              + ("FILE" if self.source == "tarball" else "URL"))
        if self.source == "tarball" and not Path(str(self.source_from)).is_file():
            raise OptionError(f"--from {self.source_from}: no such file")
        if not 1 <= self.forks <= 500:
            raise OptionError(f"--forks {self.forks} is out of range", hint="1 to 500")

    def extravars(self) -> dict[str, Any]:
        """The playbook's variables (``-e``) for this run."""
        out: dict[str, Any] = {"harness_provision_pythons": list(self.pythons),
                               "harness_provision_source": self.source,
                               "harness_provision_become": self.become,
                               "harness_provision_on_controller": self.build_on_controller,
                               "harness_provision_list": self.list_only}
        if self.source_from:
            out["harness_provision_from"] = (str(Path(self.source_from).resolve())
                                             if self.source == "tarball" else self.source_from)
        if self.prefix:
            out["harness_provision_prefix"] = self.prefix
        if self.build_root:
            out["harness_provision_build_root"] = self.build_root
        if self.remove:
            out["harness_provision_remove"] = self.remove
        return out


@dataclass(frozen=True)
class HostOutcome:
    """One host after a run: ``ok``, ``changed`` or ``failed`` (with its reason), and
    the builds its manifests list (``version`` -> manifest)."""

    host: str
    status: str
    reason: str | None = None
    installed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Build:
    """One build run on a builder (``localhost`` is the controller); ``built`` is False
    when its cache was used."""

    builder: str
    version: str
    built: bool
    source: str


@dataclass(frozen=True)
class ProvisionResult:
    hosts: tuple[HostOutcome, ...]
    builds: tuple[Build, ...]
    controller_failure: str | None = None

    @property
    def exit_code(self) -> int:
        """As ``sweep``: 0 when every host is ok or changed, else 1."""
        failed = self.controller_failure or any(h.status == "failed" for h in self.hosts)
        return 1 if failed else 0


class _Events:
    """Reads ansible-runner's events into per-host state."""

    def __init__(self) -> None:
        self.changed: set[str] = set()
        self.failures: dict[str, str] = {}
        self.builds: dict[tuple[str, str], Build] = {}
        self.listed: dict[str, dict[str, dict[str, Any]]] = {}

    def __call__(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event")
        data = event.get("event_data") or {}
        host = data.get("host")
        res = data.get("res") or {}
        if not isinstance(host, str):
            return
        if kind == "runner_on_ok":
            if res.get("changed"):
                self.changed.add(host)
            if data.get("task") == _BUILT_TASK:
                self._built(host, res)
            elif data.get("task") == _LIST_TASK:
                self.listed[host] = _manifests(str(res.get("stdout") or ""))
        elif kind in ("runner_on_failed", "runner_item_on_failed") and not data.get(
                "ignore_errors"):
            self.failures.setdefault(host, f"{data.get('task')}: {_reason(res)}")
        elif kind == "runner_on_unreachable":
            self.failures.setdefault(host, f"unreachable: {_reason(res)}")

    def _built(self, host: str, res: Mapping[str, Any]) -> None:
        """The builds a builder has so far (set_fact harness_built: version -> its build)."""
        facts = res.get("ansible_facts") or {}
        built = facts.get("harness_built") if isinstance(facts, Mapping) else None
        if not isinstance(built, Mapping):
            return
        for version, entry in built.items():
            stamp = entry.get("stamp") if isinstance(entry, Mapping) else None
            if isinstance(stamp, Mapping):
                self.builds[(host, str(version))] = Build(
                    host, str(version), bool(entry.get("built")), str(stamp.get("source")))


def _manifests(stdout: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for line in stdout.splitlines():
        try:
            manifest = json.loads(line)
        except ValueError:
            continue
        if isinstance(manifest, dict) and isinstance(manifest.get("version"), str):
            found[manifest["version"]] = manifest
    return found


def _reason(res: Mapping[str, Any]) -> str:
    """A failed task's message, with the last line its command printed (a script's own
    error message, e.g. "no Debian source package python3.9")."""
    msg = res.get("msg") if isinstance(res.get("msg"), str) else ""
    said = ""
    for key in ("stderr", "module_stderr", "stdout"):
        text = res.get(key)
        lines = [ln for ln in text.splitlines() if ln.strip()
                 and not ln.startswith("Shared connection to ")] if isinstance(text, str) else []
        if lines:  # (ssh's "Shared connection to HOST closed." ends a remote script's output)
            said = one_line(lines[-1])
            break
    if msg and said and said not in msg:
        return f"{one_line(msg)}: {said}"
    if msg or said:
        return one_line(msg) if msg else said
    results = res.get("results")
    if isinstance(results, list):
        for item in results:
            if isinstance(item, Mapping) and item.get("failed"):
                return _reason(item)
    return "failed"


def provision(options: ProvisionOptions) -> ProvisionResult:
    """Run the provision playbook over the inventory; one outcome per selected host."""
    hosts = load_inventory(options.inventory, options.limit)  # bad input fails here
    events = _Events()
    budget = PLAYBOOK_SLACK_S + BUILD_BUDGET_S * max(1, len(options.pythons))
    with tempfile.TemporaryDirectory(prefix="harness-provision-") as tmp:
        private = Path(tmp)
        os.chmod(private, 0o700)
        runner = PlaybookRunner(private, options)
        try:
            status, rc, last = runner.run("provision", PLAYBOOK, budget, events,
                                          extravars=options.extravars())
        finally:
            runner.stop_masters()
    controller_failure = events.failures.pop("localhost", None)
    if status not in ("successful", "failed"):
        raise _ProvisionError(f"ansible-playbook {status}: {last}")
    outcomes = []
    for host in hosts:
        reason = events.failures.get(host.name)
        if reason is None and host.name not in events.listed:
            reason = controller_failure or f"the playbook did not reach it ({last})"
        if reason is not None:
            outcomes.append(HostOutcome(host.name, "failed", reason,
                                        events.listed.get(host.name, {})))
        else:
            outcomes.append(HostOutcome(host.name,
                                        "changed" if host.name in events.changed else "ok",
                                        None, events.listed[host.name]))
    del rc
    return ProvisionResult(tuple(outcomes), tuple(events.builds.values()), controller_failure)


class _ProvisionError(HarnessError):
    exit_code = 1
