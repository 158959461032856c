"""Two controllers on one host, and a controller that dies (issue 14 items 2 and 3).

Real controllers: the installed ``harness`` command in subprocesses, each with its own
results directory, sweeping this machine (the default local inventory). The host lock
lives in this machine's /tmp, so another test run's sweep on the machine may be the
holder for a while: each test first waits until its own first sweep holds the host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.agent.hostlock import HOLDER_NAME, HostLock, boot_id
from harness.agent.workdirs import MARKER
from harness.warehouse import Warehouse

HARNESS = str(Path(sys.executable).parent / "harness")  # the installed command
SWEEP = ["sweep", "--profile", "quick", "-w", "cpu_bound", "-m", "threads"]
HOLDER = Path("/tmp") / HOLDER_NAME

pytestmark = pytest.mark.slow


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([HARNESS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, COLUMNS="250", **(env or {})))


def run(*args: str, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HARNESS, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, COLUMNS="250", **(env or {})))


def wait_for(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def sweep_id(results: Path) -> str | None:
    found = sorted(results.glob("sweeps/sweep_id=*"))
    return found[0].name.split("=", 1)[1] if found else None


def holder_sweep() -> str | None:
    try:
        holder = json.loads(HOLDER.read_text())
    except (OSError, ValueError):
        return None
    return None if holder.get("released") else holder.get("sweep")


def first_holds_host(proc: subprocess.Popen[str], results: Path) -> str:
    """Wait until the sweep of ``proc`` holds this machine; its sweep id."""
    assert wait_for(lambda: sweep_id(results) is not None, 60), "the first sweep never began"
    sid = sweep_id(results)
    assert sid is not None
    assert wait_for(lambda: holder_sweep() == sid or proc.poll() is not None, 300), \
        "the first sweep never held the host"
    assert proc.poll() is None, "the first sweep ended before the test could begin"
    return sid


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def test_a_second_sweep_waits_for_the_first_then_measures(tmp_path: Path) -> None:
    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    first = start(*SWEEP, "--results", str(r1))
    try:
        sid = first_holds_host(first, r1)
        second = start(*SWEEP, "--results", str(r2), "--host-wait", "600")
        try:
            # nothing of the second sweep is measured while the first one runs
            while first.poll() is None:
                assert not any(r2.glob("measurements/*/*.parquet"))
                time.sleep(0.2)
            rc2, err2 = finish(second)
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        if first.poll() is None:
            first.kill()
    rc1, err1 = finish(first)
    assert rc1 == 0, err1[-2000:]
    assert rc2 == 0, err2[-2000:]
    assert f"waiting for localhost: busy with sweep {sid} from controller " in err2
    assert Warehouse(r2).query("SELECT count(*) AS n FROM cells").n.iloc[0] == 2


def test_a_host_busy_past_host_wait_is_failed_and_resumed_later(tmp_path: Path) -> None:
    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    first = start(*SWEEP, "--results", str(r1))
    try:
        sid = first_holds_host(first, r1)
        busy = run(*SWEEP, "--results", str(r2), "--host-wait", "1")
    finally:
        rc1, err1 = finish(first)
    assert rc1 == 0, err1[-2000:]
    assert busy.returncode == 1, busy.stderr[-2000:]  # as for a failed host
    assert f"busy: sweep {sid} from controller " in busy.stderr
    second = sweep_id(r2)
    wh = Warehouse(r2)
    envs = wh.query("SELECT status, error FROM environments")
    assert list(envs.status) == ["incomplete"]
    assert envs.error.iloc[0].startswith(f"busy: sweep {sid} from controller ")
    assert wh.query("SELECT count(*) AS n FROM cells").n.iloc[0] == 0
    listed = run("sweeps", "--results", str(r2), "--format", "csv")
    assert f"{second},failed" in listed.stdout, listed.stdout
    resumed = run(*SWEEP, "--resume", second, "--results", str(r2), "--host-wait", "600")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert Warehouse(r2).query("SELECT count(*) AS n FROM cells").n.iloc[0] == 2


def _fake_workdir(name: str, marker: dict[str, Any] | None) -> Path:
    path = Path("/tmp") / f"harness.{name}-{os.getpid()}"
    path.mkdir(mode=0o700)
    if marker is not None:
        (path / MARKER).write_text(json.dumps(marker))
    return path


def _owned_workdirs(sid: str) -> list[Path]:
    found = []
    for marker in Path("/tmp").glob(f"harness.*/{MARKER}"):
        try:
            if json.loads(marker.read_text()).get("sweep") == sid:
                found.append(marker.parent)
        except (OSError, ValueError):
            continue
    return found


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_killed_controller_is_abandoned_resumed_and_its_workdir_removed(
        tmp_path: Path) -> None:
    results = tmp_path / "r"
    fast = {"HARNESS_LEASE_INTERVAL_S": "0.3"}
    proc = start(*SWEEP, "--results", str(results), env=fast)
    live = nomarker = None
    try:
        sid = first_holds_host(proc, results)
        assert wait_for(lambda: _owned_workdirs(sid), 60), "no marked working directory"
        lease = json.loads((results / "leases" / f"{sid}.json").read_text())
        assert lease["pid"] == proc.pid and lease["interval_s"] == 0.3
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        (dead,) = _owned_workdirs(sid)
        agent = json.loads((dead / MARKER).read_text())["agent_pid"]
        # the agent notices its controller is gone (its output pipe breaks) and ends
        assert wait_for(lambda: _pid_gone(agent), 180), "the orphaned agent lives on"
        listed = run("sweeps", "--results", str(results))
        assert listed.returncode == 0, listed.stderr
        assert "abandoned" in listed.stdout, listed.stdout
        assert f"harness sweep --resume {sid} --results {results}" in listed.stderr
        # a live controller's directory (this test's pid) and one without a marker stay
        live = _fake_workdir("live", {
            "sweep": "other", "controller_host": "here", "controller_boot_id": boot_id(),
            "controller_pid": os.getpid(), "agent_pid": agent, "agent_boot_id": boot_id()})
        nomarker = _fake_workdir("nomarker", None)
        resumed = run(*SWEEP, "--resume", sid, "--results", str(results), env=fast)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        # removed by the resumed sweep (or by another sweep that reached this machine first)
        assert not dead.exists(), resumed.stderr[-3000:]
        if dead.name in resumed.stderr:
            assert "localhost: removed " in resumed.stderr
        assert live.is_dir() and nomarker.is_dir()
        after = run("sweeps", "--results", str(results), "--format", "csv")
        assert f"{sid},complete" in after.stdout, after.stdout
        assert not (results / "leases" / f"{sid}.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        for path in (live, nomarker):
            if path is not None:
                for child in path.iterdir():
                    child.unlink()
                path.rmdir()


def test_resuming_a_sweep_a_live_controller_runs_is_refused(tmp_path: Path) -> None:
    results = tmp_path / "r"
    blocker = HostLock("test-blocker", f"test pid {os.getpid()}", keep_s=0)
    assert blocker.acquire(300) is None, "another sweep kept this machine"
    try:  # the sweep waits for the host this test holds: it stays running
        proc = start(*SWEEP, "--results", str(results), "--host-wait", "600")
        try:
            assert wait_for(lambda: sweep_id(results) is not None, 60)
            sid = sweep_id(results)
            assert sid is not None
            assert wait_for(lambda: (results / "leases" / f"{sid}.json").exists(), 60)
            again = run(*SWEEP, "--resume", sid, "--results", str(results))
            listed = run("sweeps", "--results", str(results), "--format", "csv")
        finally:
            blocker.release()
        rc, err = finish(proc)
    finally:
        blocker.release()
    assert rc == 0, err[-2000:]
    assert "waiting for localhost: busy with sweep test-blocker from controller test pid" in err
    assert again.returncode == 2, again.stderr
    assert f"sweep {sid} is running: controller " in again.stderr
    assert "Traceback" not in again.stderr
    assert f"{sid},running" in listed.stdout, listed.stdout


@pytest.mark.parametrize("engine", ["ssh", "ansible"])
def test_a_finished_sweep_lets_the_host_go_at_once(tmp_path: Path, engine: str) -> None:
    """A sweep's last agent on a host keeps no reservation for a next agent of its own:
    once the sweep has ended, the holder record is gone and the next sweep finds the host
    free (a reservation would make it wait up to 10 s). Both engines."""
    first = run(*SWEEP, "--results", str(tmp_path / "a"), "--host-wait", "600",
                "--engine", engine)
    assert first.returncode == 0, first.stderr[-2000:]
    ended = sweep_id(tmp_path / "a")
    try:  # released outright: no record of it kept for a next agent
        record = json.loads(HOLDER.read_text())
    except (OSError, ValueError):
        record = {}
    assert ended and record.get("sweep") != ended, record
    second = run(*SWEEP, "--results", str(tmp_path / "b"), "--host-wait", "0")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "waiting for" not in second.stderr
