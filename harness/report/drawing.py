"""Drawing the report's figures: each one once per content, several at a time.

:func:`harness.report.data.gather` asks a :class:`Drawer` for each figure while it
queries (:meth:`Drawer.add` answers a placeholder) and takes them all at the end
(:meth:`Drawer.draw`):

- a figure whose inputs did not change since an earlier report comes from the figure
  cache, ``RESULTS/.report-cache/`` (one JSON file per figure, named by a digest of the
  plot function, its arguments -- the rows it draws, in any order, included --, the
  source of :mod:`harness.report.plots` and :mod:`harness.report.lineplot` and
  matplotlib's version). A new sweep gives new rows, so new digests: nothing is ever
  invalidated by hand, a stale figure cannot be found. Entries are pruned oldest first
  beyond :data:`MAX_ENTRIES`; a results directory that cannot be written just has no
  cache.
- the others are drawn in up to :data:`MAX_WORKERS` worker processes, forked before
  the report's DuckDB connection is opened, each figure as soon as it is asked for, so
  drawing and the remaining queries share the CPUs; with one CPU they are drawn in this
  process. The line plots are written without matplotlib; one worker imports it (0.3 s
  of CPU) as soon as it is forked, while the first queries run, the others with their
  first figure that needs it (a speedup or builds plot). On 2 cores (a cold report of
  the 3-host sweep) that was the fastest: every worker importing it at once takes CPU
  from the queries and DuckDB's threads; none importing it before a figure needs it
  leaves the workers the last to finish.

The SVG text is the same whichever way a figure was made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

import pandas

from harness import files
from harness.report import lineplot, plots
from harness.report.plots import Figure

CACHE_DIR = ".report-cache"
MAX_ENTRIES = 2000  # figure files kept in the cache (about 40 KB each)
MAX_WORKERS = 4
DRAW_TIMEOUT_S = 600.0  # one figure; matplotlib takes well under a second
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
    h = hashlib.sha256()
    for module in (plots, lineplot):
        h.update(Path(module.__file__ or "").read_bytes())
    with contextlib.suppress(metadata.PackageNotFoundError):
        h.update(metadata.version("matplotlib").encode())
    return h.hexdigest()


def _feed(h: Any, value: object) -> None:
    """Add ``value`` to the digest: DataFrames by their columns, types and rows (in any
    order), floats to 10 significant digits."""
    if isinstance(value, pandas.DataFrame):
        h.update(b"df")
        h.update(repr((list(value.columns), [str(t) for t in value.dtypes])).encode())
        value = value.assign(**{str(c): value[c].map(_rounded) for c in value.columns
                                if pandas.api.types.is_float_dtype(value[c])})
        # The rows in any order: DuckDB returns them in an order that varies from run to
        # run (parallel scans), and a plot orders what it draws itself.
        try:
            rows = pandas.util.hash_pandas_object(value, index=False).sort_values()
            h.update(rows.to_numpy().tobytes())
        except TypeError:  # list or dict cells
            h.update("\n".join(sorted(map(repr, value.itertuples(index=False)))).encode())
    elif isinstance(value, (list, tuple)):
        h.update(f"seq{len(value)}".encode())
        for v in value:
            _feed(h, v)
    elif isinstance(value, float):
        h.update(_rounded(value).encode())
    else:
        h.update(repr(value).encode())
    h.update(b"\0")


def _rounded(v: float) -> str:
    """A float to 10 significant digits: DuckDB's parallel sums differ from run to run
    in the last bits, and a figure cannot show them."""
    return f"{v:.10g}"


def digest(job: Job) -> str:
    """The cache name of ``job``'s figure."""
    h = hashlib.sha256(_code_version().encode())
    h.update(f"{job.draw.__module__}.{job.draw.__qualname__}".encode())
    _feed(h, job.args)
    return h.hexdigest()[:32]


def _run(job: Job) -> Figure:
    return job.draw(*job.args)


class Drawer:
    """The report's figures: each one from the cache, or drawn by a worker process as
    soon as it is asked for (while the report's queries go on), or drawn here.

    A context manager: the worker processes (forked when it is made, before any DuckDB
    connection; one imports matplotlib at once, the others with their first matplotlib
    figure) end with it."""

    def __init__(self, cache_root: Path | None, *, workers: int | None = None) -> None:
        self.cache = cache_root / CACHE_DIR if cache_root is not None else None
        self.jobs: dict[str, tuple[Job, str]] = {}  # by key: the job, its cache name
        self.done: dict[str, Figure] = {}
        self.running: dict[str, AsyncResult[Figure]] = {}
        self.hits = 0
        n = default_workers() if workers is None else workers
        self.pool = multiprocessing.get_context("fork").Pool(n) if n >= 2 else None
        if self.pool is not None:
            self.pool.apply_async(_import_matplotlib)  # one worker, while queries run

    def __enter__(self) -> Drawer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None

    def add(self, draw: Callable[..., Figure], key: str, title: str,
            *args: Any) -> Figure:
        """A placeholder for the figure ``draw(*args)`` (``key``, ``title``: the figure's,
        as ``draw`` will name it); :meth:`draw` gives the figure."""
        if key in self.jobs:
            raise ValueError(f"two figures with key {key!r}")
        job = Job(key, draw, args)
        name = digest(job)
        self.jobs[key] = (job, name)
        hit = self._load(name)
        if hit is not None:
            self.done[key] = hit
            self.hits += 1
        elif self.pool is not None:
            self.running[key] = self.pool.apply_async(_run, (job,))
        return Figure(key, title, None, PENDING)

    def draw(self) -> dict[str, Figure]:
        """Every figure asked for, by key (the new ones stored in the cache)."""
        out: dict[str, Figure] = {}
        for key, (job, name) in self.jobs.items():
            fig = self.done.get(key)
            if fig is None:
                running = self.running.get(key)
                fig = running.get(DRAW_TIMEOUT_S) if running is not None else _run(job)
                self._store(name, fig)
            out[key] = fig
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
            files.write_atomic(self.cache / f"{name}.json", text, fsync=False,
                               mode=0o644)
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


def _import_matplotlib() -> None:
    plots._pyplot()


def default_workers() -> int:
    """Worker processes for figures: one per CPU this process may use, at most
    MAX_WORKERS; 0 (draw here) with one CPU or where processes cannot be forked."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    n = min(len(os.sched_getaffinity(0)), MAX_WORKERS)
    return n if n >= 2 else 0
