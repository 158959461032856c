"""The one error family of harness, caught once in the CLI.

    HarnessError                  every error a user can act on (exit 2 unless said)
    ├── BadInput                  the user's input is wrong; nothing was written (exit 2)
    │   ├── InventoryError        an inventory Ansible rejects, no matching hosts
    │   ├── WorkloadError         a workload definition file is invalid
    │   ├── OptionError           an option value is invalid
    │   └── WarehouseInputError   results dir unusable, unknown sweep id, newer schema
    ├── TransportError            reaching a host failed (retryable, recorded per host)
    │   ├── HostKeyError          unknown or changed host key (never retried)
    │   └── TransportTimeout      a connect or command timeout
    ├── ProtocolError             an agent line that is not valid protocol
    ├── CommandFailed             the agent exited non-zero (recorded, not retried)
    ├── DiskFull                  a write under results/ hit ENOSPC/EDQUOT (exit 1)
    └── Interrupted               the user stopped a sweep (SIGINT/SIGTERM; exit 130)

Each error carries a one-line message and an optional hint; ``str(err)`` is the message.

    WarehouseWarning              a damaged file a reader left out (the CLI prints one
                                  ``harness: warning:`` line per file)
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error harness reports to a user."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class BadInput(HarnessError):
    """The user's input is wrong; nothing was written."""


class InventoryError(BadInput):
    """An inventory that Ansible rejects, or that selects no host."""


class WorkloadError(BadInput):
    """A workload definition that is missing fields, mistyped or absurd."""


class OptionError(BadInput):
    """A command-line option with an invalid value."""


class WarehouseInputError(BadInput):
    """A results directory that cannot be used, or a sweep id that does not exist."""


class TransportError(HarnessError):
    """A host could not be reached or a command on it could not be run."""

    exit_code = 1
    retryable = True


class HostKeyError(TransportError):
    """A host key that is unknown or changed; never retried."""

    retryable = False


class TransportTimeout(TransportError):
    """A connect or command timeout."""


class ProtocolError(HarnessError):
    """A line from an agent that does not follow the protocol."""

    exit_code = 1


class CommandFailed(HarnessError):
    """A command on a host (the agent) exited non-zero; not a transport fault."""

    exit_code = 1

    def __init__(self, message: str, returncode: int, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class DiskFull(HarnessError):
    """A file could not be written: its file system is full (ENOSPC) or the user's quota
    is spent (EDQUOT). Nothing half-written is left (see :mod:`harness.files`); a sweep
    stops and ``--resume`` runs the rest once space is freed."""

    exit_code = 1

    def __init__(self, message: str, path: str, needed: int | None = None,
                 free: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.path = path
        self.needed = needed
        self.free = free


class WarehouseWarning(UserWarning):
    """A warehouse file a reader could not use (truncated, foreign, unreadable) and left
    out; ``harness check --repair`` moves it to ROOT/quarantine/."""


class Interrupted(HarnessError):
    """The user stopped a sweep; what finished is stored and ``--resume`` runs the rest."""

    exit_code = 130
