"""``harness_pythons: provisioned``: the builds ``harness provision`` put on a host.

The word ``provisioned`` among a host's interpreters stands for every build listed by
the manifests ``<prefix>/<version>/harness-python.json`` on the host (``prefix``: the
host's ``harness_provision_prefix``, default ``~/.cache/harness/pythons``, ``~``
being the login's ``$HOME`` there). :func:`expand_provisioned` reads them over the
host's own transport, once per host before a sweep or a probe, and puts their
interpreter paths in place of the word, so everything after sees ordinary paths.
A host that cannot be reached, or lists no build, keeps the word: its interpreter
``provisioned`` then fails as not found, recorded like any other.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError
from harness.plan.inventory import Host
from harness.transport.factory import open_transport

PROVISIONED = "provisioned"
DEFAULT_PREFIX = "~/.cache/harness/pythons"
MANIFEST = "harness-python.json"
LIST_TIMEOUT_S = 30.0
# ``sh -c LIST harness PREFIX``: every manifest under PREFIX, one JSON object a line.
LIST_SCRIPT = (
    'p=$1; case "$p" in "~"|"~/"*) p="$HOME${p#\\~}" ;; esac; '
    'for f in "$p"/*/' + MANIFEST + '; do [ -f "$f" ] && cat "$f" && echo; done; exit 0'
)


def wants_provisioned(host: Host) -> bool:
    return PROVISIONED in host.pythons


def manifest_pythons(lines: Iterable[str]) -> tuple[str, ...]:
    """The interpreter paths of the manifests among ``lines`` (by version: 3.13, 3.13t)."""
    found: dict[str, str] = {}
    for line in lines:
        try:
            manifest = json.loads(line)
        except ValueError:
            continue
        if (isinstance(manifest, dict) and isinstance(manifest.get("python"), str)
                and isinstance(manifest.get("version"), str)):
            found[manifest["version"]] = manifest["python"]
    return tuple(found[v] for v in sorted(found, key=_version_key))


def _version_key(version: str) -> tuple[int, ...]:
    digits = version.rstrip("t").split(".")
    try:
        return (*(int(d) for d in digits), version.endswith("t"))
    except ValueError:
        return (999, 999, 1)


def with_pythons(host: Host, found: tuple[str, ...]) -> Host:
    """``host`` with ``provisioned`` replaced by ``found`` (kept when nothing was found)."""
    if not found:
        return host
    out: list[str] = []
    for python in host.pythons:
        for item in (found if python == PROVISIONED else (python,)):
            if item not in out:
                out.append(item)
    return dataclasses.replace(host, pythons=tuple(out))


def _read(host: Host, accept_new: bool, known_hosts: Path | None,
          out: dict[str, tuple[str, ...]]) -> None:
    prefix = str(host.vars.get("harness_provision_prefix") or DEFAULT_PREFIX)
    try:
        with open_transport(host, accept_new_host_keys=accept_new,
                            known_hosts=known_hosts) as transport:
            lines = list(transport.run(["sh", "-c", LIST_SCRIPT, "harness", prefix],
                                       timeout=LIST_TIMEOUT_S))
    except HarnessError:
        return  # the engine reaches the host again and records why it cannot
    out[host.name] = manifest_pythons(lines)


def expand_provisioned(hosts: tuple[Host, ...], *, accept_new_host_keys: bool = False,
                       known_hosts: Path | None = None) -> tuple[Host, ...]:
    """``hosts`` with ``provisioned`` replaced by each host's provisioned builds (the
    hosts are asked in parallel; hosts without the word are returned as they are)."""
    asking = [h for h in hosts if wants_provisioned(h)]
    if not asking:
        return hosts
    found: dict[str, tuple[str, ...]] = {}
    threads = [threading.Thread(target=_read, daemon=True,
                                args=(h, accept_new_host_keys, known_hosts, found))
               for h in asking]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LIST_TIMEOUT_S * 3)
    return tuple(with_pythons(h, found.get(h.name, ())) for h in hosts)
