"""Network I/O: HTTP/1.1 requests to a local server that waits before answering.

For each cell the agent starts its own latency server (an asyncio HTTP/1.1
server on 127.0.0.1, port chosen by the OS) in a **separate process** started
with the ``spawn`` method, so the server's CPU is never counted as the client's
(it is reaped after the cell, outside every timed window, and excluded from the
RSS sampling). Every response waits ``delay_s`` (like httpbin's /delay), then
sends a body that depends on the request path, which the client checks.

Blocking models fetch with ``urllib.request`` (no proxies); the ``asyncio``
model uses the small client below on ``asyncio.open_connection``.
"""

import asyncio
import contextlib
import multiprocessing
import signal
import sys
import time
import urllib.request

from workloads import make_setup

SERVER_START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 60.0
MAX_HEADER_LINES = 100
BACKLOG = 4096


def body_for(index, size):
    """The body the server sends for request ``index`` (the client checks it)."""
    head = b"harness %d " % index
    if size <= len(head):
        return head[:size]
    return head + b"x" * (size - len(head))


# ---------------------------------------------------------------- the server

def _raise_nofile_limit():
    try:
        import resource  # noqa: PLC0415
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def _handle(reader, writer, delay_s, body_bytes):
    try:
        request_line = await reader.readline()
        for _ in range(MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
        parts = request_line.split()
        index = 0
        if len(parts) >= 2:
            last = parts[1].rstrip(b"/").rsplit(b"/", 1)[-1]
            if last.isdigit():
                index = int(last)
        await asyncio.sleep(delay_s)
        body = body_for(index, body_bytes)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        pass
    finally:
        writer.close()


async def _serve(delay_s, body_bytes, conn):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, delay_s, body_bytes), "127.0.0.1", 0, backlog=BACKLOG)
    port = server.sockets[0].getsockname()[1]
    conn.send(port)
    conn.close()
    async with server:
        await stop.wait()


def serve(delay_s, body_bytes, conn):
    """Server process entry point: send the port through ``conn``, serve until SIGTERM."""
    sys.stdout = sys.stderr  # stdout belongs to the agent's protocol
    _raise_nofile_limit()
    asyncio.run(_serve(delay_s, body_bytes, conn))


class LatencyServer:
    """The server process of one cell: ``start()``, ``url``, ``stop()``."""

    def __init__(self, delay_s, body_bytes):
        self.delay_s = delay_s
        self.body_bytes = body_bytes
        self.process = None
        self.port = None

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=serve, args=(self.delay_s, self.body_bytes, child),
                                   name="harness-latency-server", daemon=True)
        self.process.start()
        child.close()
        try:
            if not parent.poll(SERVER_START_TIMEOUT_S):
                raise RuntimeError("latency server did not start within %.0f s"
                                   % SERVER_START_TIMEOUT_S)
            self.port = int(parent.recv())
        except BaseException:
            self.stop()
            raise
        finally:
            parent.close()
        return self

    def stop(self):
        proc = self.process
        if proc is None:
            return
        if proc.is_alive():
            proc.terminate()
            proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(10)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ---------------------------------------------------------------- the clients

_OPENER = None


def _opener():
    global _OPENER
    if _OPENER is None:
        _OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return _OPENER


def fetch(arg):
    """Blocking fetch with urllib: ``(index, body, latency_s)``."""
    url, index = arg
    t0 = time.perf_counter()
    with _opener().open("%s/delay/%d" % (url, index), timeout=REQUEST_TIMEOUT_S) as resp:
        body = resp.read()
    return index, body, time.perf_counter() - t0


task = fetch


async def _afetch(url, index):
    host_port = url.split("://", 1)[1]
    host, _, port = host_port.partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(("GET /delay/%d HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                      "User-Agent: harness-agent\r\n\r\n" % (index, host_port)).encode("ascii"))
        await writer.drain()
        status = await reader.readline()
        fields = status.split(None, 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/1.") or fields[1] != b"200":
            raise RuntimeError("bad HTTP status line %r" % status[:80])
        length = None
        for _ in range(MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            body = await reader.read()
        else:
            body = await reader.readexactly(length)
        return body
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def afetch(arg):
    """The asyncio client: ``(index, body, latency_s)``."""
    url, index = arg
    t0 = time.perf_counter()
    body = await asyncio.wait_for(_afetch(url, index), REQUEST_TIMEOUT_S)
    return index, body, time.perf_counter() - t0


atask = afetch


# ---------------------------------------------------------------- interface

def setup(params, workdir):
    delay_s = float(params.get("delay_s", 0.1))
    tasks = int(params.get("tasks", 32))
    body_bytes = int(params.get("body_bytes", 256))
    if delay_s < 0 or tasks <= 0 or body_bytes < 0:
        raise ValueError("delay_s, tasks and body_bytes must be non-negative (tasks > 0)")
    server = LatencyServer(delay_s, body_bytes).start()
    resolved = dict(params, delay_s=delay_s, tasks=tasks, body_bytes=body_bytes)
    args = [(server.url, i) for i in range(tasks)]
    return make_setup(resolved, args, state=server, exclude_pids=(server.pid,))


def _percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def check(setup, results):
    size = setup.params["body_bytes"]
    if len(results) != len(setup.args):
        raise AssertionError("%d responses for %d requests" % (len(results), len(setup.args)))
    for (_, index), (got_index, body, _lat) in zip(setup.args, results):
        if got_index != index or body != body_for(index, size):
            raise AssertionError("response %d has a wrong body (%d bytes)" % (index, len(body)))
    lat = sorted(r[2] for r in results)
    return {"latency_p50_s": _percentile(lat, 0.50), "latency_p95_s": _percentile(lat, 0.95),
            "latency_p99_s": _percentile(lat, 0.99)}


def teardown(setup):
    if setup.state is not None:
        setup.state.stop()

