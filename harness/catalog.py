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

Every problem is a WorkloadError naming the file and the field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import WorkloadError

WORKLOADS_DIR = Path(__file__).resolve().parent.parent / "workloads"

MODELS = (
    "sequential",
    "threads",
    "processes",
    "mp_pool",
    "asyncio",
    "asyncio_to_thread",
    "interpreters",
)
PROFILE_NAMES = ("quick", "standard", "full")
WORKER_WORDS = ("cpus", "tasks")

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_MAX_WORKERS = 4096
# Upper bounds that catch typos (a size in bytes given in kilobytes, ...).
_LIMITS = {"_s": 3600.0, "_bytes": 1 << 30, "tasks": 100_000}


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

    def params_for(self, profile: str) -> dict[str, Any]:
        """The default params with the profile's overrides applied."""
        merged = dict(self.params)
        merged.update(self.profiles.get(profile, {}))
        return merged

    def workers_for(self, model: str, params: Mapping[str, Any], usable_cpus: int) -> int:
        """The worker count of ``model``, resolved against the host and params."""
        spec = self.workers.get(model, self.workers.get("default", "cpus"))
        if spec == "cpus":
            return max(1, usable_cpus)
        if spec == "tasks":
            return max(1, int(params.get("tasks", 1)))
        return int(spec)


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


def parse_workload(path: Path, data: Mapping[str, Any], impl_dir: Path) -> Workload:
    """Validate the decoded TOML ``data`` of ``path`` into a Workload."""
    known = {"name", "title", "implementation", "description", "models", "params", "workers",
             "profiles"}
    for key in data:
        if key not in known:
            raise _fail(path, f"unknown field {key!r} (known: {', '.join(sorted(known))})")
    name = _required_str(path, data, "name")
    if not _NAME.match(name):
        raise _fail(path, f"name {name!r} must be lower-case letters, digits and _")
    title = _required_str(path, data, "title")
    implementation = _required_str(path, data, "implementation")
    if not _NAME.match(implementation) or not (impl_dir / f"{implementation}.py").is_file():
        raise _fail(path, f"implementation {implementation!r} has no module "
                          f"{impl_dir / (implementation + '.py')}")
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
    workers_table = data.get("workers", {})
    if not isinstance(workers_table, dict):
        raise _fail(path, "workers must be a table")
    workers: dict[str, int | str] = {}
    for key, value in workers_table.items():
        if key != "default" and key not in MODELS:
            raise _fail(path, f"workers.{key}: unknown model")
        if isinstance(value, bool) or not (
            value in WORKER_WORDS or (isinstance(value, int) and 1 <= value <= _MAX_WORKERS)
        ):
            raise _fail(path, f"workers.{key} = {value!r} must be 1..{_MAX_WORKERS}, "
                              f"\"cpus\" or \"tasks\"")
        workers[key] = value
    profiles_table = data.get("profiles", {})
    if not isinstance(profiles_table, dict):
        raise _fail(path, "profiles must be a table")
    profiles: dict[str, Mapping[str, Any]] = {}
    for pname, ptable in profiles_table.items():
        if pname not in PROFILE_NAMES:
            raise _fail(path, f"profiles.{pname}: unknown profile "
                              f"(known: {', '.join(PROFILE_NAMES)})")
        if not isinstance(ptable, dict) or set(ptable) - {"params"}:
            raise _fail(path, f"profiles.{pname} may only hold a params table")
        overrides = _check_params(path, f"profiles.{pname}.params", ptable.get("params", {}))
        for key in overrides:
            if key not in params:
                raise _fail(path, f"profiles.{pname}.params.{key} overrides no default param")
        profiles[pname] = MappingProxyType(overrides)
    return Workload(
        name=name, title=title, implementation=implementation, description=description,
        models=tuple(models), params=MappingProxyType(params),
        workers=MappingProxyType(workers), profiles=MappingProxyType(profiles), path=path,
    )


def load_workload_file(path: Path, impl_dir: Path | None = None) -> Workload:
    """Read and validate one definition file."""
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
    return parse_workload(path, data, impl_dir or path.parent)


def load_catalog(directory: Path = WORKLOADS_DIR) -> dict[str, Workload]:
    """Every workload defined in ``directory``, by name, in file-name order."""
    catalog: dict[str, Workload] = {}
    for path in sorted(directory.glob("*.toml")):
        workload = load_workload_file(path)
        if workload.name in catalog:
            raise _fail(path, f"workload {workload.name!r} is also defined in "
                              f"{catalog[workload.name].path}")
        catalog[workload.name] = workload
    if not catalog:
        raise WorkloadError(f"{directory}: no workload definitions (*.toml)")
    return catalog
