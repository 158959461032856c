"""Read an Ansible inventory into immutable :class:`Host` records.

The inventory is parsed by Ansible itself: ``ansible-inventory --list`` run
through ansible-runner, so ranges (``node[01:16]``), groups, ``:children``,
``:vars`` and ``group_vars/``/``host_vars/`` beside the file mean exactly what
they mean to Ansible. ``--limit`` is passed through to ``ansible-inventory``,
so patterns (``web:&lab``, ``node0*``, ``!db``) follow Ansible's rules.

Per host the variables harness reads are::

    ansible_host, ansible_port, ansible_user,
    ansible_ssh_private_key_file   how to reach it (``~/.ssh/config`` fills gaps)
    ansible_connection             ``ssh`` (default) or ``local``
    harness_pythons                interpreters, space- or comma-separated
    ansible_python_interpreter     used when ``harness_pythons`` is not set
    harness_workdir                where the agent unpacks (default: fresh temp dir)

Without either interpreter variable a host gets ``python3``, except a
``local`` host, which gets the interpreter running harness (``sys.executable``).

Secrets (passwords, passphrases, vaulted values) never appear in
``str``/``repr`` of a host nor in an error: in :attr:`Host.vars` their value is
replaced by :data:`REDACTED`; the real values sit in :attr:`Host.secrets`,
which is left out of ``repr`` and comparisons.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from harness.errors import InventoryError
from harness.formatting import one_line

__all__ = [
    "REDACTED",
    "Host",
    "find_ansible_inventory",
    "is_secret_var",
    "load_inventory",
    "parse_inventory_json",
]

Connection = Literal["ssh", "local"]

REDACTED = "<redacted>"

# Connection plugins that harness reaches over its own SSH transport.
_SSH_CONNECTIONS = frozenset({"ssh", "paramiko", "paramiko_ssh", "smart"})
_SECRET_NAME = re.compile(r"(pass(word|wd)?|passphrase|secret|token)$|_pass$|_pass_", re.I)
_SECRET_NAMES = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_sudo_pass",
        "ansible_sudo_password",
        "ansible_su_pass",
        "ansible_su_password",
        "ansible_ssh_private_key_passphrase",
        "ansible_paramiko_private_key_passphrase",
    }
)
_AUTO_INTERPRETERS = frozenset({"auto", "auto_silent", "auto_legacy", "auto_legacy_silent"})
_DEFAULT_TIMEOUT = 120


def is_secret_var(name: str, value: object = None) -> bool:
    """True for a variable whose value must never be shown (passwords, vaulted data)."""
    if name.lower() in _SECRET_NAMES or _SECRET_NAME.search(name):
        return True
    return isinstance(value, Mapping) and "__ansible_vault" in value


@dataclass(frozen=True)
class Host:
    """One inventory host as harness needs it; immutable."""

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    connection: Connection = "ssh"
    pythons: tuple[str, ...] = ("python3",)
    workdir: str | None = None
    groups: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    secrets: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a host needs a name")
        if self.connection not in ("ssh", "local"):
            raise ValueError(f"host {self.name}: connection must be ssh or local")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"host {self.name}: port {self.port} out of range")
        if not self.pythons:
            raise ValueError(f"host {self.name}: no interpreter")
        if not isinstance(self.vars, MappingProxyType):
            object.__setattr__(self, "vars", MappingProxyType(dict(self.vars)))
        if not isinstance(self.secrets, MappingProxyType):
            object.__setattr__(self, "secrets", MappingProxyType(dict(self.secrets)))

    @property
    def is_local(self) -> bool:
        return self.connection == "local"


def find_ansible_inventory() -> str | None:
    """``ansible-inventory`` on PATH, else beside the running interpreter (an unactivated venv)."""
    found = shutil.which("ansible-inventory")
    if found:
        return found
    beside = Path(sys.executable).parent / "ansible-inventory"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return None


_PLUGIN_FAILURE = re.compile(r"Failed to parse inventory with '(\w+)' plugin: (.+)")
_PLUGIN_FOR_SUFFIX = {".yml": "yaml", ".yaml": "yaml", ".toml": "toml", ".json": "yaml"}


def _reason(stderr: str, path: Path) -> str:
    """The most specific one-line reason Ansible gave for rejecting ``path``."""
    failures = dict((m.group(1), m.group(2).strip()) for m in _PLUGIN_FAILURE.finditer(stderr))
    wanted = _PLUGIN_FOR_SUFFIX.get(path.suffix.lower(), "ini")
    plugin = wanted if wanted in failures else next(iter(failures), "")
    if plugin:
        detail = re.sub(r"^Failed to parse inventory:\s*", "", failures[plugin])
        return f"{plugin} parser: {one_line(detail, pick='error')}"
    reason = one_line(stderr, pick="error") or "ansible-inventory failed"
    return reason.removeprefix("[ERROR]:").removeprefix("ERROR!").strip()


def _run_ansible_inventory(
    exe: str, path: Path, limit: str | None, timeout: int
) -> tuple[int, str, str]:
    """Run ``ansible-inventory --list`` through ansible-runner; return (rc, stdout, stderr)."""
    from ansible_runner.config._base import BaseConfig
    from ansible_runner.config.inventory import InventoryConfig
    from ansible_runner.runner import Runner

    class _Config(InventoryConfig):
        # InventoryConfig looks the executable up on PATH only; use the one found here.
        def __init__(self, **kwargs: Any) -> None:
            self.runner_mode = "subprocess"
            self._ansible_inventory_exec_path = exe
            from ansible_runner.config._base import BaseExecutionMode

            self.execution_mode = BaseExecutionMode.ANSIBLE_COMMANDS
            BaseConfig.__init__(self, **kwargs)

    bin_dir = str(Path(exe).parent)
    env_path = os.pathsep.join(p for p in (bin_dir, os.environ.get("PATH", "")) if p)
    envvars = {
        "PATH": env_path,
        # Ansible only warns about a file it cannot parse; harness refuses it.
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    with tempfile.TemporaryDirectory(prefix="harness-inv-") as private:
        config = _Config(
            private_data_dir=private,
            envvars=envvars,
            quiet=True,
            timeout=timeout,
            suppress_env_files=True,
        )
        config.prepare_inventory_command(action="list", inventories=[str(path)])
        if limit:
            config.cmdline_args.extend(["--limit", limit])
            config.command = [exe, *config.cmdline_args]
        runner = Runner(config)
        runner.run()
        with runner.stdout as out, runner.stderr as err:
            stdout, stderr = out.read(), err.read()
        rc = runner.rc if runner.rc is not None else -1
        if runner.status == "timeout":
            rc = -1
            stderr = f"ansible-inventory timed out after {timeout}s\n{stderr}"
    return rc, stdout, stderr


def _split_pythons(value: object) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = re.split(r"[\s,]+", str(value))
    return tuple(item for item in (i.strip() for i in items) if item)


def _group_members(data: Mapping[str, Any]) -> dict[str, set[str]]:
    """Map each host to every group it belongs to, directly or through ``children``."""
    memberships: dict[str, set[str]] = {}

    def walk(group: str, ancestors: tuple[str, ...]) -> None:
        if group in ancestors:  # Ansible refuses cycles; be safe anyway
            return
        node = data.get(group) or {}
        chain = (*ancestors, group)
        for host in node.get("hosts", ()):
            memberships.setdefault(host, set()).update(chain)
        for child in node.get("children", ()):
            walk(child, chain)

    walk("all", ())
    return memberships


def _host_from_vars(name: str, hostvars: Mapping[str, Any], groups: set[str], source: Path) -> Host:
    public: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for key, value in hostvars.items():
        if is_secret_var(key, value):
            secrets[key] = value
            public[key] = REDACTED
        else:
            public[key] = value

    connection_raw = str(hostvars.get("ansible_connection", "ssh"))
    if connection_raw in _SSH_CONNECTIONS:
        connection: Connection = "ssh"
    elif connection_raw == "local":
        connection = "local"
    else:
        raise InventoryError(
            f"{source}: host {name}: ansible_connection={connection_raw!r} is not supported "
            "(use ssh or local)"
        )

    port_raw = hostvars.get("ansible_port", hostvars.get("ansible_ssh_port"))
    port: int | None = None
    if port_raw is not None and str(port_raw) != "":
        try:
            port = int(port_raw)
        except (TypeError, ValueError):
            raise InventoryError(
                f"{source}: host {name}: ansible_port={port_raw!r} is not a number"
            ) from None
        if not 0 < port < 65536:
            raise InventoryError(f"{source}: host {name}: ansible_port={port} is out of range")

    if "harness_pythons" in hostvars:
        pythons = _split_pythons(hostvars["harness_pythons"])
        if not pythons:
            raise InventoryError(f"{source}: host {name}: harness_pythons is empty")
    elif str(hostvars.get("ansible_python_interpreter", "")) not in ("", *_AUTO_INTERPRETERS):
        pythons = (str(hostvars["ansible_python_interpreter"]),)
    elif connection == "local":
        pythons = (sys.executable,)
    else:
        pythons = ("python3",)

    key_file = hostvars.get(
        "ansible_ssh_private_key_file", hostvars.get("ansible_private_key_file")
    )
    user = hostvars.get("ansible_user", hostvars.get("ansible_ssh_user"))
    address = hostvars.get("ansible_host", hostvars.get("ansible_ssh_host", name))
    workdir = hostvars.get("harness_workdir")
    return Host(
        name=name,
        address=str(address),
        port=port,
        user=str(user) if user not in (None, "") else None,
        key_file=os.path.expanduser(str(key_file)) if key_file not in (None, "") else None,
        connection=connection,
        pythons=pythons,
        workdir=str(workdir) if workdir not in (None, "") else None,
        groups=tuple(sorted(g for g in groups if g not in ("all", "ungrouped"))),
        vars=MappingProxyType(public),
        secrets=MappingProxyType(secrets),
    )


def parse_inventory_json(data: Mapping[str, Any], source: Path) -> tuple[Host, ...]:
    """Turn ``ansible-inventory --list`` output into hosts, in inventory order."""
    hostvars: Mapping[str, Mapping[str, Any]] = (data.get("_meta") or {}).get("hostvars") or {}
    members = _group_members(data)
    names = list(dict.fromkeys([*members, *hostvars]))
    return tuple(
        _host_from_vars(n, hostvars.get(n, {}), members.get(n, set()), source) for n in names
    )


def load_inventory(
    path: Path, limit: str | None = None, *, timeout: int = _DEFAULT_TIMEOUT
) -> tuple[Host, ...]:
    """Read ``path`` with Ansible's parser and return the selected hosts.

    Raises :class:`InventoryError` (one line naming the file) when
    ``ansible-inventory`` is missing, the file is unreadable or rejected by
    Ansible, or nothing matches ``limit``.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InventoryError(f"{path}: no such inventory file or directory")
    if path.is_file() and not os.access(path, os.R_OK):
        raise InventoryError(f"{path}: inventory is not readable")
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise InventoryError(f"{path}: inventory directory is not readable")
    exe = find_ansible_inventory()
    if exe is None:
        raise InventoryError(
            f"{path}: ansible-inventory not found on PATH nor beside {sys.executable}",
            hint="install ansible-core in the environment running harness",
        )
    try:
        rc, stdout, stderr = _run_ansible_inventory(exe, path.resolve(), limit, timeout)
    except Exception as exc:  # ansible-runner's own failures (config, spawn)
        raise InventoryError(
            f"{path}: could not run ansible-inventory: {one_line(str(exc), pick='error')}"
        ) from exc
    if rc != 0:
        raise InventoryError(f"{path}: Ansible rejected the inventory: {_reason(stderr, path)}")
    try:
        from ansible_runner.utils import sanitize_json_response

        data = json.loads(sanitize_json_response(stdout))
    except (ValueError, TypeError) as exc:
        raise InventoryError(f"{path}: ansible-inventory printed no valid JSON") from exc
    if not isinstance(data, dict):
        raise InventoryError(f"{path}: ansible-inventory printed no inventory")
    hosts = parse_inventory_json(data, path)
    if not hosts:
        if limit:
            raise InventoryError(f"{path}: no host matches --limit {limit!r}")
        raise InventoryError(f"{path}: the inventory has no hosts")
    return hosts


def host_pythons(host: Host) -> tuple[str, ...]:
    """The interpreters to benchmark; a local host with none named uses this one."""
    named = "harness_pythons" in host.vars or "ansible_python_interpreter" in host.vars
    if host.connection == "local" and not named:
        return (sys.executable,)
    return host.pythons
