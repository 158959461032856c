"""Running the agent on one host through a transport, and reading what it says.

``AgentSession`` owns one open transport and the uploaded agent. ``probe``
returns the fingerprint of one interpreter; ``run`` streams the validated
protocol messages of one plan. ``probe(python, keep=True)`` starts the agent
as ``run -``: it sends its fingerprint and then waits for its plan on stdin,
and the next ``run`` with that interpreter hands the plan to it -- one agent
start (one remote command, one interpreter start) per environment instead of
two; ``release`` ends a waiting agent that gets no plan. Lines that break the protocol become
``protocol_error`` pseudo-messages (never exceptions), so a confused agent is
recorded, not fatal.

Every fingerprint (``env`` message) gains ``transfer``, how the agent reached the host
when the transport says so: ``sftp``, or ``shell`` for a host without an SFTP
subsystem (see :mod:`harness.transport.ssh`). It is stored with the fingerprint (the
environments table's ``probe`` column).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.agent.protocol import PROTOCOL_VERSION, ProtocolViolation, parse_line
from harness.errors import CommandFailed, HarnessError, ProtocolError
from harness.formatting import one_line
from harness.remote.bundle import TOO_OLD_EXIT
from harness.transport.base import CommandInput, Transport

PROBE_TIMEOUT_S = 120.0
IDLE_TIMEOUT_S = 90.0
# Exit status of a shell that could not find the command.
_NOT_FOUND = 127


class InterpreterError(HarnessError):
    """An interpreter that is missing on a host, too old, or whose agent crashed."""

    exit_code = 1


def describe_failure(exc: CommandFailed, host: str, python: str) -> InterpreterError:
    """A one-line reason for an agent that exited non-zero."""
    last = one_line(exc.stderr_tail, pick="last")
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
        # How files reach the host ("sftp", "shell"; "" when the transport does not say).
        self.transfer = str(getattr(transport, "transfer", "") or "")
        self.agent_path = transport.put(agent_pyz, "agent.pyz")
        self._plans = 0
        # An agent started by probe(keep=True): (python, its input, its messages).
        self._waiting: tuple[str, CommandInput, Iterator[dict[str, Any]]] | None = None

    def messages(
        self, python: str, args: list[str], *, timeout: float,
        stdin: CommandInput | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Run the agent and yield its validated messages; check hello and eof."""
        argv = [python, self.agent_path, *args]
        # The agent's temp files (cell dirs, multiprocessing's) go inside the private
        # working directory, which the transport removes even after a killed agent.
        env = {"TMPDIR": self.transport.workdir} if self.transport.workdir else None
        try:
            if stdin is None:
                lines = self.transport.run(argv, timeout=timeout,
                                           idle_timeout=IDLE_TIMEOUT_S, env=env)
            else:
                lines = self.transport.run(argv, timeout=timeout,
                                           idle_timeout=IDLE_TIMEOUT_S, env=env, stdin=stdin)
            found = read_messages(lines, self.host, python)
            try:
                for msg in found:
                    if msg["type"] == "env" and self.transfer:
                        msg = {**msg, "env": {**msg["env"], "transfer": self.transfer}}
                    yield msg
            finally:
                found.close()
        except CommandFailed as exc:
            raise describe_failure(exc, self.host, python) from exc
        except OSError as exc:
            # A local interpreter path that does not exist.
            raise InterpreterError(
                f"{self.host}: interpreter {python!r} cannot run: {exc.strerror}") from exc

    def probe(self, python: str, *, keep: bool = False) -> dict[str, Any]:
        """The fingerprint of ``python`` on this host.

        With ``keep``, the agent that sent it stays running, waiting for the plan
        that the next ``run`` with ``python`` gives it (or ``release`` ends it).
        """
        self.release()
        env: dict[str, Any] | None = None
        stdin = CommandInput() if keep else None
        stream = self.messages(python, ["run", "-"] if keep else ["probe"],
                               timeout=PROBE_TIMEOUT_S, stdin=stdin)
        try:
            for msg in stream:
                if msg["type"] == "env":
                    env = msg["env"]
                    if stdin is not None:
                        self._waiting, stream = (python, stdin, stream), iter(())
                        return env
                elif msg["type"] in ("error", "protocol_error"):
                    raise ProtocolError(
                        f"{self.host}: probe under {python!r}: {msg['message']}")
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if env is None:
            raise ProtocolError(f"{self.host}: probe under {python!r} sent no env line")
        return env

    def release(self) -> None:
        """End the agent ``probe(keep=True)`` left waiting, if any: it gets an empty plan
        and exits by itself (no kill needed)."""
        waiting, self._waiting = self._waiting, None
        if waiting is None:
            return
        _, stdin, stream = waiting
        stdin.write(json.dumps({"protocol": PROTOCOL_VERSION, "cells": []}).encode())
        stdin.close()
        try:
            for _ in stream:
                pass
        except HarnessError:
            pass  # it had nothing left to do; whatever went wrong is of no consequence
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def run(
        self, python: str, plan: Mapping[str, Any], *, timeout: float
    ) -> Iterator[dict[str, Any]]:
        """Stream the agent's messages while it runs ``plan``: the agent ``probe(keep=True)``
        left waiting for ``python`` gets it on stdin, else a new agent reads it from an
        uploaded file."""
        if self._waiting is not None and self._waiting[0] == python:
            _, stdin, stream = self._waiting
            self._waiting = None
            stdin.extend(timeout)
            stdin.write(json.dumps(plan).encode())
            stdin.close()
            yield from stream
            return
        self.release()
        self._plans += 1
        with tempfile.TemporaryDirectory(prefix="harness-plan-") as tmp:
            local = Path(tmp) / "plan.json"
            local.write_text(json.dumps(plan))
            remote = self.transport.put(local, f"plan-{self._plans}.json")
        yield from self.messages(python, ["run", remote], timeout=timeout)
