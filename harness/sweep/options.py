"""What a sweep is asked (SweepOptions), what it answers (SweepResult, Failure), and
what a progress display is told while it runs (Observer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from harness.engines.registry import DEFAULT_ENGINE, check_engine
from harness.errors import OptionError
from harness.remote.owner import HOST_WAIT_DEFAULT_S, check_host_wait

if TYPE_CHECKING:
    from harness.plan.cells import Cell

# --forks: hosts the ansible engine handles at once.
MIN_FORKS, MAX_FORKS = 1, 1000


@dataclass(frozen=True)
class SweepOptions:
    """Everything ``harness sweep`` was asked to do.

    The engine and ``forks`` are checked here, once: bad values raise OptionError
    before anything runs or is written.
    """

    inventory: Path
    results: Path
    profile: str = "quick"
    limit: str | None = None
    workloads: tuple[str, ...] = ()
    workload_dirs: tuple[Path, ...] = ()  # --workloads: user catalogue directories
    models: tuple[str, ...] = ()
    resume: str | None = None
    accept_new_host_keys: bool = False
    parallel_same_machine: bool = False
    known_hosts: Path | None = None
    engine: str = DEFAULT_ENGINE
    forks: int = 8
    dimensions: bool | None = None  # plan the dimension cells (None: the profile's default)
    dimension_names: tuple[str, ...] = ()  # only these dimensions (implies dimensions)
    recalibrate: bool = False  # measure the CPU rate again instead of reusing the stored one
    host_wait: float = HOST_WAIT_DEFAULT_S  # seconds to wait for a host another sweep holds

    def __post_init__(self) -> None:
        check_engine(self.engine)
        if not MIN_FORKS <= self.forks <= MAX_FORKS:
            raise OptionError(f"--forks {self.forks} is out of range",
                              hint=f"use {MIN_FORKS} to {MAX_FORKS}")
        check_host_wait(self.host_wait)


@dataclass(frozen=True)
class Failure:
    """Something that did not run, and why."""

    host: str
    python: str | None
    reason: str


@dataclass(frozen=True)
class SweepResult:
    """A finished (or failed) sweep: its id, the cells it stored, what did not run."""

    sweep_id: str
    cells_run: int
    failures: tuple[Failure, ...]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


class Observer(Protocol):
    """What a progress display is told."""

    def host_planned(self, host: str, total: int) -> None: ...
    def cell_started(self, host: str, python: str, cell: Cell) -> None: ...
    def cell_finished(self, host: str, python: str, cell: Cell, status: str) -> None: ...
    def failed(self, failure: Failure) -> None: ...
    def note(self, text: str) -> None: ...
