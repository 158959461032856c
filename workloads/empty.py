"""Empty tasks: the cost of one task through each model (its overhead per task).

``tasks`` tasks that return their argument; the per-task overhead of a model is
its median wall time divided by ``tasks`` (view ``overheads``), and the pool
start-up is in ``extra.startup_s`` (view ``spawn_cost``).
"""

from workloads import make_setup


def empty_task(x):
    return x


task = empty_task


async def atask(x):
    return x


def setup(params, workdir):
    tasks = int(params.get("tasks", 100))
    if tasks <= 0:
        raise ValueError("tasks must be positive")
    return make_setup(dict(params, tasks=tasks), range(tasks))


def check(setup, results):
    if list(results) != list(setup.args):
        raise AssertionError("empty tasks returned other values")
    return {}


def teardown(setup):
    pass
