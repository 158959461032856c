"""harness provision's pure parts: its options, the playbook's events read per host, and
``harness_pythons: provisioned`` expanded from the manifests a host lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.engines.provision import ProvisionOptions, _Events
from harness.errors import OptionError
from harness.plan.inventory import Host
from harness.remote.provisioned import manifest_pythons, with_pythons

INV = Path("lab.ini")


def test_options_need_exactly_one_action() -> None:
    with pytest.raises(OptionError, match="exactly one"):
        ProvisionOptions(INV)
    with pytest.raises(OptionError, match="exactly one"):
        ProvisionOptions(INV, pythons=("3.13",), list_only=True)
    assert ProvisionOptions(INV, list_only=True).extravars()["harness_provision_list"] is True


@pytest.mark.parametrize("bad", ["3", "3.13tt", "../x", "3.13 ", "py3.13"])
def test_options_refuse_bad_versions(bad: str) -> None:
    with pytest.raises(OptionError, match="3.13t"):
        ProvisionOptions(INV, pythons=(bad,))
    with pytest.raises(OptionError, match="--remove"):
        ProvisionOptions(INV, remove=bad)


def test_options_sources(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="needs --from"):
        ProvisionOptions(INV, pythons=("3.13",), source="url")
    with pytest.raises(OptionError, match="no such file"):
        ProvisionOptions(INV, pythons=("3.13",), source="tarball",
                         source_from=str(tmp_path / "none.tar.xz"))
    with pytest.raises(OptionError, match="one of"):
        ProvisionOptions(INV, pythons=("3.13",), source="git")
    tarball = tmp_path / "Python-3.13.5.tar.xz"
    tarball.write_bytes(b"x")
    extra = ProvisionOptions(INV, pythons=("3.13", "3.13t"), source="tarball",
                             source_from=str(tarball), prefix="/opt/py").extravars()
    assert extra["harness_provision_pythons"] == ["3.13", "3.13t"]
    assert extra["harness_provision_from"] == str(tarball.resolve())
    assert extra["harness_provision_prefix"] == "/opt/py"


def _event(kind: str, host: str, task: str, **res: object) -> dict[str, object]:
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res}}


def test_events_per_host() -> None:
    events = _Events()
    built = {"3.13t": {"archive": "/a.tar.gz", "archive_sha256": "0" * 64, "built": False,
                       "stamp": {"version": "3.13t", "source": "debian:x"}}}
    manifest = {"version": "3.13t", "python": "/p/3.13t/bin/python3.13t"}
    events(_event("runner_on_ok", "localhost", "harness provision built",
                  ansible_facts={"harness_built": built}))
    events(_event("runner_on_ok", "a", "harness provision unarchive", changed=True))
    events(_event("runner_on_ok", "a", "harness provision installed",
                  stdout=json.dumps(manifest) + "\n"))
    events(_event("runner_on_failed", "b", "harness provision prefix dir",
                  msg="There was an issue creating /ro/3.13t: Read-only file system"))
    events(_event("runner_on_unreachable", "c", "Gathering Facts", msg="ssh: refused"))
    (build,) = events.builds.values()
    assert (build.builder, build.version, build.built, build.source) == (
        "localhost", "3.13t", False, "debian:x")
    assert events.changed == {"a"}
    assert events.listed["a"] == {"3.13t": manifest}
    assert "Read-only file system" in events.failures["b"]
    assert events.failures["c"].startswith("unreachable: ")


def test_manifest_pythons_in_version_order() -> None:
    lines = [json.dumps({"version": v, "python": f"/p/{v}/bin/python{v}"})
             for v in ("3.13t", "3.9", "3.13")] + ["not json", "{}"]
    assert manifest_pythons(lines) == ("/p/3.9/bin/python3.9", "/p/3.13/bin/python3.13",
                                       "/p/3.13t/bin/python3.13t")


def test_with_pythons_replaces_the_word_only() -> None:
    host = Host(name="h", address="10.0.0.1", pythons=("/usr/bin/python3", "provisioned"))
    assert with_pythons(host, ("/p/a", "/usr/bin/python3")).pythons == (
        "/usr/bin/python3", "/p/a")
    assert with_pythons(host, ()).pythons == host.pythons
