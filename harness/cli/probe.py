"""``harness probe``: fingerprint hosts; with ``--noise``, their stability verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.cli.app import (
    AcceptKeysOpt,
    InventoryOpt,
    JsonOpt,
    KnownHostsOpt,
    LimitOpt,
    app,
    stderr_console,
    stdout_console,
)
from harness.errors import OptionError
from harness.paths import DEFAULT_INVENTORY

if TYPE_CHECKING:
    from harness.remote.probing import ProbeResult


# ``--noise`` takes an optional SECONDS (an argument after it): unknown options reach
# that argument, so ``--noise -1`` is refused as a bad SECONDS, not as an unknown option.
@app.command(context_settings={"ignore_unknown_options": True})
def probe(
    inventory: InventoryOpt = DEFAULT_INVENTORY,
    limit: LimitOpt = None,
    accept_new_host_keys: AcceptKeysOpt = False,
    known_hosts: KnownHostsOpt = None,
    noise: Annotated[bool, typer.Option(
        "--noise", help="Time the speed probe on every host for SECONDS (default 5, at most "
                        "600) and print each host's stability verdict: stable, noisy or "
                        "unstable, with reasons (the rules of analysis/noise.sql).")] = False,
    seconds: Annotated[str | None, typer.Argument(
        metavar="SECONDS", help="With --noise: how long to probe each host (default 5).",
        show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fingerprint every host and interpreter (cores, affinity, NUMA, memory, build, GIL);
    with --noise, judge each host's stability from a few seconds of speed probes."""
    from rich.table import Table

    from harness.plan.inventory import load_inventory
    from harness.remote.probing import probe_hosts
    from harness.remote.provisioned import expand_provisioned

    if seconds is not None and not noise:
        if seconds.startswith("-"):
            raise OptionError(f"no such option: {seconds}", hint="see harness probe --help")
        raise OptionError(f"unexpected argument {seconds!r}: SECONDS goes with --noise",
                          hint=f"harness probe --noise {seconds}")
    if noise:
        _probe_noise(inventory, limit, accept_new_host_keys, known_hosts, seconds, as_json)
        return
    hosts = expand_provisioned(load_inventory(inventory, limit),
                               accept_new_host_keys=accept_new_host_keys,
                               known_hosts=known_hosts)
    found = probe_hosts(hosts, accept_new_host_keys=accept_new_host_keys,
                        known_hosts=known_hosts)
    _say_transfers(found)
    if as_json:
        typer.echo(json.dumps([{"host": r.host, "python": r.python, "profile_id": r.profile_id,
                                "env": r.env, "error": r.error} for r in found], indent=2))
    else:
        table = Table(title="Hosts and interpreters")
        for col in ("host", "python", "profile", "cpu", "usable/logical/cores", "numa",
                    "memory", "version", "build", "GIL"):
            table.add_column(col)
        for r in found:
            if r.env is None:
                table.add_row(r.host, r.python, "[red]failed", r.error or "", "", "", "", "",
                              "", "")
                continue
            e = r.env
            table.add_row(
                r.host, r.python, r.profile_id, str(e.get("cpu_model")),
                f"{e.get('usable_cpus')}/{e.get('logical_cpus')}/{e.get('physical_cores')}",
                f"{e.get('numa_nodes')} {e.get('numa_cpus')}",
                f"{(e.get('mem_total_bytes') or 0) / 2**30:.1f} GiB",
                str(e.get("python_version")),
                "free-threaded" if e.get("free_threaded") else "standard",
                "on" if e.get("gil_enabled") else "off")
        stdout_console().print(table)
    if any(r.error for r in found):
        raise typer.Exit(1)


def _probe_noise(inventory: Path, limit: str | None, accept_new_host_keys: bool,
                 known_hosts: Path | None, seconds_text: str | None, as_json: bool) -> None:
    """``harness probe --noise [SECONDS]``: the stability verdict of every host."""
    from harness import render
    from harness.plan.inventory import load_inventory
    from harness.remote.probing import NOISE_DEFAULT_S, check_noise_seconds, noise_hosts
    from harness.remote.provisioned import expand_provisioned

    try:
        seconds = NOISE_DEFAULT_S if seconds_text is None else float(seconds_text)
    except ValueError:
        raise OptionError(f"--noise {seconds_text}: SECONDS is not a number",
                          hint=f"e.g. --noise {NOISE_DEFAULT_S:g}") from None
    check_noise_seconds(seconds)
    hosts = expand_provisioned(load_inventory(inventory, limit),
                               accept_new_host_keys=accept_new_host_keys,
                               known_hosts=known_hosts)
    if not as_json:
        stderr_console().print(f"timing the speed probe for {seconds:g} s on {len(hosts)} "
                        f"host{'s' if len(hosts) != 1 else ''}...", markup=False)
    found = noise_hosts(hosts, seconds, accept_new_host_keys=accept_new_host_keys,
                        known_hosts=known_hosts)
    _say_transfers(found)
    if as_json:
        typer.echo(json.dumps(render.noise_records(found), indent=2))
    else:
        typer.echo(render.noise_text(found, seconds))
    if any(r.error for r in found):
        raise typer.Exit(1)



def _say_transfers(found: list[ProbeResult]) -> None:
    """One stderr line per host whose files went over the command channel (no SFTP)."""
    from harness.transport.shell_files import transfer_note

    said: set[str] = set()
    for r in found:
        if r.env is not None and r.env.get("transfer") == "shell" and r.host not in said:
            said.add(r.host)
            typer.echo(transfer_note(r.host), err=True)
