"""The files connector: CSV, XLSX and Parquet files through the raw sink to an exact canonical snapshot."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.canonical import CANONICAL
from demo.tables import HARVEST_TIME_ENTRIES
from extractors import files
from extractors.base import ConnectorContext
from extractors.config import FilesSystem
from extractors.errors import MalformedResponse, SchemaDrift, SourceUnavailable
from extractors.files import FilesConnector
from extractors.mapping import ObjectMapping
from extractors.staging import RawSink
from extractors.statuses import value_maps
from extractors.tabular import cell_text, identity_mapping
from extractors.transform import SnapshotCounts, build_snapshot

LINEAGE_SQL = {
    "system": "'files'",
    "snapshot_id": "'s1'",
    "run_id": "'r1'",
    "extracted_at": "TIMESTAMPTZ '2026-11-20 00:00:00+00'",
}
HEADER = ["time_entry_id", "project_code", "spent_date", "hours", "billable", "bill_rate", "created_at"]
# One row per entry, as text: money with cents, a boolean, a timestamp in UTC, hours 'abc' in T3.
ROWS = [
    ["T1", "P-1", "2026-11-02", "7.50", "true", "1234.56", "2026-11-02T10:00:00Z"],
    ["T2", "P-1", "2026-11-03", "0.01", "false", "0.01", "2026-11-03T09:30:00Z"],
    ["T3", "P-2", "2026-11-04", "abc", "true", "150.00", "2026-11-04T08:00:00Z"],
]


@dataclass(frozen=True)
class Snapshot:
    counts: SnapshotCounts
    rows: dict[str, dict[str, Any]]
    quarantine: list[dict[str, Any]]


def snapshot(sink: RawSink, mapping: ObjectMapping, staged: Path) -> Snapshot:
    """Map the sink's raw rows with ``mapping`` the way the pipeline does; read the result back."""
    raw, json_records = sink.relation()
    table = CANONICAL[mapping.object]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        counts = build_snapshot(
            con,
            raw=raw,
            json_records=json_records,
            mapping=mapping,
            table=table,
            value_maps=value_maps({}),
            lineage=LINEAGE_SQL,
            staged=staged,
            previous=None,
        )
        rows = _dicts(con, f"SELECT * FROM read_parquet('{staged}/canonical/data.parquet')")
        quarantine = staged / "quarantine" / "data.parquet"
        bad = _dicts(con, f"SELECT * FROM read_parquet('{quarantine}')") if quarantine.exists() else []
    return Snapshot(counts, {r[table.key]: r for r in rows}, bad)


def _dicts(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    result = con.execute(sql)
    names = [d[0] for d in result.description or []]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def connector(home: Path, paths: dict[str, str]) -> FilesConnector:
    config = FilesSystem(connector="files", objects=list(paths), paths=paths)
    return FilesConnector("files", config, ConnectorContext(home=home, correlation_id="test"))


def extract(home: Path, pattern: str, obj: str = "time_entries") -> tuple[FilesConnector, RawSink]:
    conn = connector(home, {obj: pattern})
    sink = RawSink(home / "raw")
    conn.extract(obj, sink, since=None)
    return conn, sink


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])


def write_xlsx(path: Path, header: list[Any], rows: list[list[Any]]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (header, *rows):
        sheet.append(row)
    book.create_sheet("Ignored").append(["time_entry_id", "hours"])
    book.save(path)


def write_parquet(path: Path) -> None:
    money = pa.decimal128(18, 2)
    table = pa.table(
        {
            "time_entry_id": pa.array(["T1", "T2", "T3"]),
            "project_code": pa.array(["P-1", "P-1", "P-2"]),
            "spent_date": pa.array([date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)], pa.date32()),
            "hours": pa.array(["7.50", "0.01", "abc"]),  # text in the source: one value is not a number
            "billable": pa.array([True, False, True]),
            "bill_rate": pa.array([Decimal("1234.56"), Decimal("0.01"), Decimal("150.00")], money),
            "created_at": pa.array(
                [datetime(2026, 11, 2, 10, tzinfo=UTC), datetime(2026, 11, 3, 9, 30, tzinfo=UTC),
                 datetime(2026, 11, 4, 8, tzinfo=UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )  # fmt: skip
    pq.write_table(table, path)


def _xlsx_rows() -> list[list[Any]]:
    # What a spreadsheet holds: floats, real dates, Excel booleans, a naive datetime (read as UTC).
    return [
        ["T1", "P-1", date(2026, 11, 2), 7.5, True, 1234.56, "2026-11-02T10:00:00Z"],
        ["T2", "P-1", date(2026, 11, 3), 0.01, False, 0.01, datetime(2026, 11, 3, 9, 30)],
        ["T3", "P-2", date(2026, 11, 4), "abc", True, 150, "2026-11-04T08:00:00Z"],
    ]


WRITERS: dict[str, Callable[[Path], None]] = {
    "csv": lambda p: write_csv(p, HEADER, ROWS),
    "xlsx": lambda p: write_xlsx(p, HEADER, _xlsx_rows()),
    "parquet": write_parquet,
}


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_each_format_maps_to_exact_values_and_quarantines_bad_hours(tmp_path: Path, suffix: str) -> None:
    WRITERS[suffix](tmp_path / f"entries.{suffix}")
    conn, sink = extract(tmp_path, f"entries.{suffix}")

    mapping = conn.default_mapping("time_entries")
    assert set(mapping.fields) == set(HEADER)
    snap = snapshot(sink, mapping, tmp_path / "st")

    assert (snap.counts.received, snap.counts.rows, snap.counts.quarantined) == (3, 2, 1)
    t1, t2 = snap.rows["T1"], snap.rows["T2"]
    assert (t1["hours"], t1["bill_rate"], t2["hours"], t2["bill_rate"]) == (
        Decimal("7.50"), Decimal("1234.56"), Decimal("0.01"), Decimal("0.01"),
    )  # fmt: skip
    assert (t1["spent_date"], t1["billable"], t2["billable"]) == (date(2026, 11, 2), True, False)
    assert t1["created_at"] == datetime(2026, 11, 2, 10, tzinfo=UTC)
    assert t2["created_at"] == datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    assert (t1["project_code"], t1["cost_rate"]) == ("P-1", None)
    [bad] = snap.quarantine
    assert (bad["system"], bad["record_key"]) == ("files", "T3")
    assert "hours: cannot read 'abc' as DECIMAL(18,2)" in bad["reason"]


def test_glob_reads_every_matching_csv_by_column_name(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    write_csv(tmp_path / "exports" / "te-2026-10.csv", HEADER, ROWS[:2])
    # The later export has its columns in another order and no billable column.
    write_csv(tmp_path / "exports" / "te-2026-11.csv", ["hours", "time_entry_id", "spent_date"],
              [["2.25", "T4", "2026-11-05"], ["1234567.89", "T5", "2026-11-06"]])  # fmt: skip
    write_csv(tmp_path / "exports" / "other.csv", HEADER, ROWS[2:])
    conn, sink = extract(tmp_path, "exports/te-*.csv")

    snap = snapshot(sink, conn.default_mapping("time_entries"), tmp_path / "st")

    assert sink.pages == 2
    assert sorted(snap.rows) == ["T1", "T2", "T4", "T5"]
    assert snap.rows["T5"]["hours"] == Decimal("1234567.89")
    assert (snap.rows["T4"]["billable"], snap.rows["T2"]["billable"]) == (None, False)
    assert snap.quarantine == []


def test_xlsx_files_are_united_by_header_name_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "CHUNK_ROWS", 2)
    write_xlsx(tmp_path / "a.xlsx", HEADER, _xlsx_rows())
    # Padded header, a blank header cell (its column is skipped), an empty row, a column the other lacks.
    rows: list[list[Any]] = [
        ["T6", 8, "x", "2026-11-07"],
        [None, None, None, None],
        ["T7", 0.5, "y", "2026-11-08"],
    ]
    write_xlsx(tmp_path / "b.xlsx", [" time_entry_id ", "hours", None, "spent_date", "person_name"], rows)
    conn, sink = extract(tmp_path, "*.xlsx")

    snap = snapshot(sink, conn.default_mapping("time_entries"), tmp_path / "st")

    assert sink.pages == 3  # a.xlsx: chunks of two rows and one; b.xlsx: its two rows that are not empty
    assert sorted(snap.rows) == ["T1", "T2", "T6", "T7"]
    assert [q["record_key"] for q in snap.quarantine] == ["T3"]
    assert (snap.rows["T6"]["hours"], snap.rows["T7"]["hours"]) == (Decimal("8.00"), Decimal("0.50"))
    assert snap.rows["T7"]["spent_date"] == date(2026, 11, 8)
    assert snap.rows["T1"]["hours"] == Decimal("7.50")


def test_override_maps_renamed_source_columns(tmp_path: Path) -> None:
    write_csv(tmp_path / "tt.csv", ["entry", "day", "duration_h", "project_code"],
              [["E1", "2026-11-02", "3.75", "P-1"], ["E2", "2026-11-03", "0.01", "P-2"]])  # fmt: skip
    conn, sink = extract(tmp_path, "tt.csv")
    default = conn.default_mapping("time_entries")
    assert dict(default.fields) == {"project_code": '"project_code"'}

    mapping = default.overridden({"time_entry_id": "entry", "spent_date": "day", "hours": "duration_h"})
    snap = snapshot(sink, mapping, tmp_path / "st")

    assert {k: r["hours"] for k, r in snap.rows.items()} == {"E1": Decimal("3.75"), "E2": Decimal("0.01")}
    assert snap.rows["E1"]["spent_date"] == date(2026, 11, 2)


def test_demo_harvest_time_entries_from_parquet(tmp_path: Path, small_demo: Path) -> None:
    conn, sink = extract(tmp_path, HARVEST_TIME_ENTRIES.glob(small_demo))  # an absolute glob
    mapping = conn.default_mapping("time_entries").overridden(
        {
            "time_entry_id": '"id"', "project_id": "project_id", "customer_id": "client_id",
            "person_id": "user_id", "person_name": "user_name", "approved": "is_closed",
            "bill_rate": "billable_rate", "billing_period": "strftime(spent_date, '%Y-%m')", "psa_id": "id",
        }
    )  # fmt: skip

    snap = snapshot(sink, mapping, tmp_path / "st")

    demo = f"read_parquet('{HARVEST_TIME_ENTRIES.glob(small_demo)}')"
    with duckdb.connect() as con:
        expected = con.execute(f"SELECT count(*), count(DISTINCT id), sum(hours) FROM {demo}").fetchone()
    assert expected is not None and expected[0] > 0
    assert snap.counts.received == expected[0]
    assert (len(snap.rows), sum(r["hours"] for r in snap.rows.values())) == (expected[1], expected[2])
    assert snap.quarantine == []
    some = next(iter(snap.rows.values()))
    assert some["billing_period"] == some["spent_date"].strftime("%Y-%m")


def test_relative_paths_resolve_against_home(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_csv(tmp_path / "data" / "tt.csv", HEADER, ROWS[:1])

    conn, sink = extract(tmp_path, "data/tt.csv")

    assert sink.form == "csv"
    assert snapshot(sink, conn.default_mapping("time_entries"), tmp_path / "st").counts.rows == 1


def test_no_matching_file_names_system_object_and_pattern(tmp_path: Path) -> None:
    conn = connector(tmp_path, {"invoices": "exports/inv-*.parquet"})

    with pytest.raises(SourceUnavailable) as err:
        conn.extract("invoices", RawSink(tmp_path / "raw"), since=None)

    assert "'files'" in str(err.value) and "invoices" in str(err.value)
    assert "exports/inv-*.parquet" in str(err.value)
    assert (err.value.source_system, err.value.entity) == ("files", "invoices")


def test_default_mapping_needs_the_extraction_first(tmp_path: Path) -> None:
    conn = connector(tmp_path, {"customers": "c.csv"})

    with pytest.raises(RuntimeError, match="extract"):
        conn.default_mapping("customers")
    assert conn.incremental("customers") is False
    assert conn.http_stats() is None


def test_xlsx_without_header_or_with_a_repeated_column_is_refused(tmp_path: Path) -> None:
    openpyxl.Workbook().save(tmp_path / "empty.xlsx")
    write_xlsx(tmp_path / "twice.xlsx", ["hours", "time_entry_id", "hours"], [[1, "T1", 2]])

    with pytest.raises(SchemaDrift, match="no header row"):
        extract(tmp_path, "empty.xlsx")
    with pytest.raises(SchemaDrift, match="hours more than once"):
        extract(tmp_path, "twice.xlsx")


def test_unreadable_files_are_extractor_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.xlsx").write_text("not a workbook")
    (tmp_path / "bad.parquet").write_text("not parquet either")

    with pytest.raises(MalformedResponse, match="bad.xlsx is not an XLSX workbook"):
        extract(tmp_path, "bad.xlsx")
    with pytest.raises(MalformedResponse, match="cannot read bad.parquet"):
        extract(tmp_path, "bad.parquet", obj="projects")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("x", "x"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (1234.56, "1234.56"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "0.0000001"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.010"), "0.010"),
        (date(2026, 1, 2), "2026-01-02"),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),
        (datetime(2026, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T03:04:00+02:00"),
        (time(1, 2), "01:02:00"),
        (b"\x00\xff", "00ff"),
    ],
)
def test_cell_text_is_exact(value: object, text: str | None) -> None:
    assert cell_text(value) == text


def test_identity_mapping_matches_names_case_insensitively() -> None:
    mapping = identity_mapping("customers", ["Name", "customer_id", "notes", "NAME"])

    assert dict(mapping.fields) == {"customer_id": '"customer_id"', "name": '"Name"'}
