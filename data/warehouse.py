"""``HOME/warehouse.duckdb``: the views analysts, the app and tests query, over the lake's files.

The file holds views only, never data. The snapshot views name the snapshots' folders
(immutable Parquet, :mod:`data.lake`) and take the lineage their rows share from the manifest;
after each publish the pipeline writes a new file next to it and renames it over the old one, so
it never holds this file open, and any number of readers may open it read-only
(``duckdb.connect(path, read_only=True)``) at any time: a reader sees the previous snapshots or
the new ones, complete.

Views (``data/README.md`` documents every column):

- ``customers``, ``projects``, ``time_entries``, ``invoices``: the current snapshot of every system,
  one row per record, with ``system``, ``snapshot_id``, ``run_id`` and ``extracted_at``;
- ``customers_history`` (and the same for the other objects): every published snapshot;
- ``snapshots``: the manifest, one row per published snapshot (``current`` flags the current ones);
- ``quarantine``: records of current snapshots refused by the mapping, with ``object`` and ``reason``;
- ``breaks``: the breaks of the latest live reconciliation run (and data-quality run), with
  ``break_ledger`` (every break ever seen: first seen, cleared, reopened) and
  ``reconciliation_runs`` (per rule and run), ``check_results`` (the latest data-quality checks); see
  :mod:`data.breaks`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from data.breaks import break_views
from data.canonical import CANONICAL
from data.lake import EMPTY, MANIFEST_COLUMNS, Lake, SnapshotEntry
from data.sql import sql_literal

__all__ = ["VIEWS_VERSION", "connect", "ensure_warehouse", "warehouse_path"]

#: Bump when a view definition changes, so existing warehouse files are rebuilt.
VIEWS_VERSION = 6


def warehouse_path(home: Path) -> Path:
    """``HOME/warehouse.duckdb``."""
    return home.resolve() / "warehouse.duckdb"


def connect(home: Path) -> duckdb.DuckDBPyConnection:
    """Open ``HOME/warehouse.duckdb`` read-only, on the current snapshots (rebuilt if outdated).

    Raises:
        duckdb.Error: the file cannot be opened.
    """
    con = duckdb.connect(str(ensure_warehouse(home)), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return con


def ensure_warehouse(home: Path) -> Path:
    """Create the lake layout and (re)build ``HOME/warehouse.duckdb`` if missing or outdated.

    Outdated means: other view definitions, another lake path (the home moved), other current
    snapshots than the manifest's, or another latest break run. The pipeline calls this after
    every publish. Returns the path.
    """
    lake = Lake(home)
    lake.ensure_layout()
    path = warehouse_path(home)
    entries = lake.entries()
    break_stmts, break_key = break_views(home)
    built_for = (VIEWS_VERSION, str(lake.root), f"{_current_key(entries)} | breaks {break_key}")
    if path.exists() and _built_for(path) == built_for:
        return path
    # Unique per builder: the scheduler's run and the app's reader may rebuild in one process at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    con = duckdb.connect(str(tmp))
    try:
        for sql in [*view_statements(lake, entries), *break_stmts]:
            con.execute(sql)
        con.execute(
            "CREATE TABLE tieout_meta AS SELECT ? AS views_version, ? AS lake_root, ? AS current_snapshots",
            list(built_for),
        )
        con.execute("CHECKPOINT")
        con.close()
        os.replace(tmp, path)
    except BaseException:
        con.close()
        for left in (tmp, tmp.with_name(tmp.name + ".wal")):
            left.unlink(missing_ok=True)
        raise
    return path


def view_statements(lake: Lake, entries: list[SnapshotEntry]) -> list[str]:
    """The ``CREATE VIEW`` statements of the warehouse, over ``lake``'s files and its ``entries``.

    A snapshot view is the empty seed file (which gives it its columns) and one ``UNION ALL``
    branch per snapshot (:meth:`Lake.snapshot_query`: its folder, named explicitly, and its
    lineage from the manifest entry): the current snapshots, or for ``<object>_history`` every
    published one. (Joining all files to the manifest inside one query races a publish: the file
    listing and the manifest are read at different moments, and a reader caught between them saw
    no rows at all.) Snapshot folders are immutable and kept, so a reader still holding the
    previous definitions reads the previous snapshots, complete.
    """
    struct = ", ".join(f"{k} {v}" for k, v in MANIFEST_COLUMNS.items())
    manifest = sql_literal(str(lake.manifest_path))
    stmts = [
        "CREATE VIEW snapshots AS SELECT unnest(snapshots, recursive := true) FROM "
        f"read_json({manifest}, columns = {{'version': 'INTEGER', 'snapshots': 'STRUCT({struct})[]'}})"
    ]
    quarantine = []
    for name in CANONICAL:
        published = [e for e in entries if e.object == name]
        current = [e for e in published if e.current]
        seed = f"SELECT * FROM {_parquet([lake.canonical_dir(name, EMPTY, EMPTY)])}"
        for view, shown in ((name, current), (f"{name}_history", published)):
            branches = [seed, *(lake.snapshot_query(e) for e in shown)]
            stmts.append(f"CREATE VIEW {view} AS {' UNION ALL '.join(branches)}")
        bad = [lake.quarantine_dir(name, EMPTY, EMPTY)]
        bad += [lake.quarantine_dir(name, e.system, e.snapshot_id) for e in current if e.quarantined]
        quarantine.append(f"SELECT '{name}' AS object, * FROM {_parquet(bad)}")
    stmts.append("CREATE VIEW quarantine AS " + " UNION ALL ".join(quarantine))
    return stmts


def _parquet(folders: list[Path]) -> str:
    """``read_parquet`` over every Parquet file of ``folders``."""
    return "read_parquet([" + ", ".join(sql_literal(str(f / "*.parquet")) for f in folders) + "])"


def _current_key(entries: list[SnapshotEntry]) -> str:
    # Every publish makes its snapshot current, so this also changes whenever the history views'
    # list of snapshots does.
    return " ".join(sorted(f"{e.object}/{e.system}/{e.snapshot_id}" for e in entries if e.current))


def _built_for(path: Path) -> tuple[int, str, str] | None:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        row = con.execute("SELECT views_version, lake_root, current_snapshots FROM tieout_meta").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return (int(row[0]), str(row[1]), str(row[2])) if row else None
