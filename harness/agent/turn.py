"""An agent's turn on its host: the owner marker, the host lock, removing dead sweeps'
working directories (stdlib only, Python 3.9+).

A measuring agent (``run`` with a plan carrying ``host_lock``, ``noise`` with one)
calls :meth:`Turn.begin` before it measures and :meth:`Turn.end` when it is done:

1. it writes its owner marker (harness.agent.workdirs) and touches it while it runs;
2. it takes the host lock (harness.agent.hostlock), sending a ``waiting`` line (the
   holder) about every ``keepalive_s`` while another sweep holds it, and gives up
   after ``wait_s`` with a ``busy`` line (then measures nothing);
3. holding the host, it removes the ``harness.*`` directories whose owner is dead and
   says so in a ``note`` line.

``host_lock`` (see harness.agent.plan.parse_host_lock): ``sweep``, ``controller``,
``wait_s``, optional ``owner`` (controller_host, controller_boot_id,
controller_pid), ``stale_s``, ``heartbeat_s`` and ``keep_s`` (see harness.agent.hostlock).
"""

import os
import time

from harness.agent import workdirs
from harness.agent.hostlock import KEEP_S, HostLock

HEARTBEAT_S = 30.0


class Turn:
    """One agent's hold on its host for the length of its run."""

    def __init__(self, out, spec, keepalive_s=5.0):
        self.out = out
        self.spec = spec
        self.keepalive_s = keepalive_s
        self.workdir = workdirs.agent_workdir()
        self.lock = HostLock(spec["sweep"], spec["controller"],
                             keep_s=spec.get("keep_s", KEEP_S))
        self._heartbeat = None

    def begin(self):
        """Take the host; False (after a ``busy`` line) when another sweep kept it."""
        spec = self.spec
        if workdirs.write_marker(self.workdir, dict(spec.get("owner") or {},
                                                    sweep=spec["sweep"])):
            self._heartbeat = workdirs.MarkerHeartbeat(
                self.workdir, spec.get("heartbeat_s") or HEARTBEAT_S).start()
        last = [None]

        def on_wait(holder):
            now = time.monotonic()
            if last[0] is None or now - last[0] >= self.keepalive_s:
                last[0] = now
                self.out.send("waiting", **_holder_fields(holder))

        started = time.monotonic()
        holder = self.lock.acquire(spec["wait_s"], on_wait)
        if holder is not None:
            self.out.send("busy", waited_s=round(time.monotonic() - started, 3),
                          **_holder_fields(holder))
            return False
        removed = workdirs.remove_dead_workdirs(
            os.path.dirname(self.workdir), self.workdir,
            spec.get("stale_s") or workdirs.DEFAULT_STALE_S)
        if removed:
            self.out.send("note", message="removed %d working %s of dead sweeps: %s" % (
                len(removed), "directory" if len(removed) == 1 else "directories",
                ", ".join(removed)))
        return True

    def end(self):
        self.lock.release()
        if self._heartbeat is not None:
            self._heartbeat.stop()


def _holder_fields(holder):
    return {"sweep": str(holder.get("sweep") or "?"),
            "controller": str(holder.get("controller") or "?"),
            "since": str(holder.get("since") or "?")}
