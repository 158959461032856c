"""The SSH transport's working directory, made and removed over SFTP.

SFTP runs no shell command: on hosts whose login shell does costly start-up work for
every command (``~/.bashrc`` is read for each ``ssh host cmd``), connecting costs one
SFTP session instead of a shell. A fresh directory is made as ``mktemp -d`` makes one:
a random name, created with ``mkdir`` (which fails on any existing name, so nothing
planted there is used), mode 0700.
"""

from __future__ import annotations

import posixpath
import stat
from secrets import token_hex

import paramiko

from harness.errors import TransportError, TransportTimeout

__all__ = ["make_workdir", "sftp_exists", "sftp_makedirs", "sftp_mkdtemp", "sftp_rmtree"]

# A working directory with more entries than this is removed with one ``rm -rf``.
SFTP_RMTREE_MAX = 200


def make_workdir(sftp: paramiko.SFTPClient, label: str, wanted: str | None) -> tuple[str, str]:
    """Create the private working directory; return it and the topmost directory made
    (parents of a missing ``harness_workdir`` too), which closing removes.

    ``wanted`` (the inventory's ``harness_workdir``): None makes ``/tmp/harness.*``; a
    missing one is created 0700 with its missing parents; an existing one is the user's,
    so a fresh ``harness.*`` directory is made inside it."""
    try:
        home = sftp.normalize(".")
        if wanted is None:
            path = sftp_mkdtemp(sftp, "/tmp")
            top = path
        else:
            if wanted == "~" or wanted.startswith("~/"):
                wanted = wanted[2:]
            target = posixpath.normpath(posixpath.join(home, wanted))
            if sftp_exists(sftp, target):
                path = sftp_mkdtemp(sftp, target)
                top = path
            else:
                top = sftp_makedirs(sftp, target)
                path = target
        path = sftp.normalize(path)
        top = sftp.normalize(top)
        sftp.chmod(path, 0o700)
    except TransportError:
        raise
    except TimeoutError as exc:
        raise TransportTimeout(f"{label}: creating a working directory timed out") from exc
    except (paramiko.SSHException, OSError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise TransportError(f"{label}: cannot create a working directory: {reason}") from exc
    return path, top


def sftp_exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)  # follows symlinks, as ``[ -e ]`` does
    except FileNotFoundError:
        return False
    return True


def sftp_mkdtemp(sftp: paramiko.SFTPClient, parent: str) -> str:
    """A fresh ``parent/harness.<random>`` directory, mode 0700."""
    for _ in range(20):
        path = f"{parent.rstrip('/') or ''}/harness.{token_hex(6)}"
        try:
            sftp.mkdir(path, 0o700)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) or not sftp_exists(sftp, path):
                raise
            continue  # the name is taken: draw another
        return path
    raise TransportError(f"cannot find a free directory name in {parent}")


def sftp_makedirs(sftp: paramiko.SFTPClient, target: str) -> str:
    """``mkdir -p target`` (the leaf 0700); return the topmost directory created."""
    missing = [target]
    parent = posixpath.dirname(target)
    while parent not in ("/", "") and not sftp_exists(sftp, parent):
        missing.append(parent)
        parent = posixpath.dirname(parent)
    for directory in reversed(missing):
        sftp.mkdir(directory, 0o700 if directory == target else 0o777)
    return missing[-1]


def sftp_rmtree(sftp: paramiko.SFTPClient, root: str) -> bool:
    """Remove ``root`` over SFTP (symlinks are removed, never followed); False when
    that did not work or the tree is large (the caller falls back to ``rm -rf``)."""
    budget = [SFTP_RMTREE_MAX]

    def remove(path: str) -> None:
        for entry in sftp.listdir_attr(path):  # lstat attributes
            budget[0] -= 1
            if budget[0] < 0:
                raise OSError("too many entries")
            child = f"{path}/{entry.filename}"
            if stat.S_ISDIR(entry.st_mode or 0):
                remove(child)
            else:
                sftp.remove(child)
        sftp.rmdir(path)

    try:
        remove(root)
    except FileNotFoundError:
        return not sftp_exists(sftp, root)
    except (paramiko.SSHException, OSError, EOFError):
        return False
    return True
