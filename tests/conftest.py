"""Session fixtures for the loopback sshd fleet and the test interpreters.

``fleet`` starts real sshd daemons on 127.0.0.11, .12, .13 (tests/fleet/fleet.py)
for the whole session and stops them at the end; set ``HARNESS_FLEET_DIR`` to
reuse a fleet started by ``python tests/fleet/fleet.py up --dir DIR`` (it is
left running). Tests needing it are skipped with the reason when sshd is absent.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

FLEET_SCRIPT = Path(__file__).resolve().parent / "fleet" / "fleet.py"
FLEET_HOSTS = 3

PYENV = Path("/root/.pyenv/versions")
INTERPRETERS = {
    "3.9": PYENV / "3.9.18/bin/python3.9",
    "3.10": PYENV / "3.10.13/bin/python3.10",
    "3.11": PYENV / "3.11.7/bin/python3.11",
    "3.12": PYENV / "3.12.1/bin/python3.12",
    "3.13": PYENV / "3.13.0/bin/python3.13",
    "3.13t": Path("/var/cache/harness/cpython-3.13t/bin/python3.13t"),
}


def _load_fleet_module() -> ModuleType:
    name = "harness_test_fleet"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FLEET_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fleet_module() -> ModuleType:
    """tests/fleet/fleet.py, imported (up, down, load, stop_host, start_host)."""
    return _load_fleet_module()


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory, fleet_module: ModuleType) -> Iterator[object]:
    """A running loopback fleet: a ``Fleet`` (dir, hosts, inventory, known_hosts,
    client_key, host(name), stop(name), start(name))."""
    reuse = os.environ.get("HARNESS_FLEET_DIR")
    if reuse:
        existing = fleet_module.load(Path(reuse))
        for host in existing.hosts:
            existing.start(host.name)
        yield existing
        return
    reason = fleet_module.sshd_available()
    if reason:
        pytest.skip(f"no sshd fleet: {reason}")
    directory = tmp_path_factory.mktemp("fleet")
    started = fleet_module.up(directory, FLEET_HOSTS)
    try:
        yield started
    finally:
        fleet_module.down(directory)


@pytest.fixture(scope="session")
def interpreters() -> dict[str, Path]:
    """The test interpreters present on this machine, by version tag ('3.11', '3.13t')."""
    return {tag: path for tag, path in INTERPRETERS.items() if path.exists()}


@pytest.fixture(scope="session")
def free_threaded_python(interpreters: dict[str, Path]) -> Path:
    """The free-threaded CPython 3.13t; skips when it has not been built."""
    path = interpreters.get("3.13t")
    if path is None:
        pytest.skip(f"no free-threaded CPython at {INTERPRETERS['3.13t']}")
    return path
