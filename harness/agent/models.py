"""The execution models: run every task of a workload one way.

``run(model, module, setup, workers, start_method, chunksize=None, cpus=None)``
runs the whole batch once
(the timed region of one repeat: create the pool or loop, run all tasks, shut it
down) and returns ``(results, extra)``, where ``extra`` holds ``startup_s`` for
pool models: the time to create the pool and have its workers answer a no-op
(``workloads.noop``), which is part of the timed region, as for a user.
``chunksize`` is passed to ``map`` (processes, mp_pool; default 1); ``cpus``
pins the run (``os.sched_setaffinity``): each pool worker through its
initializer, the agent's own thread (and the threads it starts) otherwise.

Model names are exact: sequential, threads, processes, mp_pool, asyncio,
asyncio_to_thread, interpreters.

``asyncio`` (with ``ssl``, ~20 ms of an agent's start) is imported only for a cell of an
asyncio model, by :func:`not_applicable_reason`, which the runner calls before the cell's
timed region: an agent whose plan has no such cell never pays it.
"""

import concurrent.futures
import contextlib
import multiprocessing
import os
import platform
import sys
import time

import workloads
from harness.agent import protocol

MODELS = protocol.MODELS
PROCESS_MODELS = ("processes", "mp_pool")
ASYNCIO_MODELS = ("asyncio", "asyncio_to_thread")
asyncio = None  # the module, once a cell of an asyncio model needs it


class NotApplicable(Exception):
    """The model cannot run here (reason in the message)."""


def not_applicable_reason(model, module):
    """Why ``model`` cannot run ``module`` on this interpreter, or None."""
    if model not in MODELS:
        return None  # unknown models are a plan error, reported by the caller
    supported = getattr(module, "MODELS", MODELS)
    if model not in supported:
        return "workload %s does not support model %s" % (module.__name__, model)
    if model in ASYNCIO_MODELS:
        _load_asyncio()
    if model == "interpreters" and not hasattr(concurrent.futures,
                                               "InterpreterPoolExecutor"):
        return "InterpreterPoolExecutor needs Python 3.14+ (this is %s)" % (
            platform.python_version())
    return None


def _load_asyncio():
    global asyncio
    if asyncio is None:
        import asyncio as module  # noqa: PLC0415 - only for asyncio cells (see above)

        asyncio = module
    return asyncio


def default_start_method():
    return multiprocessing.get_start_method(allow_none=False)


def pin_worker(cpus):
    """Pool initializer: restrict this worker to ``cpus``."""
    if cpus:
        os.sched_setaffinity(0, set(cpus))


def _pool_init(cpus):
    return (pin_worker, (tuple(cpus),)) if cpus else (None, ())


def _warm_executor(executor, workers):
    futures = [executor.submit(workloads.noop, i) for i in range(workers)]
    for fut in futures:
        fut.result()


def run_sequential(module, setup, workers, start_method, chunksize=None, cpus=None):
    return [module.task(arg) for arg in setup.args], {}


def _run_executor(executor_factory, module, setup, workers, chunksize=None):
    t0 = time.perf_counter()
    with executor_factory() as executor:
        _warm_executor(executor, workers)
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = list(executor.map(module.task, setup.args, chunksize=chunksize or 1))
        tasks_s = time.perf_counter() - t1
    return results, {"startup_s": startup, "tasks_s": tasks_s}


def run_threads(module, setup, workers, start_method, chunksize=None, cpus=None):
    return _run_executor(
        lambda: concurrent.futures.ThreadPoolExecutor(max_workers=workers),
        module, setup, workers)


def run_processes(module, setup, workers, start_method, chunksize=None, cpus=None):
    ctx = multiprocessing.get_context(start_method)
    init, initargs = _pool_init(cpus)
    return _run_executor(
        lambda: concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=init, initargs=initargs),
        module, setup, workers, chunksize)


def run_interpreters(module, setup, workers, start_method, chunksize=None, cpus=None):
    factory = getattr(concurrent.futures, "InterpreterPoolExecutor", None)
    if factory is None:
        raise NotApplicable(not_applicable_reason("interpreters", module))
    # A new interpreter does not see the agent's sys.path (the zipapp, the repo root):
    # the builtin exec, picklable by reference, puts it there before any task runs.
    init = "import sys\nsys.path[:0] = [p for p in %r if p not in sys.path]\n" % (
        list(sys.path),)
    return _run_executor(lambda: factory(max_workers=workers, initializer=exec,
                                         initargs=(init,)),
                         module, setup, workers)


def run_mp_pool(module, setup, workers, start_method, chunksize=None, cpus=None):
    ctx = multiprocessing.get_context(start_method)
    init, initargs = _pool_init(cpus)
    t0 = time.perf_counter()
    pool = ctx.Pool(workers, initializer=init, initargs=initargs)
    try:
        pool.map(workloads.noop, range(workers), chunksize=1)
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = pool.map(module.task, setup.args, chunksize=chunksize or 1)
        tasks_s = time.perf_counter() - t1
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()  # reaps the workers inside the window
    return results, {"startup_s": startup, "tasks_s": tasks_s}


async def _gather_all(coros):
    """Run coroutines concurrently: TaskGroup on 3.11+, gather before."""
    task_group = getattr(asyncio, "TaskGroup", None)
    if task_group is None:
        return list(await asyncio.gather(*coros))
    async with task_group() as tg:
        tasks = [tg.create_task(c) for c in coros]
    return [t.result() for t in tasks]


def run_asyncio(module, setup, workers, start_method, chunksize=None, cpus=None):
    _load_asyncio()  # already loaded by not_applicable_reason, outside the timed region
    atask = getattr(module, "atask", None)

    async def main():
        sem = asyncio.Semaphore(max(1, workers))

        async def one(arg):
            async with sem:
                if atask is not None:
                    return await atask(arg)
                return module.task(arg)  # blocking inside the coroutine, as written

        return await _gather_all([one(arg) for arg in setup.args])

    return asyncio.run(main()), {}


def run_asyncio_to_thread(module, setup, workers, start_method, chunksize=None, cpus=None):
    _load_asyncio()
    state = {}

    async def main():
        t0 = time.perf_counter()
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers))
        asyncio.get_running_loop().set_default_executor(executor)
        state["startup_s"] = time.perf_counter() - t0
        return await _gather_all([asyncio.to_thread(module.task, arg) for arg in setup.args])

    # asyncio.run shuts the default executor down before returning.
    results = asyncio.run(main())
    return results, {"startup_s": state.get("startup_s", 0.0)}


RUNNERS = {
    "sequential": run_sequential,
    "threads": run_threads,
    "processes": run_processes,
    "mp_pool": run_mp_pool,
    "asyncio": run_asyncio,
    "asyncio_to_thread": run_asyncio_to_thread,
    "interpreters": run_interpreters,
}


@contextlib.contextmanager
def _pinned_here(cpus):
    """Pin the calling thread (and threads it starts) to ``cpus``, restored after."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run(model, module, setup, workers, start_method, chunksize=None, cpus=None):
    """Run all tasks of ``setup`` under ``model``; ``(results, extra)``."""
    if model in PROCESS_MODELS:
        return RUNNERS[model](module, setup, workers, start_method, chunksize, cpus)
    with _pinned_here(cpus):
        return RUNNERS[model](module, setup, workers, start_method, chunksize, cpus)
