"""The plan an agent runs: its cells, checked as they arrive (stdlib only, Python 3.9+).

:func:`parse_plan` turns the decoded JSON the controller sent into a :class:`Plan` of
:class:`Cell` tuples, or raises :class:`PlanError` saying which field of which cell
is wrong. The params the agent reads itself (the dimensions) are checked here too.
"""

import collections
import re

from harness.agent import protocol

WATCHDOG_GRACE_S = 10.0  # at most; 1 s + 10 % of timeout_s below that
# Plans the agent reads: version 3 only added the optional host_lock to version 2's.
PLAN_VERSIONS = (2, protocol.PROTOCOL_VERSION)
_IMPL_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

Cell = collections.namedtuple(
    "Cell", "cell_id workload implementation model workers params warmups repeats timeout_s "
            "min_repeats max_repeats target_rel_ci budget_s env prior group",
    defaults=(None, None, None, None, None, (), None))
Plan = collections.namedtuple("Plan", "keepalive_s cells child hints seed host_lock",
                              defaults=(False, None, None, None))

# Params every workload accepts, read by the agent itself (the dimensions).
AGENT_PARAMS = {
    "chunksize": lambda v: is_int(v) and v >= 1,
    "start_method": lambda v: isinstance(v, str),
    "pinning": lambda v: v in ("none", "compact", "spread"),
    "memory": lambda v: v in ("local", "remote"),
    "gil": lambda v: v in (0, 1) and not isinstance(v, bool),
}
_ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class PlanError(ValueError):
    """The plan file is not a valid plan."""


def is_num(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_plan(data):
    """A :class:`Plan` from decoded JSON; raise PlanError on anything wrong."""
    if not isinstance(data, dict):
        raise PlanError("the plan must be a JSON object")
    if data.get("protocol") not in PLAN_VERSIONS:
        raise PlanError("plan protocol %r is not %d" % (data.get("protocol"),
                                                       protocol.PROTOCOL_VERSION))
    keepalive_s = data.get("keepalive_s", 5)
    if not is_num(keepalive_s) or not 0 < keepalive_s <= 3600:
        raise PlanError("keepalive_s must be a number in (0, 3600]")
    hints = data.get("hints") or {}
    if not isinstance(hints, dict) or not all(
            isinstance(k, str) and is_num(v) for k, v in hints.items()):
        raise PlanError("plan.hints must be an object of numbers")
    raw_cells = data.get("cells")
    if not isinstance(raw_cells, list):
        raise PlanError("plan.cells must be a list")
    cells = [parse_cell(raw, "cells[%d]" % i) for i, raw in enumerate(raw_cells)]
    seed = data.get("seed")
    if seed is not None and not isinstance(seed, str):
        raise PlanError("plan.seed must be a string")
    host_lock = data.get("host_lock")
    if host_lock is not None:
        host_lock = parse_host_lock(host_lock)
    return Plan(float(keepalive_s), tuple(cells), bool(data.get("child", False)), dict(hints),
                seed, host_lock)


def parse_host_lock(data):
    """The plan's ``host_lock`` (who measures, how long to wait for the host, the owner
    marker of the working directory; see harness.agent.turn), checked."""
    if not isinstance(data, dict):
        raise PlanError("plan.host_lock must be an object")
    for key in ("sweep", "controller"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise PlanError("plan.host_lock.%s must be a non-empty string" % key)
    if not is_num(data.get("wait_s")) or data["wait_s"] < 0:
        raise PlanError("plan.host_lock.wait_s must be a number >= 0")
    for key in ("stale_s", "heartbeat_s"):
        if data.get(key) is not None and not (is_num(data[key]) and data[key] > 0):
            raise PlanError("plan.host_lock.%s must be a number > 0" % key)
    if data.get("keep_s") is not None and not (is_num(data["keep_s"]) and data["keep_s"] >= 0):
        raise PlanError("plan.host_lock.keep_s must be a number >= 0")
    if data.get("owner") is not None and not isinstance(data["owner"], dict):
        raise PlanError("plan.host_lock.owner must be an object")
    return dict(data)


# The fields every cell carries and the optional ones, each with its check.
_REQUIRED = (("cell_id", lambda v: isinstance(v, str) and v),
             ("workload", lambda v: isinstance(v, str) and v),
             ("implementation", lambda v: isinstance(v, str) and _IMPL_RE.match(v)),
             ("model", lambda v: isinstance(v, str) and v),
             ("workers", lambda v: is_int(v) and v >= 1),
             ("params", lambda v: isinstance(v, dict)),
             ("warmups", lambda v: is_int(v) and v >= 0),
             ("repeats", lambda v: is_int(v) and v >= 1),
             ("timeout_s", lambda v: is_num(v) and v > 0))
_OPTIONAL = (("min_repeats", lambda v: is_int(v) and v >= 1),
             ("max_repeats", lambda v: is_int(v) and v >= 1),
             ("target_rel_ci", lambda v: is_num(v) and v > 0),
             ("budget_s", lambda v: is_num(v) and v > 0),
             ("env", lambda v: isinstance(v, dict) and all(
                 isinstance(k, str) and _ENV_NAME_RE.match(k) and isinstance(x, str)
                 for k, x in v.items())),
             ("prior", lambda v: isinstance(v, list) and all(
                 isinstance(x, list) and len(x) == 2 and is_int(x[0]) and x[0] >= 0
                 and is_num(x[1]) and x[1] >= 0 for x in v)),
             ("group", lambda v: isinstance(v, str) and v))


def parse_cell(raw, where):
    """A :class:`Cell` from one decoded cell of the plan (``where`` names it in errors)."""
    if not isinstance(raw, dict):
        raise PlanError("%s must be an object" % where)
    for key, ok in _REQUIRED:
        if key not in raw:
            raise PlanError("%s lacks %r" % (where, key))
        if not ok(raw[key]):
            raise PlanError("%s.%s has an invalid value %r" % (where, key, raw[key]))
    for key, value in raw["params"].items():
        if not isinstance(value, (str, int, float, bool)):
            raise PlanError("%s.params.%s must be a number, string or bool" % (where, key))
        if key in AGENT_PARAMS and not AGENT_PARAMS[key](value):
            raise PlanError("%s.params.%s has an invalid value %r" % (where, key, value))
    for key, ok in _OPTIONAL:
        if raw.get(key) is not None and not ok(raw[key]):
            raise PlanError("%s.%s has an invalid value %r" % (where, key, raw[key]))
    min_r = raw.get("min_repeats") or raw["repeats"]
    max_r = raw.get("max_repeats") or max(min_r, raw["repeats"])
    if max_r < min_r:
        raise PlanError("%s: max_repeats %d < min_repeats %d" % (where, max_r, min_r))
    return Cell(raw["cell_id"], raw["workload"], raw["implementation"],
                raw["model"], raw["workers"], dict(raw["params"]),
                raw["warmups"], raw["repeats"], float(raw["timeout_s"]),
                min_r, max_r, raw.get("target_rel_ci"), raw.get("budget_s"),
                dict(raw.get("env") or {}),
                tuple((int(b), float(x)) for b, x in raw.get("prior") or ()),
                raw.get("group"))


def grace(cell):
    """How long past its ``timeout_s`` a repeat of ``cell`` may run before the watchdog
    ends the agent: 1 s + 10 % of the timeout, at most :data:`WATCHDOG_GRACE_S`."""
    return min(WATCHDOG_GRACE_S, 1.0 + 0.1 * cell.timeout_s)
