"""Packaging beyond pyproject.toml: the top-level data directories mapped into the wheel.

``workloads/``, ``analysis/``, ``inventories/`` and ``playbooks/`` stay at the top of
the repository, where users read and extend them; the wheel carries them as
``harness/_data/<name>/`` (``harness.paths.data_dir`` finds either). Everything else
(name, version, dependencies, the ``harness`` script) is in pyproject.toml.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
# directory -> the files of it harness reads at run time (its *.py modules come along
# as the modules of a package); keep the names equal to harness.paths.DATA_DIRS.
DATA = {
    "workloads": ["*.toml"],
    "analysis": ["*.sql"],
    "inventories": ["*.ini"],
    "playbooks": ["**/*.yml", "**/*.yaml", "files/*"],
}
MAPPED = {f"harness._data.{name}": name for name in DATA if (ROOT / name).is_dir()}

setup(
    packages=[*find_packages(include=["harness", "harness.*"]), *MAPPED],
    package_dir=MAPPED,
    package_data={package: DATA[name] for package, name in MAPPED.items()},
)
