"""Progress displays for a sweep: a live line per host on a terminal, plain lines otherwise.

Both write to stderr, so stdout carries only the answer (the matrix, or JSON).
"""

from __future__ import annotations

import threading
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.plan.cells import Cell
from harness.sweep.options import Failure


def _label(cell: Cell) -> str:
    return f"{cell.workload}/{cell.model}×{cell.workers}"


class PlainProgress:
    """One line per event, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._done: dict[str, int] = {}
        self._total: dict[str, int] = {}

    def _say(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def host_planned(self, host: str, total: int) -> None:
        self._total[host] = total
        self._done[host] = 0
        self._say(f"{host}: {total} cells planned")

    def cell_started(self, host: str, python: str, cell: Cell) -> None:
        pass

    def cell_finished(self, host: str, python: str, cell: Cell, status: str) -> None:
        key = f"{host} {python}"
        self._done[key] = self._done.get(key, 0) + 1
        self._say(f"{key}: [{self._done[key]}/{self._total.get(key, '?')}] "
                  f"{_label(cell)} {status}")

    def failed(self, failure: Failure) -> None:
        self._say(f"FAILED {failure.host}"
                  f"{' ' + failure.python if failure.python else ''}: {failure.reason}")

    def note(self, text: str) -> None:
        self._say(text)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class LiveProgress:
    """A rich progress bar per host × interpreter: cells done/total, current cell, failures."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.fields[env]}", style="bold"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}"),
            TextColumn("[red]{task.fields[failures]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._tasks: dict[str, int] = {}
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def host_planned(self, host: str, total: int) -> None:
        with self._lock:
            self._tasks[host] = self.progress.add_task(
                host, total=total, env=host, current="", failures="")

    def cell_started(self, host: str, python: str, cell: Cell) -> None:
        task = self._tasks.get(f"{host} {python}")
        if task is not None:
            self.progress.update(task, current=_label(cell))

    def cell_finished(self, host: str, python: str, cell: Cell, status: str) -> None:
        key = f"{host} {python}"
        task = self._tasks.get(key)
        if task is None:
            return
        if status in ("failed", "timeout"):
            self._failures[key] = self._failures.get(key, 0) + 1
        fails = self._failures.get(key, 0)
        self.progress.update(task, advance=1, current="",
                             failures=f"{fails} failed" if fails else "")

    def failed(self, failure: Failure) -> None:
        self.progress.console.print(
            f"[red]FAILED[/red] {failure.host}"
            f"{' ' + failure.python if failure.python else ''}: {failure.reason}",
            markup=True, highlight=False)

    def note(self, text: str) -> None:
        self.progress.console.print(text, highlight=False, markup=False)

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def make_progress(console: Console) -> PlainProgress | LiveProgress:
    """A live display on a terminal, plain lines otherwise."""
    if console.is_terminal:
        return LiveProgress(console)
    return PlainProgress(console.file)
