"""A loopback fleet of real sshd hosts for harness's integration tests.

    python tests/fleet/fleet.py up --hosts 3 --dir .fleet
    python tests/fleet/fleet.py status --dir .fleet
    python tests/fleet/fleet.py stop-host fleet2 --dir .fleet     # fault tests
    python tests/fleet/fleet.py start-host fleet2 --dir .fleet
    python tests/fleet/fleet.py down --dir .fleet

Host i (1-based) is ``fleet<i>``: its own ``/usr/sbin/sshd -D -f <own config>``
listening on 127.0.0.<10+i> at a free port (hosts past the 244th go on at 127.0.1.1,
127.0.2.1, ...: ``address_for``), with its own ed25519 host key and pid file,
accepting only the fleet's client key (``PermitRootLogin prohibit-password``). Its
CPU affinity is set with ``taskset``: fleet1 is pinned to CPU 0 (its sessions see
one usable CPU), the others get every CPU.

``up`` writes into the directory: ``inventory.ini`` (an Ansible inventory of
the fleet), ``known_hosts`` (the fleet's host keys), ``client_key`` (+ .pub),
``fleet.json`` (the state ``down`` and the test fixture read), ``home/`` (the
login home, below) and per host ``<name>/sshd_config``, ``ssh_host_ed25519_key``,
``sshd.pid``, ``sshd.log``.

The login home. Every ``ssh host command`` runs the user's shell, and bash reads
``~/.bashrc`` for commands sshd starts. The fleet logs in as root, and this
machine's root ``~/.bashrc`` runs ``pyenv init -`` and ``pyenv virtualenv-init
-`` on every command (~180 ms, ~150 ms of CPU each): a property of this
development box's account, not of a typical remote host, whose Debian default
``~/.bashrc`` returns at once for non-interactive shells. So by default
(``--login-home fleet``) each sshd gives its sessions the fleet's own home,
``<dir>/home`` with copies of ``/etc/skel``'s dotfiles: ``SetEnv HOME=<dir>/home``
(bash reads ``$HOME/.bashrc``) and ``internal-sftp -d <dir>/home`` (SFTP starts
there too, so ``~`` means the same directory to both). The user is still root,
with root's uid and rights; only ``$HOME`` differs (a command's shell still
starts in ``/root``, the passwd entry's directory; harness ``cd``s to its
working directory first anyway). ``--login-home root`` keeps
root's own home and its start-up files (``benchmarks/fanout.py`` measures both).

Interpreters (``harness_pythons``): every host gets CPython 3.11; fleet2 also
gets the free-threaded 3.13t when it has been built; fleet3 also gets 3.12.

A host can be started without an SFTP subsystem (``up --no-sftp fleet2``, or
``up(..., no_sftp=("fleet2",))``): its sshd_config has no ``Subsystem sftp`` line,
as on hardened hosts, so only commands reach it. The other hosts are unchanged.

Many hosts (``up --hosts 64``, up to MAX_HOSTS): ``up`` starts every sshd first and
then waits for them all (64 hosts in about 2 s here); ``down`` signals every host
first and then waits for all of them together, at most STOP_TIMEOUT in all (then
SIGKILL). A listener that has exited but not been reaped counts as stopped: the
sshd of a fleet whose ``up`` process has exited belongs to PID 1, which may reap it
late, and a zombie holds no port and no memory. One listener costs about 9 MiB of
RSS, but most of that is shared libraries (libcrypto, libc) counted again in every
process; its own share (PSS) is about 1.5 MiB: ``status`` prints both, summed
(``footprint``). Each connection forks and re-executes a session sshd of its own
while it lasts.

Nothing is installed here (``apt-get install openssh-server`` is the CI's job)
and nothing but loopback is used. ``down`` stops only the daemons this script
started, by the pids in their pid files, after checking each is that sshd (and,
before a SIGKILL, that the pid still names the same process: its start time).
The module needs only the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
PRIVSEP_DIR = Path("/run/sshd")
PY311 = "/root/.pyenv/versions/3.11.7/bin/python3.11"
PY312 = "/root/.pyenv/versions/3.12.1/bin/python3.12"
PY313T = "/var/cache/harness/cpython-3.13t/bin/python3.13t"
SKEL = Path("/etc/skel")
LOGIN_HOMES = ("fleet", "root")
# Debian's /etc/skel/.bashrc starts so; written when the machine has no /etc/skel.
DEFAULT_BASHRC = """# ~/.bashrc of the harness test fleet's login home
# If not running interactively, don't do anything
case $- in
    *i*) ;;
      *) return;;
esac
"""
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
MAX_HOSTS = 1000
FIRST_HOST_OFFSET = 10  # fleet1 is 127.0.0.11


class FleetError(RuntimeError):
    """The fleet could not be started or stopped."""


@dataclass(frozen=True)
class FleetHost:
    name: str
    address: str
    port: int
    cpus: str
    pythons: tuple[str, ...]
    config: str
    pid_file: str
    log_file: str
    host_key: str
    sftp: bool = True  # False: no ``Subsystem sftp`` line in its sshd_config

    @property
    def known_hosts_name(self) -> str:
        return f"[{self.address}]:{self.port}" if self.port != 22 else self.address

    def pid(self) -> int | None:
        """The pid of this host's running sshd, or None (checked against /proc).

        A zombie (exited, not yet reaped) has an empty command line: None.
        """
        try:
            pid = int(Path(self.pid_file).read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        # sshd rewrites its title ("sshd: /usr/sbin/sshd -D -f CONFIG ... [listener]").
        if b"sshd" in cmdline.split(b" ")[0] + cmdline.split(b"\0")[0] and (
            self.config.encode() in cmdline
        ):
            return pid
        return None

    def is_up(self) -> bool:
        return self.pid() is not None


@dataclass(frozen=True)
class Fleet:
    dir: Path
    hosts: tuple[FleetHost, ...]
    inventory: Path
    known_hosts: Path
    client_key: Path

    def host(self, name: str) -> FleetHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def stop(self, name: str) -> None:
        """Stop one host's sshd (for fault tests)."""
        stop_host(self, name)

    def crash(self, name: str) -> None:
        """Kill one host as if it died: its sshd and every session under it, at once."""
        crash_host(self, name)

    def start(self, name: str) -> int:
        """Start one host's sshd again; return its pid."""
        return start_host(self, name)

    def as_json(self) -> dict[str, object]:
        return {
            "dir": str(self.dir),
            "inventory": str(self.inventory),
            "known_hosts": str(self.known_hosts),
            "client_key": str(self.client_key),
            "hosts": [asdict(h) for h in self.hosts],
        }


def sshd_available() -> str | None:
    """None when a fleet can run here, else the reason it cannot."""
    if not SSHD.exists():
        return f"{SSHD} is absent (apt-get install openssh-server)"
    if subprocess.run(["which", SSH_KEYGEN], capture_output=True).returncode != 0:
        return "ssh-keygen is absent (apt-get install openssh-client)"
    if os.geteuid() != 0:
        return "the fleet logs in as root and needs to run as root"
    return None


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path, comment: str) -> None:
    if path.exists():
        return
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )


def _pythons_for(index: int) -> tuple[str, ...]:
    pythons = [PY311]
    if index == 2 and Path(PY313T).exists():
        pythons.append(PY313T)
    if index == 3:
        pythons.append(PY312)
    return tuple(pythons)


def _make_home(home: Path) -> None:
    """The fleet's login home: /etc/skel's dotfiles (a fresh account's), 0700."""
    home.mkdir(mode=0o700, exist_ok=True)
    os.chmod(home, 0o700)
    for name in (".bashrc", ".profile"):
        target = home / name
        if target.exists():
            continue
        source = SKEL / name
        if source.is_file():
            target.write_bytes(source.read_bytes())
        elif name == ".bashrc":
            target.write_text(DEFAULT_BASHRC)


def _sshd_config(host: FleetHost, authorized_keys: Path, home: Path | None) -> str:
    if home is None:  # root's own home and start-up files
        session = ["Subsystem sftp internal-sftp"]
    else:
        session = [f"SetEnv HOME={home}", f"Subsystem sftp internal-sftp -d {home}"]
    if not host.sftp:  # a hardened host: commands only
        session = [line for line in session if not line.startswith("Subsystem sftp")]
    return "\n".join(
        [
            f"# sshd for harness test host {host.name}; written by tests/fleet/fleet.py",
            f"ListenAddress {host.address}:{host.port}",
            f"HostKey {host.host_key}",
            f"PidFile {host.pid_file}",
            f"AuthorizedKeysFile {authorized_keys}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "MaxStartups 64:30:128",
            "MaxSessions 64",
            "ClientAliveInterval 30",
            *session,
            "LogLevel VERBOSE",
            "",
        ]
    )


def _wait_listening(host: FleetHost, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.address, host.port), timeout=1) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    log = Path(host.log_file)
    tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
    raise FleetError(f"{host.name}: sshd did not start listening on {host.port}: {tail}")


def _check_configs(hosts: list[FleetHost]) -> None:
    """``sshd -t`` on each host's config, all at once; FleetError names the first bad one."""
    checks = [
        (host, subprocess.Popen([str(SSHD), "-t", "-f", host.config], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for host in hosts
    ]
    failed = None
    for host, check in checks:
        try:
            _, err = check.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            check.kill()
            _, err = check.communicate()
        if check.returncode != 0 and failed is None:
            failed = f"{host.name}: sshd -t rejected the config: {err.strip()}"
    if failed:
        raise FleetError(failed)


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """In the sshd's process before it execs (the flag survives exec): processes that a
    session leaves running when it ends (the ansible engine's agents waiting for their
    plans) become the listener's children instead of PID 1's, so it reaps them and
    their CPU time counts in its own (fanout.py's remote CPU)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _launch(host: FleetHost) -> subprocess.Popen[bytes]:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(host.pid_file)
    return subprocess.Popen(
        ["taskset", "-c", host.cpus, str(SSHD), "-D", "-f", host.config, "-E", host.log_file],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_become_subreaper,  # noqa: PLW1509 (fleet.py starts hosts from one thread)
    )


def _await_started(host: FleetHost, proc: subprocess.Popen[bytes], deadline: float) -> int:
    """Wait until ``host``'s sshd listens and has written its pid file; its pid."""
    _wait_listening(host, deadline)
    while host.pid() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = host.pid()
    if pid is None:
        proc.kill()
        raise FleetError(f"{host.name}: sshd started but wrote no pid file")
    return pid


def start_hosts(fleet: Fleet, names: list[str]) -> dict[str, int]:
    """Start the named hosts' sshd (those not running), all at once; their pids."""
    hosts = [fleet.host(name) for name in names]
    pids = {h.name: pid for h in hosts if (pid := h.pid()) is not None}
    todo = [h for h in hosts if h.name not in pids]
    if not todo:
        return pids
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    _check_configs(todo)
    started = [(host, _launch(host)) for host in todo]
    deadline = time.monotonic() + START_TIMEOUT
    for host, proc in started:
        pids[host.name] = _await_started(host, proc, deadline)
    return pids


def start_host(fleet: Fleet, name: str) -> int:
    """Start one host's sshd (no-op if it runs); return its pid."""
    return start_hosts(fleet, [name])[name]


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return stat.rsplit(")", 1)[1].split()


def _start_ticks(pid: int) -> str | None:
    fields = _proc_stat(pid)
    return fields[19] if fields else None  # field 22, starttime


def _stopped(pid: int, start: str | None) -> bool:
    """Gone, a zombie (exited, not reaped yet), or the pid is another process now."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaps it when this process started it
    fields = _proc_stat(pid)
    return fields is None or fields[0] in ("Z", "X") or fields[19] != start


def stop_hosts(fleet: Fleet, names: list[str]) -> None:
    """Stop the named hosts' sshd listeners by the pids in their pid files: SIGTERM to
    every one first, then one wait for all of them (at most STOP_TIMEOUT), SIGKILL to
    any still running that is still the same process.

    Sessions already open go on (sshd forks one per connection); ``crash_host``
    kills those too, for a host that dies.
    """
    hosts = [fleet.host(name) for name in names]
    pending: list[tuple[int, str | None]] = []
    for host in hosts:
        pid = host.pid()  # checked to be this host's sshd
        if pid is None:
            continue
        start = _start_ticks(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        pending.append((pid, start))
    deadline = time.monotonic() + STOP_TIMEOUT
    while pending and time.monotonic() < deadline:
        pending = [(pid, start) for pid, start in pending if not _stopped(pid, start)]
        if pending:
            time.sleep(0.05)
    for pid, start in pending:
        if not _stopped(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for host in hosts:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(host.pid_file)


def stop_host(fleet: Fleet, name: str) -> None:
    """Stop one host's sshd listener (see ``stop_hosts``)."""
    stop_hosts(fleet, [name])


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc (children before grandchildren)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def crash_host(fleet: Fleet, name: str) -> None:
    """SIGKILL one host's sshd and all its descendants (sessions, agents, workers)."""
    host = fleet.host(name)
    pid = host.pid()
    if pid is None:
        return
    for victim in [pid, *_descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(host.pid_file)


def address_for(index: int) -> str:
    """Host ``index``'s (1-based) loopback address: 127.0.0.11 for the first, on to
    127.0.0.254 for the 244th, then 127.0.1.1 .. 127.0.1.254, 127.0.2.1, ... (no .0
    or .255 last byte; every 127/8 address is the loopback interface's on Linux)."""
    if index < 1:
        raise ValueError(index)
    position = FIRST_HOST_OFFSET - 1 + index  # 0-based over the usable .1-.254 bytes
    third, last = divmod(position, 254)
    if third > 255:
        raise ValueError(index)
    return f"127.0.{third}.{last + 1}"


def _cpus_for(index: int) -> str:
    ncpu = os.cpu_count() or 1
    return "0" if index == 1 else f"0-{ncpu - 1}"


def up(directory: Path, hosts: int = 3, login_home: str = "fleet",
       no_sftp: tuple[str, ...] = ()) -> Fleet:
    """Start ``hosts`` sshd daemons and write the inventory; return the fleet.

    ``login_home``: ``fleet`` (sessions get ``<directory>/home``) or ``root`` (root's
    own home); see the module docstring. ``no_sftp``: the names of hosts started
    without an SFTP subsystem.
    """
    reason = sshd_available()
    if reason:
        raise FleetError(reason)
    if not 1 <= hosts <= MAX_HOSTS:
        raise FleetError(f"--hosts must be between 1 and {MAX_HOSTS}")
    if login_home not in LOGIN_HOMES:
        raise FleetError(f"--login-home must be one of {', '.join(LOGIN_HOMES)}")
    unknown = sorted(set(no_sftp) - {f"fleet{i}" for i in range(1, hosts + 1)})
    if unknown:
        raise FleetError(f"--no-sftp {unknown[0]}: no such host (fleet1..fleet{hosts})")
    directory = directory.resolve()
    if (directory / "fleet.json").exists():
        down(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    client_key = directory / "client_key"
    _keygen(client_key, "harness-fleet-client")
    authorized = directory / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    os.chmod(authorized, 0o600)
    home: Path | None = None
    if login_home == "fleet":
        home = directory / "home"
        if any(c.isspace() or c in "\"'#" for c in str(home)):
            raise FleetError(f"{home}: a login home path cannot hold spaces or quotes "
                             "(sshd_config); use --login-home root or another --dir")
        _make_home(home)

    members: list[FleetHost] = []
    for index in range(1, hosts + 1):
        name = f"fleet{index}"
        hdir = directory / name
        hdir.mkdir(exist_ok=True)
        address = address_for(index)
        host = FleetHost(
            name=name,
            address=address,
            port=_free_port(address),
            cpus=_cpus_for(index),
            pythons=_pythons_for(index),
            config=str(hdir / "sshd_config"),
            pid_file=str(hdir / "sshd.pid"),
            log_file=str(hdir / "sshd.log"),
            host_key=str(hdir / "ssh_host_ed25519_key"),
            sftp=name not in no_sftp,
        )
        _keygen(Path(host.host_key), f"harness-fleet-{name}")
        Path(host.config).write_text(_sshd_config(host, authorized, home))
        members.append(host)

    fleet = Fleet(
        dir=directory,
        hosts=tuple(members),
        inventory=directory / "inventory.ini",
        known_hosts=directory / "known_hosts",
        client_key=client_key,
    )
    _write_state(fleet)
    try:
        start_hosts(fleet, [host.name for host in members])
    except BaseException:
        down(directory)
        raise
    return fleet


def _write_state(fleet: Fleet) -> None:
    lines = [
        "# The loopback sshd test fleet; written by tests/fleet/fleet.py",
        "[fleet]",
    ]
    for host in fleet.hosts:
        lines.append(
            f"{host.name} ansible_host={host.address} ansible_port={host.port} "
            f'harness_pythons="{" ".join(host.pythons)}" harness_cpus={host.cpus}'
        )
    lines += [
        "",
        "[fleet:vars]",
        "ansible_user=root",
        "ansible_connection=ssh",
        f"ansible_ssh_private_key_file={fleet.client_key}",
        # For Ansible itself (the ansible engine): trust only the fleet's keys.
        f"ansible_ssh_common_args='-o UserKnownHostsFile={fleet.known_hosts} "
        "-o StrictHostKeyChecking=yes'",
        "",
    ]
    fleet.inventory.write_text("\n".join(lines))
    known = []
    for host in fleet.hosts:
        key_type, key_b64 = Path(f"{host.host_key}.pub").read_text().split()[:2]
        known.append(f"{host.known_hosts_name} {key_type} {key_b64}\n")
    fleet.known_hosts.write_text("".join(known))
    (fleet.dir / "fleet.json").write_text(json.dumps(fleet.as_json(), indent=2) + "\n")


def one_python_inventory(fleet: Fleet, path: Path) -> Path:
    """The fleet's inventory with one interpreter (the first, 3.11) per host, written
    to ``path``: N hosts are N environments (hosts 2 and 3 carry extra ones)."""
    text = fleet.inventory.read_text()
    path.write_text(re.sub(r'harness_pythons="([^" ]+)[^"]*"', r'harness_pythons="\1"', text))
    return path


def load(directory: Path) -> Fleet:
    """The fleet described by ``directory/fleet.json``."""
    directory = directory.resolve()
    try:
        data = json.loads((directory / "fleet.json").read_text())
    except (OSError, ValueError) as exc:
        raise FleetError(f"{directory}: no fleet here ({exc})") from exc
    hosts = tuple(FleetHost(**{**h, "pythons": tuple(h["pythons"])}) for h in data["hosts"])
    return Fleet(
        dir=directory,
        hosts=hosts,
        inventory=Path(data["inventory"]),
        known_hosts=Path(data["known_hosts"]),
        client_key=Path(data["client_key"]),
    )


def down(directory: Path) -> None:
    """Stop every daemon of the fleet in ``directory`` (only those, by pid file)."""
    try:
        fleet = load(directory)
    except FleetError:
        return
    stop_hosts(fleet, [host.name for host in fleet.hosts])


def status(directory: Path) -> list[tuple[str, str, int, int | None]]:
    fleet = load(directory)
    return [(h.name, h.address, h.port, h.pid()) for h in fleet.hosts]


def footprint(fleet: Fleet) -> tuple[int, int, int]:
    """(listeners running, their summed RSS, their summed PSS) in bytes, from
    /proc/<pid>/smaps_rollup. RSS counts the shared libraries again in each process;
    PSS divides each shared page among the processes that map it."""
    running = rss = pss = 0
    for host in fleet.hosts:
        pid = host.pid()
        if pid is None:
            continue
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        running += 1
        for line in rollup.splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                kib = int(rest.split()[0]) * 1024
                rss, pss = (rss + kib, pss) if key == "Rss" else (rss, pss + kib)
    return running, rss, pss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="loopback sshd fleet for harness tests")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the fleet and write inventory.ini + known_hosts")
    p_up.add_argument("--hosts", type=int, default=3)
    p_up.add_argument("--dir", type=Path, default=Path(".fleet"))
    p_up.add_argument("--login-home", choices=LOGIN_HOMES, default="fleet",
                      help="fleet: a home of the fleet's own with /etc/skel's dotfiles "
                           "(default); root: root's home and its start-up files")
    p_up.add_argument("--no-sftp", action="append", default=[], metavar="HOST",
                      help="start HOST without an SFTP subsystem (repeatable)")
    p_down = sub.add_parser("down", help="stop the fleet's daemons")
    p_down.add_argument("--dir", type=Path, default=Path(".fleet"))
    p_status = sub.add_parser("status", help="show each host and its sshd pid")
    p_status.add_argument("--dir", type=Path, default=Path(".fleet"))
    for name in ("stop-host", "start-host"):
        p = sub.add_parser(name, help=f"{name.split('-')[0]} one host's sshd")
        p.add_argument("host")
        p.add_argument("--dir", type=Path, default=Path(".fleet"))
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            fleet = up(args.dir, args.hosts, args.login_home, tuple(args.no_sftp))
            for h in fleet.hosts:
                print(f"{h.name} {h.address}:{h.port} cpus={h.cpus} pid={h.pid()}"
                      f"{'' if h.sftp else ' no-sftp'}")
            print(f"inventory: {fleet.inventory}")
            print(f"known_hosts: {fleet.known_hosts}")
        elif args.command == "down":
            down(args.dir)
        elif args.command == "status":
            for name, address, port, pid in status(args.dir):
                print(f"{name} {address}:{port} {'pid=' + str(pid) if pid else 'down'}")
            running, rss, pss = footprint(load(args.dir))
            print(f"{running} sshd listeners: RSS {rss / 2**20:.1f} MiB, "
                  f"PSS {pss / 2**20:.1f} MiB (shared libraries counted once)")
        elif args.command == "stop-host":
            stop_host(load(args.dir), args.host)
        elif args.command == "start-host":
            print(start_host(load(args.dir), args.host))
    except (FleetError, KeyError) as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
