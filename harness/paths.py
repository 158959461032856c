"""Where harness finds what it reads at run time, in one place.

The workload definitions (``workloads/``), the analysis SQL (``analysis/``), the
inventories (``inventories/``) and the playbooks (``playbooks/``) sit at the project's
root, beside the package: users read and extend them there. A wheel (``pip install``,
``pipx install``) carries copies of them inside the package, in ``harness/_data/<name>/``
(``setup.py`` maps them in); an editable install and a checkout use the originals.
The installed copy wins when it exists: an unrelated top-level ``workloads`` directory
beside an installed package is never taken for harness's own.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
INSTALLED_DATA_DIR = PACKAGE_DIR / "_data"
# The directories setup.py maps into the wheel (keep the two lists equal: a test checks).
DATA_DIRS = ("workloads", "analysis", "inventories", "playbooks")


def data_dir(name: str) -> Path:
    """The directory ``name`` (one of DATA_DIRS): the wheel's copy, else the checkout's."""
    installed = INSTALLED_DATA_DIR / name
    return installed if installed.is_dir() else PROJECT_ROOT / name


WORKLOADS_DIR = data_dir("workloads")
ANALYSIS_DIR = data_dir("analysis")
VIEWS_SQL = ANALYSIS_DIR / "views.sql"
INVENTORIES_DIR = data_dir("inventories")
DEFAULT_INVENTORY = INVENTORIES_DIR / "local.ini"
PLAYBOOKS_DIR = data_dir("playbooks")
