"""``harness provision``: put CPython builds on every host (playbooks/provision-python.yml)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from harness.cli.app import (
    AcceptKeysOpt,
    InventoryOpt,
    JsonOpt,
    KnownHostsOpt,
    LimitOpt,
    app,
    stdout_console,
)
from harness.paths import DEFAULT_INVENTORY


@app.command()
def provision(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    limit: LimitOpt = None,
    python: Annotated[list[str] | None, typer.Option(
        "--python", help="A build to install: MAJOR.MINOR, with t for free-threaded "
                         "(3.13, 3.13t). Repeatable.")] = None,
    source: Annotated[str, typer.Option(
        "--source", help="Where the CPython source comes from: debian (the hosts' deb-src "
                         "package), tarball (--from FILE on the controller, pushed to the "
                         "builders) or url (--from URL, fetched by the builders).")] = "debian",
    source_from: Annotated[str | None, typer.Option(
        "--from", help="The tarball FILE or the URL for --source tarball|url.")] = None,
    prefix: Annotated[str | None, typer.Option(
        "--prefix", help="Where builds go on each host: PREFIX/VERSION/ (default "
                         "~/.cache/harness/pythons; inventory variable "
                         "harness_provision_prefix per host).")] = None,
    build_root: Annotated[str | None, typer.Option(
        "--build-root", help="Where a builder keeps its builds and their cache (default "
                             "~/.cache/harness/builds).")] = None,
    build_on: Annotated[str, typer.Option(
        "--build-on", help="controller: build on this machine for the hosts of its own "
                           "platform (default); hosts: always on each platform's first "
                           "host.")] = "controller",
    forks: Annotated[int, typer.Option("--forks", help="Hosts handled at once.")] = 8,
    become: Annotated[bool, typer.Option(
        "--become", help="Install missing build packages with the package manager "
                         "(become); without it they are named per host.")] = False,
    list_only: Annotated[bool, typer.Option(
        "--list", help="Only show what each host has.")] = False,
    remove: Annotated[str | None, typer.Option(
        "--remove", help="Remove this build (e.g. 3.13t) from every host.")] = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    known_hosts: KnownHostsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build CPython once per platform and install it on every host (Ansible), verified,
    with a manifest that `harness_pythons: provisioned` reads; --list, --remove."""
    from rich.table import Table

    from harness.engines.provision import ProvisionOptions
    from harness.engines.provision import provision as run_provision
    from harness.errors import OptionError

    if build_on not in ("controller", "hosts"):
        raise OptionError(f"--build-on {build_on!r}: controller or hosts")

    options = ProvisionOptions(
        inventory=inventory, limit=limit, pythons=tuple(python or ()), source=source,
        source_from=source_from, prefix=prefix, build_root=build_root,
        build_on_controller=build_on == "controller", forks=forks,
        become=become, accept_new_host_keys=accept_new_host_keys,
        known_hosts=known_hosts.expanduser().resolve() if known_hosts else None,
        list_only=list_only, remove=remove)
    result = run_provision(options)
    if as_json:
        typer.echo(json.dumps({
            "hosts": [{"host": h.host, "status": h.status, "reason": h.reason,
                       "installed": h.installed} for h in result.hosts],
            "builds": [{"builder": b.builder, "version": b.version, "built": b.built,
                        "source": b.source} for b in result.builds],
            "controller_failure": result.controller_failure,
            "exit_code": result.exit_code}, indent=2))
    else:
        console = stdout_console()
        if result.builds:
            table = Table(title="Builds (one per platform)")
            for col in ("builder", "version", "source", "this run"):
                table.add_column(col)
            for b in result.builds:
                where = "controller" if b.builder == "localhost" else b.builder
                table.add_row(where, b.version, b.source, "built" if b.built else "cached")
            console.print(table)
        table = Table(title="Hosts")
        for col in ("host", "status", "installed", "reason"):
            table.add_column(col)
        for h in result.hosts:
            installed = ", ".join(f"{v} ({m.get('python')})"
                                  for v, m in sorted(h.installed.items()))
            colour = {"ok": "green", "changed": "yellow"}.get(h.status, "red")
            table.add_row(h.host, f"[{colour}]{h.status}", installed, h.reason or "")
        console.print(table)
        if result.controller_failure:
            console.print(f"controller: {result.controller_failure}", markup=False)
    raise typer.Exit(result.exit_code)
