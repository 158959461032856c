"""``harness_agent``: the ansible engine's one action, with no Ansible module on the host.

It runs in an ansible-playbook worker on the controller and talks to the host only
through the task's connection (``_low_level_execute_command``: one remote shell
command each, stdin optional). Ansible still brings what users move to it for: its
inventory, connection settings (ssh options, become, jump hosts), ``--forks`` and
its event stream. The host needs a POSIX shell and the interpreters under test; no
Python of Ansible's own, no SFTP (the agent and plans travel on a command's stdin).

Its values come from a JSON file per host that harness writes for each phase (``data``:
its path), read here, never parsed or templated by Ansible. Steps (``step=``):

- ``probe``: a private 0700 temp dir (``mktemp -d``; inside ``workdir`` when given)
  with the agent zipapp in it, written from stdin by the first interpreter's command;
  for every interpreter an agent started as ``<python> agent.pyz run +SECONDS``,
  which sends its hello and fingerprint and then waits in the background for its
  plan (one agent start per interpreter both probes and runs). Returns
  ``harness_dir`` and ``results`` (per interpreter: ``item``, ``agent`` (its name in
  the dir), ``rc``, ``stdout`` (hello and env), ``stderr``, ``timed_out``; ``rc`` is
  not 0 when the agent ended instead of waiting). A host where the dir cannot be made
  fails the task (the dir, if made, is removed).
- ``run`` (``run=NAME``): one interpreter's plan (stdin to a file in the dir) handed
  to its waiting agent; the agent's output from then on is written to the run's
  ``dest`` on the controller as soon as it ends, and ``rc``, the stderr tail and
  ``timed_out`` are returned. The host's last run then stops leftover agents and
  removes the dir in the same command (``removed``).
- ``cleanup``: stop agents still running in the dir (their pid files), remove it.

A waiting agent's stdin and stdout are two FIFOs in the dir (``NAME.in``,
``NAME.out``), held open by a small shell that started it and that writes
``harness-rc STATUS`` to ``NAME.out`` when it ends; every reader stops at that line
(or at the one the watchdog writes), so no command waits for an end of file that a
dead agent would never give.

Every remote command is a constant ``sh -c`` script whose values (paths from the
inventory, interpreter names, numbers) are positional parameters, each
``shlex.quote``\\ d: no shell line is built from unquoted inventory values. Time
limits are kept on the host: a watchdog stops an agent that overruns (TERM, then
KILL after 5 s), and the command ends with status 124 and says so on stderr.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# Pieces the scripts below share.
# A private dir inside $w (or $TMPDIR) with the agent from stdin; its path in $d and
# printed as ``harness-dir DIR``.
_PRIVATE_DIR = (
    'if [ -n "$w" ]; then mkdir -p -- "$w" || exit 1; else w=${TMPDIR:-/tmp}; fi; '
    'd=$(mktemp -d "$w/harness.XXXXXXXXXX") || exit 1; '
    'cat > "$d/agent.pyz" || { rm -rf -- "$d"; exit 1; }; printf "harness-dir %s\\n" "$d"; '
)
# Into $d, no time-limit mark left from before.
_ENTER = 'cd "$d" || exit 125; [ -e .timeout ] && rm -f .timeout; '
# After $t seconds: mark the time limit, TERM the agent $n (its pid file), KILL it 5 s
# later, and end every reader of its output (fd 3) with ``harness-rc 124``. Its pid: $k.
_WATCHDOG = (
    '( trap \'kill "$s" 2>/dev/null; exit 0\' TERM; '
    'sleep "$t" & s=$!; wait "$s" || exit 0; : > .timeout; '
    'if p=$(cat "agent-$n.pid" 2>/dev/null); then kill -TERM "$p" 2>/dev/null; '
    'sleep 5 & s=$!; wait "$s" || exit 0; kill -KILL "$p" 2>/dev/null; fi; '
    'echo "harness-rc 124" >&3 ) > /dev/null 2>&1 < /dev/null & k=$!; '
)
# The watchdog fired: say so, exit 124.
_TIME_LIMIT_EXIT = (
    'if [ -e .timeout ]; then rm -f .timeout; '
    'echo "harness: stopped after $t s (time limit)" >&2; exit 124; fi; '
)
# The agent's stderr's tail, when it wrote any.
_STDERR = '[ -s "$n.err" ] && tail -c 4000 "$n.err" >&2; '

# ``sh -c SETUP harness WORKDIR``: the private dir alone (a host with no interpreter).
SETUP_SCRIPT = 'w=$1; umask 077; ' + _PRIVATE_DIR + 'exit 0'
# ``sh -c START harness WORKDIR DIR SECONDS WAIT NAME PYTHON``: with DIR empty, first the
# private dir (as SETUP); then the agent NAME started in DIR as ``PYTHON DIR/agent.pyz
# run +WAIT`` (stdin NAME.in, stdout NAME.out, stderr NAME.err, its pid in
# agent-NAME.pid), left running once it has sent two lines (hello, env), which are
# printed (deaf to the hangup of a terminal the command may have had: sudo's use_pty).
# An agent that ends first: its lines, ``harness-rc STATUS`` and its stderr's tail, exit
# STATUS; one that takes over SECONDS is stopped (exit 124).
START_SCRIPT = (
    'w=$1; d=$2; t=$3; wt=$4; n=$5; py=$6; umask 077; '
    'if [ -z "$d" ]; then ' + _PRIVATE_DIR + 'fi; ' + _ENTER
    + 'mkfifo "$n.in" "$n.out" || exit 125; exec 3<>"$n.out"; '
    '( trap "" HUP; "$py" "$d/agent.pyz" run "+$wt" 0<>"$n.in" 2>"$n.err" 3>&- & p=$!; '
    'echo "$p" > "agent-$n.pid"; wait "$p"; rc=$?; rm -f -- "agent-$n.pid"; '
    'echo "harness-rc $rc" ) > "$n.out" 2>/dev/null < /dev/null 3>&- & '
    + _WATCHDOG
    + 'out=$(sed "/^harness-rc /q; 2q" <&3); kill "$k" 2>/dev/null; printf "%s\\n" "$out"; '
    + _TIME_LIMIT_EXIT
    + 'case "$out" in *"harness-rc "*) ' + _STDERR + 'exit "${out##*harness-rc }";; esac; '
    'exit 0'
)
# ``sh -c HANDOFF harness DIR SECONDS NAME``: stdin -> DIR/NAME.plan, its path handed to
# the waiting agent NAME, whose output is printed until its ``harness-rc STATUS`` line,
# then its stderr's tail; a watchdog stops it after SECONDS (exit 124). Exit 125: no
# agent NAME is waiting.
HANDOFF_SCRIPT = (
    'd=$1; t=$2; n=$3; ' + _ENTER
    + 'exec 3<>"$n.out" 4<>"$n.in" || exit 125; '
    'p=; [ -f "agent-$n.pid" ] && read -r p < "agent-$n.pid"; '
    'if [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; then '
    'echo "harness: the agent was no longer waiting for its plan" >&2; '
    'tail -c 4000 "$n.err" >&2; exit 125; fi; '
    'cat > "$n.plan" || exit 125; '
    + _WATCHDOG
    + 'printf "%s\\n" "$d/$n.plan" >&4; sed "/^harness-rc /q" <&3; kill "$k" 2>/dev/null; '
    + _STDERR + _TIME_LIMIT_EXIT + 'exit 0'
)
# ``sh -c STOP harness DIR``: stop agents still running in DIR (TERM, then KILL after
# 5 s), then remove DIR.
STOP_SCRIPT = (
    'd=$1; [ -d "$d" ] || exit 0; '
    'for f in "$d"/*.pid; do [ -s "$f" ] || continue; p=$(cat "$f"); '
    'kill -TERM "$p" 2>/dev/null || continue; i=0; '
    'while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done; '
    'kill -KILL "$p" 2>/dev/null; done; cd / && rm -rf -- "$d"; exit 0'
)
TIMED_OUT = 124
_STDERR_TAIL = 4000


def _split_status(out: str) -> tuple[str, int | None]:
    """A handed-off agent's output without its closing ``harness-rc STATUS`` line, and
    that status (None when the line is missing)."""
    head, sep, tail = out.rstrip("\n").rpartition("\n")
    last = tail if sep else head
    if last.startswith("harness-rc "):
        body = f"{head}\n" if sep else ""
        try:
            return body, int(last.split()[1])
        except (IndexError, ValueError):
            return body, None
    return out, None


def shell_line(script: str, *args: object) -> str:
    """``sh -c SCRIPT harness ARGS...`` with every part quoted."""
    return shlex.join(["sh", "-c", script, "harness", *(str(a) for a in args)])


class ActionModule(ActionBase):
    """The ``harness_agent`` action: ``step`` is ``probe``, ``run`` or ``cleanup``;
    ``data`` the host's JSON file harness wrote for this phase."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("step", "data", "run"))

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        with open(str(args["data"]), encoding="utf-8") as fh:
            data = json.load(fh)
        step = args.get("step")
        if step == "probe":
            result.update(self._probe(data))
        elif step == "run":
            result.update(self._run(data, str(args["run"])))
        elif step == "cleanup":
            result.update(self._cleanup(data["dir"]))
        else:
            raise AnsibleActionFail(f"harness_agent: unknown step {step!r}")
        result.setdefault("changed", False)
        return result

    def _exec(self, line: str, data: bytes | None = None) -> tuple[int, str, str]:
        # Always some stdin: without it Ansible's ssh connection asks for a terminal
        # (-tt), whose end hangs up (SIGHUP) the agents a command leaves waiting, and
        # which mixes stderr into stdout.
        res = self._low_level_execute_command(line, in_data=data or b"\n")
        return int(res.get("rc", -1)), str(res.get("stdout") or ""), str(res.get("stderr") or "")

    def _probe(self, data: dict[str, Any]) -> dict[str, Any]:
        with open(str(data["agent"]), "rb") as fh:
            agent: bytes | None = fh.read()
        workdir = data.get("workdir") or ""
        pythons = [str(p) for p in data.get("pythons") or []]
        if not pythons:  # no interpreter: the dir alone (a run phase cleans it up)
            directory, _, fail = self._made_dir(
                *self._exec(shell_line(SETUP_SCRIPT, workdir), agent))
            return fail or {"harness_dir": directory, "results": []}
        directory = ""
        results = []
        for number, python in enumerate(pythons, 1):
            name = f"a{number}"
            line = shell_line(START_SCRIPT, workdir, directory, int(data["timeout"]),
                              int(data["wait"]), name, python)
            rc, out, err = self._exec(line, None if directory else agent)
            if not directory:
                directory, out, fail = self._made_dir(rc, out, err)
                if fail:
                    return fail
            lines, _ = _split_status(out)  # the script's status is the agent's
            results.append({"item": python, "agent": name, **self._result(rc, lines, err)})
        return {"harness_dir": directory, "results": results}

    @staticmethod
    def _made_dir(rc: int, out: str, err: str) -> tuple[str, str, dict[str, Any] | None]:
        """The private dir a command made (its ``harness-dir DIR`` line), the rest of its
        output, and the task's failure when there is no dir."""
        first, _, rest = out.partition("\n")
        if first.startswith("harness-dir /"):
            return first[len("harness-dir "):], rest, None
        reason = " ".join(err.split()) or f"exit status {rc}"
        return "", rest, {"failed": True, "rc": rc,
                          "msg": f"could not make a private directory with the agent: {reason}"}

    def _run(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        """One interpreter's run (its plan to its waiting agent); the host's last run also
        removes the temp dir."""
        directory = str(data["dir"])
        run = data["runs"][name]
        line = shell_line(HANDOFF_SCRIPT, directory, int(run["timeout"]), run["agent"])
        if run.get("last"):
            line = f"{line}; rc=$?; {shell_line(STOP_SCRIPT, directory)}; exit $rc"
        rc, out, err = self._exec(line, str(run["plan"]).encode("utf-8"))
        body, status = _split_status(out)
        if rc == 0:  # the script ran to the agent's end: the agent's own status
            rc = status if status is not None else -1
            if status is None:
                err += "\nharness: the agent's output ended without its exit status"
        item = self._result(rc, body, err)
        dest = str(run["dest"])
        with open(f"{dest}.part", "w", encoding="utf-8") as fh:
            fh.write(item.pop("stdout"))
        os.replace(f"{dest}.part", dest)
        removed = {"removed": directory} if run.get("last") else {}
        return {"harness_run_name": name, **item, **removed}

    def _cleanup(self, directory: str) -> dict[str, Any]:
        rc, _out, err = self._exec(shell_line(STOP_SCRIPT, directory))
        if rc != 0:
            return {"failed": True, "rc": rc, "msg": " ".join(err.split()) or f"exit {rc}"}
        return {"removed": directory}

    @staticmethod
    def _result(rc: int, out: str, err: str) -> dict[str, Any]:
        return {"rc": rc, "stdout": out, "stderr": err[-_STDERR_TAIL:],
                "timed_out": rc == TIMED_OUT and "(time limit)" in err}
