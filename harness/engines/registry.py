"""The engines by name: the one table ``--engine`` is checked against, its help is
written from, and a sweep gets its engine from.

An engine's module is imported only when a sweep asks for that engine: the ssh
engine brings paramiko, and neither belongs in ``harness --help`` or ``harness probe``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import OptionError

if TYPE_CHECKING:
    from harness.engines.base import Engine


@dataclass(frozen=True)
class EngineEntry:
    """An engine: its name, a few words for ``--engine``'s help, where its class is."""

    name: str
    summary: str
    module: str
    cls: str


ENGINES: dict[str, EngineEntry] = {e.name: e for e in (
    EngineEntry("ssh", "a connection per host", "harness.engines.ssh", "SshEngine"),
    EngineEntry("ansible", "ansible-runner drives the fleet, --forks hosts at a time",
                "harness.engines.ansible", "AnsibleEngine"),
)}
DEFAULT_ENGINE = "ssh"


def engine_names() -> tuple[str, ...]:
    return tuple(ENGINES)


def engines_help() -> str:
    """``ssh (a connection per host) or ansible (...)``, for ``--engine``'s help."""
    return " or ".join(f"{e.name} ({e.summary})" for e in ENGINES.values())


def check_engine(name: str) -> EngineEntry:
    """The engine called ``name``; OptionError when there is none."""
    entry = ENGINES.get(name)
    if entry is None:
        raise OptionError(f"--engine {name!r} is not an engine",
                          hint=f"use {' or '.join(ENGINES)}")
    return entry


def get_engine(name: str) -> Engine:
    """A new engine called ``name`` (its module is imported now)."""
    entry = check_engine(name)
    engine: Engine = getattr(importlib.import_module(entry.module), entry.cls)()
    return engine
