"""pyperf's JSON both ways, as a user runs it: ``harness export --format pyperf`` read by
the real pyperf (stats, hist, compare_to), ``harness import pyperf`` of a file pyperf
itself wrote, and the round trip (the same values back)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
HARNESS = str(BIN / "harness")
PYTHON = str(BIN / "python")


def harness(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HARNESS, *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def pyperf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "pyperf", *args], capture_output=True, text=True,
                          timeout=120)


def sql(results: Path, query: str) -> list[dict[str, Any]]:
    p = harness("sql", query, "--results", str(results), "--format", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def values_of(path: Path) -> dict[str, list[tuple[list[float], list[list[float]]]]]:
    """Per benchmark name, its runs as (values, warmups), read straight from the JSON."""
    data = json.loads(path.read_text())
    suite_name = data.get("metadata", {}).get("name")
    return {b.get("metadata", {}).get("name", suite_name):
            [(r.get("values", []), r.get("warmups", [])) for r in b["runs"]]
            for b in data["benchmarks"]}


def sweep(results: Path, *args: str) -> str:
    p = harness("sweep", "-w", "cpu_bound", "--results", str(results), *args)
    assert p.returncode == 0, p.stdout + p.stderr
    found = re.search(r"sweep (\S+): \d+ cells stored", p.stdout + p.stderr)
    assert found, p.stdout + p.stderr
    return found.group(1)


def export(results: Path, sweep_id: str, out: Path) -> tuple[Path, str]:
    p = harness("export", "--format", "pyperf", "--sweep", sweep_id, "--out", str(out),
                "--results", str(results))
    assert p.returncode == 0, p.stdout + p.stderr
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, p.stdout
    return files[0], p.stdout


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A quick sweep (threads, processes, and interpreters: not applicable before 3.14)
    and a standard one of the sequential cell alone (task_s 0.1 s against quick's 0.02 s,
    three agent runs), exported."""
    root = tmp_path_factory.mktemp("pyperf")
    results = root / "results"
    a = sweep(results, "--profile", "quick", "-m", "threads", "-m", "processes",
              "-m", "interpreters")
    b = sweep(results, "--profile", "standard", "--no-dimensions", "-m", "sequential")
    file_a, out_a = export(results, a, root / "a")
    file_b, out_b = export(results, b, root / "b")
    return {"results": results, "a": a, "b": b, "file_a": file_a, "file_b": file_b,
            "out_a": out_a, "out_b": out_b, "root": root}


@pytest.mark.slow
def test_pyperf_reads_the_exported_files(two_sweeps: dict[str, Any]) -> None:
    for path in (two_sweeps["file_a"], two_sweeps["file_b"]):
        for command in ("stats", "hist", "show", "check"):
            p = pyperf(command, str(path))
            assert p.returncode == 0, (command, p.stdout, p.stderr)
    stats = pyperf("stats", str(two_sweeps["file_a"])).stdout
    assert "cpu_bound/threads/workers=2" in stats and "Number of run with values: 1" in stats
    stats_b = pyperf("stats", str(two_sweeps["file_b"])).stdout
    assert "Number of run with values: 3" in stats_b  # standard: three agent processes
    p = pyperf("compare_to", str(two_sweeps["file_a"]), str(two_sweeps["file_b"]))
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.slow
def test_export_holds_the_stored_values_and_leaves_out_what_did_not_run(
        two_sweeps: dict[str, Any]) -> None:
    results, a = two_sweeps["results"], two_sweeps["a"]
    got = values_of(two_sweeps["file_a"])
    assert set(got) == {"cpu_bound/sequential/workers=1", "cpu_bound/threads/workers=2",
                        "cpu_bound/processes/workers=2"}
    rows = sql(results, f"""
        SELECT model, workers, warmup, wall_s FROM measurements
        WHERE sweep_id = '{a}' AND ok AND wall_s IS NOT NULL ORDER BY cell_id, repeat""")
    for name, runs in got.items():
        model, workers = name.split("/")[1], int(name.rsplit("=", 1)[1])
        mine = [r for r in rows if r["model"] == model and r["workers"] == workers]
        assert len(runs) == 1
        assert runs[0][0] == [r["wall_s"] for r in mine if not r["warmup"]]
        assert runs[0][1] == [[1, r["wall_s"]] for r in mine if r["warmup"]]
    # the interpreters cell did not run on this Python: left out, with its reason
    left = [line for line in two_sweeps["out_a"].splitlines() if line.startswith("left out:")]
    assert len(left) == 1 and "cpu_bound/interpreters/workers=" in left[0]
    assert "not_applicable" in left[0]
    data = json.loads(two_sweeps["file_a"].read_text())
    meta = data["metadata"]
    env = sql(results, f"SELECT * EXCLUDE (probe) FROM environments WHERE sweep_id = '{a}'")[0]
    assert meta["harness_sweep_id"] == a and meta["unit"] == "second"
    assert meta["python_executable"] == env["executable"]
    assert meta["python_version"] == env["python_version"]
    assert meta["cpu_model_name"] == env["cpu_model"] and meta["cpu_count"] == env["logical_cpus"]
    assert meta["harness_profile_id"] == env["profile_id"]
    assert meta["harness_free_threaded"] == "false" and meta["harness_gil_enabled"] == "true"
    assert meta["hostname"] == env["hostname"] and meta["harness_version"]
    # three runs in the standard sweep, numbered by the agent process they ran in
    runs_b = values_of(two_sweeps["file_b"])["cpu_bound/sequential/workers=1"]
    extra = sql(results, f"""SELECT extra->>'run' AS run, wall_s FROM measurements
                             WHERE sweep_id = '{two_sweeps["b"]}' AND NOT warmup
                             ORDER BY repeat""")
    assert [v for v, _ in runs_b] == [[r["wall_s"] for r in extra if r["run"] == str(n)]
                                      for n in (1, 2, 3)]


def _pyperf_directions(table: str) -> dict[str, str]:
    """compare_to --table: per benchmark 'slower', 'faster' or 'same' (a row without a
    verdict, or named as hidden because not significant)."""
    found = {}
    for line in table.splitlines():
        hidden = re.match(r"Benchmark hidden because not significant \(\d+\): (.*)", line)
        if hidden:
            found.update({name.strip(): "same" for name in hidden.group(1).split(",")})
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and "/" in cells[0]:
            verdict = re.search(r"(slower|faster)", cells[2])
            found[cells[0]] = verdict.group(1) if verdict else "same"
    return found


@pytest.mark.slow
def test_compare_to_agrees_in_direction_with_harness(two_sweeps: dict[str, Any]) -> None:
    p = pyperf("compare_to", "--table", str(two_sweeps["file_a"]), str(two_sweeps["file_b"]))
    assert p.returncode == 0, p.stderr
    directions = _pyperf_directions(p.stdout)
    decided = {n: d for n, d in directions.items() if d != "same"}
    assert "cpu_bound/sequential/workers=1" in decided, p.stdout  # 0.1 s tasks vs 0.02 s
    medians = {(r["sweep_id"], f"{r['workload']}/{r['model']}/workers={r['workers']}"):
               r["median_s"] for r in sql(two_sweeps["results"], """
               SELECT sweep_id, workload, model, workers, median_s FROM cells
               WHERE headline AND n > 0""")}
    for name, verdict in decided.items():
        ratio = medians[(two_sweeps["b"], name)] / medians[(two_sweeps["a"], name)]
        assert (ratio > 1) == (verdict == "slower"), (name, verdict, ratio)


@pytest.mark.slow
def test_compare_to_agrees_with_harness_compare_by_sweep(two_sweeps: dict[str, Any],
                                                         tmp_path: Path) -> None:
    """Sweep B is sweep A's exported file with the threads cell's values (and warmups)
    x10 and the processes cell's /10, imported: the same environment and cells, one
    slower, one faster, one unchanged. pyperf compare_to on A's file and B's export and
    harness compare --by sweep's ratio point the same way for each cell pyperf decides
    (and so does harness's own verdict where it has one: on a noisy machine its interval
    of the median may not exclude 1 where pyperf's t-test on the means calls it)."""
    results = tmp_path / "results"
    shutil.copytree(two_sweeps["results"], results)
    data = json.loads(two_sweeps["file_a"].read_text())
    factor = {"cpu_bound/threads/workers=2": 10.0, "cpu_bound/processes/workers=2": 0.1}
    for bench in data["benchmarks"]:
        k = factor.get(bench["metadata"]["name"], 1.0)
        for run in bench["runs"]:
            run["values"] = [v * k for v in run.get("values", [])]
            run["warmups"] = [[n, v * k] for n, v in run.get("warmups", [])]
    scaled = tmp_path / "scaled.json"
    scaled.write_text(json.dumps(data))
    p = harness("import", "pyperf", str(scaled), "--results", str(results))
    assert p.returncode == 0, p.stdout + p.stderr
    b = re.search(r"sweep (\S+):", p.stdout).group(1)
    file_b, _ = export(results, b, tmp_path / "b")
    table = pyperf("compare_to", "--table", str(two_sweeps["file_a"]), str(file_b))
    assert table.returncode == 0, table.stderr
    theirs = _pyperf_directions(table.stdout)
    p = harness("compare", "--by", "sweep", "--baseline", two_sweeps["a"], "--sweep", b,
                "--results", str(results), "--format", "json")
    assert p.returncode == 0, p.stdout + p.stderr
    cells = [c for comp in json.loads(p.stdout)["comparisons"] for c in comp["cells"]]
    ratio = {f"{c['workload']}/{c['model']}/workers={c['workers']}": c["speed_ratio"]
             for c in cells}  # A's median / B's: below 1, B is slower
    verdict = {f"{c['workload']}/{c['model']}/workers={c['workers']}": c["time_change"]
               for c in cells}
    assert set(ratio) == set(theirs) == {"cpu_bound/sequential/workers=1", *factor}
    assert theirs == {"cpu_bound/sequential/workers=1": "same",
                      "cpu_bound/threads/workers=2": "slower",
                      "cpu_bound/processes/workers=2": "faster"}, table.stdout
    assert ratio["cpu_bound/sequential/workers=1"] == 1.0  # the very same values
    for name, direction in theirs.items():
        if direction != "same":
            assert (ratio[name] < 1) == (direction == "slower"), (name, ratio[name])
        if verdict[name] in ("slower", "faster"):  # harness's own significance, if any
            assert verdict[name] == direction, (name, verdict[name], direction)


@pytest.mark.slow
def test_an_exported_sweep_imports_and_round_trips(two_sweeps: dict[str, Any],
                                                   tmp_path: Path) -> None:
    results = tmp_path / "results"
    p = harness("import", "pyperf", str(two_sweeps["file_a"]), "--results", str(results))
    assert p.returncode == 0, p.stdout + p.stderr
    new = re.search(r"sweep (\S+):", p.stdout).group(1)
    cells = sql(results, "SELECT workload, model, workers, cell_key, headline FROM cells")
    original = sql(two_sweeps["results"], f"""SELECT workload, model, workers, cell_key, headline
        FROM cells WHERE sweep_id = '{two_sweeps["a"]}' AND n > 0""")
    assert sorted(map(str, cells)) == sorted(map(str, original))  # what it was, not 'pyperf'
    back, _ = export(results, new, tmp_path / "back")
    assert values_of(back) == values_of(two_sweeps["file_a"])


@pytest.fixture(scope="module")
def timeit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("timeit") / "timeit.json"
    p = pyperf("timeit", "-q", "--fast", "-o", str(path), "sum(range(100))")
    assert p.returncode == 0, p.stdout + p.stderr
    return path


def test_a_file_pyperf_wrote_imports_and_round_trips(timeit_file: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    p = harness("import", "pyperf", str(timeit_file), "--results", str(results),
                cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    sweep_id = re.search(r"sweep (\S+):", p.stdout).group(1)
    original = values_of(timeit_file)["timeit"]
    n_values = sum(len(v) for v, _ in original)
    n_warmups = sum(len(w) for _, w in original)
    cells = sql(results, "SELECT sweep_id, workload, model, status, n, n_warmup, median_s "
                         "FROM cells")
    assert cells == [{"sweep_id": sweep_id, "workload": "timeit", "model": "pyperf",
                      "status": "ok", "n": n_values, "n_warmup": n_warmups,
                      "median_s": cells[0]["median_s"]}]
    assert cells[0]["median_s"] > 0
    sweeps = sql(results, "SELECT sweep_id, status, profile FROM sweeps")
    assert sweeps == [{"sweep_id": sweep_id, "status": "complete", "profile": "pyperf-import"}]
    meta = json.loads(timeit_file.read_text())["metadata"]
    env = sql(results, "SELECT host, python, python_version, logical_cpus, cpu_model "
                       "FROM environments")[0]
    assert env == {"host": meta["hostname"], "python": meta["python_executable"],
                   "python_version": meta["python_version"].split()[0],
                   "logical_cpus": meta["cpu_count"], "cpu_model": meta["cpu_model_name"]}
    # the run numbers in extra, repeats numbered across runs
    runs = sql(results, "SELECT extra->>'run' AS run, count(*) AS k, min(repeat) AS lo "
                        "FROM measurements GROUP BY 1 ORDER BY lo")
    assert [int(r["run"]) for r in runs] == list(range(1, len(original) + 1))
    assert [r["k"] for r in runs] == [len(v) + len(w) for v, w in original]
    out = tmp_path / "out"
    back, _ = export(results, sweep_id, out)
    assert values_of(back) == {"timeit": original}
    for command in ("stats", "hist"):
        assert pyperf(command, str(back)).returncode == 0
    p = pyperf("compare_to", str(timeit_file), str(back))
    assert p.returncode == 0 and "not significant" in p.stdout.lower(), p.stdout


@pytest.mark.parametrize(("content", "expected"), [
    ("this is not json {", "not JSON"),
    ('{"results": []}', "not a pyperf file"),
    ('{"version": 6, "benchmarks": []}', "format version 6 is not supported"),
    ('{"version": "1.0", "benchmarks": [{"metadata": {"name": "x"}, '
     '"runs": [{"values": [-1.0]}]}]}', "values must be numbers > 0"),
])
def test_bad_input_is_one_line_and_stores_nothing(tmp_path: Path, content: str,
                                                  expected: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    results = tmp_path / "results"
    p = harness("import", "pyperf", str(bad), "--results", str(results))
    assert p.returncode == 2, p.stdout + p.stderr
    first = p.stderr.splitlines()[0]
    assert first.startswith("harness: error: ") and expected in first, p.stderr
    assert "Traceback" not in p.stderr
    assert not (results / "sweeps").exists()


def test_export_refuses_an_unknown_format(tmp_path: Path) -> None:
    p = harness("export", "--format", "csv", "--out", str(tmp_path / "o"),
                "--results", str(tmp_path / "r"))
    assert p.returncode == 2 and p.stderr.startswith("harness: error: --format 'csv'")


def test_bad_file_among_good_ones_stores_none_and_good_ones_compare(timeit_file: Path,
                                                                    tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "1.0"}')
    results = tmp_path / "results"
    p = harness("import", "pyperf", str(timeit_file), str(bad), "--results", str(results))
    assert p.returncode == 2 and "bad.json: not a pyperf file" in p.stderr, p.stderr
    assert not (results / "sweeps").exists()
    two = harness("import", "pyperf", str(timeit_file), str(timeit_file), "--host", "lab1",
                  "--results", str(results))
    assert two.returncode == 0, two.stderr
    assert sql(results, "SELECT count(*) AS n, min(host) AS host FROM environments") == [
        {"n": 2, "host": "lab1"}]  # a sweep of its own per file, the host as given
    # two imports of one file: history shows the benchmark over both, compare says unchanged
    hist = harness("history", "--host", "lab1", "--model", "pyperf", "--results", str(results),
                   "--format", "json")
    assert hist.returncode == 0, hist.stderr
    assert "timeit" in hist.stdout and hist.stdout.count("sweep_id") >= 2, hist.stdout
    first, second = (r["sweep_id"] for r in sql(results, "SELECT sweep_id FROM sweeps "
                                                         "ORDER BY sweep_id"))
    cmp = harness("compare", "--by", "sweep", "--baseline", first, "--sweep", second,
                  "--results", str(results), "--format", "json")
    assert cmp.returncode == 0, cmp.stderr
    (cell,) = [c for comp in json.loads(cmp.stdout)["comparisons"] for c in comp["cells"]]
    assert cell["workload"] == "timeit" and cell["speed_ratio"] == 1.0
    assert cell["time_change"] == "unchanged"
