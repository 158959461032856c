"""The built agent zipapp on every interpreter present: probe and a tiny full matrix.

Runs ``<python> -I agent.pyz`` from a temp cwd where ``harness`` is not
importable, so the bundle must be self-contained and stdlib-only.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.agent.protocol import parse_line
from harness.remote.bundle import build_agent

PYENV = "/root/.pyenv/versions"
INTERPRETERS = [
    (PYENV + "/3.9.18/bin/python3.9", (3, 9), False),
    (PYENV + "/3.10.13/bin/python3.10", (3, 10), False),
    (PYENV + "/3.11.7/bin/python3.11", (3, 11), False),
    (PYENV + "/3.12.1/bin/python3.12", (3, 12), False),
    (PYENV + "/3.13.0/bin/python3.13", (3, 13), False),
    ("/var/cache/harness/cpython-3.13t/bin/python3.13t", (3, 13), True),
]
MODELS = ["sequential", "threads", "processes", "mp_pool", "asyncio", "asyncio_to_thread",
          "interpreters"]
TINY = {
    ("cpu_bound", "cpu"): {"task_s": 0.002, "tasks": 4},
    ("net_low_latency", "net"): {"delay_s": 0.001, "tasks": 4},
    ("net_high_latency", "net"): {"delay_s": 0.002, "tasks": 4},
    ("disk_io", "disk"): {"tasks": 4, "file_bytes": 4096},
}


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    return build_agent(tmp_path_factory.mktemp("bundle"))


def _interpreter(path):
    if not os.path.exists(path):
        pytest.skip("interpreter %s is not installed here" % path)
    return path


def run_agent(python, agent, args, cwd, stdin=None, timeout=240):
    proc = subprocess.run([python, "-I", str(agent)] + list(args), cwd=str(cwd), input=stdin,
                          capture_output=True, timeout=timeout)
    lines = proc.stdout.decode("utf-8").splitlines()
    msgs = [parse_line(line) for line in lines]  # every stdout line is protocol
    return proc, msgs


def check_stream(msgs, plan):
    """The documented order: hello, env, per cell start/samples/done, eof last."""
    assert msgs[0]["type"] == "hello"
    assert msgs[1]["type"] == "env"
    assert msgs[-1]["type"] == "eof"
    body = [m for m in msgs[2:-1] if m["type"] != "keepalive"]
    done = {}
    for cell in plan["cells"]:
        start = body.pop(0)
        assert start["type"] == "cell_start"
        assert start["cell_id"] == cell["cell_id"]
        assert start["model"] == cell["model"]
        samples = []
        while body[0]["type"] == "sample":
            samples.append(body.pop(0))
        finish = body.pop(0)
        assert finish["type"] == "cell_done"
        assert finish["cell_id"] == cell["cell_id"]
        done[cell["cell_id"]] = (finish, samples)
        if finish["status"] == "ok":
            k = cell["warmups"] + cell["repeats"]
            assert [s["repeat"] for s in samples] == list(range(k))
            assert [s["warmup"] for s in samples] == [i < cell["warmups"] for i in range(k)]
            for s in samples:
                assert s["ok"] and s["error"] is None and s["wall_s"] > 0
                assert s["params"] == finish["params"]
                assert s["peak_rss_bytes"] and s["peak_rss_bytes"] > 0
        else:
            assert samples and not samples[-1]["ok"] and samples[-1]["error"]
    assert body == []
    assert msgs[-1]["cells"] == len(plan["cells"])
    return done


def tiny_plan(extra_cells=()):
    cells = []
    for (workload, impl), params in TINY.items():
        for model in MODELS:
            workers = 1 if model == "sequential" else 2
            cells.append({"cell_id": "%s-%s" % (workload, model), "workload": workload,
                          "implementation": impl, "model": model, "workers": workers,
                          "params": dict(params), "warmups": 1, "repeats": 2,
                          "timeout_s": 120})
    cells.extend(extra_cells)
    return {"protocol": 2, "keepalive_s": 5, "cells": cells}


@pytest.mark.slow
@pytest.mark.parametrize("python,version,free_threaded",
                         [pytest.param(p, v, f, id=os.path.basename(p))
                          for p, v, f in INTERPRETERS])
def test_probe(agent, tmp_path, python, version, free_threaded):
    python = _interpreter(python)
    proc, msgs = run_agent(python, agent, ["probe"], tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert [m["type"] for m in msgs] == ["hello", "env", "eof"]
    env = msgs[1]["env"]
    assert tuple(int(x) for x in env["python_version"].split(".")[:2]) == version
    assert env["free_threaded"] is free_threaded
    if free_threaded:
        assert env["gil_enabled"] is False  # the default of a 3.13t build
    else:
        assert env["gil_enabled"] is True
    assert env["implementation"] == "CPython"
    assert env["usable_cpus"] == len(os.sched_getaffinity(0))
    assert env["logical_cpus"] == os.cpu_count()
    assert 1 <= env["physical_cores"] <= env["logical_cpus"]
    assert env["executable"] == python or os.path.realpath(env["executable"]) == \
        os.path.realpath(python)
    assert env["has_interpreter_pool"] is (version >= (3, 14))
    assert env["default_start_method"] in env["start_methods"]
    assert env["mem_total_bytes"] > 0
    json.dumps(env, allow_nan=False)


@pytest.mark.slow
@pytest.mark.parametrize("python,version,free_threaded",
                         [pytest.param(p, v, f, id=os.path.basename(p))
                          for p, v, f in INTERPRETERS])
def test_run_tiny_matrix(agent, tmp_path, python, version, free_threaded):
    python = _interpreter(python)
    spawn_cells = [
        {"cell_id": "cpu-processes-spawn", "workload": "cpu_bound", "implementation": "cpu",
         "model": "processes", "workers": 2, "params": {"task_s": 0.002, "tasks": 4,
                                                         "start_method": "spawn"},
         "warmups": 0, "repeats": 1, "timeout_s": 120},
        {"cell_id": "disk-mp_pool-forkserver", "workload": "disk_io",
         "implementation": "disk", "model": "mp_pool", "workers": 2,
         "params": {"tasks": 4, "file_bytes": 4096, "start_method": "forkserver"},
         "warmups": 0, "repeats": 1, "timeout_s": 120},
    ]
    plan = tiny_plan(spawn_cells)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc, msgs = run_agent(python, agent, ["run", str(plan_file)], cwd)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    done = check_stream(msgs, plan)
    for cell_id, (finish, _samples) in done.items():
        if cell_id.endswith("-interpreters") and version < (3, 14):
            assert finish["status"] == "not_applicable"
            assert "3.14" in finish["reason"]
        else:
            assert finish["status"] == "ok", (cell_id, finish["reason"])
    assert done["cpu-processes-spawn"][0]["params"]["start_method"] == "spawn"
    assert done["disk-mp_pool-forkserver"][0]["params"]["start_method"] == "forkserver"
    cpu = done["cpu_bound-sequential"][0]["params"]
    assert cpu["n"] > 0 and cpu["calibrated_task_s"] > 0
    net = done["net_high_latency-threads"][1][-1]["extra"]
    assert 0 < net["latency_p50_s"] <= net["latency_p95_s"] <= net["latency_p99_s"]
    assert net["server_cpu_s"] >= 0
    assert done["cpu_bound-processes"][0]["params"]["start_method"] in (
        "fork", "spawn", "forkserver")
    assert "startup_s" in done["cpu_bound-mp_pool"][1][-1]["extra"]
    assert list(cwd.iterdir()) == []


def test_plan_from_stdin_and_bad_plan(agent, tmp_path):
    python = sys.executable
    plan = {"protocol": 2, "keepalive_s": 5, "cells": [
        {"cell_id": "c1", "workload": "cpu_bound", "implementation": "cpu",
         "model": "threads", "workers": 2, "params": {"task_s": 0.002, "tasks": 4},
         "warmups": 1, "repeats": 2, "timeout_s": 60}]}
    proc, msgs = run_agent(python, agent, ["run", "-"], tmp_path,
                           stdin=json.dumps(plan).encode(), timeout=60)
    assert proc.returncode == 0
    check_stream(msgs, plan)
    for bad in (b"not json", b"{}", json.dumps({"protocol": 2, "cells": [{}]}).encode(),
                json.dumps({"protocol": 2, "cells": [dict(plan["cells"][0],
                                                          workers=True)]}).encode()):
        proc, msgs = run_agent(python, agent, ["run", "-"], tmp_path, stdin=bad, timeout=60)
        assert proc.returncode == 2
        # run - sends its fingerprint before it reads the plan (one start probes and runs)
        assert [m["type"] for m in msgs] == ["hello", "env", "error", "eof"]
    proc, msgs = run_agent(python, agent, ["run", str(tmp_path / "missing.json")], tmp_path,
                           timeout=60)
    assert proc.returncode == 2
    assert msgs[1]["type"] == "error"


def test_zipapp_has_no_controller_code(agent):
    import zipfile  # noqa: PLC0415

    names = zipfile.ZipFile(str(agent)).namelist()
    assert all(n == "__main__.py" or n.startswith(("harness/agent/", "workloads/"))
               or n in ("harness/__init__.py", "harness/__init__.pyc") for n in names)
    assert Path(agent).stat().st_size < 1 << 20
