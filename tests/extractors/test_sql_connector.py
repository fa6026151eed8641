"""The SQL connector against a SQLite file: tables and queries to exact canonical rows, errors redacted."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from extractors import sql
from extractors.base import ConnectorContext
from extractors.config import ConfigError, SqlSystem
from extractors.errors import ExtractorError, SchemaDrift, SourceUnavailable
from extractors.sql import SqlConnector
from extractors.staging import RawSink
from tests.extractors.test_files_connector import snapshot

ENV = "TIEOUT_TEST_DATABASE_URL"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite file: ``time_entries`` (canonical names) and ``timesheet`` (vendor names); URL in ENV."""
    path = tmp_path / "firm.db"
    with closing(sqlite3.connect(path)) as db, db:
        # NUMERIC stores '7.50' as the REAL 7.5 and keeps 'abc' as text; bill_rate is text as written.
        db.execute(
            "CREATE TABLE time_entries (time_entry_id TEXT, project_code TEXT, spent_date TEXT, "
            "hours NUMERIC, billable BOOLEAN, bill_rate TEXT, created_at TEXT)"
        )
        db.executemany(
            "INSERT INTO time_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                ("T1", "P-1", "2026-11-02", "7.50", 1, "1234.56", "2026-11-02T10:00:00Z"),
                ("T2", "P-1", "2026-11-03", "0.01", 0, "0.01", "2026-11-03T09:30:00Z"),
                ("T3", "P-2", "2026-11-04", "abc", 1, "150.00", "2026-11-04T08:00:00Z"),
            ],
        )
        db.execute("CREATE TABLE timesheet (entry INTEGER, day TEXT, duration REAL, rate NUMERIC(18, 2))")
        db.executemany(
            "INSERT INTO timesheet VALUES (?, ?, ?, ?)",
            [(101, "2026-11-05", 2.25, "123456789012.34"), (102, "2026-11-06", 0.01, "0.01")],
        )
    monkeypatch.setenv(ENV, f"sqlite:///{path}")
    return path


def connector(tmp_path: Path, **objects: dict[str, str]) -> SqlConnector:
    config = SqlSystem(connector="sql", objects=["time_entries"], url_env=ENV, **objects)
    return SqlConnector("warehouse", config, ConnectorContext(home=tmp_path, correlation_id="test"))


def extract(conn: SqlConnector, tmp_path: Path, obj: str = "time_entries") -> RawSink:
    sink = RawSink(tmp_path / "raw")
    try:
        conn.extract(obj, sink, since=None)
    finally:
        conn.close()
    return sink


def test_table_maps_to_exact_values_and_quarantines_bad_hours(tmp_path: Path, database: Path) -> None:
    conn = connector(tmp_path, tables={"time_entries": "time_entries"})
    sink = extract(conn, tmp_path)

    snap = snapshot(sink, conn.default_mapping("time_entries"), tmp_path / "st")

    assert (snap.counts.received, snap.counts.rows, snap.counts.quarantined) == (3, 2, 1)
    t1, t2 = snap.rows["T1"], snap.rows["T2"]
    assert (t1["hours"], t1["bill_rate"], t2["hours"], t2["bill_rate"]) == (
        Decimal("7.50"), Decimal("1234.56"), Decimal("0.01"), Decimal("0.01"),
    )  # fmt: skip
    assert (t1["spent_date"], t1["billable"], t2["billable"]) == (date(2026, 11, 2), True, False)
    assert t1["created_at"] == datetime(2026, 11, 2, 10, tzinfo=UTC)
    [bad] = snap.quarantine
    assert bad["record_key"] == "T3"
    assert "hours: cannot read 'abc' as DECIMAL(18,2)" in bad["reason"]


def test_query_with_aliases_streams_in_chunks(
    tmp_path: Path, database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "CHUNK_ROWS", 1)
    query = (
        "SELECT entry AS time_entry_id, day AS spent_date, duration AS hours, rate AS bill_rate, "
        "'P-9' AS project_code FROM timesheet ORDER BY entry"
    )
    conn = connector(tmp_path, queries={"time_entries": query})
    sink = extract(conn, tmp_path)
    mapping = conn.default_mapping("time_entries")
    assert set(mapping.fields) == {"time_entry_id", "spent_date", "hours", "bill_rate", "project_code"}

    snap = snapshot(sink, mapping, tmp_path / "st")

    assert sink.pages == 2
    assert sorted(snap.rows) == ["101", "102"]
    assert (snap.rows["101"]["hours"], snap.rows["101"]["bill_rate"]) == (
        Decimal("2.25"),
        Decimal("123456789012.34"),
    )
    assert (snap.rows["102"]["hours"], snap.rows["102"]["bill_rate"]) == (Decimal("0.01"), Decimal("0.01"))
    assert snap.rows["102"]["spent_date"] == date(2026, 11, 6)
    assert snap.quarantine == []


def test_query_without_rows_still_gives_its_columns(tmp_path: Path, database: Path) -> None:
    conn = connector(tmp_path, queries={"time_entries": "SELECT * FROM time_entries WHERE 1 = 0"})
    sink = extract(conn, tmp_path)

    snap = snapshot(sink, conn.default_mapping("time_entries"), tmp_path / "st")

    assert (snap.counts.received, snap.counts.rows, snap.rows) == (0, 0, {})
    assert "hours" in conn.default_mapping("time_entries").fields


def test_bad_query_names_system_and_object(tmp_path: Path, database: Path) -> None:
    conn = connector(tmp_path, tables={"time_entries": "no_such_table"})

    with pytest.raises(SchemaDrift) as err:
        extract(conn, tmp_path)

    assert "'warehouse'" in str(err.value) and "time_entries" in str(err.value)
    assert "no such table" in str(err.value)
    assert (err.value.source_system, err.value.entity) == ("warehouse", "time_entries")


def test_repeated_column_names_are_refused(tmp_path: Path, database: Path) -> None:
    conn = connector(tmp_path, queries={"time_entries": "SELECT entry, day AS entry FROM timesheet"})

    with pytest.raises(SchemaDrift, match="entry more than once"):
        extract(conn, tmp_path)


def test_unreachable_database_is_source_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, f"sqlite:///{tmp_path}/missing-dir/firm.db")
    conn = connector(tmp_path, tables={"time_entries": "time_entries"})

    with pytest.raises(SourceUnavailable, match="'warehouse', time_entries: cannot connect"):
        extract(conn, tmp_path)


def test_password_never_appears_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "postgresql://u:s3cret@127.0.0.1:1/db")
    conn = connector(tmp_path, tables={"time_entries": "time_entries"})

    with pytest.raises(ExtractorError) as err:
        extract(conn, tmp_path)

    assert "s3cret" not in str(err.value) and "s3cret" not in (err.value.url or "")
    assert "postgresql://u:***@127.0.0.1:1/db" in str(err.value)
    assert (err.value.source_system, err.value.entity) == ("warehouse", "time_entries")


def test_not_a_url_is_an_extractor_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "not a url at all")
    conn = connector(tmp_path, tables={"time_entries": "time_entries"})

    with pytest.raises(ExtractorError, match=f"in \\${ENV}"):
        extract(conn, tmp_path)


def test_missing_url_variable_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)

    with pytest.raises(ConfigError, match=ENV):
        connector(tmp_path, tables={"time_entries": "time_entries"})


def test_default_mapping_needs_the_extraction_first(tmp_path: Path, database: Path) -> None:
    conn = connector(tmp_path, tables={"time_entries": "time_entries"})

    with pytest.raises(RuntimeError, match="extract"):
        conn.default_mapping("time_entries")
    assert conn.incremental("time_entries") is False
    assert conn.http_stats() is None
