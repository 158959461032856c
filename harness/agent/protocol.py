"""The versioned JSON-lines protocol between agent and controller.

The agent writes one JSON object per line on stdout; every object has a
``type``. The controller validates each line with :func:`parse_line`; a line
that does not validate becomes a :class:`ProtocolViolation`, never a traceback.

Message types (protocol version 1):

    hello      {"type", "protocol", "agent_version", "python"}      first line, always
    env        {"type", "env": {fingerprint fields}}                 probe result
    cell_start {"type", "cell_id", "workload", "model", "workers"}
    sample     {"type", "cell_id", "repeat", "warmup", "wall_s", "cpu_user_s",
                "cpu_sys_s", "peak_rss_bytes", "ok", "error", "params", "extra"}
               optional: "block", "block_pos" (the interleaved block of a timed
               repeat and its position in it), "block_group" (the cells that share
               a baseline), "probe_s" (the speed probe timed just before the repeat)
    cell_done  {"type", "cell_id", "status", "reason", "params"}
               status is one of ok, failed, not_applicable, timeout
    error      {"type", "message"}                                   agent-level error
    keepalive  {"type", "t"}                                         at least every few s
    waiting    {"type", "sweep", "controller", "since"}              the host lock is held
               by that sweep: the agent waits (sent about every keepalive_s)
    busy       {"type", "sweep", "controller", "since", "waited_s"}  the agent gave up
               waiting for the host lock; it measures nothing and sends eof
    note       {"type", "message"}                                   something the user
               should see (e.g. dead sweeps' working directories removed)
    eof        {"type", "cells"}                                     last line, always

Version history:
    1  first version.
    2  cells of one group run interleaved in blocks: several cell_start lines may
       come before their samples, which carry block, block_pos, block_group and
       probe_s; a plan's cells carry ``group`` and ``prior`` is [block, wall_s] pairs.
    3  the host lock: a plan (and ``noise``'s optional second argument) may carry
       ``host_lock``; waiting, busy and note messages.

This module is shared: the agent imports it to write lines, the controller to
read them. Stdlib only, Python 3.9+.
"""

import json
import math

PROTOCOL_VERSION = 3
AGENT_VERSION = "0.1.0"  # the agent's own version, sent in ``hello``

CELL_STATUSES = ("ok", "failed", "not_applicable", "timeout")
# The execution models a plan's cell may name, in the matrix's column order.
MODELS = ("sequential", "threads", "processes", "mp_pool", "asyncio",
          "asyncio_to_thread", "interpreters")

_NUM = (int, float)
_OPT_STR = (str, type(None))

# For every type: field name -> accepted Python types (after json.loads).
SCHEMA = {
    "hello": {"protocol": (int,), "agent_version": (str,), "python": (str,)},
    "env": {"env": (dict,)},
    "cell_start": {"cell_id": (str,), "workload": (str,), "model": (str,), "workers": (int,)},
    "sample": {
        "cell_id": (str,),
        "repeat": (int,),
        "warmup": (bool,),
        "wall_s": _NUM + (type(None),),
        "cpu_user_s": _NUM + (type(None),),
        "cpu_sys_s": _NUM + (type(None),),
        "peak_rss_bytes": (int, type(None)),
        "ok": (bool,),
        "error": _OPT_STR,
        "params": (dict,),
        "extra": (dict,),
    },
    "cell_done": {
        "cell_id": (str,),
        "status": (str,),
        "reason": _OPT_STR,
        "params": (dict,),
    },
    "error": {"message": (str,)},
    "keepalive": {"t": _NUM},
    "eof": {"cells": (int,)},
    "waiting": {"sweep": (str,), "controller": (str,), "since": (str,)},
    "busy": {"sweep": (str,), "controller": (str,), "since": (str,), "waited_s": _NUM},
    "note": {"message": (str,)},
}
# Fields a message may carry (absent or null), with their accepted types.
OPTIONAL = {
    "sample": {
        "block": (int, type(None)),
        "block_pos": (int, type(None)),
        "block_group": _OPT_STR,
        "probe_s": _NUM + (type(None),),
    },
}


class ProtocolViolation(ValueError):
    """A line that is not a valid protocol message."""


def encode(msg_type, **fields):
    """One protocol line (without the newline) for ``msg_type``; validated."""
    msg = {"type": msg_type}
    msg.update(fields)
    validate(msg)
    try:
        return json.dumps(msg, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:  # NaN or an object nested in params/extra/env
        raise ProtocolViolation("%s message cannot be encoded: %s" % (msg_type, exc)) from None


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def validate(msg):
    """Raise ProtocolViolation unless ``msg`` is a well-formed message."""
    if not isinstance(msg, dict):
        raise ProtocolViolation("a message must be a JSON object")
    msg_type = msg.get("type")
    if msg_type not in SCHEMA:
        raise ProtocolViolation("unknown message type %r" % (msg_type,))
    fields = SCHEMA[msg_type]
    for name, kinds in fields.items():
        if name not in msg:
            raise ProtocolViolation("%s message lacks field %r" % (msg_type, name))
        value = msg[name]
        # bool is an int subclass: only accept it where bool is named.
        if isinstance(value, bool) and bool not in kinds:
            raise ProtocolViolation("%s.%s must not be a boolean" % (msg_type, name))
        if not isinstance(value, kinds):
            raise ProtocolViolation(
                "%s.%s has type %s" % (msg_type, name, type(value).__name__)
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolViolation("%s.%s is not finite" % (msg_type, name))
    for name, kinds in OPTIONAL.get(msg_type, {}).items():
        value = msg.get(name)
        if value is None:
            continue
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise ProtocolViolation(
                "%s.%s has type %s" % (msg_type, name, type(value).__name__))
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolViolation("%s.%s is not finite" % (msg_type, name))
    if msg_type == "cell_done" and msg["status"] not in CELL_STATUSES:
        raise ProtocolViolation("cell_done.status %r is not one of %s" % (
            msg["status"], ", ".join(CELL_STATUSES)))
    if msg_type == "sample":
        for name in ("wall_s", "cpu_user_s", "cpu_sys_s", "peak_rss_bytes", "block",
                     "block_pos", "probe_s"):
            if msg.get(name) is not None and msg[name] < 0:
                raise ProtocolViolation("sample.%s is negative" % name)
        if msg["ok"] and msg["wall_s"] is None:
            raise ProtocolViolation("an ok sample needs wall_s")
    return msg


def parse_line(line):
    """Decode and validate one line (str or bytes); raise ProtocolViolation."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolViolation("line is not UTF-8: %s" % exc) from None
    line = line.strip()
    if not line:
        raise ProtocolViolation("empty line")
    try:
        # NaN/Infinity are rejected anywhere, also nested in params, extra or env.
        msg = json.loads(line, parse_constant=_reject_constant)
    except ValueError as exc:
        raise ProtocolViolation("line is not JSON: %s" % exc) from None
    return validate(msg)
