"""pyperf's JSON file format (version "1.0", pyperf >= 1.0), read and written with the
standard library: immutable records that refuse what pyperf itself would refuse.

The shape, as pyperf's ``_bench.py`` writes and reads it::

    {"version": "1.0",
     "metadata": {...},                      metadata common to every benchmark
     "benchmarks": [
        {"metadata": {"name": "...", ...},   the benchmark's (the name is required,
                                             here or in the suite's metadata)
         "runs": [                           one per worker process
            {"metadata": {...},              the run's own (date, duration, ...)
             "warmups": [[loops, value], ...],
             "values": [value, ...]},        each > 0, per loop iteration
            ...]}]}

A run's metadata is the suite's, updated by the benchmark's, updated by its own. A
value is the time of one loop iteration (the raw time / (loops * inner_loops)), and so
is a warmup's value, stored with the loops it ran. Metadata values are numbers or
non-empty one-line strings. A file ending in ``.gz`` is gzip-compressed.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import BadInput
from harness.files import write_atomic

FORMAT_VERSION = "1.0"
# pyperf's units (its _formatter.UNIT_FORMATTERS); harness stores only seconds.
UNITS = ("second", "byte", "integer")


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def metadata(items: Mapping[str, Any]) -> dict[str, Any]:
    """``items`` as pyperf metadata: None and empty values left out, booleans as
    "true"/"false", text on one line (pyperf refuses newlines and empty strings)."""
    out: dict[str, Any] = {}
    for key, value in items.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, str):
            value = " ".join(value.split())
            if not value:
                continue
        elif not isinstance(value, (int, float)) or (isinstance(value, float)
                                                     and not math.isfinite(value)):
            value = " ".join(str(value).split())
        out[key] = value
    return out


@dataclass(frozen=True)
class Run:
    """One worker process: its timed values, its warmups as (loops, value), and its own
    metadata (beyond the benchmark's)."""

    values: tuple[float, ...]
    warmups: tuple[tuple[int, float], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))

    def __post_init__(self) -> None:
        if any(not _number(v) or v <= 0 for v in self.values):
            raise ValueError("values must be numbers > 0")
        if any(not isinstance(n, int) or isinstance(n, bool) or n < 1 or not _number(v)
               or v < 0 for n, v in self.warmups):
            raise ValueError("warmups must be [loops >= 1, value >= 0] pairs")
        if not self.values and not self.warmups:
            raise ValueError("a run has neither values nor warmups")
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.metadata:
            data["metadata"] = dict(self.metadata)
        if self.warmups:
            data["warmups"] = [[n, v] for n, v in self.warmups]
        if self.values:
            data["values"] = list(self.values)
        return data


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name, its metadata (the name's included) and its runs."""

    name: str
    runs: tuple[Run, ...]
    metadata: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a benchmark needs a name")
        if not self.runs:
            raise ValueError(f"benchmark {self.name!r} has no run")
        object.__setattr__(self, "metadata", _frozen({**self.metadata, "name": self.name}))

    @property
    def unit(self) -> str:
        return str(self.metadata.get("unit", "second"))

    def to_json(self) -> dict[str, Any]:
        return {"metadata": dict(self.metadata), "runs": [r.to_json() for r in self.runs]}


@dataclass(frozen=True)
class Suite:
    """A file: the metadata common to its benchmarks, and the benchmarks (unique names)."""

    benchmarks: tuple[Benchmark, ...]
    metadata: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))

    def __post_init__(self) -> None:
        if not self.benchmarks:
            raise ValueError("no benchmark")
        names = [b.name for b in self.benchmarks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"benchmark names used twice: {', '.join(dup)}")
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    def to_json(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "metadata": dict(self.metadata),
                "benchmarks": [b.to_json() for b in self.benchmarks]}


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return value


def suite_from_json(data: Any) -> Suite:
    """A :class:`Suite` from a decoded file; ValueError says what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError("not a pyperf file (no 'benchmarks' list)")
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise ValueError(f"pyperf file format version {version!r} is not supported "
                         f"(harness reads version {FORMAT_VERSION!r}, pyperf >= 1.0)")
    suite_meta = _mapping(data.get("metadata"), "the suite's metadata")
    benchmarks = []
    for i, bench in enumerate(data["benchmarks"], 1):
        bench = _mapping(bench, f"benchmark {i}")
        bench_meta = _mapping(bench.get("metadata"), f"benchmark {i}'s metadata")
        name = bench_meta.get("name", suite_meta.get("name"))
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"benchmark {i} has no name")
        runs = []
        for j, run in enumerate(_list(bench.get("runs"), f"benchmark {name!r}'s runs"), 1):
            run = _mapping(run, f"run {j} of {name!r}")
            warmups = []
            for item in _list(run.get("warmups"), f"run {j} of {name!r}: warmups"):
                if not isinstance(item, list) or len(item) != 2:
                    raise ValueError(f"run {j} of {name!r}: a warmup is not [loops, value]")
                warmups.append((item[0], item[1]))
            try:
                runs.append(Run(tuple(_list(run.get("values"), f"run {j} of {name!r}: values")),
                                tuple(warmups),
                                _mapping(run.get("metadata"), f"run {j} of {name!r}: metadata")))
            except ValueError as e:
                raise ValueError(f"run {j} of {name!r}: {e}") from None
        benchmarks.append(Benchmark(name.strip(), tuple(runs), {**bench_meta, "name": name}))
    return Suite(tuple(benchmarks), suite_meta)


def read_suite(path: Path) -> Suite:
    """The pyperf file at ``path``; BadInput (one line) when it is not JSON, not a pyperf
    file, of another format version, or holds what pyperf would refuse."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise BadInput(f"{path}: cannot be read: {e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"{path}: not JSON ({e})",
                       hint="give a file written by pyperf (-o FILE) or harness export") from None
    try:
        return suite_from_json(data)
    except ValueError as e:
        raise BadInput(f"{path}: {e}") from None


def write_suite(suite: Suite, path: Path) -> None:
    """Write ``suite`` to ``path`` whole or not at all (gzip when it ends in ``.gz``)."""
    text = json.dumps(suite.to_json(), sort_keys=True, separators=(",", ":")) + "\n"
    data = gzip.compress(text.encode("utf-8")) if str(path).endswith(".gz") else text
    write_atomic(Path(path), data)


def merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata layers merged as pyperf merges them: later ones win."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update(layer)
    return out
