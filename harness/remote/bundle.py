"""Build the agent zipapp: ``harness/agent`` and ``workloads`` in one ``.pyz``.

The archive holds ``__main__.py`` (a two-line shim), ``harness/__init__.py``
(only the version), ``harness/agent/*.py`` and ``workloads/*.py`` (the built-in
modules, then those of the user's ``--workloads`` directories). It is built
once per sweep and run as ``<python> agent.pyz probe|run PLAN`` on any CPython
3.9+; nothing in it imports controller code or third-party packages.

Next to each module's source the archive holds its bytecode as compiled by the
controller's own interpreter (``name.pyc``, the layout zipimport reads; hash-based and
checked against the source beside it, PEP 552). zipimport cannot write bytecode
caches, so without it every agent start compiles its ~25 modules from source (~30 ms
of CPU on this project's hosts); a host interpreter of the same version loads the
bytecode instead, and any other version finds a foreign magic number and compiles the
source as before. ``__main__.py`` stays source only (it must also run, to refuse, on
interpreters too old for the agent).
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.errors import WorkloadError
from harness.files import atomic_path
from harness.paths import PACKAGE_DIR, WORKLOADS_DIR

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


def _members(workloads_dir: Path, extra: Sequence[Path]) -> list[tuple[str, bytes]]:
    members = [("__main__.py", _MAIN.encode()), ("harness/__init__.py", _INIT.encode())]
    for path in sorted((PACKAGE_DIR / "agent").glob("*.py")):
        members.append((f"harness/agent/{path.name}", path.read_bytes()))
    for path in [*sorted(workloads_dir.glob("*.py")), *extra]:
        name = f"workloads/{path.name}"
        if any(name == taken for taken, _ in members):  # the catalogue refuses it first
            raise WorkloadError(f"{path}: a second module {name} in the agent bundle",
                                hint="rename the module and its implementation field")
        members.append((name, path.read_bytes()))
    return members


def bytecode(name: str, source: bytes) -> bytes | None:
    """``name``'s checked-hash ``.pyc`` for this interpreter; None if it does not compile
    here (the agent then reports the module's own error when it loads it)."""
    try:
        code = compile(source, f"agent.pyz/{name}", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    flags = (0b11).to_bytes(4, "little")  # hash-based, check the source
    return (importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source)
            + marshal.dumps(code))


def _with_bytecode(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for name, data in members:
        out.append((name, data))
        pyc = bytecode(name, data) if name != "__main__.py" else None
        if pyc is not None:
            out.append((name + "c", pyc))
    return out


def build_agent(dest_dir: Path, workloads_dir: Path = WORKLOADS_DIR,
                extra_modules: Sequence[Path] = ()) -> Path:
    """Write ``agent-<digest>.pyz`` into ``dest_dir`` and return its path; it holds the
    modules of ``workloads_dir`` and ``extra_modules`` (a user's, from
    ``harness.plan.catalog.user_modules``) as the package ``workloads``.

    The digest covers the sources and the compiling interpreter's bytecode version.
    """
    members = _members(workloads_dir, extra_modules)
    digest = hashlib.sha256(importlib.util.MAGIC_NUMBER + sys.implementation.cache_tag.encode()
                            if sys.implementation.cache_tag else importlib.util.MAGIC_NUMBER)
    for name, data in members:
        digest.update(name.encode() + b"\0" + data + b"\0")
    members = _with_bytecode(members)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"agent-{digest.hexdigest()[:12]}.pyz"
    if target.exists():
        return target
    with atomic_path(target, fsync=False, suffix=".tmp", mode=0o644) as tmp, \
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return target
