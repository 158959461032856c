"""Agent entry point: ``python agent.pyz probe``, ``python agent.pyz run PLAN.json|-`` or
``python agent.pyz noise SECONDS [HOST_LOCK_JSON]``.

``probe`` sends hello, env, eof. ``run PLAN.json`` sends hello, env, then the cells'
lines and eof. ``run -`` sends hello and env first and only then reads the plan from
stdin: the controller plans the cells from that fingerprint, so one agent start both
probes and runs (an empty plan, ``"cells": []``, ends it with eof); ``run +SECONDS``
likewise, but a line on stdin names the plan's file (at most SECONDS later). ``noise SECONDS``
times the speed probe for SECONDS and sends hello, keepalives, env (the fingerprint
with the probe series under ``noise``, see harness.agent.speed) and eof; with
HOST_LOCK_JSON it holds the host lock while it probes (harness.agent.turn).

stdout carries only protocol lines: at start the real stdout is moved to a
private descriptor and descriptor 1 is pointed at stderr, so nothing a worker,
a server or a library prints can corrupt the protocol.
"""

import contextlib
import os
import signal
import sys

USAGE = ("usage: agent.pyz probe | agent.pyz run PLAN.json|-|+SECONDS | "
         "agent.pyz noise SECONDS [HOST_LOCK_JSON]\n")
# Each command and the numbers of arguments it takes.
COMMANDS = {"probe": (0,), "run": (1,), "noise": (1, 2)}


def _protocol_stream():
    fd = os.dup(1)  # not inheritable: exec'd children never see it
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", encoding="utf-8", newline="\n")


def _stop_children_on_sigterm(kill_own_children):
    """When the controller gives up (SIGTERM), take our own pools and server down too."""

    def handler(signum, frame):
        kill_own_children()
        os._exit(128 + signum)

    with contextlib.suppress(ValueError, OSError):  # not in the main thread
        signal.signal(signal.SIGTERM, handler)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or len(argv) - 1 not in COMMANDS.get(argv[0], ()):
        sys.stderr.write(USAGE)
        sys.exit(2)
    from harness.agent import runner  # noqa: PLC0415
    from harness.agent.children import kill_own_children  # noqa: PLC0415
    from harness.agent.output import LineWriter, hello  # noqa: PLC0415

    out = LineWriter(_protocol_stream())
    _stop_children_on_sigterm(kill_own_children)
    if argv[0] == "probe":
        code = runner.probe_main(out)
    elif argv[0] == "noise":
        from harness.agent import speed  # noqa: PLC0415

        code = speed.noise_main(out, argv[1], hello, *argv[2:])
    else:
        code = runner.run_main(out, argv[1])
    sys.exit(code)


if __name__ == "__main__":
    main()
