"""Running the agent on one host through a transport, and reading what it says.

``AgentSession`` owns one open transport and the uploaded agent. ``probe``
returns the fingerprint of one interpreter; ``run`` streams the validated
protocol messages of one plan. Lines that break the protocol become
``protocol_error`` pseudo-messages (never exceptions), so a confused agent is
recorded, not fatal.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.agent.protocol import PROTOCOL_VERSION, ProtocolViolation, parse_line
from harness.bundle import TOO_OLD_EXIT
from harness.errors import CommandFailed, HarnessError, ProtocolError
from harness.transport.base import Transport

PROBE_TIMEOUT_S = 120.0
IDLE_TIMEOUT_S = 90.0
# Exit status of a shell that could not find the command.
_NOT_FOUND = 127


class InterpreterError(HarnessError):
    """An interpreter that is missing on a host, too old, or whose agent crashed."""

    exit_code = 1


def describe_failure(exc: CommandFailed, host: str, python: str) -> InterpreterError:
    """A one-line reason for an agent that exited non-zero."""
    tail = exc.stderr_tail.strip().splitlines()
    last = tail[-1] if tail else ""
    if exc.returncode == _NOT_FOUND or "No such file" in last or "not found" in last:
        return InterpreterError(f"{host}: interpreter {python!r} not found")
    if exc.returncode == TOO_OLD_EXIT or "SyntaxError" in exc.stderr_tail:
        why = last or "the agent needs CPython 3.9 or newer"
        return InterpreterError(f"{host}: interpreter {python!r} is too old: {why}")
    detail = f": {last}" if last else ""
    return InterpreterError(
        f"{host}: agent under {python!r} exited with status {exc.returncode}{detail}")


def read_messages(lines: Iterable[str], host: str, python: str) -> Iterator[dict[str, Any]]:
    """Validate an agent's output lines, as they come, into messages.

    The first line must be a ``hello`` of our protocol version and the last an
    ``eof``; a line in between that breaks the protocol is yielded as a
    ``protocol_error`` pseudo-message so the caller records it and goes on.
    """
    saw_eof = False
    first = True
    for line in lines:
        try:
            msg = parse_line(line)
        except ProtocolViolation as exc:
            if first:
                raise ProtocolError(f"{host}: agent under {python!r} did not start with hello "
                                    f"({exc}; first line: {line[:80]!r})") from None
            yield {"type": "protocol_error", "message": f"{host}: {exc} in line {line[:120]!r}"}
            continue
        if first:
            first = False
            if msg["type"] != "hello" or msg.get("protocol") != PROTOCOL_VERSION:
                raise ProtocolError(
                    f"{host}: agent under {python!r} does not speak protocol "
                    f"{PROTOCOL_VERSION} (first line: {line[:80]!r})")
        if msg["type"] == "eof":
            saw_eof = True
        yield msg
    if not saw_eof:
        raise ProtocolError(f"{host}: agent under {python!r} stopped before its eof line")


class AgentSession:
    """The agent uploaded to one host; run it with any of the host's interpreters."""

    def __init__(self, transport: Transport, agent_pyz: Path, host: str) -> None:
        self.transport = transport
        self.host = host
        self.agent_path = transport.put(agent_pyz, "agent.pyz")
        self._plans = 0

    def messages(
        self, python: str, args: list[str], *, timeout: float
    ) -> Iterator[dict[str, Any]]:
        """Run the agent and yield its validated messages; check hello and eof."""
        argv = [python, self.agent_path, *args]
        # The agent's temp files (cell dirs, multiprocessing's) go inside the private
        # working directory, which the transport removes even after a killed agent.
        env = {"TMPDIR": self.transport.workdir} if self.transport.workdir else None
        try:
            lines = self.transport.run(argv, timeout=timeout, idle_timeout=IDLE_TIMEOUT_S,
                                       env=env)
            yield from read_messages(lines, self.host, python)
        except CommandFailed as exc:
            raise describe_failure(exc, self.host, python) from exc
        except OSError as exc:
            # A local interpreter path that does not exist.
            raise InterpreterError(
                f"{self.host}: interpreter {python!r} cannot run: {exc.strerror}") from exc

    def probe(self, python: str) -> dict[str, Any]:
        """The fingerprint of ``python`` on this host."""
        env: dict[str, Any] | None = None
        for msg in self.messages(python, ["probe"], timeout=PROBE_TIMEOUT_S):
            if msg["type"] == "env":
                env = msg["env"]
            elif msg["type"] in ("error", "protocol_error"):
                raise ProtocolError(f"{self.host}: probe under {python!r}: {msg['message']}")
        if env is None:
            raise ProtocolError(f"{self.host}: probe under {python!r} sent no env line")
        return env

    def run(
        self, python: str, plan: Mapping[str, Any], *, timeout: float
    ) -> Iterator[dict[str, Any]]:
        """Upload ``plan`` and stream the agent's messages while it runs."""
        self._plans += 1
        with tempfile.TemporaryDirectory(prefix="harness-plan-") as tmp:
            local = Path(tmp) / "plan.json"
            local.write_text(json.dumps(plan))
            remote = self.transport.put(local, f"plan-{self._plans}.json")
        yield from self.messages(python, ["run", remote], timeout=timeout)
