"""Build the agent zipapp: ``harness/agent`` and ``workloads`` in one ``.pyz``.

The archive holds ``__main__.py`` (a two-line shim), ``harness/__init__.py``
(only the version), ``harness/agent/*.py`` and ``workloads/*.py``. It is built
once per sweep and run as ``<python> agent.pyz probe|run PLAN`` on any CPython
3.9+; nothing in it imports controller code or third-party packages.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from harness import __version__

PACKAGE_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_ROOT.parent
WORKLOADS_DIR = PROJECT_ROOT / "workloads"

# The shim is valid Python 2 too, so an interpreter that is too old says so clearly
# (exit status 3) instead of failing on newer syntax inside the agent.
TOO_OLD_EXIT = 3
_MAIN = (
    "import sys\n"
    "if sys.version_info < (3, 9):\n"
    "    sys.stderr.write('harness agent needs CPython 3.9 or newer, this is %s\\n'\n"
    "                     % sys.version.split()[0])\n"
    "    sys.exit(3)\n"
    "from harness.agent.__main__ import main\n"
    "main()\n"
)
_INIT = '"""harness agent bundle."""\n__version__ = %r\n' % __version__
# A fixed timestamp makes the archive's bytes depend only on its contents.
_EPOCH = (2020, 1, 1, 0, 0, 0)


def _members(workloads_dir: Path) -> list[tuple[str, bytes]]:
    members = [("__main__.py", _MAIN.encode()), ("harness/__init__.py", _INIT.encode())]
    for path in sorted((PACKAGE_ROOT / "agent").glob("*.py")):
        members.append((f"harness/agent/{path.name}", path.read_bytes()))
    for path in sorted(workloads_dir.glob("*.py")):
        members.append((f"workloads/{path.name}", path.read_bytes()))
    return members


def build_agent(dest_dir: Path, workloads_dir: Path = WORKLOADS_DIR) -> Path:
    """Write ``agent-<digest>.pyz`` into ``dest_dir`` and return its path."""
    members = _members(workloads_dir)
    digest = hashlib.sha256()
    for name, data in members:
        digest.update(name.encode() + b"\0" + data + b"\0")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"agent-{digest.hexdigest()[:12]}.pyz"
    if target.exists():
        return target
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    tmp.replace(target)
    return target
