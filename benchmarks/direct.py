"""The guide's tasks timed directly: a plain stdlib script, nothing from harness.

    python benchmarks/direct.py cpu --n 2000000 --tasks 8 --workers 2 --repeats 7
    python benchmarks/direct.py net --delay 0.1 --tasks 32 --workers 16 --repeats 7

Each model runs the batch the way a user would write it (create the pool, map the
tasks, shut it down) inside the timed region, after one warmup. Prints one JSON
object: {model: {"median_s": ..., "samples": [...]}}. The network mode starts its
own delaying HTTP/1.1 server on 127.0.0.1 in a child process.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import statistics
import sys
import time
import urllib.request


def cpu_task(n: int) -> int:
    return sum(i * i for i in range(n))


# --------------------------------------------------------------- the delay server

def _serve(delay: float, ready: multiprocessing.connection.Connection) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            await asyncio.sleep(delay)
            body = b"x" * 256
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                         % len(body) + body)
            await writer.drain()
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048)
        ready.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> int:
    with _OPENER.open(url, timeout=30) as response:
        return len(response.read())


async def afetch(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return len(data.split(b"\r\n\r\n", 1)[1])


# --------------------------------------------------------------- the models

def run_model(model: str, fn, args: list, workers: int, afn=None) -> list:
    if model == "sequential":
        return [fn(a) for a in args]
    if model == "threads":
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(fn, args))
    if model == "processes":
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(fn, args))
    if model == "mp_pool":
        with multiprocessing.Pool(workers) as pool:
            return pool.map(fn, args)
    if model == "asyncio":
        async def main() -> list:
            sem = asyncio.Semaphore(workers)

            async def one(a):
                async with sem:
                    return await afn(a) if afn else fn(a)
            return await asyncio.gather(*(one(a) for a in args))
        return asyncio.run(main())
    if model == "asyncio_to_thread":
        async def main2() -> list:
            loop = asyncio.get_running_loop()
            loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=workers))
            return await asyncio.gather(*(asyncio.to_thread(fn, a) for a in args))
        return asyncio.run(main2())
    raise SystemExit(f"unknown model {model}")


def time_model(model: str, fn, args: list, workers: int, repeats: int, afn=None) -> list[float]:
    run_model(model, fn, args, workers, afn)  # one warmup
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_model(model, fn, args, workers, afn)
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["cpu", "net"])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--workers", type=json.loads, default={},
                        help='JSON {model: workers}, e.g. \'{"threads": 16}\'')
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", default="sequential,threads,processes,mp_pool,asyncio")
    ns = parser.parse_args()
    out: dict[str, dict] = {}
    server = None
    if ns.kind == "cpu":
        fn, afn, args = cpu_task, None, [ns.n] * ns.tasks
    else:
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(ns.delay, child), daemon=True)
        server.start()
        port = parent.recv()
        fn = fetch
        args = [f"http://127.0.0.1:{port}/delay/{i}" for i in range(ns.tasks)]

        async def afn(url: str) -> int:
            return await afetch(port, url.split(str(port), 1)[1])
    try:
        for model in ns.models.split(","):
            workers = int(ns.workers.get(model, 1 if model == "sequential" else 2))
            samples = time_model(model, fn, args, workers, ns.repeats, afn)
            out[model] = {"median_s": statistics.median(samples), "workers": workers,
                          "samples": samples}
    finally:
        if server is not None:
            server.kill()
            server.join(5)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
