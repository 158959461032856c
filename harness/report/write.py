"""Writing the report: ``--out`` checked first, then one HTML file, or a Markdown file
with its SVG plots in ``<name>_files/`` next to it; every file written atomically
(:func:`harness.files.write_atomic`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.errors import OptionError, WarehouseInputError
from harness.files import write_atomic
from harness.report.data import gather
from harness.report.html import html
from harness.report.markdown import markdown
from harness.report.sections import Document, build_document
from harness.warehouse import Warehouse

SUFFIXES = (".html", ".md")
SVG_PROLOG = '<?xml version="1.0" encoding="utf-8"?>\n'


def check_out(out: Path) -> Path:
    """``out`` when the report can be written there (FILE.html or FILE.md in an existing
    directory); an OptionError otherwise, before any work."""
    if out.suffix.lower() not in SUFFIXES:
        raise OptionError(f"--out {out}: the report is FILE.html or FILE.md, not {out.suffix!r}",
                          hint="e.g. --out report.html")
    if out.exists() and out.is_dir():
        raise OptionError(f"--out {out} is a directory")
    if not out.parent.exists():
        raise OptionError(f"--out {out}: directory {out.parent} does not exist")
    return out


def _write(path: Path, text: str) -> None:
    write_atomic(path, text, mode=0o644)


def _write_figures(doc: Document, image_dir: Path) -> list[Path]:
    """The drawn figures as ``image_dir/<key>.svg`` (the directory made when there is
    one); the files written."""
    drawn = [f for f in doc.figures() if f.svg]
    if drawn:
        image_dir.mkdir(exist_ok=True)
    written = []
    for f in drawn:
        path = image_dir / f"{f.key}.svg"
        _write(path, SVG_PROLOG + (f.svg or ""))
        written.append(path)
    return written


def write_report(warehouse: Warehouse, out: Path, sweep_refs: Sequence[str] = (), *,
                 all_sweeps: bool = False) -> list[Path]:
    """Write the report to ``out`` (.html or .md); returns the files written."""
    check_out(out)
    data = gather(warehouse, sweep_refs, all_sweeps=all_sweeps)
    if not data.sections and data.sweeps.empty:
        raise WarehouseInputError("nothing to report: no sweep selected")
    doc = build_document(data)
    if out.suffix.lower() == ".html":
        _write(out, html(doc))
        return [out]
    image_dir = out.parent / f"{out.stem}_files"
    written = _write_figures(doc, image_dir)
    _write(out, markdown(doc, image_dir.name if written else None))
    return [out, *written]
