"""SSHTransport against the real loopback sshd fleet (tests/fleet)."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import CommandFailed, HostKeyError, TransportError, TransportTimeout
from harness.plan.inventory import Host, load_inventory
from harness.transport.base import Transport
from harness.transport.factory import open_transport
from harness.transport.ssh import SSHTransport

pytestmark = pytest.mark.fleet
PY = "/root/.pyenv/versions/3.11.7/bin/python3.11"


@pytest.fixture(scope="module")
def hosts(fleet: Any) -> dict[str, Host]:
    return {h.name: h for h in load_inventory(fleet.inventory)}


@pytest.fixture
def no_user_known_hosts(tmp_path: Path) -> Path:
    """A private stand-in for ~/.ssh/known_hosts, so tests never read or write the real one."""
    return tmp_path / "user_known_hosts"


def connect(host: Host, fleet: Any, user_known: Path, **kw: Any) -> SSHTransport:
    kw.setdefault("known_hosts", fleet.known_hosts)
    return SSHTransport(host, user_known_hosts=user_known, connect_timeout=10, **kw)


def _remote_dead(t: SSHTransport, pid: int) -> bool:
    code = (
        "import sys\n"
        "try:\n"
        f"    s = open('/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0]\n"
        "except OSError:\n"
        "    s = 'gone'\n"
        "print(s)"
    )
    (state,) = list(t.run([PY, "-c", code], timeout=10))
    return state in ("gone", "Z", "X")


def test_inventory_describes_the_fleet(fleet: Any, hosts: dict[str, Host]) -> None:
    assert set(hosts) == {h.name for h in fleet.hosts}
    for fh in fleet.hosts:
        h = hosts[fh.name]
        assert (h.address, h.port, h.user) == (fh.address, fh.port, "root")
        assert h.key_file == str(fleet.client_key)
        assert h.pythons[0] == PY


def test_connect_put_run(fleet: Any, hosts: dict[str, Host], tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text("import os, sys\nprint(sys.version_info[:2], len(os.sched_getaffinity(0)))\n")
    for name, host in hosts.items():
        with open_transport(host, known_hosts=fleet.known_hosts) as t:
            assert isinstance(t, SSHTransport)
            assert isinstance(t, Transport)
            remote = t.put(script, "probe.py")
            assert remote == f"{t.workdir}/probe.py"
            for python in host.pythons:
                (line,) = list(t.run([python, remote], timeout=30))
                usable = int(line.rsplit(" ", 1)[1])
                assert usable == (1 if name == "fleet1" else len(fleet.host(name).cpus.split("-")))


def test_unknown_host_key_is_refused(
    fleet: Any, hosts: dict[str, Host], tmp_path: Path, no_user_known_hosts: Path
) -> None:
    empty = tmp_path / "known_hosts"
    with pytest.raises(HostKeyError) as err:
        connect(hosts["fleet1"], fleet, no_user_known_hosts, known_hosts=empty)
    fh = fleet.host("fleet1")
    expected_fp = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", f"{fh.host_key}.pub"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    message = str(err.value)
    assert expected_fp in message
    assert "--accept-new-host-keys" in message
    assert "\n" not in message
    assert not err.value.retryable
    assert not empty.exists()  # nothing recorded


def test_unknown_host_key_accepted_with_flag(
    fleet: Any, hosts: dict[str, Host], tmp_path: Path, no_user_known_hosts: Path
) -> None:
    known = tmp_path / "known_hosts"
    with connect(
        hosts["fleet2"], fleet, no_user_known_hosts, known_hosts=known, accept_new_host_keys=True
    ) as t:
        assert list(t.run(["echo", "ok"], timeout=10)) == ["ok"]
    fh = fleet.host("fleet2")
    recorded = known.read_text().split()
    assert recorded[0] == f"[{fh.address}]:{fh.port}"
    assert recorded[2] == Path(f"{fh.host_key}.pub").read_text().split()[1]
    # Now known: a second connection needs no flag.
    with connect(hosts["fleet2"], fleet, no_user_known_hosts, known_hosts=known) as t:
        assert list(t.run(["true"], timeout=10)) == []


def test_changed_host_key_is_always_refused(
    fleet: Any, hosts: dict[str, Host], tmp_path: Path, no_user_known_hosts: Path
) -> None:
    # fleet1's address with fleet2's key: as if fleet1's key had changed.
    f1, f2 = fleet.host("fleet1"), fleet.host("fleet2")
    key_type, key = Path(f"{f2.host_key}.pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[{f1.address}]:{f1.port} {key_type} {key}\n")
    for accept in (False, True):
        with pytest.raises(HostKeyError, match="CHANGED") as err:
            connect(
                hosts["fleet1"],
                fleet,
                no_user_known_hosts,
                known_hosts=wrong,
                accept_new_host_keys=accept,
            )
        assert "SHA256:" in str(err.value)
    assert wrong.read_text().count("\n") == 1


def test_workdir_private_and_removed(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    host = hosts["fleet3"]
    with connect(host, fleet, no_user_known_hosts) as t:
        workdir = t.workdir
        assert workdir.startswith("/")
        assert list(t.run(["stat", "-c", "%a %U", workdir], timeout=10)) == ["700 root"]
        assert list(t.run(["pwd"], timeout=10)) == [workdir]
    with connect(host, fleet, no_user_known_hosts) as t2:
        assert workdir != t2.workdir
        out = list(t2.run([PY, "-c", f"import os; print(os.path.exists({workdir!r}))"], timeout=10))
        assert out == ["False"]


def test_harness_workdir_created_0700_and_removed(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    wanted = f"/tmp/harness-test-wd-{time.time_ns()}/with space/work"
    host = dataclasses.replace(hosts["fleet1"], workdir=wanted)
    with connect(host, fleet, no_user_known_hosts) as t:
        assert t.workdir == wanted
        assert list(t.run(["stat", "-c", "%a", wanted], timeout=10)) == ["700"]
    top = wanted.split("/with space")[0]
    with connect(hosts["fleet1"], fleet, no_user_known_hosts) as t:
        # the parents mkdir -p made for it are gone too; /tmp, which existed, stays
        code = f"import os; print(os.path.exists({wanted!r}), os.path.exists({top!r}))"
        out = list(t.run([PY, "-c", code], timeout=10))
        assert out == ["False False"]


def test_argv_is_passed_literally(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    weird = [
        "a b",
        "; touch PWNED1",
        "$(touch PWNED2)",
        "`touch PWNED3`",
        "'single' \"double\"",
        "line1\nline2",
        "| cat > PWNED4",
        "&& touch PWNED5 &",
        "$HOME ${PATH} * ?",
        "",
        "-n",
    ]
    with connect(hosts["fleet2"], fleet, no_user_known_hosts) as t:
        code = "import json, sys; print(json.dumps(sys.argv[1:]))"
        (line,) = list(t.run([PY, "-c", code, *weird], timeout=15))
        assert json.loads(line) == weird
        listing = list(t.run(["ls", "-A", t.workdir], timeout=10))
        assert not any(name.startswith("PWNED") for name in listing), listing
        home = list(t.run(["sh", "-c", "ls -A ~ /tmp | grep PWNED || true"], timeout=10))
        assert home == []


def test_env_is_passed(fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path) -> None:
    with connect(hosts["fleet1"], fleet, no_user_known_hosts) as t:
        code = "import os; print(os.environ['HX'])"
        assert list(t.run([PY, "-c", code], timeout=10, env={"HX": "$(id) x"})) == ["$(id) x"]
        with pytest.raises(ValueError):
            list(t.run(["true"], timeout=10, env={"BAD NAME": "1"}))


def test_nonzero_exit_is_command_failed(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    with connect(hosts["fleet1"], fleet, no_user_known_hosts) as t:
        got = []
        with pytest.raises(CommandFailed) as err:
            for line in t.run(["sh", "-c", "echo out; echo 'it broke' >&2; exit 7"], timeout=10):
                got.append(line)
        assert got == ["out"]
        assert err.value.returncode == 7
        assert "it broke" in err.value.stderr_tail
        assert "it broke" in str(err.value)
        # The connection is still usable afterwards.
        assert list(t.run(["echo", "still"], timeout=10)) == ["still"]


def test_timeout_kills_remote_process_tree(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    with connect(hosts["fleet2"], fleet, no_user_known_hosts) as t:
        code = "sleep 300 & echo $! > child.pid; echo $$ > parent.pid; echo started; wait"
        start = time.monotonic()
        got = []
        with pytest.raises(TransportTimeout):
            for line in t.run(["sh", "-c", code], timeout=2):
                got.append(line)
        assert got == ["started"]
        assert time.monotonic() - start < 8
        child = int(list(t.run(["cat", "child.pid"], timeout=10))[0])
        parent = int(list(t.run(["cat", "parent.pid"], timeout=10))[0])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (
            _remote_dead(t, child) and _remote_dead(t, parent)
        ):
            time.sleep(0.2)
        assert _remote_dead(t, child)
        assert _remote_dead(t, parent)


def test_idle_timeout(fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path) -> None:
    with connect(hosts["fleet3"], fleet, no_user_known_hosts) as t:
        with pytest.raises(TransportTimeout, match="idle"):
            list(t.run(["sh", "-c", "echo a; sleep 60"], timeout=30, idle_timeout=1))
        assert list(t.run(["echo", "b"], timeout=10)) == ["b"]


def test_lines_stream_as_they_arrive(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    with connect(hosts["fleet1"], fleet, no_user_known_hosts) as t:
        lines = t.run(
            ["sh", "-c", "echo first; while [ ! -e go ]; do sleep 0.05; done; echo second"],
            timeout=20,
        )
        assert next(lines) == "first"
        assert list(t.run(["touch", "go"], timeout=10)) == []
        assert list(lines) == ["second"]


def test_close_kills_what_still_runs(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    t = connect(hosts["fleet3"], fleet, no_user_known_hosts)
    lines = t.run(["sh", "-c", "echo $$; exec sleep 300"], timeout=60)
    pid = int(next(lines))
    t.close()
    t.close()  # idempotent
    with pytest.raises(TransportError):
        t.run(["true"], timeout=5)
    with connect(hosts["fleet3"], fleet, no_user_known_hosts) as t2:
        assert _remote_dead(t2, pid)


@pytest.mark.slow
def test_ten_mib_output_without_deadlock(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    code = (
        "import sys\n"
        "line = 'z' * 1023 + '\\n'\n"
        "for i in range(10240):\n"
        "    sys.stdout.write(line)\n"
        "    sys.stderr.write(line)\n"
    )
    with connect(hosts["fleet2"], fleet, no_user_known_hosts) as t:
        count = total = 0
        start = time.monotonic()
        for line in t.run([PY, "-c", code], timeout=120, idle_timeout=30):
            count += 1
            total += len(line) + 1
        elapsed = time.monotonic() - start
    assert (count, total) == (10240, 10 * 1024 * 1024)
    print(f"10 MiB stdout + 10 MiB stderr over ssh in {elapsed:.2f}s")


def test_concurrent_runs_on_one_connection(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    with connect(hosts["fleet2"], fleet, no_user_known_hosts) as t:
        results: dict[int, list[str]] = {}

        def work(i: int) -> None:
            results[i] = list(t.run(["sh", "-c", f"sleep 0.3; echo {i}"], timeout=20))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert results == {i: [str(i)] for i in range(4)}


def test_authentication_failure_is_clear(
    fleet: Any, hosts: dict[str, Host], tmp_path: Path, no_user_known_hosts: Path
) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
        check=True,
        capture_output=True,
    )
    host = dataclasses.replace(hosts["fleet1"], key_file=str(stranger))
    with pytest.raises(TransportError, match="authentication failed") as err:
        connect(host, fleet, no_user_known_hosts)
    assert not isinstance(err.value, HostKeyError)
    assert not err.value.retryable


def test_missing_key_file(fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path) -> None:
    host = dataclasses.replace(hosts["fleet1"], key_file="/nonexistent/key")
    with pytest.raises(TransportError, match="/nonexistent/key"):
        connect(host, fleet, no_user_known_hosts)


def test_connect_timeout_when_no_banner(no_user_known_hosts: Path, fleet: Any) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts TCP in the backlog, never speaks SSH
        port = listener.getsockname()[1]
        host = Host(name="mute", address="127.0.0.1", port=port, user="root")
        start = time.monotonic()
        with pytest.raises(TransportError) as err:
            SSHTransport(host, user_known_hosts=no_user_known_hosts, connect_timeout=1)
        assert time.monotonic() - start < 10
        assert err.value.retryable
        assert "mute" in str(err.value)


@pytest.mark.slow
def test_host_down_is_retryable_transport_error(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    fleet.stop("fleet3")
    try:
        with pytest.raises(TransportError) as err:
            connect(hosts["fleet3"], fleet, no_user_known_hosts)
        assert err.value.retryable
        assert not isinstance(err.value, HostKeyError)
        assert "fleet3" in str(err.value)
    finally:
        fleet.start("fleet3")
    with connect(hosts["fleet3"], fleet, no_user_known_hosts) as t:
        assert list(t.run(["echo", "back"], timeout=10)) == ["back"]


def test_ssh_config_and_proxyjump(fleet: Any, tmp_path: Path, no_user_known_hosts: Path) -> None:
    f1, f2 = fleet.host("fleet1"), fleet.host("fleet2")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host jumpbox\n  HostName {f1.address}\n  Port {f1.port}\n  User root\n"
        f"  IdentityFile {fleet.client_key}\n\n"
        f"Host target\n  HostName {f2.address}\n  Port {f2.port}\n  User root\n"
        f"  IdentityFile {fleet.client_key}\n  ProxyJump jumpbox\n"
    )
    host = Host(name="via-jump", address="target")  # everything else from the config
    with SSHTransport(
        host,
        known_hosts=fleet.known_hosts,
        user_known_hosts=no_user_known_hosts,
        ssh_config=config,
        connect_timeout=10,
    ) as t:
        assert t.endpoint == f"root@{f2.address}:{f2.port}"
        code = "import os; print(os.environ['SSH_CONNECTION'].split()[2])"
        assert list(t.run([PY, "-c", code], timeout=10)) == [f2.address]


def test_existing_harness_workdir_is_kept(
    fleet: Any, hosts: dict[str, Host], no_user_known_hosts: Path
) -> None:
    name = f"harness-test-home-{time.time_ns()}"
    host = dataclasses.replace(hosts["fleet2"], workdir=f"~/{name}")
    with connect(host, fleet, no_user_known_hosts) as t:
        home = list(t.run(["sh", "-c", 'echo "$HOME"'], timeout=10))[0]
        assert t.workdir == f"{home}/{name}"  # missing: created 0700, removed afterwards
        list(t.run(["touch", "mine.txt"], timeout=10))
    base = f"/tmp/{name}"
    with connect(hosts["fleet2"], fleet, no_user_known_hosts) as t:
        list(t.run(["sh", "-c", f"mkdir {base} && echo keep > {base}/keep.txt"], timeout=10))
        gone = list(t.run(["sh", "-c", f"test -e {home}/{name} || echo gone"], timeout=10))
        assert gone == ["gone"]
    with connect(
        dataclasses.replace(hosts["fleet2"], workdir=base), fleet, no_user_known_hosts
    ) as t:
        assert t.workdir.startswith(f"{base}/harness.")
        assert list(t.run(["stat", "-c", "%a", t.workdir], timeout=10)) == ["700"]
    with connect(hosts["fleet2"], fleet, no_user_known_hosts) as t:
        assert list(t.run(["ls", "-A", base], timeout=10)) == ["keep.txt"]
        list(t.run(["rm", "-rf", "--", base], timeout=10))
