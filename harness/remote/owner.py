"""Who drives the agents: this controller (host name, pid, boot id), and the
``host_lock`` an agent gets with its plan (see harness.agent.turn).

The agent holds the host lock for the whole of its run under a key made of the sweep id
and :attr:`Controller.label`: the agents of one controller's sweep share a host (two
inventory names of one machine with ``--parallel-same-machine``), every other sweep
waits at most ``wait_s`` (``harness sweep --host-wait``) and is then told the host is
busy. The owner marker the agent writes into its working directory names this
controller, so the next sweep reaching the host can tell whether it is dead.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError, OptionError

HOST_WAIT_DEFAULT_S = 300.0
# Seconds after which a working directory whose agent is dead and whose controller runs
# on another machine counts as abandoned (its marker untouched that long).
WORKDIR_STALE_ENV = "HARNESS_WORKDIR_STALE_S"
WORKDIR_STALE_DEFAULT_S = 900.0


class HostBusy(HarnessError):
    """Another sweep held the host for longer than ``--host-wait``: the host's
    environments are recorded as failed (``--resume`` measures them later)."""

    exit_code = 1


def busy_reason(msg: dict[str, Any]) -> str:
    """``busy: sweep S from controller C since T`` from an agent's busy line."""
    return f"busy: {holder_text(msg)}"


def holder_text(msg: dict[str, Any]) -> str:
    return (f"sweep {msg.get('sweep')} from controller {msg.get('controller')} "
            f"since {msg.get('since')}")


def boot_id() -> str:
    """This machine's boot id ('' where /proc has none)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Controller:
    """One running controller process."""

    host: str
    pid: int
    boot_id: str

    @property
    def label(self) -> str:
        """How a waiting sweep names this one: ``host pid N``."""
        return f"{self.host} pid {self.pid}"


def this_controller() -> Controller:
    return Controller(socket.gethostname(), os.getpid(), boot_id())


def positive_env(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable ``name``, else
    ``default``; OptionError for a value that is not one."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:
        raise OptionError(f"{name}={text!r} is not a positive number of seconds",
                          hint=f"unset it (default {default:g}) or give e.g. {default:g}")
    return value


def check_host_wait(seconds: float) -> float:
    if not 0 <= seconds <= 86400:
        raise OptionError(f"--host-wait {seconds:g} is out of range",
                          hint="give 0 (do not wait) to 86400 seconds")
    return float(seconds)


def host_lock_spec(sweep_id: str, wait_s: float,
                   controller: Controller | None = None) -> dict[str, Any]:
    """The ``host_lock`` of an agent's plan (or ``noise`` argument)."""
    me = controller or this_controller()
    return {
        "sweep": sweep_id,
        "controller": me.label,
        "wait_s": float(wait_s),
        "stale_s": positive_env(WORKDIR_STALE_ENV, WORKDIR_STALE_DEFAULT_S),
        "owner": {"controller_host": me.host, "controller_boot_id": me.boot_id,
                  "controller_pid": me.pid},
    }
