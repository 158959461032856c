"""The agent zipapp carries this interpreter's bytecode beside each module's source."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
import zipimport
from pathlib import Path

from harness.remote.bundle import build_agent, bytecode


def _rewrite(src: Path, dest: Path, replace: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dest, "w") as new:
        for info in old.infolist():
            new.writestr(info, replace.get(info.filename, old.read(info.filename)))
    return dest


def test_every_module_but_the_shim_has_bytecode(tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(build_agent(tmp_path)).namelist())
    sources = {n for n in names if n.endswith(".py")}
    assert "harness/agent/runner.py" in sources
    assert {n + "c" for n in sources if n != "__main__.py"} == {
        n for n in names if n.endswith(".pyc")}


def test_the_name_is_stable_and_the_archive_runs(tmp_path: Path) -> None:
    agent = build_agent(tmp_path / "a")
    assert build_agent(tmp_path / "b").name == agent.name
    out = subprocess.run([sys.executable, str(agent), "probe"], capture_output=True,
                         text=True, timeout=60, check=True).stdout.splitlines()
    assert '"type":"hello"' in out[0] and '"type":"eof"' in out[-1]


def test_bytecode_is_used_and_foreign_or_stale_bytecode_is_not(tmp_path: Path) -> None:
    agent = build_agent(tmp_path)
    code = zipimport.zipimporter(f"{agent}/harness/agent/").get_code("protocol")
    assert code.co_filename == "agent.pyz/harness/agent/protocol.py"  # from the .pyc

    pyc = zipfile.ZipFile(agent).read("harness/agent/protocol.pyc")
    foreign = b"\x00\x00" + pyc[2:]  # another version's magic number
    stale = bytecode("harness/agent/protocol.py", b"VALUE = 1\n")
    assert stale is not None and stale[:4] == importlib.util.MAGIC_NUMBER
    for name, data in (("foreign", foreign), ("stale", stale)):
        copy = _rewrite(agent, tmp_path / f"{name}.pyz", {"harness/agent/protocol.pyc": data})
        code = zipimport.zipimporter(f"{copy}/harness/agent/").get_code("protocol")
        assert code.co_filename == f"{copy}/harness/agent/protocol.py", name  # the source
        assert "PROTOCOL_VERSION" in code.co_names, name


def test_a_module_that_does_not_compile_is_shipped_as_source(tmp_path: Path) -> None:
    workloads = tmp_path / "workloads"
    workloads.mkdir()
    (workloads / "__init__.py").write_text("")
    (workloads / "broken.py").write_text("def f(:\n")
    names = zipfile.ZipFile(build_agent(tmp_path / "out", workloads)).namelist()
    assert "workloads/broken.py" in names and "workloads/broken.pyc" not in names
    assert "workloads/__init__.pyc" in names
