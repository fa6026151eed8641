"""The lake, the warehouse views, the lock and the docs, without any source system."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import get_args

import duckdb
import pytest

from data.canonical import CANONICAL
from data.docs import README, render
from data.lake import Lake, SnapshotEntry, empty_select
from data.lock import PipelineBusy, PipelineLock
from data.warehouse import connect, ensure_warehouse, warehouse_path
from extractors import config
from reconcile import rules


def test_warehouse_docs_are_up_to_date() -> None:
    assert README.read_text(encoding="utf-8") == render(), "run `python -m data.docs`"


def test_every_object_name_of_the_configs_is_a_canonical_object() -> None:
    # sources.yaml and rules.yaml spell the objects as one Literal (for pydantic's messages)
    assert get_args(config.ObjectName) == get_args(rules.ObjectName) == tuple(CANONICAL)


def test_views_answer_before_the_first_snapshot(tmp_path: Path) -> None:
    con = connect(tmp_path)
    for view in ("customers", "projects", "time_entries", "invoices", "quarantine", "snapshots",
                 "time_entries_history"):  # fmt: skip
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)
    cols = {r[0]: r[1] for r in con.execute("DESCRIBE time_entries").fetchall()}
    assert cols["hours"] == "DECIMAL(18,2)" and cols["spent_date"] == "DATE" and cols["system"] == "VARCHAR"


def _publish(
    lake: Lake, tmp: Path, snapshot_id: str, hours: str, *, lineage_in_rows: bool = False,
    without: tuple[str, ...] = (),
) -> None:  # fmt: skip
    staged = tmp / f"stage-{snapshot_id}"
    (staged / "canonical").mkdir(parents=True)
    (staged / "raw").mkdir()
    cols = {
        c.name: f"CAST(NULL AS {c.sql_type})"
        for c in CANONICAL["time_entries"].columns
        if c.name not in without
    }
    cols |= {"time_entry_id": "'1'", "hours": f"CAST('{hours}' AS DECIMAL(18,2))"}
    if lineage_in_rows:  # the layout before lineage moved out of the rows
        cols = {"system": "'psa'", "snapshot_id": f"'{snapshot_id}'", "run_id": "'r'",
                "extracted_at": "TIMESTAMPTZ '2026-11-20 00:00:00+00'", **cols}  # fmt: skip
    select = ", ".join(f"{v} AS {k}" for k, v in cols.items())
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT {select}) TO '{staged / 'canonical' / 'data.parquet'}'")
    lake.publish(staged, SnapshotEntry("psa", "time_entries", snapshot_id, "r", "full", "2026-11-20T00:00:00+00:00",
                                       "2026-11-20T00:00:01+00:00", 1, 0, None))  # fmt: skip


def test_a_laid_out_lake_is_checked_without_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(tmp_path)
    lake.ensure_layout()
    seed = lake.canonical_dir("invoices", "_empty", "_empty") / "data.parquet"
    assert seed.exists()

    def refused(*_: object) -> None:
        raise AssertionError("ensure_layout opened DuckDB with every seed file in place")

    monkeypatch.setattr("data.lake.duckdb.connect", refused)
    lake.ensure_layout()  # every connect() does this
    seed.unlink()
    monkeypatch.undo()
    lake.ensure_layout()
    assert seed.exists()


def test_a_connection_opened_after_a_publish_sees_it_while_an_older_one_is_open(tmp_path: Path) -> None:
    """DuckDB hands a path already open in the process to the database opened first: connect() must not."""
    home = tmp_path / "home"
    lake = Lake(home)
    ensure_warehouse(home)
    _publish(lake, tmp_path, "s1", "1.00")
    before = connect(home)
    try:
        _publish(lake, tmp_path, "s2", "2.00")
        ensure_warehouse(home)  # the pipeline, after its publish
        after = connect(home)
        try:
            assert after.execute("SELECT snapshot_id FROM time_entries").fetchall() == [("s2",)]
        finally:
            after.close()
        assert before.execute("SELECT snapshot_id FROM time_entries").fetchall() == [("s1",)]
    finally:
        before.close()


def test_publish_switches_the_current_snapshot_and_keeps_history(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ensure_warehouse(home)
    lake = Lake(home)
    # s1 was written before two columns were added to the canonical table: they read as NULL
    _publish(lake, tmp_path, "s1", "1.25", lineage_in_rows=True, without=("bill_currency", "billable_amount"))
    _publish(lake, tmp_path, "s2", "2.50")
    con = connect(home)
    assert con.execute(
        "SELECT system, snapshot_id, run_id, extracted_at, hours FROM time_entries"
    ).fetchall() == [("psa", "s2", "r", datetime(2026, 11, 20, tzinfo=UTC), Decimal("2.50"))]
    assert con.execute(
        "SELECT snapshot_id, hours, bill_currency, billable_amount FROM time_entries_history ORDER BY 1"
    ).fetchall() == [("s1", Decimal("1.25"), None, None), ("s2", Decimal("2.50"), None, None)]
    columns = con.execute(f"DESCRIBE {empty_select(CANONICAL['time_entries'])}").fetchall()
    for view in ("time_entries", "time_entries_history"):
        assert con.execute(f"DESCRIBE {view}").fetchall() == columns, (
            "lineage first, then the canonical columns"
        )
    assert con.execute("SELECT snapshot_id FROM snapshots WHERE current").fetchall() == [("s2",)]
    assert [e.snapshot_id for e in lake.entries()] == ["s1", "s2"]


def test_sweep_removes_staging_and_unlisted_snapshots_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ensure_warehouse(home)
    lake = Lake(home)
    _publish(lake, tmp_path, "s1", "1")
    orphan = lake.canonical_dir("time_entries", "psa", "s9")
    orphan.mkdir(parents=True)
    (lake.staging_root / "run-x").mkdir()
    removed = lake.sweep()
    assert orphan in removed and not orphan.exists() and not (lake.staging_root / "run-x").exists()
    assert lake.canonical_dir("time_entries", "psa", "s1").exists()


def test_warehouse_is_rebuilt_when_the_home_moves(tmp_path: Path) -> None:
    home = tmp_path / "a"
    ensure_warehouse(home)
    moved = tmp_path / "b"
    home.rename(moved)
    ensure_warehouse(moved)
    con = duckdb.connect(str(warehouse_path(moved)), read_only=True)
    assert con.execute("SELECT lake_root FROM tieout_meta").fetchone() == (str(moved.resolve() / "lake"),)


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from data.lock import PipelineLock
    with PipelineLock(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(60)
""")


def test_the_lock_refuses_a_second_run_and_dies_with_its_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(PipelineBusy, match=f"pid {holder.pid}"), PipelineLock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    with PipelineLock(tmp_path, wait_s=5) as lock:
        assert json.loads(lock.holder_path.read_text())["pid"] > 0
