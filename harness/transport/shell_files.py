"""The SSH transport's working directory and file copies over the command channel,
for hosts whose sshd offers no SFTP subsystem (hardened hosts often drop the
``Subsystem sftp`` line).

This is what Ansible's ``ssh_transfer_method = smart`` ends with when sftp and scp
fail: a file is piped through a command's standard input (``cat > file``), and the
directory is made and removed by shell commands. The guarantees are the SFTP way's
(:mod:`harness.transport.sftp`):

- a fresh directory is made as ``mktemp -d`` makes one: a random name, ``mkdir``
  (which fails on any existing name, so nothing planted there is used), mode 0700,
  under ``umask 077``; a missing ``harness_workdir`` is made 0700 with its missing
  parents, and the topmost directory made is returned so closing removes it all;
- a file is written under ``umask 077``, then made 0600 (0700 when executable), and
  its size on the host is checked against the local one (SFTP's ``confirm``);
- every path reaches the shell only as a positional argument of ``sh -c SCRIPT``,
  each quoted with :func:`shlex.quote`: an inventory value is never shell code.

Each function takes ``exec_`` -- ``exec_(command, stdin_bytes) -> (status, stdout,
stderr)`` -- the transport's way of running one small command.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Callable
from pathlib import Path
from secrets import token_hex

from harness.errors import TransportError
from harness.formatting import one_line

__all__ = ["Exec", "sh_command", "shell_make_workdir", "shell_put", "transfer_note"]

# Runs one command, feeding it ``stdin`` (None: empty); returns (status, stdout, stderr).
Exec = Callable[[str, "bytes | None"], "tuple[int, bytes, bytes]"]

# Random names tried for a fresh directory (as sftp_mkdtemp tries 20).
_NAMES = 20

# $1: "fresh" (make harness.<name> inside $2) or "want" (make $2, fresh inside it if it
# exists); $2: the directory, relative to $HOME unless absolute; then candidate names.
# Prints the directory and the topmost directory made, each ended by a NUL byte.
_MKDIR = """umask 077
mode=$1 target=$2
shift 2
case $target in /*) ;; *) target=${HOME:?HOME is not set}/$target ;; esac
if [ "$mode" = fresh ] || [ -e "$target" ]; then
  path=
  for name in "$@"; do
    if why=$(mkdir -m 700 -- "$target/harness.$name" 2>&1); then
      path=$target/harness.$name
      break
    fi
    [ -e "$target/harness.$name" ] || { echo "$why" >&2; exit 1; }
  done
  [ -n "$path" ] || { echo "cannot find a free directory name in $target" >&2; exit 1; }
  top=$path
else
  top=$target
  parent=$(dirname -- "$target")
  while [ "$parent" != / ] && [ -n "$parent" ] && [ ! -e "$parent" ]; do
    top=$parent
    parent=$(dirname -- "$parent")
  done
  mkdir -p -- "$(dirname -- "$target")" && mkdir -m 700 -- "$target" || exit 1
  path=$target
fi
if ! chmod 700 -- "$path" || ! path=$(cd -P -- "$path" && pwd -P) ||
   ! top=$(cd -P -- "$top" && pwd -P); then
  rm -rf -- "$top"  # made here, so not left behind
  exit 1
fi
printf '%s\\000%s\\000' "$path" "$top"
"""

# $1: the file to write from stdin; $2: its mode. Prints its size in bytes.
_PUT = """umask 077
cat > "$1" && chmod "$2" -- "$1" && wc -c < "$1"
"""


def sh_command(script: str, *args: str) -> str:
    """``sh -c SCRIPT harness ARGS...``, every word quoted: what the login shell runs."""
    return " ".join(["sh", "-c", shlex.quote(script), "harness",
                     *(shlex.quote(a) for a in args)])


def _reason(err: bytes, status: int) -> str:
    return one_line(err.decode(errors="replace"), pick="last") or f"exit status {status}"


def shell_make_workdir(exec_: Exec, label: str, wanted: str | None) -> tuple[str, str]:
    """Create the private working directory with one shell command; return it and the
    topmost directory made, as :func:`harness.transport.sftp.make_workdir` does.

    ``wanted`` (the inventory's ``harness_workdir``): None makes ``/tmp/harness.*``; a
    missing one is created 0700 with its missing parents; an existing one is the user's,
    so a fresh ``harness.*`` directory is made inside it. A relative one (or ``~/...``)
    is taken from ``$HOME``."""
    if wanted is None:
        mode, target = "fresh", "/tmp"
    else:
        if wanted == "~" or wanted.startswith("~/"):
            wanted = wanted[2:] or "."
        mode, target = "want", posixpath.normpath(wanted)
    names = [token_hex(6) for _ in range(_NAMES)]
    status, out, err = exec_(sh_command(_MKDIR, mode, target, *names), None)
    parts = out.split(b"\0")
    if status != 0 or len(parts) != 3 or not parts[0] or not parts[1]:
        raise TransportError(
            f"{label}: cannot create a working directory: {_reason(err, status)}")
    return os.fsdecode(parts[0]), os.fsdecode(parts[1])


def shell_put(exec_: Exec, label: str, local: Path, remote: str) -> None:
    """Write ``local`` to ``remote`` through ``cat``'s standard input, mode 0600 (0700
    when ``local`` is executable); check the size written."""
    try:
        data = Path(local).read_bytes()
        mode = "700" if os.stat(local).st_mode & 0o100 else "600"
    except FileNotFoundError as exc:
        raise TransportError(f"{label}: no local file {local}") from exc
    except OSError as exc:
        raise TransportError(f"{label}: cannot read {local}: {exc.strerror or exc}") from exc
    status, out, err = exec_(sh_command(_PUT, remote, mode), data)
    if status != 0:
        raise TransportError(
            f"{label}: cannot copy {local} to {remote}: {_reason(err, status)}")
    try:
        written = int(out.decode(errors="replace").strip())
    except ValueError:
        written = -1
    if written != len(data):
        raise TransportError(f"{label}: copying {local} to {remote} wrote {written} bytes "
                             f"of {len(data)}")


def transfer_note(host: str, reason: str = "") -> str:
    """The line that says, once per host, that files go over the command channel."""
    why = f" ({reason})" if reason else ""
    return (f"{host}: the host refuses SFTP{why}: the agent and its working directory go "
            "over the command channel")
