"""The host-wide lock: one sweep measures a machine at a time (stdlib only, Python 3.9+).

An agent that measures (``run`` with a plan that carries ``host_lock``, ``noise``)
holds the lock for its whole run. The lock lives in the machine's temp dir, so two
inventory names for one machine share it:

    /tmp/harness-host.lock          the gate: flock'ed LOCK_EX only for a moment, to
                                    look at and change the two files below
    /tmp/harness-host.json          the holder: sweep id, controller, agent pid, boot
                                    id, since (written atomically, under the gate)
    /tmp/harness-host.<key>.lock    the holder's own lock, flock'ed LOCK_SH by each of
                                    its agents for as long as it runs

When a holder's last agent ends, the holder record says so (``released``) and keeps
the host for ``keep_s`` more seconds (KEEP_S): the holder's next agent (the next
interpreter, the next run) follows without another sweep slipping in between. ``key``
is a hash of the sweep id and the controller (its host name and pid), so the
agents of one controller's sweep share the host (``--parallel-same-machine`` runs two
inventory names of one machine at once, and must not wait for itself), while another
sweep, or the same sweep resumed by another controller, waits. A holder is alive while
any process holds its own lock: flock locks die with their process, so the lock of a
killed agent (SIGKILL, OOM, a reboot) is taken over without any clean-up. Nobody holds
the gate while waiting.
"""

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import sys
import time

GATE_NAME = "harness-host.lock"
HOLDER_NAME = "harness-host.json"
POLL_S = 1.0
# After a holder's last agent ends, the host stays its own this long: a sweep starts
# one agent per interpreter and run, and another sweep waiting must not slip in between
# (it would measure while the first one's next agent waits, and might make it give up).
KEEP_S = 10.0


def lock_dir():
    """The machine's temp dir (not TMPDIR: the controller points that at the agent's
    private working directory)."""
    if os.path.isdir("/tmp"):
        return "/tmp"
    return os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def describe(holder):
    """``sweep S from controller C since T`` for a holder record."""
    return "sweep %s from controller %s since %s" % (
        holder.get("sweep") or "?", holder.get("controller") or "?", holder.get("since") or "?")


def _reserved(holder):
    """Whether a holder whose agents all ended keeps the host a moment longer."""
    released, keep_s = holder.get("released"), holder.get("keep_s")
    if not isinstance(released, (int, float)) or not isinstance(keep_s, (int, float)):
        return False
    if holder.get("boot_id") != boot_id():
        return False
    return 0 <= time.time() - released < keep_s


def _open(path, create=True):
    """A descriptor to flock: read-write when we may, read-only (flock works on it) for
    another user's file; None when it does not exist and ``create`` is false."""
    for flags in (os.O_RDWR, os.O_RDONLY):
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            break
        except PermissionError:
            continue
    if not create:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileExistsError:  # created meanwhile (protected_regular): open it as it is
        return os.open(path, os.O_RDONLY)
    return fd


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path, data, mode=0o666):
    """Write ``data`` whole or not at all (a temp file renamed over ``path``, created with
    ``mode`` under the umask); False when we may not (another user's file, no space)."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        unlink_quietly(tmp)
        return False
    return True


def pid_alive(pid):
    """Whether a process ``pid`` runs on this machine (someone else's counts)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def unlink_quietly(path):
    with contextlib.suppress(OSError):
        os.unlink(path)


class HostLock:
    """The lock of one holder (a sweep id and its controller) on this machine."""

    def __init__(self, sweep, controller, directory=None, keep_s=KEEP_S):
        self.sweep = str(sweep)
        self.controller = str(controller)
        self.keep_s = float(keep_s)
        self.dir = directory or lock_dir()
        text = "%s\n%s" % (self.sweep, self.controller)
        self.key = hashlib.sha1(text.encode()).hexdigest()[:16]
        self.gate_path = os.path.join(self.dir, GATE_NAME)
        self.holder_path = os.path.join(self.dir, HOLDER_NAME)
        self._fd = None

    def _own_path(self, key):
        return os.path.join(self.dir, "harness-host.%s.lock" % key)

    @property
    def held(self):
        return self._fd is not None

    def acquire(self, wait_s, on_wait=None, poll_s=POLL_S, clock=time.monotonic,
                sleep=time.sleep):
        """Take the lock, waiting at most ``wait_s`` seconds for another holder.

        Returns None once held, else the holder record (a dict) that kept it. While
        waiting, ``on_wait(holder)`` is called after each look (about every ``poll_s``).
        """
        deadline = clock() + max(0.0, float(wait_s))
        for _ in range(int(max(0.0, float(wait_s)) / max(poll_s, 0.01)) + 2):
            holder = self._try()
            if holder is None:
                return None
            left = deadline - clock()
            if left <= 0:
                return holder
            if on_wait is not None:
                on_wait(holder)
            sleep(min(poll_s, left))
        return self._try()

    def _held_by(self, key):
        """Whether any process holds ``key``'s own lock (call under the gate)."""
        fd = _open(self._own_path(key), create=False)
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True
            raise
        finally:
            os.close(fd)  # also drops the LOCK_EX just taken
        return False

    def _try(self):
        """One look under the gate: None when we now hold the lock, else the holder."""
        gate = _open(self.gate_path)
        try:
            fcntl.flock(gate, fcntl.LOCK_EX)
            holder = _read_json(self.holder_path)
            other = holder.get("key") if holder else None
            if other and other != self.key:
                if self._held_by(other) or _reserved(holder):
                    return holder
                unlink_quietly(self._own_path(other))  # a dead holder's: taken over
                holder = None
            fd = _open(self._own_path(self.key))
            # Never blocks: LOCK_EX on it is only tried under the gate, non-blocking.
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._fd = fd
            if holder is None or holder.get("key") != self.key or holder.get("released"):
                since = (holder or {}).get("since") if holder and holder.get("key") == self.key \
                    else None
                write_json(self.holder_path, {
                    "key": self.key, "sweep": self.sweep, "controller": self.controller,
                    "pid": os.getpid(), "boot_id": boot_id(), "keep_s": self.keep_s,
                    "released": None,
                    "since": since or datetime.datetime.now(datetime.timezone.utc).strftime(
                        "%Y-%m-%d %H:%M:%S UTC")})
            return None
        finally:
            os.close(gate)

    def release(self):
        """Let go; the last agent of the holder removes its files."""
        if self._fd is None:
            return
        gate = _open(self.gate_path)
        try:
            fcntl.flock(gate, fcntl.LOCK_EX)
            os.close(self._fd)
            self._fd = None
            if not self._held_by(self.key):
                unlink_quietly(self._own_path(self.key))
                holder = _read_json(self.holder_path)
                if holder and holder.get("key") == self.key:
                    if self.keep_s > 0:  # kept for the holder's next agent a moment
                        holder["released"] = time.time()
                        write_json(self.holder_path, holder)
                    else:
                        unlink_quietly(self.holder_path)
        finally:
            os.close(gate)
