"""The workload catalogue: ``workloads/*.toml`` read and validated into records.

A definition file names its implementation (``workloads/<implementation>.py``,
run by the agent), the models it supports, default ``params``, the worker count
per model and per-profile parameter overrides::

    name = "cpu_bound"
    title = "CPU-bound (compute)"
    implementation = "cpu"
    description = "..."
    models = ["sequential", "threads", "processes"]
    [params]
    task_s = 0.1
    tasks = 8
    [workers]              # an int, "cpus" (usable CPUs) or "tasks" (params.tasks)
    default = "cpus"
    [profiles.quick.params]
    task_s = 0.02
    [profiles.standard.workers]   # per-profile worker counts (optional), as [workers]
    processes = 12

A workload may also declare *dimensions*: extra (non-headline) cells that vary
one thing at a time around the defaults, with per-profile point lists::

    [dimensions.task_duration]
    vary = "task_s"          # "workers", a param of [params], or an agent param
    models = ["sequential", "threads", "processes", "mp_pool"]
    set = { tasks = 4 }      # params fixed for this dimension (optional)
    workers = "cpus"         # worker count when vary is not "workers" (optional)
    values = [0.001, 0.01]   # points for every profile, unless the profile names its own:
    quick = [0.001, 0.01]
    standard = [0.0001, 0.001, 0.01, 0.1, 1.0]

Agent params (understood by every workload): ``chunksize`` (int >= 1),
``start_method`` (fork, spawn, forkserver), ``pinning`` (none, compact, spread),
``memory`` (local, remote: ``numactl --membind``), ``gil`` (0 or 1: the cell
runs with ``PYTHON_GIL`` set, on free-threaded builds only). Worker values are
an int, ``"cpus"``, ``"2cpus"`` (oversubscription) or ``"tasks"``.

Every problem is a WorkloadError naming the file and the field.

The built-in catalogue is ``harness.paths.WORKLOADS_DIR``; ``--workloads DIR`` adds a
user's directory of definitions and modules (:func:`load_catalog`'s ``extra``). Its
definitions are validated as the built-in ones; their ``implementation`` is a module
of that directory or a built-in one. A user's workload or module may not take a
built-in name (the agent bundle holds every module in one ``workloads`` package, see
:func:`user_modules`); the directory's ``__init__.py``, if any, is not shipped.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.agent import protocol
from harness.errors import WorkloadError
from harness.paths import WORKLOADS_DIR

MODELS = protocol.MODELS
PROFILE_NAMES = ("quick", "standard", "full")
WORKER_WORDS = ("cpus", "tasks")
DIMENSION_WORKER_WORDS = ("cpus", "2cpus", "tasks")
AGENT_PARAMS: Mapping[str, tuple[str, Any]] = MappingProxyType({
    "chunksize": ("a whole number of at least 1",
                  lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
    "start_method": ("fork, spawn or forkserver", lambda v: v in ("fork", "spawn", "forkserver")),
    "pinning": ("none, compact or spread", lambda v: v in ("none", "compact", "spread")),
    "memory": ("local or remote", lambda v: v in ("local", "remote")),
    "gil": ("0 or 1", lambda v: v in (0, 1) and not isinstance(v, bool)),
})

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_MAX_WORKERS = 4096
BUILT_IN = "built-in"  # the source of a workload of the built-in catalogue
# Upper bounds that catch typos (a size in bytes given in kilobytes, ...).
_LIMITS = {"_s": 3600.0, "_bytes": 1 << 30, "tasks": 100_000}


def resolve_workers(spec: int | str, params: Mapping[str, Any], usable_cpus: int) -> int:
    """A worker spec (int, "cpus", "2cpus", "tasks") resolved against the host and params."""
    if spec == "cpus":
        return max(1, usable_cpus)
    if spec == "2cpus":
        return max(1, 2 * usable_cpus)
    if spec == "tasks":
        return max(1, int(params.get("tasks", 1)))
    return int(spec)


@dataclass(frozen=True)
class Dimension:
    """One swept dimension of a workload: ``vary`` takes each point of a profile."""

    name: str
    vary: str
    models: tuple[str, ...]
    points: Mapping[str, tuple[Any, ...]]
    set: Mapping[str, Any]
    workers: int | str | None

    def points_for(self, profile: str) -> tuple[Any, ...]:
        return self.points.get(profile, ())


@dataclass(frozen=True)
class Workload:
    """One validated workload definition."""

    name: str
    title: str
    implementation: str
    description: str
    models: tuple[str, ...]
    params: Mapping[str, Any]
    workers: Mapping[str, int | str]
    profiles: Mapping[str, Mapping[str, Any]]
    path: Path
    dimensions: Mapping[str, Dimension] = field(default_factory=lambda: MappingProxyType({}))
    headline: bool = True  # False: only dimension cells (not part of the matrix)
    # per profile, worker counts that replace those of ``workers`` (e.g. more processes
    # in standard, so that a claim of 6-12x is reachable at all)
    profile_workers: Mapping[str, Mapping[str, int | str]] = field(
        default_factory=lambda: MappingProxyType({}))
    source: str = BUILT_IN  # or the --workloads directory it came from

    def params_for(self, profile: str) -> dict[str, Any]:
        """The default params with the profile's overrides applied."""
        merged = dict(self.params)
        merged.update(self.profiles.get(profile, {}))
        return merged

    def workers_for(self, model: str, params: Mapping[str, Any], usable_cpus: int,
                    profile: str | None = None) -> int:
        """The worker count of ``model`` in ``profile``, resolved against the host and
        params (the profile's ``workers`` table first, then the workload's)."""
        table = {**self.workers, **self.profile_workers.get(profile or "", {})}
        spec = table.get(model, table.get("default", "cpus"))
        return resolve_workers(spec, params, usable_cpus)


def _fail(path: Path, message: str) -> WorkloadError:
    return WorkloadError(
        f"{path}: {message}", hint="see `harness workloads show cpu_bound` for a valid definition"
    )


def _check_scalar(path: Path, where: str, key: str, value: Any) -> None:
    if key == "tasks" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise _fail(path, f"{where}.tasks must be a whole number of at least 1, not {value!r}")
    if isinstance(value, (bool, str)):
        return
    if not isinstance(value, (int, float)):
        raise _fail(path, f"{where}.{key} must be a number, string or boolean, not {value!r}")
    if value < 0:
        raise _fail(path, f"{where}.{key} is negative ({value})")
    for suffix, limit in _LIMITS.items():
        if key.endswith(suffix) and value > limit:
            raise _fail(path, f"{where}.{key} = {value} is absurd (at most {limit})")


def _check_params(path: Path, where: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _fail(path, f"{where} must be a table")
    for key, value in table.items():
        _check_scalar(path, where, key, value)
    return dict(table)


def _required_str(path: Path, data: Mapping[str, Any], key: str) -> str:
    if key not in data:
        raise _fail(path, f"missing field {key!r}")
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"field {key!r} must be a non-empty string")
    return value


def _check_worker_spec(path: Path, where: str, value: Any, words: tuple[str, ...]) -> None:
    if isinstance(value, bool) or not (
        value in words or (isinstance(value, int) and 1 <= value <= _MAX_WORKERS)
    ):
        raise _fail(path, f"{where} = {value!r} must be 1..{_MAX_WORKERS} or one of "
                          f"{', '.join(repr(w) for w in words)}")


def _check_dim_value(path: Path, where: str, key: str, value: Any) -> None:
    if key in AGENT_PARAMS:
        what, ok = AGENT_PARAMS[key]
        if not ok(value):
            raise _fail(path, f"{where} = {value!r}: {key} must be {what}")
        return
    _check_scalar(path, where.rsplit(".", 1)[0], key, value)


def parse_dimensions(path: Path, table: Any, models: tuple[str, ...],
                     params: Mapping[str, Any]) -> dict[str, Dimension]:
    """Validate the ``[dimensions]`` table of ``path``."""
    if not isinstance(table, dict):
        raise _fail(path, "dimensions must be a table of tables")
    known = {"vary", "models", "set", "workers", "values", *PROFILE_NAMES}
    dims: dict[str, Dimension] = {}
    for name, spec in table.items():
        where = f"dimensions.{name}"
        if not _NAME.match(name):
            raise _fail(path, f"{where}: name must be lower-case letters, digits and _")
        if not isinstance(spec, dict):
            raise _fail(path, f"{where} must be a table")
        for key in spec:
            if key not in known:
                raise _fail(path, f"{where}.{key}: unknown field "
                                  f"(known: {', '.join(sorted(known))})")
        vary = spec.get("vary")
        if not isinstance(vary, str) or not (
                vary == "workers" or vary in params or vary in AGENT_PARAMS):
            raise _fail(path, f"{where}.vary = {vary!r} must be \"workers\", a param of "
                              f"[params] or one of {', '.join(AGENT_PARAMS)}")
        dim_models = spec.get("models", list(models))
        if not isinstance(dim_models, list) or not dim_models:
            raise _fail(path, f"{where}.models must be a non-empty list of model names")
        for model in dim_models:
            if model not in models:
                raise _fail(path, f"{where}.models: {model!r} is not one of this "
                                  f"workload's models ({', '.join(models)})")
        fixed = spec.get("set", {})
        if not isinstance(fixed, dict):
            raise _fail(path, f"{where}.set must be a table")
        for key, value in fixed.items():
            if key not in params and key not in AGENT_PARAMS:
                raise _fail(path, f"{where}.set.{key} is not a param of [params] or an "
                                  f"agent param ({', '.join(AGENT_PARAMS)})")
            _check_dim_value(path, f"{where}.set.{key}", key, value)
        workers = spec.get("workers")
        if workers is not None:
            if vary == "workers":
                raise _fail(path, f"{where}.workers: not allowed when vary = \"workers\"")
            _check_worker_spec(path, f"{where}.workers", workers, DIMENSION_WORKER_WORDS)
        points: dict[str, tuple[Any, ...]] = {}
        default = spec.get("values")
        if default is None and not any(p in spec for p in PROFILE_NAMES):
            raise _fail(path, f"{where}: give the points as values = [...] or per profile "
                              f"({', '.join(PROFILE_NAMES)})")
        for pname in PROFILE_NAMES:
            values = spec.get(pname, default)
            if values is None:
                continue
            at = f"{where}.{pname if pname in spec else 'values'}"
            if not isinstance(values, list):
                raise _fail(path, f"{at} must be a list")
            for value in values:
                if vary == "workers":
                    _check_worker_spec(path, at, value, DIMENSION_WORKER_WORDS)
                else:
                    _check_dim_value(path, f"{at}.{vary}", vary, value)
            points[pname] = tuple(values)
        dims[name] = Dimension(name=name, vary=vary, models=tuple(dim_models),
                               points=MappingProxyType(points),
                               set=MappingProxyType(dict(fixed)), workers=workers)
    return dims


def _implementation(path: Path, data: Mapping[str, Any], impl_dirs: Sequence[Path]) -> str:
    """The ``implementation`` field: a module found in the first of ``impl_dirs``."""
    implementation = _required_str(path, data, "implementation")
    if not _NAME.match(implementation) or not any(
            (d / f"{implementation}.py").is_file() for d in impl_dirs):
        where = " or ".join(str(d / f"{implementation}.py") for d in impl_dirs)
        raise _fail(path, f"implementation {implementation!r} has no module {where}")
    return implementation


def parse_workload(path: Path, data: Mapping[str, Any],
                   impl_dir: Path | Sequence[Path]) -> Workload:
    """Validate the decoded TOML ``data`` of ``path`` into a Workload; its implementation
    module is looked up in ``impl_dir`` (a directory or several, in order)."""
    known = {"name", "title", "implementation", "description", "models", "params", "workers",
             "profiles", "dimensions", "headline"}
    for key in data:
        if key not in known:
            raise _fail(path, f"unknown field {key!r} (known: {', '.join(sorted(known))})")
    name = _required_str(path, data, "name")
    if not _NAME.match(name):
        raise _fail(path, f"name {name!r} must be lower-case letters, digits and _")
    title = _required_str(path, data, "title")
    implementation = _implementation(
        path, data, (impl_dir,) if isinstance(impl_dir, Path) else tuple(impl_dir))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(path, "field 'description' must be a string")
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise _fail(path, "field 'models' must be a non-empty list of model names")
    for model in models:
        if model not in MODELS:
            raise _fail(path, f"unknown model {model!r} (known: {', '.join(MODELS)})")
    if "sequential" not in models:
        raise _fail(path, "models must include 'sequential' (speedups are relative to it)")
    params = _check_params(path, "params", data.get("params", {}))
    workers = _check_workers(path, "workers", data.get("workers", {}))
    profiles_table = data.get("profiles", {})
    if not isinstance(profiles_table, dict):
        raise _fail(path, "profiles must be a table")
    profiles: dict[str, Mapping[str, Any]] = {}
    profile_workers: dict[str, Mapping[str, int | str]] = {}
    for pname, ptable in profiles_table.items():
        if pname not in PROFILE_NAMES:
            raise _fail(path, f"profiles.{pname}: unknown profile "
                              f"(known: {', '.join(PROFILE_NAMES)})")
        if not isinstance(ptable, dict) or set(ptable) - {"params", "workers"}:
            raise _fail(path, f"profiles.{pname} may only hold a params and a workers table")
        if "workers" in ptable:
            profile_workers[pname] = MappingProxyType(
                _check_workers(path, f"profiles.{pname}.workers", ptable["workers"]))
        overrides = _check_params(path, f"profiles.{pname}.params", ptable.get("params", {}))
        for key in overrides:
            if key not in params:
                raise _fail(path, f"profiles.{pname}.params.{key} overrides no default param")
        profiles[pname] = MappingProxyType(overrides)
    dimensions = parse_dimensions(path, data.get("dimensions", {}), tuple(models), params)
    headline = data.get("headline", True)
    if not isinstance(headline, bool):
        raise _fail(path, f"field 'headline' must be true or false, not {headline!r}")
    if not headline and not dimensions:
        raise _fail(path, "headline = false needs a [dimensions] table (nothing would run)")
    return Workload(
        name=name, title=title, implementation=implementation, description=description,
        models=tuple(models), params=MappingProxyType(params),
        workers=MappingProxyType(workers), profiles=MappingProxyType(profiles), path=path,
        dimensions=MappingProxyType(dimensions), headline=headline,
        profile_workers=MappingProxyType(profile_workers),
    )


def _check_workers(path: Path, where: str, table: Any) -> dict[str, int | str]:
    """A ``[workers]`` table: model (or ``default``) -> an int, "cpus" or "tasks"."""
    if not isinstance(table, dict):
        raise _fail(path, f"{where} must be a table")
    workers: dict[str, int | str] = {}
    for key, value in table.items():
        if key != "default" and key not in MODELS:
            raise _fail(path, f"{where}.{key}: unknown model")
        if isinstance(value, bool) or not (
            value in WORKER_WORDS or (isinstance(value, int) and 1 <= value <= _MAX_WORKERS)
        ):
            raise _fail(path, f"{where}.{key} = {value!r} must be 1..{_MAX_WORKERS}, "
                              f"\"cpus\" or \"tasks\"")
        workers[key] = value
    return workers


def load_workload_file(path: Path, impl_dir: Path | Sequence[Path] | None = None,
                       source: str = BUILT_IN) -> Workload:
    """Read and validate one definition file (its modules: ``impl_dir``, by default the
    file's own directory)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _fail(path, "is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"is not valid TOML: {exc}") from exc
    workload = parse_workload(path, data, impl_dir or path.parent)
    return workload if source == BUILT_IN else replace(workload, source=source)


def _definitions(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise WorkloadError(f"{directory}: no workload definitions (*.toml)",
                            hint="a workloads directory holds NAME.toml files and the "
                                 "modules they name (see `harness workloads show empty`)")
    return files


def user_dirs(dirs: Sequence[Path], builtin: Path = WORKLOADS_DIR) -> tuple[Path, ...]:
    """The --workloads directories as given, checked, each once (two names of one
    directory count once), without the built-in one."""
    out: dict[Path, Path] = {builtin.resolve(): builtin}
    for directory in dirs:
        if not directory.is_dir():
            raise WorkloadError(f"--workloads {directory}: not a directory",
                                hint="give a directory of workload definitions (*.toml) "
                                     "and their modules (*.py)")
        out.setdefault(directory.resolve(), directory)
    return tuple(out.values())[1:]


def user_modules(dirs: Sequence[Path], builtin: Path = WORKLOADS_DIR) -> tuple[Path, ...]:
    """The modules (``*.py`` but ``__init__.py``) of the --workloads directories, which
    the agent bundle ships beside the built-in ones; a name taken twice is an error."""
    taken = {p.stem: p for p in builtin.glob("*.py")}
    modules: list[Path] = []
    for directory in user_dirs(dirs, builtin):
        for path in sorted(directory.glob("*.py")):
            if path.name == "__init__.py":
                continue
            if path.stem in taken:
                which = "a built-in" if taken[path.stem].parent == builtin else "another"
                raise WorkloadError(
                    f"{path}: module {path.stem!r} has the name of {which} workload module "
                    f"({taken[path.stem]})",
                    hint="rename the module and the implementation field of the "
                         "definitions that use it")
            taken[path.stem] = path
            modules.append(path)
    return tuple(modules)


def load_catalog(directory: Path = WORKLOADS_DIR,
                 extra: Sequence[Path] = ()) -> dict[str, Workload]:
    """Every workload defined in ``directory`` (the built-in catalogue), then in each
    of the ``extra`` (--workloads) directories, by name, in file-name order."""
    catalog: dict[str, Workload] = {}
    user_modules(extra, directory)  # no module name taken twice
    sources = [(directory, (directory,), BUILT_IN)]
    sources += [(d, (d, directory), str(d)) for d in user_dirs(extra, directory)]
    for where, impl_dirs, source in sources:
        for path in _definitions(where):
            workload = load_workload_file(path, impl_dirs, source)
            if workload.name in catalog:
                other = catalog[workload.name].path
                what = ("the name of a built-in workload"
                        if source != BUILT_IN and other.parent == directory
                        else "also defined in")
                raise WorkloadError(
                    f"{path}: workload {workload.name!r} is {what} {other}",
                    hint=f"rename it: name = \"my_{workload.name}\" in {path}")
            catalog[workload.name] = workload
    return catalog
