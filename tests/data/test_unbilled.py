"""Unbilled time on a small hand-built warehouse: exact groups, hours and values, scope, drill-down.

The views are tables with the warehouse's exact columns and types (data/breaks.py, data/canonical.py).

Breaks of rule unbilled_time (source: PSA time entry; value in the reporting currency USD):

    break  entry  entity  project  customer  bucket  age  amount      at risk  period   PSA hours
    B1     T1     UK      UK-1     Acme      0-30     10  100.00 GBP  125.00   2026-09  8.00
    B2     T2     UK      UK-1     Acme      31-60    45  200.00 GBP  250.00   2026-08  4.50
    B3     T3     UK      UK-2     Globex    90+     120   50.00 GBP  (no FX)  2026-06  2.00
    B4     T4     US      US-1     Acme      0-30     20  300.00 USD  300.00   2026-09  6.00
    B5     T5     US      US-1     Acme      61-90    70   80.00 USD   80.00   2026-07  1.25
    B6     T6     DE      DE-1     -         90+     200   10.00 EUR   11.00   2026-03  (not in the snapshot)
    B7     T7     -       -        -         31-60    33    5.00 USD    5.00   2026-08  0.50

Project managers (PSA projects): T1, T2 on P1 (Mia); T3 on P2 (Mia, Noa); T4, T5 on P3 (Olu); T7 on
no project.

Noise that must never count: a break of another rule on T1, a data-quality break, and the ERP's own
time entry T1 (another system, 99 hours) and project P1 (managed by Zed).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import pytest

from data.breaks import BREAK_COLUMNS
from data.canonical import CANONICAL, LINEAGE
from data.unbilled import (
    ENTRY_COLUMNS,
    SUMMARY_COLUMNS,
    summary_by_group,
    unbilled_entries,
    unbilled_summary,
)

D = Decimal

BREAKS = [
    ("B1", "T1", "UK", "UK-1", "Acme", "0-30", 10, "100.00", "GBP", "125.00", "2026-09"),
    ("B2", "T2", "UK", "UK-1", "Acme", "31-60", 45, "200.00", "GBP", "250.00", "2026-08"),
    ("B3", "T3", "UK", "UK-2", "Globex", "90+", 120, "50.00", "GBP", None, "2026-06"),
    ("B4", "T4", "US", "US-1", "Acme", "0-30", 20, "300.00", "USD", "300.00", "2026-09"),
    ("B5", "T5", "US", "US-1", "Acme", "61-90", 70, "80.00", "USD", "80.00", "2026-07"),
    ("B6", "T6", "DE", "DE-1", None, "90+", 200, "10.00", "EUR", "11.00", "2026-03"),
    ("B7", "T7", None, None, None, "31-60", 33, "5.00", "USD", "5.00", "2026-08"),
]
# PSA time entries: (id, spent date, person, hours, project)
TIME = [
    ("T1", date(2026, 9, 5), "Ana", "8.00", "P1"),
    ("T2", date(2026, 8, 1), "Ben", "4.50", "P1"),
    ("T3", date(2026, 6, 2), "Ana", "2.00", "P2"),
    ("T4", date(2026, 9, 25), "Cy", "6.00", "P3"),
    ("T5", date(2026, 7, 6), "Cy", "1.25", "P3"),
    ("T7", date(2026, 8, 12), "Dee", "0.50", None),
]
# (system, project, manager)
PROJECTS = [("psa", "P1", "Mia"), ("psa", "P2", "Mia, Noa"), ("psa", "P3", "Olu"), ("erp", "P1", "Zed")]


def insert(con: duckdb.DuckDBPyConnection, table: str, **values: Any) -> None:
    names = list(values)
    con.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        list(values.values()),
    )


def warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE breaks ({', '.join(f'{c} {t}' for c, t, _ in BREAK_COLUMNS)})")
    for table in ("time_entries", "projects"):
        columns = (*LINEAGE, *CANONICAL[table].columns)
        con.execute(f"CREATE TABLE {table} ({', '.join(f'{c.name} {c.sql_type}' for c in columns)})")
    return con


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = warehouse()
    for bid, entry, entity, project, customer, bucket, age, amount, currency, risk, period in BREAKS:
        insert(c, "breaks", break_id=bid, rule_id="unbilled_time", category="reconciliation", break_type="aged",
               object="time_entries", source_system="psa", source_id=entry, match_key=entry,
               legal_entity_id=entity, project_code=project, customer=customer, aging_bucket=bucket,
               age_days=age, amount=amount, currency=currency, amount_at_risk=risk,
               reporting_currency="USD", invoice_cycle=period)  # fmt: skip
    insert(c, "breaks", break_id="X1", rule_id="time_entries_psa_erp", category="reconciliation",
           break_type="missing_in_target", object="time_entries", source_system="psa", source_id="T1",
           legal_entity_id="UK", project_code="UK-1", customer="Acme", aging_bucket="0-30", age_days=10,
           amount="100.00", currency="GBP", amount_at_risk="125.00", reporting_currency="USD")  # fmt: skip
    insert(c, "breaks", break_id="X2", rule_id="time_entries.hours_in_range", category="data_quality",
           break_type="failed_expectation", source_system="psa", source_id="T2", legal_entity_id="UK")  # fmt: skip
    for tid, spent, person, hours, project in TIME:
        insert(c, "time_entries", system="psa", time_entry_id=tid, spent_date=spent, person_name=person,
               hours=hours, billing_period=f"{spent:%Y-%m}", approved=True, billable=True,
               project_id=project)  # fmt: skip
    for system, project, manager in PROJECTS:
        insert(c, "projects", system=system, project_id=project, project_manager=manager)
    insert(c, "time_entries", system="erp", time_entry_id="T1", spent_date=date(2026, 9, 5), person_name="X",
           hours="99.00")  # fmt: skip
    return c


def rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as tuples, pandas' missing values as None."""
    return [tuple(None if v is pd.NA else v for v in r) for r in frame.astype(object).itertuples(index=False)]


# ---------------------------------------------------------------- summary


def test_summary_by_legal_entity_and_bucket(con: duckdb.DuckDBPyConnection) -> None:
    frame = unbilled_summary(con, by="legal_entity")
    assert list(frame.columns) == list(SUMMARY_COLUMNS)
    # buckets youngest first, then the group (unknown last); hours from the PSA entry, never the ERP's
    assert rows(frame) == [
        ("UK", "0-30", 1, D("8.00"), D("125.00"), "USD", 0),
        ("US", "0-30", 1, D("6.00"), D("300.00"), "USD", 0),
        ("UK", "31-60", 1, D("4.50"), D("250.00"), "USD", 0),
        (None, "31-60", 1, D("0.50"), D("5.00"), "USD", 0),
        ("US", "61-90", 1, D("1.25"), D("80.00"), "USD", 0),
        ("DE", "90+", 1, None, D("11.00"), "USD", 0),  # T6 is not in the snapshot: no hours
        ("UK", "90+", 1, D("2.00"), None, None, 1),  # no FX rate: counted, not valued
    ]


def test_summary_by_project_and_customer(con: duckdb.DuckDBPyConnection) -> None:
    projects = rows(unbilled_summary(con, by="project"))
    assert [(g, b, n, h) for g, b, n, h, *_ in projects] == [
        ("UK-1", "0-30", 1, D("8.00")), ("US-1", "0-30", 1, D("6.00")), ("UK-1", "31-60", 1, D("4.50")),
        (None, "31-60", 1, D("0.50")), ("US-1", "61-90", 1, D("1.25")), ("DE-1", "90+", 1, None),
        ("UK-2", "90+", 1, D("2.00")),
    ]  # fmt: skip
    managers = rows(unbilled_summary(con, by="project_manager"))
    assert [(g, b, n, h) for g, b, n, h, *_ in managers] == [
        ("Mia", "0-30", 1, D("8.00")), ("Olu", "0-30", 1, D("6.00")), ("Mia", "31-60", 1, D("4.50")),
        (None, "31-60", 1, D("0.50")), ("Olu", "61-90", 1, D("1.25")), ("Mia, Noa", "90+", 1, D("2.00")),
        (None, "90+", 1, None),  # T6 is not in the snapshot: no project, no manager
    ]  # fmt: skip
    customers = rows(unbilled_summary(con, by="customer", legal_entities=("US",)))
    assert customers == [
        ("Acme", "0-30", 1, D("6.00"), D("300.00"), "USD", 0),
        ("Acme", "61-90", 1, D("1.25"), D("80.00"), "USD", 0),
    ]


@pytest.mark.parametrize(
    ("legal_entities", "period", "expected"),
    [
        (("UK",), None, [("UK", "0-30"), ("UK", "31-60"), ("UK", "90+")]),
        (("UK", "DE"), None, [("UK", "0-30"), ("UK", "31-60"), ("DE", "90+"), ("UK", "90+")]),
        ((), None, []),
        (None, "2026-09", [("UK", "0-30"), ("US", "0-30")]),
        (None, "2026-08", [("UK", "31-60"), (None, "31-60")]),
        (("US",), "2026-08", []),
        (None, "2025-01", []),
    ],
)
def test_summary_scope_and_period(
    con: duckdb.DuckDBPyConnection,
    legal_entities: tuple[str, ...] | None,
    period: str | None,
    expected: list[tuple[str | None, str]],
) -> None:
    frame = unbilled_summary(con, by="legal_entity", legal_entities=legal_entities, period=period)
    assert [(g, b) for g, b, *_ in rows(frame)] == expected


def test_summary_by_group_totals_and_bucket_columns(con: duckdb.DuckDBPyConnection) -> None:
    table = summary_by_group(unbilled_summary(con, by="project"))
    assert list(table.columns) == [
        "group", "time_entries", "hours", "amount_at_risk", "0-30", "31-60", "61-90", "90+",
    ]  # fmt: skip
    assert rows(table) == [
        ("US-1", 2, D("7.25"), D("380.00"), D("300.00"), None, D("80.00"), None),
        ("UK-1", 2, D("12.50"), D("375.00"), D("125.00"), D("250.00"), None, None),
        ("DE-1", 1, None, D("11.00"), None, None, None, D("11.00")),
        (None, 1, D("0.50"), D("5.00"), None, D("5.00"), None, None),
        ("UK-2", 1, D("2.00"), None, None, None, None, None),  # unvalued: last
    ]
    totals = summary_by_group(unbilled_summary(con, by="legal_entity", legal_entities=("UK",)))
    assert rows(totals) == [("UK", 3, D("14.50"), D("375.00"), D("125.00"), D("250.00"), None)]


def test_nothing_in_scope_gives_empty_frames(con: duckdb.DuckDBPyConnection) -> None:
    summary = unbilled_summary(con, by="customer", legal_entities=())
    assert summary.empty and list(summary.columns) == list(SUMMARY_COLUMNS)
    table = summary_by_group(summary)
    assert table.empty and list(table.columns) == ["group", "time_entries", "hours", "amount_at_risk"]
    entries = unbilled_entries(con, legal_entities=())
    assert entries.empty and list(entries.columns) == list(ENTRY_COLUMNS)


def test_several_reporting_currencies_are_refused(con: duckdb.DuckDBPyConnection) -> None:
    c = con.cursor()
    c.execute("CREATE TEMP TABLE breaks AS SELECT * FROM main.breaks")
    c.execute("UPDATE breaks SET reporting_currency = 'EUR' WHERE break_id = 'B4'")
    with pytest.raises(ValueError, match="several reporting currencies"):
        unbilled_summary(c, by="project")
    assert len(unbilled_summary(c, by="project", legal_entities=("UK",))) == 3  # UK alone is in USD


def test_an_unknown_dimension_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="unknown dimension 'manager'"):
        unbilled_summary(con, by="manager")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown dimension"):
        unbilled_entries(con, by="person", group="Ana")  # type: ignore[arg-type]


# ---------------------------------------------------------------- drill-down


def test_entries_of_one_group_oldest_first(con: duckdb.DuckDBPyConnection) -> None:
    frame = unbilled_entries(con, by="customer", group="Acme")
    assert list(frame.columns) == list(ENTRY_COLUMNS)
    assert rows(frame)[0] == (
        "T5", date(2026, 7, 6), "Cy", D("1.25"), D("80.00"), "USD", D("80.00"), "USD", 70, "61-90", "US-1",
        "Olu", "Acme", "US", "2026-07", "B5",
    )  # fmt: skip
    assert list(frame["time_entry_id"]) == ["T5", "T2", "T4", "T1"]
    assert frame.loc[frame["time_entry_id"] == "T1", "hours"].item() == D("8.00")  # the PSA's, not the ERP's


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"by": "customer", "group": "Acme", "legal_entities": ("UK",)}, ["T2", "T1"]),
        ({"by": "customer", "group": "Acme", "period": "2026-09"}, ["T4", "T1"]),
        ({"by": "customer", "group": "Acme", "aging_bucket": "0-30"}, ["T4", "T1"]),
        ({"by": "customer", "group": None}, ["T6", "T7"]),  # entries without a customer
        ({"by": "legal_entity", "group": None}, ["T7"]),
        ({"by": "legal_entity", "group": None, "legal_entities": ("UK", "US")}, []),  # unknown entity: hidden
        ({"by": "legal_entity", "group": "US", "legal_entities": ("UK",)}, []),  # outside the scope
        ({"by": "project", "group": "UK-2"}, ["T3"]),
        ({"by": "project_manager", "group": "Mia"}, ["T2", "T1"]),
        ({"by": "project_manager", "group": None}, ["T6", "T7"]),
        ({}, ["T6", "T3", "T5", "T2", "T7", "T4", "T1"]),  # every entry in scope
        ({"legal_entities": ("DE",)}, ["T6"]),
    ],
)
def test_entries_filters_and_scope(
    con: duckdb.DuckDBPyConnection, kwargs: dict[str, Any], expected: list[str]
) -> None:
    assert list(unbilled_entries(con, **kwargs)["time_entry_id"]) == expected


def test_an_entry_missing_from_the_snapshot_keeps_its_break_values(con: duckdb.DuckDBPyConnection) -> None:
    (row,) = rows(unbilled_entries(con, by="project", group="DE-1"))
    assert row == (
        "T6", None, None, None, D("10.00"), "EUR", D("11.00"), "USD", 200, "90+", "DE-1", None, None, "DE",
        "2026-03", "B6",
    )  # fmt: skip


def test_the_entries_add_up_to_the_summary(con: duckdb.DuckDBPyConnection) -> None:
    for group in summary_by_group(unbilled_summary(con, by="project")).itertuples(index=False):
        entries = unbilled_entries(con, by="project", group=group.group)
        assert len(entries) == group.time_entries
        risks = [v for v in entries["amount_at_risk"] if v is not None]
        assert (sum(risks) if risks else None) == group.amount_at_risk
