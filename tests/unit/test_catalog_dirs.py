"""A user's ``--workloads`` directory in the catalogue and in the agent bundle; where the
data directories are found (a checkout, an installed wheel)."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness import paths
from harness.errors import WorkloadError
from harness.plan.catalog import (
    BUILT_IN,
    WORKLOADS_DIR,
    load_catalog,
    user_dirs,
    user_modules,
)
from harness.remote.bundle import build_agent

ROOT = Path(__file__).resolve().parents[2]

MINE = """
name = "{name}"
title = "Mine"
implementation = "{impl}"
models = ["sequential", "threads"]
[params]
tasks = 4
"""
MODULE = '''"""A user's workload module."""
from workloads import make_setup

def task(x):
    return x

def setup(params, workdir):
    return make_setup(params, range(params["tasks"]))

def check(setup, results):
    assert list(results) == list(setup.args)
    return {}

def teardown(setup):
    pass
'''


def user_dir(tmp_path: Path, name: str = "mine", impl: str = "mine_tasks",
             module: str | None = "mine_tasks") -> Path:
    directory = tmp_path / "user"
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.toml").write_text(MINE.format(name=name, impl=impl))
    if module:
        (directory / f"{module}.py").write_text(MODULE)
    return directory


def test_a_user_directory_adds_its_workloads_with_their_source(tmp_path: Path) -> None:
    directory = user_dir(tmp_path)
    catalog = load_catalog(extra=[directory])
    assert set(load_catalog()) < set(catalog)
    mine = catalog["mine"]
    assert mine.source == str(directory) and mine.models == ("sequential", "threads")
    assert catalog["cpu_bound"].source == BUILT_IN
    assert list(catalog)[-1] == "mine"  # after the built-in ones
    assert user_modules([directory]) == (directory / "mine_tasks.py",)


def test_a_user_workload_may_use_a_built_in_module(tmp_path: Path) -> None:
    directory = user_dir(tmp_path, impl="empty", module=None)
    assert load_catalog(extra=[directory])["mine"].implementation == "empty"
    assert user_modules([directory]) == ()


def test_the_same_directory_twice_and_the_built_in_one_count_once(tmp_path: Path) -> None:
    directory = user_dir(tmp_path)
    assert user_dirs([directory, directory / ".." / "user", WORKLOADS_DIR]) == (directory,)
    assert len(load_catalog(extra=[directory, directory, WORKLOADS_DIR])) == len(
        load_catalog()) + 1


def test_an_invalid_user_definition_is_the_same_error_as_a_built_in_one(
        tmp_path: Path) -> None:
    directory = user_dir(tmp_path)
    (directory / "bad.toml").write_text(MINE.format(name="bad", impl="mine_tasks")
                                        .replace('"threads"', '"fibers"'))
    with pytest.raises(WorkloadError, match=r"bad\.toml: unknown model 'fibers'") as err:
        load_catalog(extra=[directory])
    assert err.value.exit_code == 2


def test_a_missing_module_names_both_places_it_was_looked_for(tmp_path: Path) -> None:
    directory = user_dir(tmp_path, impl="nowhere", module=None)
    with pytest.raises(WorkloadError, match="has no module") as err:
        load_catalog(extra=[directory])
    assert str(directory / "nowhere.py") in err.value.message
    assert str(WORKLOADS_DIR / "nowhere.py") in err.value.message


def test_a_built_in_name_is_refused_with_a_hint(tmp_path: Path) -> None:
    directory = user_dir(tmp_path, name="cpu_bound")
    with pytest.raises(WorkloadError, match="'cpu_bound' is the name of a built-in workload"
                       ) as err:
        load_catalog(extra=[directory])
    assert err.value.hint and 'name = "my_cpu_bound"' in err.value.hint


def test_two_user_directories_may_not_define_one_name(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = user_dir(tmp_path / "a")
    second = user_dir(tmp_path / "b", module="other_tasks", impl="other_tasks")
    with pytest.raises(WorkloadError, match="'mine' is also defined in"):
        load_catalog(extra=[first, second])


def test_a_module_may_not_take_a_built_in_or_another_users_name(tmp_path: Path) -> None:
    directory = user_dir(tmp_path, impl="cpu", module="cpu")
    with pytest.raises(WorkloadError, match="module 'cpu' has the name of a built-in"
                       ) as err:
        load_catalog(extra=[directory])
    assert err.value.hint and "rename the module" in err.value.hint
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = user_dir(tmp_path / "a", name="one"), user_dir(tmp_path / "b", name="two")
    with pytest.raises(WorkloadError, match="module 'mine_tasks' has the name of another"):
        user_modules([first, second])


def test_not_a_directory_or_no_definitions(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="--workloads .*: not a directory"):
        load_catalog(extra=[tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkloadError, match=r"no workload definitions \(\*\.toml\)"):
        load_catalog(extra=[tmp_path / "empty"])


def test_the_bundle_ships_the_users_modules_with_bytecode_and_runs_them(
        tmp_path: Path) -> None:
    directory = user_dir(tmp_path)
    (directory / "__init__.py").write_text("raise RuntimeError('not shipped')\n")
    agent = build_agent(tmp_path / "out", extra_modules=user_modules([directory]))
    names = zipfile.ZipFile(agent).namelist()
    assert {"workloads/mine_tasks.py", "workloads/mine_tasks.pyc", "workloads/cpu.py"} <= set(
        names)
    assert zipfile.ZipFile(agent).read("workloads/__init__.py") == (
        WORKLOADS_DIR / "__init__.py").read_bytes()
    assert build_agent(tmp_path / "plain").name != agent.name  # the digest covers them
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import workloads.mine_tasks as m;"
            "s = m.setup({'tasks': 3}, '.'); print([m.task(a) for a in s.args])")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(agent)], capture_output=True,
                         text=True, timeout=60, check=True, cwd=tmp_path).stdout
    assert out.strip() == "[0, 1, 2]"


def test_the_bundle_refuses_a_module_name_twice(tmp_path: Path) -> None:
    (tmp_path / "cpu.py").write_text("")
    with pytest.raises(WorkloadError, match="a second module workloads/cpu.py"):
        build_agent(tmp_path / "out", extra_modules=[tmp_path / "cpu.py"])


def test_a_checkout_uses_its_own_directories_and_a_wheel_its_copies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (paths.INSTALLED_DATA_DIR).exists():  # this run is from a checkout
        assert paths.WORKLOADS_DIR == ROOT / "workloads"
        assert paths.ANALYSIS_DIR == ROOT / "analysis"
        assert paths.DEFAULT_INVENTORY == ROOT / "inventories" / "local.ini"
    installed = tmp_path / "harness" / "_data"
    (installed / "workloads").mkdir(parents=True)
    monkeypatch.setattr(paths, "INSTALLED_DATA_DIR", installed)
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path / "site-packages")
    assert paths.data_dir("workloads") == installed / "workloads"
    assert paths.data_dir("analysis") == tmp_path / "site-packages" / "analysis"


def test_setup_py_maps_every_data_directory_of_paths() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text())
    data = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                and any(getattr(t, "id", None) == "DATA" for t in node.targets))
    assert tuple(ast.literal_eval(data)) == paths.DATA_DIRS
