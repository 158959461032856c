"""What the agent writes: protocol lines through one :class:`LineWriter`, the ``hello``
line, a sample's fields, one-line error text (stdlib only, Python 3.9+).
"""

import threading
import time

from harness.agent import protocol


class LineWriter:
    """Protocol lines to one stream, whole lines only, flushed, thread-safe."""

    def __init__(self, stream):
        self._stream = stream
        self.lock = threading.RLock()
        self.last_write = time.monotonic()
        self.closed = False

    def send(self, msg_type, **fields):
        line = protocol.encode(msg_type, **fields)
        with self.lock:
            if self.closed:
                return
            self._stream.write(line + "\n")
            self._stream.flush()
            self.last_write = time.monotonic()

    def close(self):
        with self.lock:
            self.closed = True


def hello(out):
    import platform  # noqa: PLC0415

    out.send("hello", protocol=protocol.PROTOCOL_VERSION, agent_version=protocol.AGENT_VERSION,
             python=platform.python_version())


def one_line_error(exc):
    """``Type: message`` on one line; the first leaf of an exception group."""
    for _ in range(10):
        inner = getattr(exc, "exceptions", None)
        if not inner:
            break
        exc = inner[0]
    text = str(exc).replace("\r", " ").replace("\n", " ").strip()
    name = type(exc).__name__
    return ("%s: %s" % (name, text) if text else name)[:2000]


def sample_fields(cell, repeat, warmup, params, measurement=None, ok=False, error=None,
                  extra=None, block=None, block_pos=None, probe_s=None):
    """The fields of one ``sample`` line of ``cell`` (``measurement``: a
    harness.agent.measure result, None when the repeat failed)."""
    m = measurement
    return dict(cell_id=cell.cell_id, repeat=repeat, warmup=warmup,
                wall_s=m.wall_s if m else None,
                cpu_user_s=m.cpu_user_s if m else None,
                cpu_sys_s=m.cpu_sys_s if m else None,
                peak_rss_bytes=m.peak_rss_bytes if m else None,
                ok=ok, error=error, params=params, extra=clean_extra(extra or {}),
                block=block, block_pos=block_pos, block_group=cell.group,
                probe_s=None if probe_s is None else round(probe_s, 9))


def clean_extra(extra):
    """``extra`` with string keys and NaN/infinite floats as None (valid JSON)."""
    clean = {}
    for key, value in extra.items():
        if isinstance(value, float) and (value != value or value in (float("inf"),
                                                                     float("-inf"))):
            value = None
        clean[str(key)] = value
    return clean
