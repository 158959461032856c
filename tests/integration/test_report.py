"""harness report on a small synthetic warehouse: HTML and Markdown contents, no external
reference, optional views drawn only when they have rows, and (slow) the HTML opened in
headless Chromium through the DevTools protocol: no network request, every plot rendered,
no horizontal page overflow at 400 px, screenshots at 400 and 1400 px."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.report.write import write_report
from harness.warehouse import Warehouse
from harness.warehouse import views as warehouse_module

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# (workload, params) and per model (workers, speedup) for a 2-CPU standard build
PLAN: dict[str, dict[str, tuple[int, float]]] = {
    "cpu_bound": {"sequential": (1, 1.0), "threads": (2, 0.98), "processes": (2, 1.9),
                  "mp_pool": (2, 1.85), "asyncio": (2, 0.97)},
    "net_low_latency": {"sequential": (1, 1.0), "threads": (16, 6.0), "processes": (2, 1.6),
                        "mp_pool": (2, 1.55), "asyncio": (32, 13.0)},
    "net_high_latency": {"sequential": (1, 1.0), "threads": (16, 12.5), "processes": (2, 1.9),
                         "mp_pool": (2, 1.9), "asyncio": (16, 15.0)},
    "disk_io": {"sequential": (1, 1.0), "threads": (4, 1.7), "processes": (2, 0.8),
                "mp_pool": (2, 0.7), "asyncio_to_thread": (4, 1.4)},
}
SEQ_S = {"cpu_bound": 0.16, "net_low_latency": 0.2, "net_high_latency": 0.83, "disk_io": 0.02}


def _env(env_id: str, host: str, python: str, profile: str, cpus: int, ft: bool,
         version: str) -> dict[str, Any]:
    return {"host": host, "python": python, "env_id": env_id, "profile_id": profile,
            "hostname": host, "os": "Linux", "arch": "x86_64", "cpu_model": "Test EPYC",
            "logical_cpus": 2, "physical_cores": 2, "usable_cpus": cpus, "numa_nodes": 1,
            "mem_total_bytes": 8 * 2**30, "python_version": version,
            "implementation": "CPython", "free_threaded": ft, "gil_enabled": not ft,
            "status": "ok"}


def _fill(w: Warehouse, sweep: str, e: dict[str, Any], rng: random.Random,
          factor: dict[str, float]) -> None:
    w.add_environment(sweep, e)
    for workload, models in PLAN.items():
        for model, (workers, speedup) in models.items():
            s = speedup * factor.get(f"{workload}/{model}", factor.get(model, 1.0))
            base = {"cell_key": f"{workload}-{model}-{workers}", "workload": workload,
                    "params": {"tasks": 8}, "model": model, "workers": workers,
                    "headline": True}
            rows = [{**base, "repeat": i, "warmup": False, "ok": True, "status": "ok",
                     "wall_s": SEQ_S[workload] / s * rng.uniform(0.97, 1.03),
                     "cpu_user_s": 0.1, "cpu_sys_s": 0.01, "peak_rss_bytes": 30_000_000}
                    for i in range(7)]
            w.add_cell(sweep, e["env_id"], f"{workload}-{model}", rows)
        na = {"cell_key": f"{workload}-interpreters", "workload": workload, "params": {},
              "model": "interpreters", "workers": 2, "headline": True, "repeat": 0,
              "warmup": False, "ok": False, "status": "not_applicable",
              "error": f"InterpreterPoolExecutor needs Python 3.14+ (this is "
                       f"{e['python_version']})"}
        w.add_cell(sweep, e["env_id"], f"{workload}-interpreters", [na])


def build_warehouse(root: Path) -> Warehouse:
    """Two sweeps: a 2-CPU host with a standard and a free-threaded build, a 1-CPU host,
    an unreachable host and a failed cell."""
    rng = random.Random(5)
    w = Warehouse(root)
    w.begin_sweep("lab-1", started_at=T0, harness_version="0.1.0", inventory="lab.ini",
                  profile="quick", plan={})
    _fill(w, "lab-1", _env("e2", "big", "/usr/bin/python3.13", "p2cpu", 2, False, "3.13.1"),
          rng, {})
    _fill(w, "lab-1", _env("e2t", "big", "/opt/py/bin/python3.13t", "p2cpu-ft", 2, True,
                           "3.13.1"), rng, {"cpu_bound/threads": 1.9, "cpu_bound/asyncio": 0.9})
    _fill(w, "lab-1", _env("e1", "small", "/usr/bin/python3.13", "p1cpu", 1, False, "3.13.1"),
          rng, {"processes": 0.5, "mp_pool": 0.5, "cpu_bound/threads": 1.0})
    w.add_environment("lab-1", {"host": "gone", "python": "python3", "status": "failed",
                                "error": "ssh: connect to 127.0.0.99 port 22: refused"})
    w.add_cell("lab-1", "e1", "cpu_bound-crash", [{
        "cell_key": "cpu_bound-crash", "workload": "cpu_bound", "params": {"n": 3},
        "model": "processes", "workers": 8, "headline": False, "repeat": 0,
        "warmup": False, "ok": False, "status": "failed", "error": "BrokenProcessPool"}])
    w.set_sweep_status("lab-1", "failed", finished_at=T0 + timedelta(seconds=95))
    w.begin_sweep("local-1", started_at=T0 + timedelta(hours=1), harness_version="0.1.0",
                  inventory="local.ini", profile="quick", plan={})
    _fill(w, "local-1", _env("l2", "localhost", "python3", "p2cpu", 2, False, "3.13.1"),
          rng, {})
    w.set_sweep_status("local-1", "complete", finished_at=T0 + timedelta(hours=1, seconds=20))
    return w


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return build_warehouse(tmp_path_factory.mktemp("wh") / "results")


@pytest.fixture(scope="module")
def html_report(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert write_report(warehouse, out) == [out]
    return out


EXTERNAL = re.compile(r"""(?:\b(?:src|href|xlink:href|action|poster|srcset)\s*=\s*["']?\s*"""
                      r"""(?!#|data:)[a-z][a-z0-9+.-]*:|url\(\s*["']?\s*(?!#|data:)"""
                      r"""[a-z][a-z0-9+.-]*:|@import)""", re.I)


def external_references(text: str) -> list[str]:
    """Attributes and CSS that would make a browser fetch something (href="#x" is not)."""
    found = [m.group(0) for m in EXTERNAL.finditer(text)]
    found += re.findall(r"<(?:script|link|iframe|object|embed|img)\b[^>]*>", text, re.I)
    return found


def test_html_report_content(html_report: Path) -> None:
    text = html_report.read_text()
    assert external_references(text) == []
    assert "<script" not in text.lower()
    # default selection: the latest sweep of each inventory, so both sweeps
    assert "lab-1" in text and "local-1" in text
    # fleet, sweeps, failures with their reasons
    assert "free-threaded" in text and "Test EPYC" in text
    assert "ssh: connect to 127.0.0.99 port 22: refused" in text
    assert "BrokenProcessPool" in text and "InterpreterPoolExecutor needs Python 3.14+" in text
    # matrix with heat colours beside the guide's table
    assert re.search(r'class="[^"]*\bheat\b[^"]*" style="background:#', text)
    assert "7-8x" in text and "15-50x" in text
    assert "1.0x-2.0x (via to_thread)" in text
    # plots: one speedup plot per profile (4 sections) and the builds plot
    figures = re.findall(r'<figure id="fig-([^"]+)"', text)
    assert sorted(figures) == ["builds0", "speedup0", "speedup1", "speedup2", "speedup3"]
    assert text.count("<svg") == 5
    # claims with verdicts, computed per profile: 7-8x is out of reach of 2 CPUs
    assert "needs &gt;= 7 usable CPUs (this profile has 2)" in text
    for verdict in ("v-confirmed", "v-refuted", "v-not-testable-here", "v-not-measurable"):
        assert verdict in text
    # the optional views are not defined here: said so, nothing drawn for them
    assert text.count("Not measured in these sweeps (view <code>") == 5
    # decision guide
    assert "any of" in text or "significant lead" in text


def test_markdown_report(warehouse: Warehouse, tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    written = write_report(warehouse, out, ["lab-1"])
    svgs = sorted(p.name for p in written[1:])
    assert written[0] == out and svgs == ["builds0.svg", "speedup0.svg", "speedup1.svg",
                                          "speedup2.svg"]
    text = out.read_text()
    assert "| workload | sequential | threads |" in text
    assert "![" in text and "(report_files/speedup0.svg)" in text
    assert "local-1" not in text
    for p in written[1:]:
        svg = p.read_text()
        assert svg.startswith("<?xml") and "<svg" in svg and external_references(svg) == []


def test_optional_view_is_drawn_when_it_has_rows(warehouse: Warehouse, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "zz_scaling.sql"
    extra.write_text("CREATE OR REPLACE VIEW scaling AS SELECT sweep_id, profile_id, workload,"
                     " model, workers, speedup FROM profile_matrix WHERE speedup IS NOT NULL;")
    real = warehouse_module.analysis_files
    monkeypatch.setattr(warehouse_module, "analysis_files", lambda: [*real(), extra])
    out = tmp_path / "r.html"
    write_report(warehouse, out, ["lab-1"])
    text = out.read_text()
    assert re.search(r'<figure id="fig-scaling\d+"', text)
    assert "(view <code>scaling</code>" not in text
    # analysis/dimensions.sql defines the dimension views; this warehouse has no rows for them
    assert "(view <code>crossover_points</code> has no rows for them)" in text
    # thresholds read the real scaling view; with it replaced they say why they are missing
    assert "Could not be computed: SQL error" in text


def test_bad_out_suffix_and_unknown_sweep_exit_2(warehouse: Warehouse, tmp_path: Path) -> None:
    for args in (["--out", str(tmp_path / "r.pdf")],
                 ["--out", str(tmp_path / "r.html"), "--sweep", "nope"]):
        p = subprocess.run([sys.executable, "-m", "harness", "report", "--results",
                            str(warehouse.root), *args], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 2 and p.stderr.startswith("harness: error: "), p.stderr
        assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.pdf").exists()


# ----------------------------------------------------------------------------- Chromium


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (stdlib).

    Chromium reads commands on its fd 3 and writes answers and events on fd 4, each a
    JSON message ended by a NUL byte.
    """

    def __init__(self, chromium: str, profile_dir: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: put the pipe ends on fds 3 and 4
            import fcntl

            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--disable-extensions",
             "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile_dir}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, close_fds=False)  # fds 3 and 4 made by wire() are inherited
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def open_tab(self) -> str:
        """A new blank tab, attached: the session id its commands go to."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        return str(self.send("Target.attachToTarget",
                             {"targetId": target, "flatten": True})["sessionId"])

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing anyway
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)

    def _read(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed the pipe")
                self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 30) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            e = self._read(deadline)
            if e.get("method") == method:
                return e
            self.events.append(e)


def _evaluate(cdp: DevTools, session: str, expression: str) -> Any:
    r = cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                 session)
    return r["result"].get("value")


FIGURES_JS = """[...document.querySelectorAll('figure[data-figure]')].map(f => {
  const s = f.querySelector('svg'); const r = s ? s.getBoundingClientRect() : {width: 0, height: 0};
  return {key: f.dataset.figure, width: r.width, height: r.height,
          shapes: s ? s.querySelectorAll('path, text, use, line, rect').length : 0};
})"""


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (.ci/run installs it: "
                                             "apt-get install -y chromium)")
def test_html_report_in_chromium(html_report: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    url = html_report.resolve().as_uri()
    shots: dict[int, Path] = {}
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cdp = DevTools(CHROMIUM, Path(profile))
        try:
            session = cdp.open_tab()
            for domain in ("Network", "Page", "Runtime"):
                cdp.send(f"{domain}.enable", {}, session)
            cdp.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
                     session)
            cdp.send("Page.navigate", {"url": url}, session)
            cdp.wait_event("Page.loadEventFired", timeout=60)
            for width in (1400, 400):
                cdp.send("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": 1000, "deviceScaleFactor": 1,
                          "mobile": width < 600}, session)
                time.sleep(0.3)
                figures = _evaluate(cdp, session, FIGURES_JS)
                assert len(figures) == 5
                for f in figures:  # every plot rendered, with content, at this width
                    assert f["width"] > 100 and f["height"] > 50 and f["shapes"] > 20, f
                    assert f["width"] <= width
                overflow = _evaluate(cdp, session, "document.documentElement.scrollWidth")
                assert overflow <= width, f"page scrolls sideways at {width}px: {overflow}"
                height = _evaluate(cdp, session, "document.documentElement.scrollHeight")
                shot = cdp.send("Page.captureScreenshot",
                                {"format": "png", "captureBeyondViewport": True,
                                 "clip": {"x": 0, "y": 0, "width": width,
                                          "height": min(height, 16000), "scale": 1}},
                                session, timeout=60)
                shots[width] = tmp_path / f"report-{width}.png"
                shots[width].write_bytes(base64.b64decode(shot["data"]))
            # no request but the file itself: every Network event the page caused
            requests = [e["params"]["request"]["url"] for e in cdp.events
                        if e.get("method") == "Network.requestWillBeSent"]
            failed = [e for e in cdp.events if e.get("method") == "Network.loadingFailed"]
        finally:
            cdp.close()
    assert requests == [url], requests
    assert failed == []
    for width, path in shots.items():
        assert path.stat().st_size > 10_000
        name = "wide" if width > 600 else "narrow"
        shutil.copyfile(path, Path(tempfile.gettempdir()) / f"report-{name}.png")


def test_docs_views_examples_run(warehouse: Warehouse, tmp_path: Path) -> None:
    """Every SQL example of docs/views.md runs over the views and answers rows. The
    examples over the raw Parquet files (``read_parquet('results/...``, to run from the
    project root) run with ``results/`` pointed at a copy of the test warehouse, to which
    a group of cells timed in interleaved blocks is added (the synthetic sweeps have no
    blocks; the module's warehouse stays as it is for the other tests)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "views.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text[text.index("## Example queries"):], re.S)
    raw = [sql for sql in blocks if "read_parquet('results/" in sql]
    assert len(blocks) - len(raw) >= 8 and raw
    con = warehouse.connect()
    try:
        for sql in blocks:
            if sql not in raw:
                assert len(con.execute(sql).fetchall()) > 0, sql
    finally:
        con.close()

    root = tmp_path / "results"
    shutil.copytree(warehouse.root, root, ignore=shutil.ignore_patterns(".*", "*.duckdb"))
    copy = Warehouse(root)
    for pos, (model, workers, speedup) in enumerate((("sequential", 1, 1.0),
                                                     ("threads", 2, 1.9))):
        base = {"cell_key": f"blocked-{model}", "workload": "cpu_bound",
                "params": {"tasks": 8}, "model": model, "workers": workers,
                "headline": False, "block_group": "blocked", "ok": True, "status": "ok"}
        rows = [{**base, "repeat": 0, "warmup": True, "wall_s": 0.2, "probe_s": 0.001}]
        rows += [{**base, "repeat": b, "warmup": False, "block": b, "block_pos": (b + pos) % 2,
                  "wall_s": 0.16 / speedup * (1 + 0.01 * b), "probe_s": 0.001}
                 for b in range(6)]
        assert copy.add_cell("local-1", "l2", f"blocked-{model}", rows)
    import duckdb  # the user's DuckDB shell: no harness views

    plain = duckdb.connect()
    try:
        for sql in raw:
            sql = sql.replace("read_parquet('results/", f"read_parquet('{root.as_posix()}/")
            assert len(plain.execute(sql).fetchall()) > 0, sql
    finally:
        plain.close()


def test_shared_views_kept_once_give_the_same_rows(warehouse: Warehouse) -> None:
    """The report computes cells, block ratios and matrices once (temporary tables of the
    same names); every view over them answers as before."""
    from harness.report.sql import SHARED_VIEWS, keep_shared_views, relation_exists

    def answers(keep: bool) -> dict[str, list[str]]:
        con = warehouse.connect()
        try:
            if keep:
                keep_shared_views(con)
            names = [*SHARED_VIEWS, "claims", "decisions", "thresholds", "scaling"]
            out = {}
            for name in names:
                if relation_exists(con, name):
                    frame = con.execute(f"SELECT * FROM {name}").fetchdf()
                    out[name] = sorted(repr(r) for r in frame.astype(str).to_numpy().tolist())
            (temp,) = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary"
                                  ).fetchone() or (0,)
            out["_temporary_tables"] = [str(temp > 0)]
            return out
        finally:
            con.close()

    plain, kept = answers(False), answers(True)
    assert plain.pop("_temporary_tables") == ["False"] and kept.pop("_temporary_tables") == ["True"]
    assert plain.keys() == kept.keys() and {"matrix", "claims", "decisions"} <= plain.keys()
    assert all(plain[name] for name in ("cells", "matrix", "claims"))
    for name in plain:
        assert plain[name] == kept[name], name
