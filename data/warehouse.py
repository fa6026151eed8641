"""``HOME/warehouse.duckdb``: the views analysts, the app and tests query, over the lake's files.

The file holds views, never the lake's data; besides them only small tables computed when the
file is built: those the KPIs read (``tieout_*``: :func:`_kpi_tables`,
:func:`data.breaks.live_runs_table`, :func:`data.breaks.run_summary_table`) and the runs'
per-rule figures that ``reconciliation_runs`` shows (:func:`data.breaks.rule_runs_table`: a view
over every run's file would open tens of thousands of files per query after a year), each
copied from the previous file where it is unchanged. The snapshot views name the snapshots'
folders (immutable Parquet, :mod:`data.lake`) and take the lineage their rows share from the
manifest; after each publish the pipeline writes a new file next to it and renames it over the
old one, so it never holds this file open, and any number of readers may open it read-only
(``duckdb.connect(path, read_only=True)``; :func:`connect` attaches it) at any time: a reader
sees the previous snapshots or the new ones, complete.

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

from data.breaks import break_key, break_views, published_key
from data.canonical import CANONICAL
from data.lake import EMPTY, MANIFEST_COLUMNS, Lake, SnapshotEntry
from data.sql import sql_literal

__all__ = ["VIEWS_VERSION", "connect", "ensure_warehouse", "warehouse_path"]

#: Bump when a view or KPI table definition changes (:data:`data.kpis.BREAK_TABLES`,
#: :data:`data.kpis.INVOICED_TIME`), so existing warehouse files are rebuilt.
VIEWS_VERSION = 11


def warehouse_path(home: Path) -> Path:
    """``HOME/warehouse.duckdb``."""
    return home.resolve() / "warehouse.duckdb"


def connect(home: Path) -> duckdb.DuckDBPyConnection:
    """Open ``HOME/warehouse.duckdb`` read-only, on the current snapshots (rebuilt if outdated).

    The file is attached (as catalog ``warehouse``, made the default with ``USE``, which a cursor of
    the connection needs again) to a new in-memory DuckDB rather than opened by path: DuckDB gives
    a second connection to a path already open in the process the database opened first, which
    after a publish is the previous file. One connection serves any number of queries (a page
    render uses one).

    Raises:
        duckdb.Error: the file cannot be opened.
    """
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if not _attach_current(con, home):
            _attach(con, _build(home))
    except BaseException:
        con.close()
        raise
    return con


def ensure_warehouse(home: Path) -> Path:
    """Create the lake layout and (re)build ``HOME/warehouse.duckdb`` if missing or outdated.

    Outdated means: other view definitions, another lake path (the home moved), other current
    snapshots than the manifest's, another latest live break run, or a reconciliation run (a
    replay too) published since. The pipeline calls this after every publish. Building also
    computes the KPIs' tables (:func:`_kpi_tables`). Returns the path.
    """
    with duckdb.connect() as check:
        if _attach_current(check, home):
            return warehouse_path(home)
    return _build(home)


def _build(home: Path) -> Path:
    """Build ``HOME/warehouse.duckdb`` (see :func:`ensure_warehouse`) and rename it into place; its path."""
    path = warehouse_path(home)
    lake = Lake(home)
    entries = lake.entries()
    # Unique per builder: the scheduler's run and the app's reader may rebuild in one process at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    con = duckdb.connect(str(tmp))
    try:
        previous = _attach_previous(con, path)
        carried = frozenset(
            str(r) for (r,) in con.execute("SELECT DISTINCT run_id FROM previous.tieout_rule_runs").fetchall()
        ) if previous else frozenset()  # fmt: skip
        views = break_views(home, previous="previous" if previous else None, carried=carried)
        for sql in [*view_statements(lake, entries), *views.statements]:
            con.execute(sql)
        same_breaks = previous and con.execute("SELECT break_runs FROM previous.tieout_meta").fetchall() == [
            (views.key,)
        ]  # fmt: skip
        _kpi_tables(con, entries, previous, same_breaks=same_breaks)
        con.execute("DETACH DATABASE IF EXISTS previous")
        con.execute(
            "CREATE TABLE tieout_meta AS SELECT ? AS views_version, ? AS lake_root, ? AS current_snapshots, "
            "? AS break_runs",
            [*_built_for(lake, entries, views.key, views.published), views.key],
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


def _kpi_tables(
    con: duckdb.DuckDBPyConnection, entries: list[SnapshotEntry], previous: bool, *, same_breaks: bool
) -> None:
    """Create the tables the KPIs read, from the views (and the ``previous`` warehouse file, if attached).

    They are :data:`data.kpis.BREAK_TABLES`, copied from ``previous`` when it was built on the same
    break runs (``same_breaks``: a snapshot publish changes none of them, while computing them
    reads every break and ledger row), ``tieout_invoiced_time``
    (:data:`data.kpis.INVOICED_TIME`) and ``tieout_invoiced_time_inputs``, a row per system with
    current time entries: ``system``, ``inputs`` (the snapshot ids of its time entries and
    invoices). A system whose inputs are the same in the ``previous`` warehouse file has its
    invoiced time copied from there rather than computed again: the join reads every time entry,
    and most publishes change neither snapshot.
    """
    # Imported here: data.kpis loads pandas, which only building a file needs.
    from data.kpis import BREAK_TABLES, INVOICED_TIME

    for name, select in BREAK_TABLES.items():
        con.execute(f"CREATE TABLE {name} AS {f'SELECT * FROM previous.{name}' if same_breaks else select}")

    current = {(e.object, e.system): e.snapshot_id for e in entries if e.current}
    inputs = {
        system: f"{snapshot_id} {current.get(('invoices', system), '-')}"
        for (obj, system), snapshot_id in sorted(current.items())
        if obj == "time_entries"
    }
    con.execute(f"CREATE TABLE tieout_invoiced_time AS {INVOICED_TIME} LIMIT 0")
    con.execute("CREATE TABLE tieout_invoiced_time_inputs (system VARCHAR, inputs VARCHAR)")
    built = dict(
        con.execute("SELECT system, inputs FROM previous.tieout_invoiced_time_inputs").fetchall()
    ) if previous else {}  # fmt: skip
    for system, key in inputs.items():
        source = "previous.tieout_invoiced_time" if built.get(system) == key else f"({INVOICED_TIME})"
        con.execute(f"INSERT INTO tieout_invoiced_time SELECT * FROM {source} WHERE system = ?", [system])
        con.execute("INSERT INTO tieout_invoiced_time_inputs VALUES (?, ?)", [system, key])


def _attach_previous(con: duckdb.DuckDBPyConnection, previous: Path) -> bool:
    """Attach the warehouse file ``previous`` as ``previous`` if it is one of this views version; whether so.

    Its tables carry over what did not change (:func:`_kpi_tables`, :func:`data.breaks.break_views`).
    """
    if not previous.exists():
        return False
    try:
        con.execute(f"ATTACH {sql_literal(str(previous))} AS previous (READ_ONLY)")
        if con.execute("SELECT views_version FROM previous.tieout_meta").fetchall() == [(VIEWS_VERSION,)]:
            return True
    except duckdb.Error:
        pass
    con.execute("DETACH DATABASE IF EXISTS previous")
    return False


def _parquet(folders: list[Path]) -> str:
    """``read_parquet`` over every Parquet file of ``folders``."""
    return "read_parquet([" + ", ".join(sql_literal(str(f / "*.parquet")) for f in folders) + "])"


def _current_key(entries: list[SnapshotEntry]) -> str:
    # Every publish makes its snapshot current, so this also changes whenever the history views'
    # list of snapshots does.
    return " ".join(sorted(f"{e.object}/{e.system}/{e.snapshot_id}" for e in entries if e.current))


def _built_for(
    lake: Lake, entries: list[SnapshotEntry], break_key: str, published: str
) -> tuple[int, str, str]:
    """``tieout_meta``'s first three columns: over ``entries``, ``break_key``'s and ``published``'s runs."""
    return VIEWS_VERSION, str(lake.root), f"{_current_key(entries)} | breaks {break_key} | runs {published}"


def _attach(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    con.execute(f"ATTACH {sql_literal(str(path))} AS warehouse (READ_ONLY)")
    con.execute("USE warehouse")


def _attach_current(con: duckdb.DuckDBPyConnection, home: Path) -> bool:
    """Attach ``HOME/warehouse.duckdb`` to ``con`` if it is up to date (laying the lake out); whether so."""
    lake = Lake(home)
    lake.ensure_layout()
    path = warehouse_path(home)
    if not path.exists():
        return False
    try:
        _attach(con, path)
        rows = con.execute("SELECT views_version, lake_root, current_snapshots FROM tieout_meta").fetchall()
    except duckdb.Error:  # not (yet) a warehouse file
        rows = []
    wanted = _built_for(lake, lake.entries(), break_key(home), published_key(home))
    if rows and (int(rows[0][0]), str(rows[0][1]), str(rows[0][2])) == wanted:
        return True
    con.execute("USE memory")
    con.execute("DETACH DATABASE IF EXISTS warehouse")
    return False
