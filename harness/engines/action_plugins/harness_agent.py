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
  with the agent zipapp in it, written from stdin, then ``<python> agent.pyz probe``
  for every interpreter. Returns ``harness_dir`` and ``results`` (per interpreter:
  ``item``, ``rc``, ``stdout``, ``stderr``, ``timed_out``). A host where the dir
  cannot be made fails the task (the dir, if made, is removed).
- ``run`` (``run=NAME``): one interpreter's plan (stdin to a file in the dir), then
  ``<python> agent.pyz run PLAN``; the agent's stdout is written to the run's ``dest``
  on the controller as soon as it ends, and ``rc``, the stderr tail and ``timed_out``
  are returned. The host's last run then stops leftover agents and removes the dir
  in the same command (``removed``).
- ``cleanup``: stop agents still running in the dir (their pid files), remove it.

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

# ``sh -c SETUP harness WORKDIR``: the agent on stdin -> DIR/agent.pyz; prints DIR.
SETUP_SCRIPT = (
    'w=$1; umask 077; if [ -n "$w" ]; then mkdir -p -- "$w" || exit 1; '
    'else w=${TMPDIR:-/tmp}; fi; '
    'd=$(mktemp -d "$w/harness.XXXXXXXXXX") || exit 1; '
    'cat > "$d/agent.pyz" || { rm -rf -- "$d"; exit 1; }; printf "%s\\n" "$d"'
)
# ``sh -c RUN harness DIR SECONDS INPUT CMD...``: stdin -> DIR/INPUT (when INPUT is not
# empty), then CMD in DIR with a watchdog; its pid sits in DIR/agent-PID.pid meanwhile.
RUN_SCRIPT = (
    'd=$1; t=$2; in=$3; shift 3; cd "$d" || exit 125; rm -f .timeout; '
    'if [ -n "$in" ]; then cat > "$in" || exit 125; fi; '
    '"$@" < /dev/null & p=$!; echo "$p" > "agent-$p.pid"; '
    '( trap \'kill "$s" 2>/dev/null; exit 0\' TERM; '
    'sleep "$t" & s=$!; wait "$s" || exit 0; : > .timeout; kill -TERM "$p" 2>/dev/null; '
    'sleep 5 & s=$!; wait "$s" || exit 0; kill -KILL "$p" 2>/dev/null '
    ') > /dev/null 2>&1 < /dev/null & w=$!; '
    'wait "$p"; rc=$?; kill "$w" 2>/dev/null; rm -f -- "agent-$p.pid"; '
    'if [ -e .timeout ]; then rm -f .timeout; '
    'echo "harness: stopped after $t s (time limit)" >&2; exit 124; fi; exit "$rc"'
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
        res = self._low_level_execute_command(line, in_data=data)
        return int(res.get("rc", -1)), str(res.get("stdout") or ""), str(res.get("stderr") or "")

    def _probe(self, data: dict[str, Any]) -> dict[str, Any]:
        with open(str(data["agent"]), "rb") as fh:
            agent = fh.read()
        rc, out, err = self._exec(shell_line(SETUP_SCRIPT, data.get("workdir") or ""), agent)
        directory = out.strip().splitlines()[-1] if out.strip() else ""
        if rc != 0 or not directory.startswith("/"):
            reason = " ".join(err.split()) or f"exit status {rc}"
            return {"failed": True, "rc": rc,
                    "msg": f"could not make a private directory with the agent: {reason}"}
        results = []
        for python in data.get("pythons") or []:
            line = shell_line(RUN_SCRIPT, directory, int(data["timeout"]), "",
                              python, f"{directory}/agent.pyz", "probe")
            results.append({"item": python, **self._result(*self._exec(line))})
        return {"harness_dir": directory, "results": results}

    def _run(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        """One interpreter's run; the host's last run also removes the temp dir."""
        directory = str(data["dir"])
        run = data["runs"][name]
        plan = f"{name}.json"
        line = shell_line(RUN_SCRIPT, directory, int(run["timeout"]), plan, run["python"],
                          f"{directory}/agent.pyz", "run", f"{directory}/{plan}")
        if run.get("last"):
            line = f"{line}; rc=$?; {shell_line(STOP_SCRIPT, directory)}; exit $rc"
        item = self._result(*self._exec(line, str(run["plan"]).encode("utf-8")))
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
