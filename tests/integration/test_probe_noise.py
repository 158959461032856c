"""``harness probe --noise``: the agent's ``noise`` command from the real zipapp, and the
installed CLI on the default (local) inventory, judging this machine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.remote.bundle import build_agent
from harness.remote.session import read_messages
from harness.stability import VERDICTS

_SCRIPT = Path(sys.executable).parent / "harness"
HARNESS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "harness"]


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_agent_noise_sends_the_probe_series(tmp_path: Path) -> None:
    agent = build_agent(tmp_path)
    proc = subprocess.run([sys.executable, "-I", str(agent), "noise", "0.3"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    msgs = list(read_messages(proc.stdout.splitlines(), "local", sys.executable))
    assert [m["type"] for m in msgs][0] == "hello" and msgs[-1]["type"] == "eof"
    (env,) = [m["env"] for m in msgs if m["type"] == "env"]
    noise = env["noise"]
    assert env["python_version"] and env["machine_id"] is not None
    assert 10 <= len(noise["probes"]) <= 5000 and all(x > 0 for x in noise["probes"])
    assert 0.3 <= noise["seconds"] < 5
    assert noise["loop"] > 0 and "steal_pct" in noise and "loadavg_1m" in noise


def test_agent_noise_refuses_bad_seconds(tmp_path: Path) -> None:
    agent = build_agent(tmp_path)
    proc = subprocess.run([sys.executable, "-I", str(agent), "noise", "-2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    msgs = list(read_messages(proc.stdout.splitlines(), "local", sys.executable))
    assert [m["type"] for m in msgs] == ["hello", "error", "eof"]


def test_probe_noise_prints_a_verdict_per_interpreter(tmp_path: Path) -> None:
    proc = harness("probe", "--noise", "1", cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    verdicts = re.findall(r"^localhost \S+: (\w+)", proc.stdout, re.M)
    assert verdicts and set(verdicts) <= set(VERDICTS) - {"unknown"}, proc.stdout
    assert "probes in" in proc.stdout


def test_probe_noise_json(tmp_path: Path) -> None:
    proc = harness("probe", "--noise", "0.5", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(proc.stdout)
    assert record["host"] == "localhost" and record["error"] is None
    assert record["verdict"] in VERDICTS
    assert record["stats"]["n_probes"] == len(record["noise"]["probes"]) >= 10


@pytest.mark.parametrize("seconds", ["0", "-1", "601", "soon"])
def test_probe_noise_bad_seconds_is_one_line_exit_2(tmp_path: Path, seconds: str) -> None:
    proc = harness("probe", "--noise", seconds, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith(f"harness: error: --noise {seconds}")
