"""The ``harness`` command line: a thin typer layer over the library.

``app`` holds the application, the shared options and ``main`` (the one place
HarnessError becomes one line and an exit status); each other module holds the
commands of one area and registers them on ``app`` when imported here, in the
order ``harness --help`` lists them.
"""

# isort: off
from harness.cli import sweep  # noqa: F401  (registers sweep, sweeps, matrix)
from harness.cli import probe  # noqa: F401
from harness.cli import query  # noqa: F401  (sql, compare, report)
from harness.cli import workloads  # noqa: F401
from harness.cli import provision  # noqa: F401
from harness.cli import interchange  # noqa: F401  (export, import pyperf)
from harness.cli import check  # noqa: F401
# isort: on
from harness.cli.app import app, main

__all__ = ["app", "main"]
