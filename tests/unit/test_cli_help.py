"""Every command has help text, and `--help` works on each (sqlite-utils' test_docs idea)."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from harness.cli import app


def all_commands():
    group = typer.main.get_command(app)
    stack = [((), group)]
    while stack:
        path, cmd = stack.pop()
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append(((*path, name), sub))


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for path, cmd in all_commands():
        assert (cmd.help or "").strip(), f"{' '.join(path)} has no help text"
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        for param in cmd.params:
            if param.name != "help" and getattr(param, "help", None) is not None:
                assert param.help.strip(), f"{path} {param.name} has empty help"
