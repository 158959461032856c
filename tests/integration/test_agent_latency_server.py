"""The network workload's latency server: a separate process that holds 1,000 connections."""

import asyncio
import os
import resource
import time

import pytest

from workloads import net


def _raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def _thousand(url, count, hold_s):
    host_port = url.split("://", 1)[1]
    host, _, port = host_port.partition(":")
    conns = []
    try:
        for _ in range(count):  # open them all before any answer can arrive
            conns.append(await asyncio.wait_for(asyncio.open_connection(host, int(port)), 30))
        opened = time.perf_counter()
        for i, (_reader, writer) in enumerate(conns):
            writer.write(b"GET /delay/%d HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                         % (i, host_port.encode()))

        async def answer(i, reader):
            data = await asyncio.wait_for(reader.read(), 60)
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:40]
            assert body == net.body_for(i, 64)
            return True

        results = await asyncio.gather(*(answer(i, r) for i, (r, _w) in enumerate(conns)))
        return results, time.perf_counter() - opened
    finally:
        for _reader, writer in conns:
            writer.close()


@pytest.mark.slow
def test_server_holds_a_thousand_concurrent_connections():
    _raise_nofile(4096)
    hold_s = 0.5
    with net.LatencyServer(hold_s, 64) as server:
        assert server.pid != os.getpid()
        results, elapsed = asyncio.run(_thousand(server.url, 1000, hold_s))
        assert results == [True] * 1000
        # all 1,000 were open while the server waited: answered concurrently, not serially
        assert elapsed < 1000 * hold_s
        proc = server.process
    assert server.process is None
    assert not proc.is_alive()


def test_server_process_is_stopped_by_teardown(tmp_path):
    setup = net.setup({"delay_s": 0.001, "tasks": 3}, str(tmp_path))
    try:
        proc = setup.state.process
        assert setup.exclude_pids == (proc.pid,)
        results = [net.fetch(arg) for arg in setup.args]
        extra = net.check(setup, results)
        assert set(extra) == {"latency_p50_s", "latency_p95_s", "latency_p99_s"}

        async def fetch_all():
            return await asyncio.wait_for(
                asyncio.gather(*(net.afetch(a) for a in setup.args)), 30)

        results_async = asyncio.run(fetch_all())
        net.check(setup, results_async)
        bad = [(i, b"forged", lat) for i, _body, lat in results]
        with pytest.raises(AssertionError):
            net.check(setup, bad)
    finally:
        net.teardown(setup)
    assert setup.state.process is None
    assert not proc.is_alive() and proc.exitcode is not None
