"""The readers' caches brought up to date by the writer: after a sweep, an import, a
compaction or a repair adds or removes files, the file index (``.file-index.json``) and
the view caches (``.views-<digest>.duckdb``) are refreshed by the process that changed
the files, so the next command's first query pays neither the new files' footers nor
the views' binds.

Best effort and safe to race: the index and each cache are written whole (temp file,
rename) and are only caches -- a reader still checks every file's inode, size and mtime
against the index and reads what changed, and a cache is named by everything it
depends on. A warehouse that cannot be written keeps no cache (readers build their
own, as before).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Collection

import duckdb

from harness.errors import DiskFull, WarehouseInputError, WarehouseWarning
from harness.warehouse.index import FileIndex
from harness.warehouse.layout import Layout
from harness.warehouse.stored import sweep_ids as stored_sweep_ids
from harness.warehouse.views import create_views


def warm(layout: Layout, sweep_ids: Collection[str] = ()) -> FileIndex | None:
    """Refresh the file index and make the view caches the next readers will ask for:
    the one over every sweep (``harness sql``) and the one over ``sweep_ids`` alone
    (default: the latest sweep; what compare and report read by default). Returns the
    index (None when the warehouse is missing or not writable). Never raises for a
    cache it could not write."""
    root = layout.root
    if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WarehouseWarning)  # a reader reports damage
        index = FileIndex(root)
        scopes: list[Collection[str] | None] = [None]
        if not sweep_ids:
            sweep_ids = stored_sweep_ids(root, index)[-1:]
        if sweep_ids:
            scopes.append(tuple(sweep_ids))
        for scope in scopes:
            with contextlib.suppress(WarehouseInputError, DiskFull, duckdb.Error, OSError):
                con = duckdb.connect(":memory:")
                try:
                    create_views(con, layout, sweep_ids=scope, index=index)
                finally:
                    con.close()
    return index
