"""``HOME/warehouse.duckdb``: the views analysts, the app and tests query, over the lake's files.

The file holds views only, never data. Each view reads the lake's Parquet files joined to
``lake/manifest.json`` (:mod:`data.lake`), so a publish changes what the views return without
writing this file: the pipeline never holds it open, and any number of readers may open it
read-only (``duckdb.connect(path, read_only=True)``) at any time. It is rebuilt (to a temporary
file, then renamed over the old one) only when it is missing or its view definitions changed.

Views (``data/README.md`` documents every column):

- ``customers``, ``projects``, ``time_entries``, ``invoices``: the current snapshot of every system,
  one row per record, with ``system``, ``snapshot_id``, ``run_id`` and ``extracted_at``;
- ``customers_history`` (and the same for the other objects): every published snapshot;
- ``snapshots``: the manifest, one row per published snapshot (``current`` flags the current ones);
- ``quarantine``: records of current snapshots refused by the mapping, with ``object`` and ``reason``.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from data.canonical import CANONICAL
from data.lake import MANIFEST_COLUMNS, Lake

__all__ = ["VIEWS_VERSION", "connect", "ensure_warehouse", "warehouse_path"]

#: Bump when a view definition changes, so existing warehouse files are rebuilt.
VIEWS_VERSION = 1


def warehouse_path(home: Path) -> Path:
    """``HOME/warehouse.duckdb``."""
    return home.resolve() / "warehouse.duckdb"


def connect(home: Path) -> duckdb.DuckDBPyConnection:
    """Open ``HOME/warehouse.duckdb`` read-only, building it first if it is missing.

    Raises:
        duckdb.Error: the file cannot be opened.
    """
    path = warehouse_path(home)
    if not path.exists():
        ensure_warehouse(home)
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return con


def ensure_warehouse(home: Path) -> Path:
    """Create the lake layout and (re)build ``HOME/warehouse.duckdb`` if missing or outdated.

    The views embed the absolute path of the lake, so a home folder that moved is rebuilt too.
    Returns the warehouse path.
    """
    lake = Lake(home)
    lake.ensure_layout()
    path = warehouse_path(home)
    if path.exists() and _built_for(path) == (VIEWS_VERSION, str(lake.root)):
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for sql in view_statements(lake):
            con.execute(sql)
        con.execute("CREATE TABLE tieout_meta AS SELECT ? AS views_version, ? AS lake_root",
                    [VIEWS_VERSION, str(lake.root)])  # fmt: skip
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)
    return path


def view_statements(lake: Lake) -> list[str]:
    """The ``CREATE VIEW`` statements of the warehouse, over ``lake``'s files."""
    struct = ", ".join(f"{k} {v}" for k, v in MANIFEST_COLUMNS.items())
    manifest = str(lake.manifest_path)
    stmts = [
        "CREATE VIEW snapshots AS SELECT unnest(snapshots, recursive := true) FROM "
        f"read_json('{manifest}', columns = {{'version': 'INTEGER', 'snapshots': 'STRUCT({struct})[]'}})"
    ]
    quarantine = []
    for name in CANONICAL:
        files = f"read_parquet('{lake.canonical_glob(name)}')"
        stmts.append(
            f"CREATE VIEW {name} AS SELECT c.* FROM {files} AS c SEMI JOIN "
            f"(SELECT system, snapshot_id FROM snapshots WHERE current AND object = '{name}') AS m "
            "USING (system, snapshot_id)"
        )
        stmts.append(
            f"CREATE VIEW {name}_history AS SELECT c.* FROM {files} AS c SEMI JOIN "
            f"(SELECT system, snapshot_id FROM snapshots WHERE object = '{name}') AS m "
            "USING (system, snapshot_id)"
        )
        quarantine.append(
            f"SELECT '{name}' AS object, q.* FROM read_parquet('{lake.quarantine_glob(name)}') AS q "
            "SEMI JOIN "
            f"(SELECT system, snapshot_id FROM snapshots WHERE current AND object = '{name}') AS m "
            "USING (system, snapshot_id)"
        )
    stmts.append("CREATE VIEW quarantine AS " + " UNION ALL ".join(quarantine))
    return stmts


def _built_for(path: Path) -> tuple[int, str] | None:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        row = con.execute("SELECT views_version, lake_root FROM tieout_meta").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return (int(row[0]), str(row[1])) if row else None
