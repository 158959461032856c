"""EnvRecorder: one environment's (host × interpreter's) agent messages turned into
committed cells, stored attempts and recorded failures.

Every engine feeds it the validated messages of one environment; it commits each cell
the moment its ``cell_done`` arrives. When the engine spreads a cell's repeats over
several agent runs, the samples of the runs before the last wait here until the last
run commits the cell with all of them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from harness.errors import HarnessError
from harness.plan.calibration import CalibrationStore, measured_hints
from harness.plan.cells import Cell, Profile, plan_document
from harness.plan.inventory import Host
from harness.remote.owner import busy_reason, holder_text
from harness.sweep.options import Failure, Observer
from harness.sweep.rows import environment_row, measurement_rows
from harness.warehouse import Warehouse

# A sweep waiting for a host says who holds it at first, then once this often.
WAITING_NOTE_EVERY_S = 60.0


class Spreads(Protocol):
    spreads_runs: bool


class Sweep(Protocol):
    """What a recorder uses of the sweep it records for (harness.sweep.context.Sweep,
    which creates the recorders: a protocol here keeps the import one way)."""

    sweep_id: str
    host_lock: Mapping[str, Any]
    profile: Profile
    engine: Spreads
    warehouse: Warehouse
    calibration: CalibrationStore
    observer: Observer

    def record_failure(self, failure: Failure) -> None: ...
    def commit_cell(self, eid: str, cell: Cell, rows: list[dict[str, Any]]) -> None: ...


class EnvRecorder:
    """Turns one environment's agent messages into committed cells and recorded failures.

    Every engine feeds it the validated messages of one host × interpreter; the
    recorder commits each cell the moment its ``cell_done`` arrives.
    """

    def __init__(self, sweep: Sweep, host: Host, python: str, env: Mapping[str, Any],
                 eid: str, cells: Sequence[Cell],
                 hints: Mapping[str, float] | None = None) -> None:
        self.sweep = sweep
        # Calibration for the agent's plan: the stored one, or once this sweep's agent has
        # measured it, that (a re-started agent then runs the same loop sizes).
        self.hints: dict[str, float] = dict(hints or {})
        self.host_record = host
        self.host = host.name
        self.python = python
        self.env = env
        self.eid = eid
        self.cells = tuple(cells)
        self._by_id = {c.cell_id: c for c in cells}
        self.finished: set[str] = set()
        # Cells left out of this sweep's later runs (the agent died in them): --resume runs them.
        self.skipped: set[str] = set()
        # The cells the agent started and has not finished (a group's cells run
        # interleaved, so several are open at once), with their samples so far.
        self._open: dict[str, list[Mapping[str, Any]]] = {}
        self.noted = False  # the same-machine note was shown
        # A cell's repeats are spread over `runs` agent processes when the engine spreads
        # them (else one run). Samples of the runs before the last wait in `_stash` until
        # the last run commits the cell with all of them; `_ran` holds the cells done in
        # this run.
        self.runs = sweep.profile.runs if sweep.engine.spreads_runs else 1
        self.run_no = 1
        self._stash: dict[str, list[Mapping[str, Any]]] = {}
        self._ran: set[str] = set()
        # Set when the agent gave up waiting for the host lock: "busy: sweep S from ...".
        self.busy = ""
        # the engine sets it on a host's last interpreter: its last run's agent then lets
        # the host go as it ends instead of keeping it a moment for a next agent
        self.last_on_host = False
        self._waiting_noted = (-1e9, "")  # when and for whom "waiting for" was last shown

    @property
    def timeout(self) -> float:
        """An agent run's timeout: its cells', a margin and the wait for the host lock."""
        return sum(c.timeout_s for c in self.cells) + 60.0 + self.host_wait

    @property
    def host_wait(self) -> float:
        return float(self.sweep.host_lock.get("wait_s") or 0.0)

    def remaining(self) -> tuple[Cell, ...]:
        """The cells still to run in this agent run of the sweep, in plan order."""
        return tuple(c for c in self.cells
                     if c.cell_id not in self.finished and c.cell_id not in self.skipped
                     and c.cell_id not in self._ran)

    def keep_blocks(self, attempts: Mapping[str, Sequence[Mapping[str, Any]]],
                    done_groups: set[str]) -> None:
        """On a resume: the complete blocks of each group's interrupted attempt (every
        cell of the group to run has a good timed sample in the block) are kept, so a
        finished block is never measured again; the agent numbers its blocks on from
        them, and the cells' rows will hold them. A block the interruption cut is
        dropped and measured again whole. Groups with a cell already stored start afresh
        (their stored blocks and these would not pair)."""
        groups: dict[str, list[Cell]] = {}
        for cell in self.cells:
            groups.setdefault(cell.group, []).append(cell)
        for group, cells in groups.items():
            if not group or group in done_groups:
                continue
            # An attempt's rows are all stored as failed (it is not a result); a timed
            # row with a block and a wall time was a good sample (a repeat that failed
            # ends its cell, which is then stored, not left to an attempt).
            timed = {c.cell_id: {r["block"]: r for r in attempts.get(c.cell_id, ())
                                 if r.get("block") is not None and not r.get("warmup")
                                 and r.get("wall_s") is not None}
                     for c in cells}
            complete = set.intersection(*(set(rows) for rows in timed.values()))
            for cell in cells:
                kept = [dict(timed[cell.cell_id][b], ok=True, error=None)
                        for b in sorted(complete)]
                if kept:
                    self._stash[cell.cell_id] = kept

    @property
    def has_stash(self) -> bool:
        return bool(self._stash)

    def begin_run(self, run_no: int) -> None:
        if run_no != self.run_no:
            self.run_no = run_no
            self._ran = set()

    def plan(self, cells: Sequence[Cell]) -> dict[str, Any]:
        """The agent's plan for ``cells`` in this run (earlier runs' timed samples with it,
        as ``(block, wall_s)``, so the agent numbers its blocks on and counts them)."""
        prior = {cid: [(s["block"], s["wall_s"]) for s in samples
                       if not s["warmup"] and s["ok"] and s.get("block") is not None]
                 for cid, samples in self._stash.items()}
        doc = plan_document(cells, hints=self.hints, run=self.run_no, runs=self.runs,
                            prior=prior, seed=f"{self.sweep.sweep_id}/{self.eid}")
        doc["host_lock"] = dict(self.sweep.host_lock)
        if self.last_on_host and self.run_no >= self.runs:
            doc["host_lock"]["keep_s"] = 0.0  # no agent of this sweep comes after it
        return doc

    def _tagged(self, samples: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        if self.runs <= 1:
            return list(samples)
        return [dict(s, extra=dict(s.get("extra") or {}, run=self.run_no)) for s in samples]

    def _merged(self, cell_id: str, samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Earlier runs' samples, then these, numbered 0, 1, ... in that order."""
        merged = [*self._stash.pop(cell_id, []), *self._tagged(samples)]
        return [dict(s, repeat=i) for i, s in enumerate(merged)]

    def save_stash(self, reason: str) -> None:
        """Cells that ran in an earlier run but not the last: their samples become
        attempts (kept, not results; --resume runs the cell again)."""
        for cell_id in list(self._stash):
            self._store_attempt(self._by_id[cell_id], [], reason)

    def _store_attempt(self, cell: Cell, samples: Sequence[Mapping[str, Any]],
                       reason: str) -> None:
        """The cell's samples so far (earlier runs' too) as an attempt: failed, not ok."""
        rows = measurement_rows(cell, self.eid, self._merged(cell.cell_id, samples), {
            "status": "failed", "reason": reason, "params": dict(cell.params)})
        for row in rows:
            row["status"], row["ok"] = "failed", False
            row["error"] = row["error"] or reason
        self.sweep.warehouse.add_attempt(self.sweep.sweep_id, self.eid, cell.cell_id, rows)

    def fail(self, reason: str) -> None:
        """Record that something of this environment did not run, and why."""
        self.sweep.record_failure(Failure(self.host, self.python, reason))

    def _mark_incomplete(self, reason: str) -> None:
        self.sweep.warehouse.add_environment(self.sweep.sweep_id, environment_row(
            self.host_record, self.python, self.eid, self.env, reason))

    def _commit(self, cell: Cell, done: Mapping[str, Any]) -> None:
        samples = self._open.pop(cell.cell_id, [])
        rows = measurement_rows(cell, self.eid, self._merged(cell.cell_id, samples), done)
        self.sweep.commit_cell(self.eid, cell, rows)
        self.finished.add(cell.cell_id)
        self.sweep.observer.cell_finished(self.host, self.python, cell, done["status"])

    def feed(self, msg: Mapping[str, Any]) -> None:
        kind = msg["type"]
        if kind == "cell_start":
            cell = self._by_id.get(msg["cell_id"])
            if cell is not None:
                self._open[cell.cell_id] = []
                self.sweep.observer.cell_started(self.host, self.python, cell)
        elif kind == "sample" and msg["cell_id"] in self._open:
            self._open[msg["cell_id"]].append(msg)
        elif kind == "cell_done" and msg["cell_id"] in self._by_id:
            cell = self._by_id[msg["cell_id"]]
            self._keep_calibration(msg.get("params") or {})
            if self.run_no < self.runs and msg["status"] == "ok":
                # more runs to come: keep the samples, commit with the last run
                self._stash[cell.cell_id] = [*self._stash.get(cell.cell_id, []),
                                             *self._tagged(self._open.pop(cell.cell_id, []))]
                self._ran.add(cell.cell_id)
                return
            self._commit(cell, msg)
            if msg["status"] in ("failed", "timeout"):
                self.fail(f"{cell.workload}/{cell.model}: {msg.get('reason') or msg['status']}")
        elif kind in ("error", "protocol_error"):
            self.fail(msg["message"])
        elif kind in ("waiting", "busy", "note"):
            self._host_message(msg)

    def _host_message(self, msg: Mapping[str, Any]) -> None:
        """The host lock's lines: show who holds the host (at first, when the holder
        changes, then once a minute); remember a ``busy``; show a ``note``."""
        kind = msg["type"]
        if kind == "note":
            self.sweep.observer.note(f"{self.host}: {msg['message']}")
        elif kind == "busy":
            self.busy = busy_reason(dict(msg))
        else:
            holder = holder_text(dict(msg))
            at, last = self._waiting_noted
            now = time.monotonic()
            if holder != last or now - at >= WAITING_NOTE_EVERY_S:
                self._waiting_noted = (now, holder)
                self.sweep.observer.note(f"waiting for {self.host}: busy with {holder}")

    def _keep_calibration(self, params: Mapping[str, Any]) -> None:
        found = measured_hints(params)
        if found and any(self.hints.get(k) != v for k, v in found.items()):
            self.hints.update(found)
            self.sweep.calibration.save(self.host, self.python, self.env, self.hints,
                                        self.sweep.sweep_id)

    def lose_current(self, reason: str) -> list[Cell]:
        """The stream broke: store the cells in flight (a group's) as attempts, not results.

        ``--resume`` runs such cells again (the warehouse never counts an attempt as
        done). Returns the cells, empty when none was in flight.
        """
        lost = []
        for cell_id, samples in list(self._open.items()):
            del self._open[cell_id]
            cell = self._by_id[cell_id]
            if cell_id in self.finished:
                continue
            self._store_attempt(cell, samples, reason)
            self.sweep.observer.cell_finished(self.host, self.python, cell, "failed")
            lost.append(cell)
        return lost

    def give_up(self, reason: str) -> None:
        """Nothing more runs in this sweep: record why and what is missing."""
        self.save_stash(reason)
        missing = len(self.cells) - len(self.finished)
        if missing:
            why = f"{reason} ({missing} cells not run)"
            self.fail(why)
            self._mark_incomplete(why)

    def abort(self, exc: HarnessError) -> None:
        """The stream broke: the cell in flight failed with ``exc``; count what did not run."""
        self.lose_current(str(exc))
        self.save_stash(str(exc))
        missing = len(self.cells) - len(self.finished)
        reason = f"{exc} ({missing} cells not run)"
        self.fail(reason)
        self._mark_incomplete(reason)

    def close(self) -> None:
        """The stream ended cleanly; cells the agent never reported are failures."""
        missing = len(self.cells) - len(self.finished)
        if missing:
            reason = (f"{self.busy} ({missing} cells not run)" if self.busy
                      else f"agent finished without running {missing} cells")
            self.fail(reason)
            self._mark_incomplete(reason)
