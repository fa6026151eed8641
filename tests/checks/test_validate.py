"""GX validation of a snapshot read through DuckDB: exact bounds, record ids, batches that keep keys whole."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from checks.build import Bounds, GxContext, GxSuite
from checks.spec import load_suites
from checks.validate import frame_query, validate_snapshot

SUITE = """
object: time_entries
expect:
  - {column: time_entry_id, not_null: true}
  - {column: time_entry_id, unique: true}
  - {column: project_id, not_null: true}
  - {column: hours, between: [0, 24]}
  - {column: currency, in_set: iso4217}
  - {column: spent_date, date_between: [founded, today]}
  - {column: billing_period, matches: '^\\d{4}-(?:0[1-9]|1[0-2])$'}
  - {id: amounts_add_up, sum_equals: {columns: [cost_amount, billable_amount], total: bill_rate}}
"""
# id, project, hours, currency, spent_date, period, cost, billable, "total" (bill_rate column)
# fmt: off
ROWS = [
    ("T1", "P1", "24.00", "USD", "2026-11-15", "2026-11", "100.10", "21.02", "121.12"),  # boundaries hold
    ("T2", "P1", "24.01", "EUR", "2026-11-16", "2026-11", "0.10", "0.20", "0.30"),  # over 24 h, a day late
    ("T3", "P1", "-0.01", "XYZ", "2019-12-31", "2019-12", "1.00", "1.00", "2.01"),  # negative, bad currency..
    ("T4", None, "1.00", "GBP", "2020-01-01", "2020-13", "1.00", "1.00", "2.00"),  # no project, bad period
    ("T4", "P2", "2.00", "GBP", "2020-01-02", "2020-01", None, "1.00", "1.00"),  # duplicate id; NULL adds as 0
    (None, "P3", "3.00", None, "2021-05-05", "2021-05", "1.00", "1.00", "2.00"),  # no id; NULL currency passes
    ("T9", "P3", "3.00", "USD", "0001-01-01", "2021-05", "1.00", "1.00", "2.00"),  # sentinel dates, beyond
    ("T10", "P3", "3.00", "USD", "9999-12-31", "2021-05", "1.00", "1.00", "2.00"),  # what pandas holds
]
# fmt: on
EXPECTED = {
    "time_entries.time_entry_id_not_null": [None],
    "time_entries.time_entry_id_unique": ["T4", "T4"],
    "time_entries.project_id_not_null": ["T4"],
    "time_entries.hours_in_range": ["T2", "T3"],
    "time_entries.currency_in_set": ["T3"],
    "time_entries.spent_date_in_range": ["T10", "T2", "T3", "T9"],
    "time_entries.billing_period_format": ["T4"],
    "time_entries.amounts_add_up": ["T3"],
}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("snap") / "data.parquet"
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (time_entry_id VARCHAR, project_id VARCHAR, hours DECIMAL(18,2), currency VARCHAR, "
        "spent_date DATE, billing_period VARCHAR, cost_amount DECIMAL(18,2), billable_amount DECIMAL(18,2), "
        "bill_rate DECIMAL(18,2))"
    )
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ROWS)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    con.close()
    return f"SELECT * FROM read_parquet('{path}')"


@pytest.fixture(scope="module")
def gx_suite(tmp_path_factory: pytest.TempPathFactory) -> GxSuite:
    folder = tmp_path_factory.mktemp("suites")
    (folder / "time_entries.yaml").write_text(SUITE)
    suite = load_suites(folder)["time_entries"]
    bounds = Bounds(founded=date(2020, 1, 1), today=date(2026, 11, 15))
    return GxContext().suite(suite, "psa", key="time_entry_id", bounds=bounds, max_ids=100)


@pytest.mark.parametrize("batch_rows", [100, 2, 1])
def test_failures_carry_their_record_ids_in_any_batching(
    snapshot: str, gx_suite: GxSuite, batch_rows: int
) -> None:
    outcomes, _ = validate_snapshot(snapshot, len(ROWS), gx_suite, batch_rows=batch_rows, workers=2)
    found = {o.rule_id: sorted(o.ids, key=str) for o in outcomes if not o.success}
    assert found == EXPECTED
    assert all(o.element_count == len(ROWS) for o in outcomes)
    assert all(o.error is None for o in outcomes)
    unique = next(o for o in outcomes if o.expectation == "time_entry_id_unique")
    assert unique.unexpected_count == 2 and unique.gx_type == "expect_column_values_to_be_unique"


def test_ids_are_capped_but_counts_are_not(snapshot: str, tmp_path: Path) -> None:
    (tmp_path / "time_entries.yaml").write_text(SUITE)
    suite = load_suites(tmp_path)["time_entries"]
    capped = GxContext().suite(suite, "psa", key="time_entry_id", bounds=Bounds(None, date(2026, 11, 15)),
                               max_ids=1)  # fmt: skip
    outcomes = {o.expectation: o for o in validate_snapshot(snapshot, len(ROWS), capped, batch_rows=10)[0]}
    hours = outcomes["hours_in_range"]
    assert (hours.unexpected_count, len(hours.ids)) == (2, 1)
    # without a founding date only the upper bound applies
    assert outcomes["spent_date_in_range"].unexpected_count == 2  # T2 and T10


def test_batches_split_by_key_hash(snapshot: str, gx_suite: GxSuite) -> None:
    con = duckdb.connect()
    parts = [con.execute(frame_query(snapshot, gx_suite, batches=3, batch=i)).fetchall() for i in range(3)]
    assert sum(len(p) for p in parts) == len(ROWS)
    holding_t4 = [i for i, p in enumerate(parts) if any(r[0] == "T4" for r in p)]
    assert len(holding_t4) == 1  # both T4 rows in one batch
