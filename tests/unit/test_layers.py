"""The package's layers, pinned: imports run one way, read from the code with ``ast``.

    cli -> report / compare -> sweep / engines -> remote / transport / plan
        -> warehouse -> basics (errors, paths, files, formatting, stability) -> agent

A module may import its own layer and the layers below it, never one above; the
agent imports nothing of harness outside harness.agent; no package ``__init__``
imports pandas or pyarrow; no module is over 500 lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "harness"

# Lower number: lower layer. A module may import modules of its own rank or lower.
RANKS = {
    "agent": 0,
    "errors": 1, "paths": 1, "files": 1, "formatting": 1, "stability": 1,
    "warehouse": 2,
    "plan": 3, "transport": 3, "remote": 3,
    "sweep": 4, "engines": 4,
    "report": 5, "compare": 5, "render": 5, "progress": 5, "interchange": 5,
    "sweep_compare": 5, "history": 5,
    "cli": 6, "__main__": 6,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, name: str, typing: bool = False) -> list[tuple[str, bool]]:
    """``(module, at top level)`` of every import in the file (relative ones resolved;
    imports under ``if TYPE_CHECKING:`` only with ``typing``: they do not run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, bool]] = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if (not typing and isinstance(child, ast.If)
                    and "TYPE_CHECKING" in ast.unparse(child.test)):
                for other in child.orelse:
                    visit(other, top)
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                out.append((base, top))
                out.extend((f"{base}.{a.name}", top) for a in child.names)
            nested = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            visit(child, top and not nested)

    visit(tree, True)
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "harness"


def harness_imports(name: str, path: Path, known: dict[str, Path],
                    typing: bool = False) -> set[str]:
    found = set()
    for target, _ in imports(path, name, typing):
        if target.startswith("harness.") and target in known and target != name:
            found.add(target)
    return found


def test_every_module_has_a_layer() -> None:
    unknown = sorted(m for m in modules() if m != "harness" and layer(m) not in RANKS)
    assert not unknown, f"give these a layer in RANKS: {unknown}"


def test_imports_run_one_way() -> None:
    known = modules()
    upward = []
    for name, path in known.items():
        if name == "harness":
            continue
        mine = RANKS[layer(name)]
        for target in harness_imports(name, path, known):
            if target == "harness":
                continue
            theirs = RANKS[layer(target)]
            if theirs > mine:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports that run up: " + ", ".join(sorted(upward))


def test_no_import_cycle() -> None:
    """Not even through the imports that only annotations use."""
    known = modules()
    graph = {n: {t for t in harness_imports(n, p, known, typing=True) if t != "harness"}
             for n, p in known.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_agent_imports_only_the_agent() -> None:
    known = modules()
    bad = [f"{n} -> {t}" for n, p in known.items() if layer(n) == "agent"
           for t, _ in imports(p, n)
           if t.startswith("harness") and not t.startswith("harness.agent")]
    assert not bad, bad


@pytest.mark.parametrize(("lower", "forbidden"), [
    ("transport", ("sweep", "warehouse", "engines", "report", "cli")),
    ("engines", ("cli", "report", "compare", "render")),
    ("plan", ("sweep", "warehouse", "engines", "report", "cli")),
    ("remote", ("sweep", "warehouse", "engines", "report", "cli")),
])
def test_named_boundaries(lower: str, forbidden: tuple[str, ...]) -> None:
    known = modules()
    bad = [f"{n} -> {t}" for n, p in known.items() if layer(n) == lower
           for t in harness_imports(n, p, known) if layer(t) in forbidden]
    assert not bad, bad


def test_no_package_init_imports_pandas_or_pyarrow() -> None:
    heavy = ("pandas", "pyarrow", "numpy", "matplotlib")
    bad = [f"{n}: {t}" for n, p in modules().items() if p.name == "__init__.py"
           for t, top in imports(p, n) if top and t.split(".")[0] in heavy]
    assert not bad, bad


def test_no_module_over_500_lines() -> None:
    long = {n: len(p.read_text(encoding="utf-8").splitlines()) for n, p in modules().items()}
    assert not {n: k for n, k in long.items() if k > 500}


def test_every_module_says_what_it_holds() -> None:
    bare = [n for n, p in modules().items()
            if ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None]
    assert not bare, f"modules without a docstring: {bare}"


def test_no_class_over_300_lines() -> None:
    """The warehouse's facade only delegates to its modules: it may be longer."""
    facades = {"harness.warehouse.Warehouse"}
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and f"{name}.{node.name}" not in facades:
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > 300:
                    long.append(f"{name}.{node.name} ({size} lines)")
    assert not long, long


@pytest.mark.slow
def test_probe_imports_neither_duckdb_nor_pandas(tmp_path: Path) -> None:
    """``harness probe`` as a user runs it, on this machine: the modules it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "harness", "probe",
                           "--json"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
              if line.startswith("import time:")}
    assert loaded, "no -X importtime output"
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("duckdb", "pandas", "pyarrow"))
    assert not heavy, heavy
