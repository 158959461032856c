"""Drawing the report's figures: each one once per content, several at a time.

:func:`harness.report.data.gather` asks a :class:`Drawer` for each figure while it
queries (:meth:`Drawer.add` answers a placeholder) and has them all drawn at the end
(:meth:`Drawer.draw`), after the DuckDB connection is closed:

- a figure whose inputs did not change since an earlier report comes from the figure
  cache, ``RESULTS/.report-cache/`` (one JSON file per figure, named by a digest of the
  plot function, its arguments -- the rows it draws included --, the source of
  :mod:`harness.report.plots` and matplotlib's version). A new sweep gives new rows, so
  new digests: nothing is ever invalidated by hand, a stale figure cannot be found.
  Entries are pruned oldest first beyond :data:`MAX_ENTRIES`; a results directory that
  cannot be written just has no cache.
- the others are drawn by matplotlib, in up to :data:`MAX_WORKERS` forked processes when
  there are several (the figures are independent; forking after matplotlib's import
  costs no import per worker), else in this process.

The SVG text is the same whichever way a figure was made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas

from harness import files
from harness.report import plots
from harness.report.plots import Figure

CACHE_DIR = ".report-cache"
MAX_ENTRIES = 2000  # figure files kept in the cache (about 40 KB each)
MAX_WORKERS = 4
PENDING = "(not drawn yet)"


@dataclass(frozen=True)
class Job:
    """One figure to draw: ``draw(*args)`` returns it."""

    key: str
    draw: Callable[..., Figure]
    args: tuple[Any, ...]


@cache
def _code_version() -> str:
    """What else a figure depends on: the plotting code and matplotlib's version."""
    h = hashlib.sha256(Path(plots.__file__).read_bytes())
    with contextlib.suppress(metadata.PackageNotFoundError):
        h.update(metadata.version("matplotlib").encode())
    return h.hexdigest()


def _feed(h: Any, value: object) -> None:
    """Add ``value`` to the digest: DataFrames by their columns, types and every cell."""
    if isinstance(value, pandas.DataFrame):
        h.update(b"df")
        h.update(repr((list(value.columns), [str(t) for t in value.dtypes])).encode())
        # hash_pandas_object cannot hash list/dict cells; a pickle of such a frame is
        # stable for equal contents
        try:
            h.update(pandas.util.hash_pandas_object(value, index=True).values.tobytes())
        except TypeError:
            h.update(pickle.dumps(value.to_dict("split"), protocol=4))
    elif isinstance(value, (list, tuple)):
        h.update(f"seq{len(value)}".encode())
        for v in value:
            _feed(h, v)
    else:
        h.update(repr(value).encode())
    h.update(b"\0")


def digest(job: Job) -> str:
    """The cache name of ``job``'s figure."""
    h = hashlib.sha256(_code_version().encode())
    h.update(f"{job.draw.__module__}.{job.draw.__qualname__}".encode())
    _feed(h, job.args)
    return h.hexdigest()[:32]


def _run(job: Job) -> Figure:
    return job.draw(*job.args)


class Drawer:
    """Collects the report's figures, then draws them (cache, processes)."""

    def __init__(self, cache_root: Path | None) -> None:
        self.cache = cache_root / CACHE_DIR if cache_root is not None else None
        self.jobs: list[Job] = []
        self.hits = 0

    def add(self, draw: Callable[..., Figure], key: str, title: str,
            *args: Any) -> Figure:
        """A placeholder for the figure ``draw(*args)`` (``key``, ``title``: the figure's,
        as ``draw`` will name it); :meth:`draw` gives the figure."""
        if any(j.key == key for j in self.jobs):
            raise ValueError(f"two figures with key {key!r}")
        self.jobs.append(Job(key, draw, args))
        return Figure(key, title, None, PENDING)

    def draw(self) -> dict[str, Figure]:
        """Every figure asked for, by key."""
        names = {j.key: digest(j) for j in self.jobs}
        out: dict[str, Figure] = {}
        todo: list[Job] = []
        for job in self.jobs:
            hit = self._load(names[job.key])
            if hit is None:
                todo.append(job)
            else:
                out[job.key] = hit
        self.hits = len(out)
        for job, fig in zip(todo, _draw_all(todo), strict=True):
            out[job.key] = fig
            self._store(names[job.key], fig)
        self._prune()
        return out

    # ------------------------------------------------------------------ the cache

    def _load(self, name: str) -> Figure | None:
        if self.cache is None:
            return None
        path = self.cache / f"{name}.json"
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            fig = Figure(d["key"], d["title"], d["svg"], d["caption"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        return fig

    def _store(self, name: str, fig: Figure) -> None:
        if self.cache is None:
            return
        text = json.dumps({"key": fig.key, "title": fig.title, "svg": fig.svg,
                           "caption": fig.caption})
        try:
            self.cache.mkdir(exist_ok=True)
            files.write_atomic(self.cache / f"{name}.json", text, fsync=False)
        except OSError:
            self.cache = None  # not writable: no cache for this report

    def _prune(self) -> None:
        if self.cache is None or not self.cache.is_dir():
            return
        try:
            entries = [(p.stat().st_mtime, p) for p in self.cache.glob("*.json")]
        except OSError:
            return
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort()
        for _, p in entries[:len(entries) - MAX_ENTRIES]:
            p.unlink(missing_ok=True)


def _draw_all(jobs: Sequence[Job]) -> list[Figure]:
    """The figures of ``jobs`` in order: in forked processes when there are several and
    this machine has more than one CPU, else here."""
    workers = min(len(jobs), len(os.sched_getaffinity(0)), MAX_WORKERS)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [_run(j) for j in jobs]
    plots._pyplot()  # imported once here, inherited by every worker
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(_run, jobs, chunksize=1)
