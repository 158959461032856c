"""The agent's line protocol: malformed lines are ProtocolViolation; big streams parse."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.agent import protocol
from harness.agent.protocol import ProtocolViolation, encode, parse_line

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = {
    "type": "sample", "cell_id": "c1", "repeat": 0, "warmup": False, "wall_s": 0.5,
    "cpu_user_s": 0.4, "cpu_sys_s": 0.01, "peak_rss_bytes": 1000, "ok": True, "error": None,
    "params": {"n": 3}, "extra": {},
}


def _line(**changes):
    msg = dict(SAMPLE)
    msg.update(changes)
    return json.dumps(msg)


def test_valid_sample_parses():
    assert parse_line(_line())["cell_id"] == "c1"
    assert parse_line(_line().encode())["repeat"] == 0


@pytest.mark.parametrize("line", [
    "not json",
    "{\"type\": \"sample\"",
    "[1, 2]",
    "",
    "   ",
    json.dumps({"type": "bogus"}),
    json.dumps({"protocol": 2}),
    json.dumps({"type": "eof"}),
    json.dumps({"type": "eof", "cells": "3"}),
    json.dumps({"type": "eof", "cells": True}),
    json.dumps({"type": "keepalive", "t": None}),
    json.dumps({"type": "cell_done", "cell_id": "x", "status": "great", "reason": None,
                "params": {}}),
    '{"type": "keepalive", "t": NaN}',
    '{"type": "keepalive", "t": Infinity}',
    '{"type": "cell_done", "cell_id": "x", "status": "ok", "reason": null, '
    '"params": {"x": NaN}}',
    '{"type": "env", "env": {"loadavg": [-Infinity, 1, 2]}}',
    _line(repeat=True),
    _line(repeat=1.5),
    _line(warmup=1),
    _line(wall_s="0.5"),
    _line(wall_s=-1.0),
    _line(ok=True, wall_s=None),
    _line(params=[]),
    _line(peak_rss_bytes=1.5),
    _line(error=3),
])
def test_malformed_lines_are_violations(line):
    with pytest.raises(ProtocolViolation):
        parse_line(line)


def test_missing_field_is_violation():
    for field in SAMPLE:
        if field == "type":
            continue
        msg = dict(SAMPLE)
        del msg[field]
        with pytest.raises(ProtocolViolation):
            parse_line(json.dumps(msg))


def test_non_utf8_is_violation():
    with pytest.raises(ProtocolViolation):
        parse_line(b"\xff\xfe{}")


def test_encode_refuses_nan_and_bad_types():
    with pytest.raises(ProtocolViolation):
        encode("keepalive", t=float("nan"))
    with pytest.raises(ProtocolViolation):
        encode("eof", cells=False)
    with pytest.raises(ProtocolViolation):
        encode("env", env={"x": float("inf")})
    with pytest.raises(ProtocolViolation):
        encode("env", env={"x": object()})
    assert json.loads(encode("eof", cells=2)) == {"type": "eof", "cells": 2}


_WRITER = r"""
import sys
sys.path.insert(0, sys.argv[1])
from harness.agent.protocol import encode
target = int(sys.argv[2])
out = sys.stdout.buffer
written = 0
i = 0
while written < target:
    line = (encode("sample", cell_id="c%d" % i, repeat=i, warmup=False, wall_s=0.25,
                   cpu_user_s=0.1, cpu_sys_s=0.0, peak_rss_bytes=4096, ok=True, error=None,
                   params={"pad": "x" * (i % 300)}, extra={}) + "\n").encode()
    out.write(line)
    written += len(line)
    i += 1
out.write((encode("eof", cells=i) + "\n").encode())
out.flush()
"""


def test_ten_mib_stream_through_short_reads():
    target = 10 * 1024 * 1024
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(ROOT), str(target)],
                            stdout=subprocess.PIPE)
    fd = proc.stdout.fileno()
    buf = b""
    parsed = 0
    total = 0
    last = None
    try:
        for _ in range(target):  # bounded: far more iterations than 7-byte chunks needed
            chunk = os.read(fd, 7)
            if not chunk:
                break
            total += len(chunk)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                last = parse_line(line)
                parsed += 1
    finally:
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
    assert buf == b""
    assert total >= target
    assert last["type"] == "eof"
    assert last["cells"] == parsed - 1


def test_schema_covers_every_documented_type():
    assert set(protocol.SCHEMA) == {"hello", "env", "cell_start", "sample", "cell_done",
                                    "error", "keepalive", "eof", "waiting", "busy", "note"}
    for name in protocol.SCHEMA:
        assert f"    {name} " in protocol.__doc__, name
