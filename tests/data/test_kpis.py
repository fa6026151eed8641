"""The executive KPIs on a small hand-built warehouse: exact values, entity scope, previous period, no data.

The views are tables with the warehouse's exact columns and types (data/breaks.py, data/canonical.py,
data/lake.py); the tables the KPIs read are derived from them with the warehouse build's own SELECTs
(``derive``). The connection's time zone is New York on purpose: no KPI may depend on it.

Timeline of live reconciliation runs (UTC): R1 2025-02-01, R2 2025-02-15 12:00, R3 2025-03-10,
R4 2025-04-05 (latest; the ``breaks`` view), plus a replay RX 2025-04-06 that every KPI ignores.

Ledger (rule, entity: first seen -> cleared), and who is open at each run:

    L1  time_entries_psa_erp UK  R1 -> open          R1 R2 R3 R4
    L2  time_entries_psa_erp US  R1 -> R2            R1
    L3  invoices_erp_psa     UK  R2 -> R4               R2 R3
    L4  unbilled_time        UK  R3 -> open                R3 R4
    L5  unbilled_time        US  R4 -> open                   R4
    L6  invoices_erp_psa     US  R1 -> R3, reopened R4       R4 (open at R1, R2 too: the ledger
                                                             lost that clearing, documented undercount)
    L7  data quality (invoices.amount_total_not_null): never counted
    L8  time_entries_psa_erp UK  R2 -> R3               R2
    L9  time_entries_psa_erp US  R3 -> R4                  R3
    L10 customers_crm_erp    UK  R4 -> open                   R4
    L11 invoice_vs_time      UK  R4 -> open                   R4

Open per run: R1 2 (UK 1, US 1), R2 3 (UK 3), R3 4 (UK 3, US 1), R4 6 (UK 4, US 2).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from data import kpis
from data.appstate import EXTRACTION_RUNS, state_engine
from data.breaks import BREAK_COLUMNS, LEDGER_COLUMNS, RULE_RUN_COLUMNS, live_runs_table, run_summary_sql
from data.canonical import CANONICAL, LINEAGE
from data.kpis import (
    DEFINITIONS,
    deal_handoff_within_sla,
    freshness_vs_sla,
    invoice_accuracy,
    match_rate,
    mean_time_to_resolve,
    open_breaks,
    open_breaks_by_aging,
    open_breaks_trend,
    sync_failure_rate,
    time_to_invoice,
    unbilled_wip,
)
from data.lake import MANIFEST_COLUMNS

D = Decimal


def ts(text: str) -> datetime:
    return (
        datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)
    )


R1, R2, R3, R4 = (
    ts("2025-02-01T00:00:00"),
    ts("2025-02-15T12:00:00"),
    ts("2025-03-10T00:00:00"),
    ts("2025-04-05T00:00:00"),
)
RX = ts("2025-04-06T00:00:00")
NOW = ts("2025-04-05T12:00:00")


def schema() -> dict[str, list[tuple[str, str]]]:
    canonical = {
        name: [(c.name, c.sql_type) for c in (*LINEAGE, *table.columns)] for name, table in CANONICAL.items()
    }
    return {
        "breaks": [(c, t) for c, t, _ in BREAK_COLUMNS],
        "break_ledger": [(c, t) for c, t, _ in LEDGER_COLUMNS],
        "reconciliation_runs": [(c, t) for c, t, _ in RULE_RUN_COLUMNS],
        "snapshots": list(MANIFEST_COLUMNS.items()),
        **canonical,
    }


def empty_warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    for table, columns in schema().items():
        con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns)})")
    derive(con)
    return con


def derive(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the tables the warehouse build derives from the views."""
    tables = {"tieout_invoiced_time": kpis.INVOICED_TIME} | kpis.BREAK_TABLES
    for table in ("tieout_live_runs", *tables):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute(live_runs_table("reconciliation_runs"))
    for table, select in tables.items():
        con.execute(f"CREATE TABLE {table} AS {select}")


def insert(con: duckdb.DuckDBPyConnection, table: str, **values: Any) -> None:
    names = list(values)
    con.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        list(values.values()),
    )


# (break id, rule, entity, first seen, cleared, reopened)
LEDGER = [
    ("L1", "time_entries_psa_erp", "UK", R1, None, None),
    ("L2", "time_entries_psa_erp", "US", R1, R2, None),
    ("L3", "invoices_erp_psa", "UK", R2, R4, None),
    ("L4", "unbilled_time", "UK", R3, None, None),
    ("L5", "unbilled_time", "US", R4, None, None),
    ("L6", "invoices_erp_psa", "US", R1, None, R4),
    ("L7", "invoices.amount_total_not_null", None, R1, None, None),
    ("L8", "time_entries_psa_erp", "UK", R2, R3, None),
    ("L9", "time_entries_psa_erp", "US", R3, R4, None),
    ("L10", "customers_crm_erp", "UK", R4, None, None),
    ("L11", "invoice_vs_time", "UK", R4, None, None),
]

# The breaks view (run R4): ledger id, category, object, source (system, id), target (system, id),
# entity, amount, currency, amount at risk (EUR), age_days, aging bucket
BREAKS = [
    ("L1", "reconciliation", "time_entries", ("psa", "T100"), ("erp", None), "UK", "100.00", "GBP", "115.00", 63, "61-90"),
    ("L4", "reconciliation", "time_entries", ("psa", "T200"), (None, None), "UK", "1000.00", "GBP", "1150.00", 40, "31-60"),
    ("L5", "reconciliation", "time_entries", ("psa", "T300"), (None, None), "US", "500.00", "USD", "460.00", 10, "0-30"),
    ("L6", "reconciliation", "invoices", ("erp", "E3"), ("psa", "H3"), "US", "250.00", "USD", None, 63, "61-90"),
    ("L7", "data_quality", "invoices", ("erp", "E2"), (None, None), None, None, None, None, 0, "0-30"),
    ("L10", "reconciliation", "customers", ("crm", "C9"), ("erp", "P9"), "UK", None, None, None, 5, "0-30"),
    # a PSA invoice whose id happens to equal an ERP invoice id (E1): must not flag the ERP's E1
    ("L11", "reconciliation", "invoices", ("psa", "E1"), ("erp", "E4"), "UK", "30.00", "GBP", "34.50", 0, "0-30"),
]  # fmt: skip

# (run, started, replay, rule, status, source_rows, compared, matched)
RULE_RUNS = [
    ("R1", R1, False, "invoices_erp_psa", "ok", 10, 9, 8),
    ("R1", R1, False, "unbilled_time", "ok", 20, 20, 15),
    ("R1", R1, False, "time_totals_psa_erp", "ok", 4, 5, 4),
    ("R2", R2, False, "invoices_erp_psa", "ok", 10, 10, 9),
    ("R2", R2, False, "time_totals_psa_erp", "failed", 0, 0, 0),
    ("R3", R3, False, "invoices_erp_psa", "skipped", 0, 0, 0),
    ("R3", R3, False, "unbilled_time", "ok", 20, 20, 18),
    ("R3", R3, False, "customers_crm_erp", "ok", 3, 3, 2),
    ("R4", R4, False, "invoices_erp_psa", "ok", 12, 11, 9),
    ("R4", R4, False, "unbilled_time", "ok", 24, 24, 20),
    ("R4", R4, False, "time_totals_psa_erp", "ok", 4, 6, 3),
    ("R4", R4, False, "customers_crm_erp", "ok", 0, 0, 0),
    ("RX", RX, True, "invoices_erp_psa", "ok", 12, 12, 12),
]

# ERP invoices: (id, entity, issue date, kind, status)
INVOICES = [
    ("E1", "UK", date(2025, 3, 5), "invoice", "posted"),
    ("E2", "UK", date(2025, 3, 20), "invoice", "paid"),
    ("E3", "US", date(2025, 3, 31), "invoice", "posted"),
    ("E4", "UK", date(2025, 2, 10), "invoice", "posted"),
    ("E5", "US", date(2025, 2, 28), "invoice", "posted"),
    ("E6", "UK", date(2025, 3, 15), "invoice", "draft"),
    ("E7", "UK", date(2025, 3, 16), "credit_note", "posted"),
    ("E8", "US", date(2025, 4, 1), "invoice", "posted"),
]

# ERP time entries: (id, entity, spent, hours, approved, billable, invoice)
TIME = [
    ("T1", "UK", date(2025, 2, 3), "8.00", True, True, "E1"),  # 30 days
    ("T2", "UK", date(2025, 2, 25), "4.00", True, True, "E1"),  # 8 days
    ("T3", None, date(2025, 3, 1), "2.50", True, True, "E3"),  # 30 days, entity from the invoice: US
    ("T4", "UK", date(2025, 3, 10), "1.50", True, True, "E2"),  # 10 days
    ("T5", "UK", date(2025, 1, 1), "9.00", False, True, "E2"),  # not approved
    ("T6", "UK", date(2025, 1, 1), "9.00", True, False, "E2"),  # not billable
    ("T7", "UK", date(2025, 1, 1), "9.00", True, True, "E6"),  # draft invoice
    ("T8", "UK", date(2025, 1, 31), "3.00", True, True, "E4"),  # 10 days (February)
    ("T9", "US", date(2025, 2, 1), "5.00", True, True, "E5"),  # 27 days (February)
]

# CRM deals: (id, code, customer, entity on the deal, won at); PSA projects: (code, created at)
DEALS = [
    ("D1", "UK-1", "C1", None, ts("2025-03-02T10:00:00")),  # handed off half an hour before the deadline
    ("D2", "UK-2", "C1", None, ts("2025-03-05T00:00:00")),  # late
    ("D3", "US-1", "C2", None, ts("2025-03-20T00:00:00")),  # no project, deadline passed
    ("D4", "US-2", "C2", None, ts("2025-03-28T00:00:00")),  # no project, deadline Apr 11: not due yet
    ("D5", "US-3", "C2", None, ts("2025-03-30T00:00:00")),  # handed off early, not due yet: counted
    (
        "D6",
        "UK-3",
        "C2",
        "UK",
        ts("2025-02-10T00:00:00"),
    ),  # the deal's own entity wins; exactly on the deadline
    ("D7", "UK-4", "C1", None, ts("2025-02-20T00:00:00")),  # project without a creation time: in time
    ("D8", "US-4", "C2", None, ts("2025-02-01T00:00:00")),  # late
]
PSA_PROJECTS = [
    # 2025-03-16T09:30Z is in time by 24-hour days (deadline 10:00Z); adding 14 New York calendar
    # days across the DST change would give 09:00Z and call it late
    ("UK-1", ts("2025-03-16T09:30:00")),
    ("UK-2", ts("2025-03-25T00:00:00")),
    ("UK-2", ts("2025-03-30T00:00:00")),  # a second project with the code: the first one counts
    ("US-3", ts("2025-04-01T00:00:00")),
    ("UK-3", ts("2025-02-24T00:00:00")),
    ("UK-4", None),
    ("US-4", ts("2025-02-20T00:00:00")),
]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = empty_warehouse()
    for break_id, rule, entity, first, cleared, reopened in LEDGER:
        insert(c, "break_ledger", break_id=break_id, rule_id=rule, break_type="field_mismatch",
               legal_entity_id=entity, first_seen=first, last_seen=cleared or R4, cleared_at=cleared,
               reopened_at=reopened, times_cleared=int(cleared is not None or reopened is not None))  # fmt: skip
    rules = {b: r for b, r, *_ in LEDGER}
    firsts = {b: f for b, _, _, f, _, _ in LEDGER}
    for lid, category, obj, (ss, sid), (tsys, tid), entity, amount, currency, risk, age, bucket in BREAKS:
        insert(c, "breaks", break_id=lid, rule_id=rules[lid], category=category, break_type="field_mismatch",
               object=obj, source_system=ss, source_id=sid, target_system=tsys, target_id=tid, match_key=lid,
               legal_entity_id=entity, amount=amount, currency=currency, amount_at_risk=risk,
               reporting_currency="EUR", age_days=age, aging_bucket=bucket, first_seen=firsts[lid],
               last_seen=R4, run_id="R4")  # fmt: skip
    for run, started, replay, rule, status, rows, compared, matched in RULE_RUNS:
        insert(c, "reconciliation_runs", run_id=run, rule_id=rule, status=status, started_at=started,
               as_of=started, replay=replay, source_rows=rows, target_rows=rows, compared=compared,
               matched=matched, breaks=compared - matched)  # fmt: skip
    for iid, entity, issued, kind, status in INVOICES:
        insert(c, "invoices", system="erp", invoice_id=iid, legal_entity_id=entity, issue_date=issued,
               kind=kind, status=status, currency="GBP", amount_total="100.00")  # fmt: skip
    # the PSA's own invoice E1 (another system): never joined to the ERP's time
    insert(c, "invoices", system="psa", invoice_id="E1", issue_date=date(2025, 3, 5), kind="invoice",
           status="posted", currency="GBP", amount_total="1.00")  # fmt: skip
    for tid, entity, spent, hours, approved, billable, invoice in TIME:
        insert(c, "time_entries", system="erp", time_entry_id=tid, legal_entity_id=entity, spent_date=spent,
               hours=hours, approved=approved, billable=billable, invoice_id=invoice)  # fmt: skip
    insert(c, "time_entries", system="psa", time_entry_id="T1", spent_date=date(2024, 1, 1), hours="1.00",
           approved=True, billable=True, invoice_id="E1")  # fmt: skip
    insert(c, "customers", system="crm", customer_id="C1", legal_entity_id="UK")
    insert(c, "customers", system="crm", customer_id="C2", legal_entity_id="US")
    for did, code, customer, entity, won in DEALS:
        insert(c, "projects", system="crm", project_id=did, code=code, customer_id=customer,
               legal_entity_id=entity, won_at=won)  # fmt: skip
    insert(c, "projects", system="crm", project_id="D0", code="UK-9", customer_id="C1")  # not won: no won_at
    for i, (code, created) in enumerate(PSA_PROJECTS):
        insert(c, "projects", system="psa", project_id=f"P{i}", code=code, created_at=created)
    insert(c, "projects", system="erp", project_id="X1", code="UK-5", won_at=ts("2025-03-03T00:00:00"))
    derive(c)
    return c


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, pandas' missing values as None."""
    return [{k: (None if v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v) else v)
             for k, v in row.items()} for row in frame.astype(object).to_dict("records")]  # fmt: skip


def one(frame: pd.DataFrame) -> dict[str, Any]:
    rows = records(frame)
    assert len(rows) == 1, rows
    return rows[0]


# ---------------------------------------------------------------- open breaks, trend, aging


def test_open_breaks_against_the_previous_run(con: duckdb.DuckDBPyConnection) -> None:
    assert one(open_breaks(con)) == {
        "value": 6, "previous": 4, "change": 2, "amount_at_risk": D("1759.50"), "reporting_currency": "EUR",
        "unvalued_breaks": 1, "run_started_at": R4, "previous_run_started_at": R3,
    }  # fmt: skip


def test_open_breaks_by_entity_and_scoped(con: duckdb.DuckDBPyConnection) -> None:
    rows = records(open_breaks(con, by_entity=True))
    assert [(r["legal_entity_id"], r["value"], r["previous"], r["change"], r["amount_at_risk"], r["unvalued_breaks"])
            for r in rows] == [("UK", 4, 3, 1, D("1299.50"), 0), ("US", 2, 1, 1, D("460.00"), 1)]  # fmt: skip
    us = one(open_breaks(con, legal_entities=["US"]))
    assert (us["value"], us["previous"], us["amount_at_risk"]) == (2, 1, D("460.00"))
    assert [
        r["legal_entity_id"] for r in records(open_breaks(con, legal_entities=["US"], by_entity=True))
    ] == ["US"]
    nothing = one(open_breaks(con, legal_entities=[]))
    assert (nothing["value"], nothing["previous"], nothing["change"], nothing["amount_at_risk"]) == (
        0,
        0,
        0,
        None,
    )
    assert nothing["reporting_currency"] is None


def test_open_breaks_of_one_rule(con: duckdb.DuckDBPyConnection) -> None:
    row = one(open_breaks(con, rule_ids=["unbilled_time"]))
    assert (row["value"], row["previous"], row["change"], row["amount_at_risk"]) == (2, 1, 1, D("1610.00"))


def test_open_breaks_trend_per_run(con: duckdb.DuckDBPyConnection) -> None:
    rows = records(open_breaks_trend(con))
    assert [(r["run_id"], r["started_at"], r["open_breaks"], r["change"]) for r in rows] == [
        ("R1", R1, 2, None), ("R2", R2, 3, 1), ("R3", R3, 4, 1), ("R4", R4, 6, 2),
    ]  # fmt: skip
    # the latest run's count is the breaks view's (the ledger and the view agree)
    assert rows[-1]["open_breaks"] == one(open_breaks(con))["value"]
    assert [(r["run_id"], r["open_breaks"], r["change"]) for r in records(open_breaks_trend(con, last_runs=2))] == [
        ("R3", 4, 1), ("R4", 6, 2),
    ]  # fmt: skip


def test_open_breaks_trend_by_entity_fills_zeros_and_scopes(con: duckdb.DuckDBPyConnection) -> None:
    rows = records(open_breaks_trend(con, by_entity=True))
    assert [(r["run_id"], r["legal_entity_id"], r["open_breaks"], r["change"]) for r in rows] == [
        ("R1", "UK", 1, None), ("R1", "US", 1, None), ("R2", "UK", 3, 2), ("R2", "US", 0, -1),
        ("R3", "UK", 3, 0), ("R3", "US", 1, 1), ("R4", "UK", 4, 1), ("R4", "US", 2, 1),
    ]  # fmt: skip
    assert [r["open_breaks"] for r in records(open_breaks_trend(con, legal_entities=["US"]))] == [1, 0, 1, 2]
    assert [r["open_breaks"] for r in records(open_breaks_trend(con, legal_entities=[]))] == [0, 0, 0, 0]


def test_open_breaks_by_aging(con: duckdb.DuckDBPyConnection) -> None:
    rows = records(open_breaks_by_aging(con))
    assert [(r["aging_bucket"], r["open_breaks"], r["amount_at_risk"], r["unvalued_breaks"]) for r in rows] == [
        ("0-30", 3, D("494.50"), 0), ("31-60", 1, D("1150.00"), 0), ("61-90", 2, D("115.00"), 1),
    ]  # fmt: skip
    uk = records(open_breaks_by_aging(con, legal_entities=["UK"], by_entity=True))
    assert [(r["legal_entity_id"], r["aging_bucket"], r["open_breaks"], r["amount_at_risk"]) for r in uk] == [
        ("UK", "0-30", 2, D("34.50")), ("UK", "31-60", 1, D("1150.00")), ("UK", "61-90", 1, D("115.00")),
    ]  # fmt: skip
    unbilled = records(open_breaks_by_aging(con, rule_ids=[kpis.UNBILLED_RULE]))
    assert [(r["aging_bucket"], r["amount_at_risk"]) for r in unbilled] == [("0-30", D("460.00")),
                                                                            ("31-60", D("1150.00"))]  # fmt: skip


def test_mixed_reporting_currencies_are_refused(con: duckdb.DuckDBPyConnection) -> None:
    c = con.cursor()
    c.execute("CREATE TEMP TABLE breaks AS SELECT * FROM main.breaks")
    c.execute("UPDATE temp.breaks SET reporting_currency = 'USD' WHERE break_id = 'L5'")
    c.execute(f"CREATE TEMP TABLE tieout_open_breaks AS {kpis.BREAK_TABLES['tieout_open_breaks']}")
    with pytest.raises(ValueError, match=r"several reporting currencies \(EUR, USD\)"):
        open_breaks(c)
    assert one(open_breaks(c, legal_entities=["UK"]))["reporting_currency"] == "EUR"


# ---------------------------------------------------------------- unbilled WIP


def test_unbilled_wip(con: duckdb.DuckDBPyConnection) -> None:
    assert one(unbilled_wip(con)) == {
        "value": D("1610.00"), "reporting_currency": "EUR", "time_entries": 2, "unvalued_entries": 0,
        "mean_age_days": D("25.0"), "max_age_days": 40, "previous_time_entries": 1, "change_time_entries": 1,
    }  # fmt: skip
    rows = records(unbilled_wip(con, by_entity=True))
    assert [(r["legal_entity_id"], r["value"], r["time_entries"], r["mean_age_days"], r["previous_time_entries"])
            for r in rows] == [("UK", D("1150.00"), 1, D("40.0"), 1), ("US", D("460.00"), 1, D("10.0"), 0)]  # fmt: skip
    assert one(unbilled_wip(con, legal_entities=["DE"])) == {
        "value": None, "reporting_currency": None, "time_entries": 0, "unvalued_entries": 0,
        "mean_age_days": None, "max_age_days": None, "previous_time_entries": 0, "change_time_entries": 0,
    }  # fmt: skip


# ---------------------------------------------------------------- mean time to resolve


def test_mean_time_to_resolve(con: duckdb.DuckDBPyConnection) -> None:
    # April: L3 (UK) 48.5 days, L9 (US) 26 days; March: L8 (UK) 22.5 days (L6's clearing was lost)
    assert one(mean_time_to_resolve(con, period="2025-04")) == {
        "cleared_breaks": 2, "value": D("37.25"), "previous_cleared_breaks": 1, "previous": D("22.50"),
        "change": D("14.75"),
    }  # fmt: skip
    # March against February: L2 (US) 14.5 days
    march = one(mean_time_to_resolve(con, period="2025-03"))
    assert (march["value"], march["previous"], march["change"]) == (D("22.50"), D("14.50"), D("8.00"))


def test_mean_time_to_resolve_by_entity_and_scoped(con: duckdb.DuckDBPyConnection) -> None:
    rows = records(mean_time_to_resolve(con, period="2025-04", by_entity=True))
    assert [(r["legal_entity_id"], r["cleared_breaks"], r["value"], r["previous"], r["change"]) for r in rows] == [
        ("UK", 1, D("48.50"), D("22.50"), D("26.00")), ("US", 1, D("26.00"), None, None),
    ]  # fmt: skip
    us = one(mean_time_to_resolve(con, period="2025-04", legal_entities=["US"]))
    assert (us["value"], us["previous_cleared_breaks"], us["previous"]) == (D("26.00"), 0, None)
    assert one(mean_time_to_resolve(con, period="2025-04", rule_ids=["invoices_erp_psa"]))["value"] == D(
        "48.50"
    )


# ---------------------------------------------------------------- billing KPIs


def test_time_to_invoice(con: duckdb.DuckDBPyConnection) -> None:
    # March: 8, 10, 30, 30 days -> 20; February: 10, 27 -> 18.5
    assert one(time_to_invoice(con, period="2025-03")) == {
        "time_entries": 4, "hours": D("16.00"), "value": D("20.0"), "previous_time_entries": 2,
        "previous_hours": D("8.00"), "previous": D("18.5"), "change": D("1.5"),
    }  # fmt: skip
    rows = records(time_to_invoice(con, period="2025-03", by_entity=True))
    assert [(r["legal_entity_id"], r["time_entries"], r["hours"], r["value"], r["previous"], r["change"])
            for r in rows] == [("UK", 3, D("13.50"), D("10.0"), D("10.0"), D("0.0")),
                               ("US", 1, D("2.50"), D("30.0"), D("27.0"), D("3.0"))]  # fmt: skip
    us = one(time_to_invoice(con, period="2025-03", legal_entities=["US"]))
    assert (us["value"], us["previous"]) == (D("30.0"), D("27.0"))


def test_invoice_accuracy(con: duckdb.DuckDBPyConnection) -> None:
    # March: E1 ok, E2 (data-quality break), E3 (break); February: E4 (break as target), E5 ok
    assert one(invoice_accuracy(con, period="2025-03")) == {
        "invoices": 3, "accurate_invoices": 1, "value": D("33.33"), "previous_invoices": 2,
        "previous_accurate_invoices": 1, "previous": D("50.00"), "change": D("-16.67"),
    }  # fmt: skip
    rows = records(invoice_accuracy(con, period="2025-03", by_entity=True))
    assert [(r["legal_entity_id"], r["value"], r["previous"], r["change"]) for r in rows] == [
        ("UK", D("50.00"), D("0.00"), D("50.00")), ("US", D("0.00"), D("100.00"), D("-100.00")),
    ]  # fmt: skip
    us = one(invoice_accuracy(con, period="2025-03", legal_entities=["US"]))
    assert (us["invoices"], us["value"], us["previous"]) == (1, D("0.00"), D("100.00"))


def test_deal_handoff_within_sla(con: duckdb.DuckDBPyConnection) -> None:
    # March (as of R4): D1 on time, D2 late, D3 late, D5 early, D4 not due; February: D6, D7 on time, D8 late
    assert one(deal_handoff_within_sla(con, period="2025-03", as_of=R4)) == {
        "deals_due": 4, "deals_on_time": 2, "value": D("50.00"), "previous_deals_due": 3,
        "previous_deals_on_time": 2, "previous": D("66.67"), "change": D("-16.67"),
    }  # fmt: skip
    rows = records(deal_handoff_within_sla(con, period="2025-03", as_of=R4, by_entity=True))
    assert [(r["legal_entity_id"], r["deals_due"], r["deals_on_time"], r["value"], r["previous"]) for r in rows] == [
        ("UK", 2, 1, D("50.00"), D("100.00")), ("US", 2, 1, D("50.00"), D("0.00")),
    ]  # fmt: skip
    # later, D4's deadline has passed too
    later = one(deal_handoff_within_sla(con, period="2025-03", as_of=ts("2025-04-20T00:00:00")))
    assert (later["deals_due"], later["deals_on_time"], later["value"]) == (5, 2, D("40.00"))
    uk = one(deal_handoff_within_sla(con, period="2025-03", as_of=R4, legal_entities=["UK"]))
    assert (uk["value"], uk["previous"], uk["change"]) == (D("50.00"), D("100.00"), D("-50.00"))
    # a one-day SLA: D6 and D8 are late, D7 (no creation time) still in time
    tight = one(deal_handoff_within_sla(con, period="2025-02", as_of=R4, sla_days=1))
    assert (tight["deals_due"], tight["deals_on_time"]) == (3, 1)


# ---------------------------------------------------------------- system-level KPIs


def test_match_rate(con: duckdb.DuckDBPyConnection) -> None:
    rows = records(match_rate(con))
    assert [(r["rule_id"], r["run_id"], r["value"], r["previous_run_id"], r["previous"], r["change"])
            for r in rows] == [
        ("customers_crm_erp", "R4", None, "R3", D("66.67"), None),  # nothing to compare in R4
        ("invoices_erp_psa", "R4", D("75.00"), "R2", D("90.00"), D("-15.00")),  # R3 skipped, RX a replay
        ("time_totals_psa_erp", "R4", D("50.00"), "R1", D("80.00"), D("-30.00")),  # 3 / 6 groups; R2 failed
        ("unbilled_time", "R4", D("83.33"), "R3", D("90.00"), D("-6.67")),
    ]  # fmt: skip
    assert records(match_rate(con, rule_ids=["unbilled_time"]))[0]["started_at"] == R4
    assert match_rate(con, rule_ids=[]).empty


def test_freshness_vs_sla() -> None:
    c = empty_warehouse()
    for system, obj, minutes, current in [
        ("psa", "time_entries", 90, True), ("psa", "time_entries", 900, False), ("psa", "invoices", 200, True),
        ("psa", "projects", 120, True), ("erp", "invoices", 30, True), ("crm", "customers", 10, True),
    ]:  # fmt: skip
        insert(c, "snapshots", system=system, object=obj, snapshot_id=f"{system}-{obj}-{minutes}",
               extracted_at=NOW - timedelta(minutes=minutes), current=current)  # fmt: skip
    frame = freshness_vs_sla(
        c, sla_minutes={"psa": 120, "erp": 60}, now=NOW, objects={"erp": ["invoices", "time_entries"]}
    )
    assert [(r["system"], r["object"], r["value"], r["sla_minutes"], r["within_sla"]) for r in records(frame)] == [
        ("crm", "customers", D("10.0"), None, None),
        ("erp", "invoices", D("30.0"), 60, True),
        ("erp", "time_entries", None, 60, False),  # never extracted
        ("psa", "invoices", D("200.0"), 120, False),
        ("psa", "projects", D("120.0"), 120, True),  # exactly on the SLA
        ("psa", "time_entries", D("90.0"), 120, True),
    ]  # fmt: skip
    assert records(frame)[1]["extracted_at"] == NOW - timedelta(minutes=30)
    with pytest.raises(ValueError, match="timezone-aware"):
        freshness_vs_sla(c, sla_minutes={}, now=NOW.replace(tzinfo=None))


@pytest.fixture
def engine(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    monkeypatch.delenv("TIEOUT_STATE_URL", raising=False)
    return state_engine(tmp_path)


def add_runs(engine: sa.Engine, runs: list[tuple[str, str, str]]) -> None:
    with engine.begin() as conn:
        conn.execute(EXTRACTION_RUNS.insert(), [
            {"run_id": f"run{i}", "correlation_id": "c", "system": system, "object": "time_entries",
             "mode": "full", "started_at": ts(started), "status": status}
            for i, (system, started, status) in enumerate(runs)
        ])  # fmt: skip


def test_sync_failure_rate(engine: sa.Engine) -> None:
    add_runs(engine, [
        ("psa", "2025-03-01T00:00:00", "succeeded"), ("psa", "2025-03-12T08:00:00", "failed"),
        ("psa", "2025-03-31T23:59:59", "succeeded"), ("psa", "2025-03-20T00:00:00", "running"),
        ("erp", "2025-03-03T00:00:00", "interrupted"), ("erp", "2025-03-04T00:00:00", "succeeded"),
        ("crm", "2025-03-05T00:00:00", "succeeded"),
        ("psa", "2025-02-01T00:00:00", "succeeded"), ("psa", "2025-02-02T00:00:00", "succeeded"),
        ("psa", "2025-02-28T23:00:00", "succeeded"), ("erp", "2025-02-10T00:00:00", "failed"),
        ("psa", "2025-04-01T00:00:00", "failed"), ("psa", "2025-01-31T23:59:59", "failed"),
    ])  # fmt: skip
    assert one(sync_failure_rate(engine, period="2025-03")) == {
        "runs": 6, "failed_runs": 2, "value": D("33.33"), "previous_runs": 4, "previous_failed_runs": 1,
        "previous": D("25.00"), "change": D("8.33"),
    }  # fmt: skip
    rows = records(sync_failure_rate(engine, period="2025-03", by_system=True))
    assert [(r["system"], r["runs"], r["value"], r["previous"], r["change"]) for r in rows] == [
        ("crm", 1, D("0.00"), None, None), ("erp", 2, D("50.00"), D("100.00"), D("-50.00")),
        ("psa", 3, D("33.33"), D("0.00"), D("33.33")),
    ]  # fmt: skip
    january = one(sync_failure_rate(engine, period="2025-01"))
    assert (january["runs"], january["value"], january["previous_runs"], january["previous"]) == (
        1,
        D("100.00"),
        0,
        None,
    )


def test_sync_failure_rate_without_runs(engine: sa.Engine) -> None:
    assert one(sync_failure_rate(engine, period="2025-03")) == {
        "runs": 0, "failed_runs": 0, "value": None, "previous_runs": 0, "previous_failed_runs": 0,
        "previous": None, "change": None,
    }  # fmt: skip
    assert sync_failure_rate(engine, period="2025-03", by_system=True).empty


# ---------------------------------------------------------------- no data, bad input, definitions


def test_an_empty_warehouse_gives_none_not_errors() -> None:
    c = empty_warehouse()
    assert one(open_breaks(c)) == {
        "value": 0, "previous": None, "change": None, "amount_at_risk": None, "reporting_currency": None,
        "unvalued_breaks": 0, "run_started_at": None, "previous_run_started_at": None,
    }  # fmt: skip
    assert open_breaks(c, by_entity=True).empty
    assert open_breaks_trend(c).empty and open_breaks_by_aging(c).empty and match_rate(c).empty
    assert one(unbilled_wip(c))["value"] is None
    for frame in (
        mean_time_to_resolve(c, period="2025-03"), time_to_invoice(c, period="2025-03"),
        invoice_accuracy(c, period="2025-03"), deal_handoff_within_sla(c, period="2025-03", as_of=NOW),
    ):  # fmt: skip
        row = one(frame)
        assert (row["value"], row["previous"], row["change"]) == (None, None, None)
    for function in (mean_time_to_resolve, time_to_invoice, invoice_accuracy):
        empty = function(c, period="2025-03", by_entity=True)
        assert empty.empty and "legal_entity_id" in empty.columns
    assert freshness_vs_sla(c, sla_minutes={"psa": 60}, now=NOW).empty


def test_one_previous_run_only(con: duckdb.DuckDBPyConnection) -> None:
    c = con.cursor()
    c.execute("CREATE TEMP TABLE tieout_live_runs AS SELECT * FROM main.tieout_live_runs WHERE run_id = 'R4'")
    row = one(open_breaks(c))
    assert (row["value"], row["previous"], row["change"], row["previous_run_started_at"]) == (
        6,
        None,
        None,
        None,
    )
    assert records(open_breaks_trend(c)) == [
        {"run_id": "R4", "started_at": R4, "open_breaks": 6, "change": None}
    ]


@pytest.mark.parametrize("period", ["2025-13", "2025-3", "25-03", "2025-03-01", ""])
def test_a_bad_period_is_refused(con: duckdb.DuckDBPyConnection, period: str) -> None:
    with pytest.raises(ValueError, match="period must be a month YYYY-MM"):
        invoice_accuracy(con, period=period)


def test_january_compares_with_december(con: duckdb.DuckDBPyConnection) -> None:
    insert(con.cursor(), "invoices", system="erp", invoice_id="J1", legal_entity_id="UK",
           issue_date=date(2024, 12, 31), kind="invoice", status="posted", currency="GBP", amount_total="1.00")  # fmt: skip
    try:
        row = one(invoice_accuracy(con, period="2025-01"))
        assert (row["invoices"], row["previous_invoices"], row["previous"]) == (0, 1, D("100.00"))
    finally:
        con.execute("DELETE FROM invoices WHERE invoice_id = 'J1'")


def test_every_kpi_is_defined_and_its_docstring_states_the_formula() -> None:
    for name, definition in DEFINITIONS.items():
        assert definition.name == name
        assert definition.function in kpis.__all__, name
        doc = " ".join((getattr(kpis, definition.function).__doc__ or "").split())
        assert definition.formula in doc, f"{definition.function}'s docstring does not state {name}'s formula"
    functions = {n for n in kpis.__all__ if callable(getattr(kpis, n)) and n[0].islower()}
    breakdowns = {"open_breaks_by_aging", "open_breaks_trend", "amount_at_risk_trend", "monthly_trend"}
    assert functions - breakdowns == {d.function for d in DEFINITIONS.values()}


# ---------------------------------------------------------------- month by month, run by run

MONTHS = ["2025-01", "2025-02", "2025-03", "2025-04"]
#: The warehouse's monthly KPIs, their functions and their other arguments.
WAREHOUSE_MONTHLY = [
    ("mean_time_to_resolve", mean_time_to_resolve, {}),
    ("time_to_invoice", time_to_invoice, {}),
    ("invoice_accuracy", invoice_accuracy, {}),
    ("deal_handoff_within_sla", deal_handoff_within_sla, {"as_of": NOW}),
]


@pytest.mark.parametrize(
    ("kpi", "fn", "options"), WAREHOUSE_MONTHLY, ids=[k for k, _, _ in WAREHOUSE_MONTHLY]
)
@pytest.mark.parametrize(
    ("by_entity", "scope"), [(False, None), (True, None), (False, ["UK"]), (True, ["US"])]
)
def test_a_monthly_trend_is_each_months_kpi(
    con: duckdb.DuckDBPyConnection, kpi: str, fn: Any, options: dict[str, Any], by_entity: bool,
    scope: list[str] | None,
) -> None:  # fmt: skip
    trend = records(kpis.monthly_trend(con, kpi, through="2025-04", months=4, by_entity=by_entity,
                                       legal_entities=scope, **options))  # fmt: skip
    assert [r["month"] for r in trend][: len(MONTHS)] == MONTHS
    seen = 0
    for month in MONTHS:
        each = records(fn(con, period=month, by_entity=by_entity, legal_entities=scope, **options))
        expected = {r.get("legal_entity_id"): r["value"] for r in each if r["value"] is not None}
        got = {
            r.get("legal_entity_id"): r["value"]
            for r in trend
            if r["month"] == month and r["value"] is not None
        }
        assert got == expected, month
        seen += len(expected)
    assert seen > 0


def test_monthly_trends_hold_the_definitions_values(con: duckdb.DuckDBPyConnection) -> None:
    accuracy = records(kpis.monthly_trend(con, "invoice_accuracy", through="2025-04", months=4))
    # January: no invoices; February: E4 flagged (target of a break), E5 not; March: E2 (a failed
    # check) and E3 flagged, E1 not; April: E8
    assert [(r["month"], r["invoices"], r["value"]) for r in accuracy] == [
        ("2025-01", 0, None), ("2025-02", 2, D("50.00")), ("2025-03", 3, D("33.33")), ("2025-04", 1, D("100.00")),
    ]  # fmt: skip
    resolved = records(kpis.monthly_trend(con, "mean_time_to_resolve", through="2025-04", months=3,
                                          by_entity=True))  # fmt: skip
    # L2 (US) cleared at R2, L8 (UK) at R3, L3 (UK) and L9 (US) at R4
    assert [(r["month"], r["legal_entity_id"], r["cleared_breaks"]) for r in resolved] == [
        ("2025-02", "UK", 0), ("2025-03", "UK", 1), ("2025-04", "UK", 1),
        ("2025-02", "US", 1), ("2025-03", "US", 0), ("2025-04", "US", 1),
    ]  # fmt: skip


def test_monthly_trend_of_the_sync_failure_rate(engine: sa.Engine) -> None:
    add_runs(engine, [
        ("psa", "2025-01-31T23:59:59", "failed"), ("psa", "2025-02-01T00:00:00", "succeeded"),
        ("erp", "2025-02-10T00:00:00", "failed"), ("psa", "2025-03-12T08:00:00", "failed"),
        ("psa", "2025-03-20T00:00:00", "running"), ("psa", "2025-05-01T00:00:00", "failed"),
    ])  # fmt: skip
    trend = records(kpis.monthly_trend(engine, "sync_failure_rate", through="2025-04", months=4))
    assert [(r["month"], r["runs"], r["failed_runs"], r["value"]) for r in trend] == [
        ("2025-01", 1, 1, D("100.00")), ("2025-02", 2, 1, D("50.00")), ("2025-03", 1, 1, D("100.00")),
        ("2025-04", 0, 0, None),
    ]  # fmt: skip
    assert records(sync_failure_rate(engine, period="2025-02"))[0]["value"] == trend[1]["value"]


def test_freshness_sla_attainment_month_by_month() -> None:
    c = empty_warehouse()
    # psa time entries: published 23:30 (extracted 23:00), then 01:10 (extracted 01:00); projects
    # published 02:40 (extracted 02:30); erp has no SLA: not counted. Now 03:00 on March 1st.
    for system, obj, extracted, published in [
        ("psa", "time_entries", "2025-02-28T23:00:00", "2025-02-28T23:30:00"),
        ("psa", "time_entries", "2025-03-01T01:00:00", "2025-03-01T01:10:00"),
        ("psa", "projects", "2025-03-01T02:30:00", "2025-03-01T02:40:00"),
        ("erp", "invoices", "2025-01-01T00:00:00", "2025-01-01T00:10:00"),
    ]:  # fmt: skip
        insert(c, "snapshots", system=system, object=obj, snapshot_id=f"{system}-{published}",
               extracted_at=ts(extracted), published_at=ts(published), current=True)  # fmt: skip
    now = ts("2025-03-01T03:00:00")
    minute = 60_000_000
    # time entries: February 30 min, none out (stale from 00:00); March 00:00-03:00 = 180 min, out
    # 00:00-01:10 (70) and 02:00-03:00 (60); projects: 20 min, none out (stale from 03:30)
    march = one(kpis.freshness_sla_attainment(c, period="2025-03", sla_minutes={"psa": 60}, now=now))
    assert march == {
        "observed_us": 200 * minute, "out_of_sla_us": 130 * minute, "value": D("35.00"),
        "previous_observed_us": 30 * minute, "previous_out_of_sla_us": 0, "previous": D("100.00"),
        "change": D("-65.00"),
    }  # fmt: skip
    trend = records(kpis.monthly_trend(c, "freshness_sla_attainment", through="2025-04", months=3,
                                       sla_minutes={"psa": 60}, now=now))  # fmt: skip
    assert [(r["month"], r["value"]) for r in trend] == [
        ("2025-02", D("100.00")),
        ("2025-03", D("35.00")),
        ("2025-04", None),
    ]
    by_system = records(kpis.freshness_sla_attainment(c, period="2025-03", sla_minutes={"psa": 60, "erp": 1},
                                                      now=now, by_system=True))  # fmt: skip
    assert [(r["system"], r["value"]) for r in by_system] == [("erp", D("0.00")), ("psa", D("35.00"))]


def test_monthly_trend_refuses_what_it_cannot_compute(
    con: duckdb.DuckDBPyConnection, engine: sa.Engine
) -> None:
    with pytest.raises(ValueError, match="no monthly trend of 'open_breaks'"):
        kpis.monthly_trend(con, "open_breaks", through="2025-04")
    with pytest.raises(ValueError, match="firm-wide"):
        kpis.monthly_trend(engine, "sync_failure_rate", through="2025-04", by_entity=True)
    with pytest.raises(ValueError, match="months must be 1 or more"):
        kpis.monthly_trend(con, "invoice_accuracy", through="2025-04", months=0)
    with pytest.raises(ValueError, match="YYYY-MM"):
        kpis.monthly_trend(con, "invoice_accuracy", through="2025-4")


def add_run_summaries(c: duckdb.DuckDBPyConnection) -> None:
    """``tieout_run_summary`` for R3 (hand-built breaks, as the ledger has them open) and R4 (``breaks``)."""
    c.execute("CREATE OR REPLACE TEMP TABLE breaks_r3 AS SELECT * FROM breaks LIMIT 0")
    for lid, rule, entity, amount, risk, bucket, age in [
        ("L1", "time_entries_psa_erp", "UK", "100.00", "115.00", "31-60", 37),
        ("L3", "invoices_erp_psa", "UK", "200.00", "200.00", "0-30", 23),
        ("L4", "unbilled_time", "UK", "1000.00", "1150.00", "0-30", 14),
        ("L9", "time_entries_psa_erp", "US", "50.00", None, "0-30", 0),  # no FX rate: unvalued
    ]:  # fmt: skip
        insert(c, "breaks_r3", break_id=lid, rule_id=rule, category="reconciliation", legal_entity_id=entity,
               amount=amount, amount_at_risk=risk, reporting_currency="EUR", aging_bucket=bucket, age_days=age)  # fmt: skip
    c.execute("DROP TABLE IF EXISTS tieout_run_summary")
    c.execute(
        f"CREATE TABLE tieout_run_summary AS SELECT 'R3' AS run_id, ? AS started_at, * FROM "
        f"({run_summary_sql('breaks_r3')}) UNION ALL SELECT 'R4', ?, * FROM ({run_summary_sql('breaks')})",
        [R3, R4],
    )


def test_amount_at_risk_run_by_run(con: duckdb.DuckDBPyConnection) -> None:
    add_run_summaries(con)
    rows = records(kpis.amount_at_risk_trend(con))
    assert [(r["run_id"], r["aging_bucket"], r["open_breaks"], r["amount_at_risk"], r["unvalued_breaks"])
            for r in rows] == [
        ("R3", "0-30", 3, D("1350.00"), 1), ("R3", "31-60", 1, D("115.00"), 0),
        ("R4", "0-30", 3, D("494.50"), 0), ("R4", "31-60", 1, D("1150.00"), 0), ("R4", "61-90", 2, D("115.00"), 1),
    ]  # fmt: skip
    assert {r["reporting_currency"] for r in rows} == {"EUR"} and rows[0]["started_at"] == R3
    # the latest run's rows are the latest run's breakdown by aging bucket
    latest = [
        {k: v for k, v in r.items() if k not in ("run_id", "started_at")} for r in rows if r["run_id"] == "R4"
    ]
    assert latest == records(open_breaks_by_aging(con))
    unbilled_us = records(kpis.amount_at_risk_trend(con, legal_entities=["US"], rule_ids=["unbilled_time"],
                                                    by_entity=True))  # fmt: skip
    assert [
        (r["run_id"], r["legal_entity_id"], r["aging_bucket"], r["amount_at_risk"]) for r in unbilled_us
    ] == [("R4", "US", "0-30", D("460.00"))]
    per_run = records(kpis.amount_at_risk_trend(con, by_aging=False))
    assert [(r["run_id"], r["open_breaks"], r["amount_at_risk"], r["unvalued_breaks"]) for r in per_run] == [
        ("R3", 4, D("1465.00"), 1),
        ("R4", 6, D("1759.50"), 1),
    ]
    assert "aging_bucket" not in kpis.amount_at_risk_trend(con, by_aging=False)
