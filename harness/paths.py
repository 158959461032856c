"""Where harness finds what it reads at run time, in one place.

The workload definitions (``workloads/``), the analysis SQL (``analysis/``) and the
inventories (``inventories/``) sit beside the package, at the project's root: users
read and extend them there.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
WORKLOADS_DIR = PROJECT_ROOT / "workloads"
ANALYSIS_DIR = PROJECT_ROOT / "analysis"
VIEWS_SQL = ANALYSIS_DIR / "views.sql"
INVENTORIES_DIR = PROJECT_ROOT / "inventories"
DEFAULT_INVENTORY = INVENTORIES_DIR / "local.ini"
