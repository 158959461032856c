"""Owner markers on the agents' working directories, and removing the dead ones
(stdlib only, Python 3.9+).

The controller makes a private ``harness.*`` directory on each host and removes it
when it closes the connection; a controller that dies (SIGKILL, OOM, power) leaves it.
So an agent that measures writes ``.harness-owner.json`` in its directory: the sweep,
the controller (host name, boot id, pid), its own pid and boot id, and touches it while
it runs. The next agent that holds the host lock removes the sibling ``harness.*``
directories whose owner is dead, and only those:

* a directory without a marker, not a directory, a symlink, or not owned by this user
  (directory and marker) is never touched;
* an owner is alive when its agent runs (pid alive on this boot), or when its
  controller runs on this machine (same boot id) and its pid is alive, or -- for a
  controller elsewhere, whose pid cannot be checked -- when the marker was touched
  less than ``stale_s`` ago; markers of one controller's sweep live or die together
  (its idle directories wait while another of its agents runs);
* after a reboot (a boot id other than the marker's) nothing of it runs.
"""

import json
import os
import shutil
import stat
import sys
import threading
import time

from harness.agent.hostlock import boot_id, pid_alive, write_json

MARKER = ".harness-owner.json"
PREFIX = "harness."
DEFAULT_STALE_S = 900.0


def agent_workdir():
    """The directory the agent was started from (where the controller put it)."""
    return os.path.dirname(os.path.abspath(sys.argv[0] if sys.argv and sys.argv[0] else "."))


def write_marker(workdir, owner):
    """Write this agent's marker into ``workdir`` (whole or not at all); False on failure."""
    data = {
        "sweep": str(owner.get("sweep") or ""),
        "controller_host": str(owner.get("controller_host") or ""),
        "controller_boot_id": str(owner.get("controller_boot_id") or ""),
        "controller_pid": owner.get("controller_pid"),
        "agent_pid": os.getpid(),
        "agent_boot_id": boot_id(),
        "uid": os.getuid(),
        "written": time.time(),
    }
    return write_json(os.path.join(workdir, MARKER), data, mode=0o600)


class MarkerHeartbeat:
    """Touches the marker every ``interval_s`` while the agent runs (a daemon thread)."""

    def __init__(self, workdir, interval_s):
        self.path = os.path.join(workdir, MARKER)
        self.interval_s = max(0.05, float(interval_s))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="marker-heartbeat",
                                        daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _beat(self):
        while not self._stop.wait(self.interval_s):
            try:
                os.utime(self.path)
            except OSError:
                return

    def stop(self):
        self._stop.set()


def _read_marker(directory, uid):
    """The marker of ``directory`` when it is a regular file of ``uid``: (data, mtime)."""
    path = os.path.join(directory, MARKER)
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != uid:
            return None
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return (data, st.st_mtime) if isinstance(data, dict) else None


def _alive(data, mtime, boot, now, stale_s):
    """Whether the owner of one marker may still be running (see the module docstring)."""
    if data.get("agent_boot_id") != boot:
        return False  # written before this boot: nothing of it runs
    if pid_alive(data.get("agent_pid")):
        return True
    if data.get("controller_boot_id") == boot:  # the controller runs on this machine
        return pid_alive(data.get("controller_pid"))
    return now - mtime < stale_s


def _owner_key(data):
    return (data.get("sweep"), data.get("controller_host"), data.get("controller_boot_id"),
            data.get("controller_pid"))


def dead_workdirs(parent, keep, stale_s=DEFAULT_STALE_S, now=None):
    """The ``harness.*`` directories in ``parent`` (``keep`` aside) whose owner is dead."""
    uid = os.getuid()
    boot = boot_id()
    now = time.time() if now is None else now
    keep = os.path.realpath(keep) if keep else None
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return []
    found = []
    for name in names[:10000]:
        if not name.startswith(PREFIX):
            continue
        path = os.path.join(parent, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            continue
        if keep and os.path.realpath(path) == keep:
            continue
        marker = _read_marker(path, uid)
        if marker is not None:
            found.append((path, marker[0], marker[1]))
    alive = {_owner_key(data) for _, data, mtime in found
             if _alive(data, mtime, boot, now, stale_s)}
    return [path for path, data, _ in found if _owner_key(data) not in alive]


def remove_dead_workdirs(parent, keep, stale_s=DEFAULT_STALE_S):
    """Remove the dead owners' directories in ``parent``; the paths removed."""
    removed = []
    for path in dead_workdirs(parent, keep, stale_s):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            removed.append(path)
    return removed
