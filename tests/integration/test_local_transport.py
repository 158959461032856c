"""LocalTransport: streaming, timeouts that kill the process group, cleanup."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from harness.errors import CommandFailed, TransportTimeout
from harness.plan.inventory import Host
from harness.transport.base import Transport
from harness.transport.factory import open_transport
from harness.transport.local import LocalTransport

PY = sys.executable


def _dead(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _dead(pid):
            return True
        time.sleep(0.05)
    return False


def test_factory_gives_local_transport_with_private_workdir() -> None:
    host = Host(name="localhost", address="localhost", connection="local")
    with open_transport(host) as t:
        assert isinstance(t, LocalTransport)
        assert isinstance(t, Transport)
        mode = stat.S_IMODE(os.stat(t.workdir).st_mode)
        assert mode == 0o700
        workdir = t.workdir
    assert not os.path.exists(workdir)


def test_put_and_run(tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text("import os, sys\nprint('hi', *sys.argv[1:])\nprint(os.getcwd())\n")
    with LocalTransport() as t:
        remote = t.put(script, "hello.py")
        assert remote == os.path.join(t.workdir, "hello.py")
        assert list(t.run([PY, remote, "a b", "$(x)"], timeout=30)) == [
            "hi a b $(x)",
            os.path.realpath(t.workdir),
        ]


def test_put_refuses_paths(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_text("x")
    with LocalTransport() as t, pytest.raises(ValueError):
        t.put(src, "../escape")


def test_lines_stream_as_they_arrive(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    code = (
        "import os, time, sys\n"
        "print('first', flush=True)\n"
        f"while not os.path.exists({str(flag)!r}): time.sleep(0.01)\n"
        "print('second', flush=True)\n"
    )
    with LocalTransport() as t:
        lines = t.run([PY, "-c", code], timeout=20)
        assert next(lines) == "first"  # arrives while the command still waits
        flag.touch()
        assert list(lines) == ["second"]


def test_env_is_passed() -> None:
    with LocalTransport() as t:
        out = list(
            t.run([PY, "-c", "import os; print(os.environ['HX'])"], timeout=10, env={"HX": "1 2"})
        )
    assert out == ["1 2"]


def test_nonzero_exit_raises_with_stderr_tail() -> None:
    code = (
        "import sys\nprint('out')\nsys.stderr.write('x' * 100000 + '\\nlast words\\n')\nsys.exit(3)"
    )
    with LocalTransport() as t:
        got = []
        with pytest.raises(CommandFailed) as err:
            for line in t.run([PY, "-c", code], timeout=20):
                got.append(line)
    assert got == ["out"]
    assert err.value.returncode == 3
    assert err.value.stderr_tail.endswith("last words\n")
    assert len(err.value.stderr_tail) <= 8192
    assert "last words" in str(err.value)


def test_timeout_kills_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    code = f"sleep 300 & echo $! > {pidfile}; echo started; wait"
    with LocalTransport() as t:
        start = time.monotonic()
        with pytest.raises(TransportTimeout, match="timed out"):
            for _ in t.run(["sh", "-c", code], timeout=1.5):
                pass
        assert time.monotonic() - start < 5
    assert _wait_dead(int(pidfile.read_text()))


def test_idle_timeout(tmp_path: Path) -> None:
    with LocalTransport() as t:
        lines = []
        with pytest.raises(TransportTimeout, match="idle"):
            for line in t.run(["sh", "-c", "echo a; sleep 60"], timeout=30, idle_timeout=0.5):
                lines.append(line)
    assert lines == ["a"]


def test_early_close_kills_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    code = f"echo $$ > {pidfile}; while true; do echo tick; sleep 0.05; done"
    with LocalTransport() as t:
        lines = t.run(["sh", "-c", code], timeout=30)
        assert next(lines) == "tick"
        lines.close()
    assert _wait_dead(int(pidfile.read_text()))


def test_missing_program_is_command_failed() -> None:
    with LocalTransport() as t, pytest.raises(CommandFailed) as err:
        list(t.run(["/nonexistent/python"], timeout=5))
    assert err.value.returncode == 127


def test_cleanup_after_failure() -> None:
    with pytest.raises(RuntimeError), LocalTransport() as t:
        workdir = t.workdir
        (Path(workdir) / "junk").write_text("x")
        raise RuntimeError("boom")
    assert not os.path.exists(workdir)


def test_harness_workdir_missing_is_created_and_removed(tmp_path: Path) -> None:
    wanted = tmp_path / "deep" / "work"
    host = Host(name="localhost", address="localhost", connection="local", workdir=str(wanted))
    with LocalTransport(host) as t:
        assert t.workdir == str(wanted)
        assert stat.S_IMODE(os.stat(wanted).st_mode) == 0o700
    assert not wanted.exists()


def test_harness_workdir_existing_is_kept(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    host = Host(name="localhost", address="localhost", connection="local", workdir=str(tmp_path))
    with LocalTransport(host) as t:
        assert Path(t.workdir).parent == tmp_path
        assert stat.S_IMODE(os.stat(t.workdir).st_mode) == 0o700
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert list(tmp_path.iterdir()) == [tmp_path / "keep.txt"]


@pytest.mark.slow
def test_ten_mib_stdout_and_stderr_without_deadlock() -> None:
    code = (
        "import sys\n"
        "line = 'y' * 1023 + '\\n'\n"
        "for i in range(10240):\n"
        "    sys.stdout.write(line)\n"
        "    sys.stderr.write(line)\n"
    )
    total = count = 0
    with LocalTransport() as t:
        for line in t.run([PY, "-c", code], timeout=60, idle_timeout=20):
            count += 1
            total += len(line) + 1
    assert count == 10240
    assert total == 10 * 1024 * 1024
