"""The tables the warehouse file holds for the KPIs give what the views give.

The KPIs that read a table (``data.kpis.BREAK_TABLES``, ``INVOICED_TIME``, ``tieout_live_runs``)
are compared with their definitions computed straight from the views, on seeded random rows that
reach the edges: NULL dates, amounts and entities, even and odd counts, work after the invoice,
reopened and never-cleared breaks. Then, on a home folder, :func:`data.warehouse.ensure_warehouse`
builds the tables and reuses a system's invoiced time only while its snapshots stay the same.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from data import kpis
from data.breaks import (
    BREAK_COLUMNS,
    LEDGER_COLUMNS,
    PARQUET,
    RULE_RUN_COLUMNS,
    BreakStore,
    empty_select,
    live_runs_table,
    rule_runs_table,
)
from data.canonical import CANONICAL
from data.lake import Lake, SnapshotEntry
from data.warehouse import connect, ensure_warehouse
from tests.data.test_kpis import derive, empty_warehouse, insert, records, ts

ENTITIES = ["UK", "US", "DE", None]
RUNS = [ts(f"2025-0{m}-0{d}T00:00:00") for m, d in ((1, 5), (2, 1), (2, 9), (3, 3), (4, 2))]
RULES = ["time_entries_psa_erp", kpis.UNBILLED_RULE, "invoices_erp_psa", "invoices.amount_total_not_null"]
SCOPES: list[tuple[str, ...] | None] = [None, ("UK",), ("UK", "DE"), ()]
BUCKETS = [("0-30", 30), ("31-60", 60), ("61-90", 90), ("90+", 10**6)]


def _day(rng: random.Random, first: date, days: int) -> date:
    return first + timedelta(days=rng.randrange(days))


def _in_scope(column: str, scope: tuple[str, ...] | None) -> str:
    """The KPIs' entity condition, as SQL (None: every entity, NULL included; empty: none)."""
    if scope is None:
        return "true"
    return f"{column} IN ({', '.join(repr(e) for e in scope)})" if scope else "false"


# ---------------------------------------------------------------- time to invoice


@pytest.fixture(scope="module")
def billing() -> duckdb.DuckDBPyConnection:
    """Two systems' invoices and time entries; the same invoice ids in both (never joined across)."""
    rng = random.Random(11)
    con = empty_warehouse()
    for system in ("erp", "psa"):
        for n in range(60):
            insert(con, "invoices", system=system, invoice_id=f"I{n}", legal_entity_id=rng.choice(ENTITIES),
                   issue_date=_day(rng, date(2025, 1, 1), 120), kind=rng.choice(["invoice"] * 9 + ["credit_note"]),
                   status=rng.choice(["posted", "paid", "paid", "draft", "cancelled"]))  # fmt: skip
        for n in range(1500):
            insert(con, "time_entries", system=system, time_entry_id=f"T{n}",
                   invoice_id=rng.choice([f"I{rng.randrange(60)}"] * 8 + [None, "unknown"]),
                   spent_date=None if rng.random() < 0.05 else _day(rng, date(2024, 12, 1), 160),
                   legal_entity_id=rng.choice(ENTITIES),
                   hours=None if rng.random() < 0.02 else Decimal(rng.randrange(25, 800)) / 100,
                   approved=rng.random() < 0.85, billable=rng.random() < 0.85)  # fmt: skip
    derive(con)
    return con


def _invoiced_time_from_the_views(
    con: duckdb.DuckDBPyConnection, period: str, scope: tuple[str, ...] | None, by_entity: bool, system: str
) -> dict[tuple[str, Any], tuple[Any, ...]]:
    """time_to_invoice's definition over the views: (month, entity) -> (entries, hours, median days)."""
    year, month = int(period[:4]), int(period[5:])
    start = date(year, month, 1)
    previous = date(year - (month == 1), (month - 2) % 12 + 1, 1)
    end = date(year + month // 12, month % 12 + 1, 1)
    entity = "coalesce(i.legal_entity_id, t.legal_entity_id)"
    where = _in_scope(entity, scope)
    rows = con.execute(
        f"SELECT CASE WHEN i.issue_date >= ? THEN 'current' ELSE 'previous' END, "
        f"{entity if by_entity else 'NULL'}, count(*), sum(t.hours), "
        "CAST(median(date_diff('day', t.spent_date, i.issue_date)) AS DECIMAL(18,1)) "
        "FROM time_entries AS t JOIN invoices AS i ON i.system = t.system AND i.invoice_id = t.invoice_id "
        "WHERE t.system = ? AND t.approved AND t.billable AND i.kind = 'invoice' "
        f"AND i.status IN ('posted', 'paid') AND i.issue_date >= ? AND i.issue_date < ? AND {where} GROUP BY ALL",
        [start, system, previous, end],
    ).fetchall()
    return {(which, key): tuple(measures) for which, key, *measures in rows}


@pytest.mark.parametrize("system", ["erp", "psa"])
def test_time_to_invoice_is_the_median_over_the_time_entries(
    billing: duckdb.DuckDBPyConnection, system: str
) -> None:
    compared = 0
    for period in ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05"):
        for scope in SCOPES:
            for by_entity in (False, True):
                frame = kpis.time_to_invoice(billing, period=period, legal_entities=scope, by_entity=by_entity,
                                             system=system)  # fmt: skip
                got = {
                    (which, row.get("legal_entity_id")): (row[f"{before}time_entries"], row[f"{before}hours"], row[value])
                    for row in records(frame)
                    for which, before, value in (("current", "", "value"), ("previous", "previous_", "previous"))
                    if row[f"{before}time_entries"]
                }  # fmt: skip
                expected = _invoiced_time_from_the_views(billing, period, scope, by_entity, system)
                assert got == expected, (period, scope, by_entity)
                compared += len(expected)
    assert compared > 50  # the seeded rows reach most months and entities


# ---------------------------------------------------------------- open breaks


@pytest.fixture(scope="module")
def exceptions() -> duckdb.DuckDBPyConnection:
    """Five live runs (and a replay), a ledger of breaks opening, clearing and reopening, the latest breaks."""
    rng = random.Random(5)
    con = empty_warehouse()
    for run, started in enumerate([*RUNS, RUNS[-1] + timedelta(days=1)]):
        insert(con, "reconciliation_runs", run_id=f"R{run + 1}", rule_id=RULES[0], status="ok", started_at=started,
               replay=run == len(RUNS))  # fmt: skip
    for n in range(600):
        first = rng.randrange(len(RUNS))
        later = list(range(first + 1, len(RUNS)))
        # open since first seen; cleared at a later run; back at a later run (the ledger forgets the
        # clearing); or back and cleared again
        shape = rng.choice(["open", "cleared", "reopened", "recleared"]) if len(later) > 1 else "open"
        back, gone = sorted(rng.sample(later, 2)) if len(later) > 1 else (None, None)
        insert(con, "break_ledger", break_id=f"L{n}", rule_id=rng.choice(RULES), legal_entity_id=rng.choice(ENTITIES),
               first_seen=None if n == 0 else RUNS[first],
               cleared_at={"cleared": RUNS[back] if back else None, "recleared": RUNS[gone] if gone else None}.get(shape),
               reopened_at=RUNS[back] if back and shape in ("reopened", "recleared") else None)  # fmt: skip
    for n in range(900):
        amount = None if rng.random() < 0.1 else Decimal(rng.randrange(1, 10**6)) / 100
        valued = amount is not None and rng.random() < 0.9
        age = None if rng.random() < 0.05 else rng.randrange(0, 200)
        bucket = None if age is None else next(b for b, most in BUCKETS if age <= most)
        rule = rng.choice(RULES)
        insert(con, "breaks", break_id=f"B{n}", rule_id=rule, legal_entity_id=rng.choice(ENTITIES),
               category="data_quality" if "." in rule else "reconciliation", amount=amount,
               amount_at_risk=amount * Decimal("1.10") if valued and amount is not None else None,
               reporting_currency="EUR" if valued else None, age_days=age, aging_bucket=bucket)  # fmt: skip
    derive(con)
    return con


def _breaks_from_the_views(
    con: duckdb.DuckDBPyConnection, scope: tuple[str, ...] | None, rules: list[str] | None, by: str
) -> list[tuple[Any, ...]]:
    """The open reconciliation breaks straight from the breaks view, grouped by ``by`` (SQL)."""
    where = _in_scope("legal_entity_id", scope)
    where += "" if rules is None else f" AND rule_id IN ({', '.join(repr(r) for r in rules)})"
    return con.execute(
        f"SELECT {by}, count(*), sum(amount_at_risk), count(*) FILTER (WHERE amount IS NOT NULL AND amount_at_risk "
        "IS NULL), count(age_days), sum(age_days), max(age_days) FROM breaks "
        f"WHERE category = 'reconciliation' AND {where} GROUP BY ALL ORDER BY ALL NULLS LAST"
    ).fetchall()


@pytest.mark.parametrize("rules", [None, [kpis.UNBILLED_RULE]])
def test_open_breaks_add_up_the_breaks_and_the_ledger(
    exceptions: duckdb.DuckDBPyConnection, rules: list[str] | None
) -> None:
    for scope in SCOPES:
        for by_entity in (False, True):
            frame = records(
                kpis.open_breaks(exceptions, legal_entities=scope, rule_ids=rules, by_entity=by_entity)
            )
            trend = records(kpis.open_breaks_trend(exceptions, legal_entities=scope, rule_ids=rules,
                                                   by_entity=by_entity))  # fmt: skip
            # the previous run's count is the ledger's (the trend reconstructs every run from it)
            before = {r.get("legal_entity_id"): r["open_breaks"] for r in trend if r["run_id"] == "R4"}
            assert {r.get("legal_entity_id"): r["previous"] for r in frame} == {
                r.get("legal_entity_id"): before.get(r.get("legal_entity_id"), 0) for r in frame
            }  # fmt: skip
            assert {e for e, n in before.items() if n} <= {r.get("legal_entity_id") for r in frame}
            now = [row for row in _breaks_from_the_views(
                exceptions, scope, rules, "legal_entity_id" if by_entity else "NULL") if row[1]]  # fmt: skip
            assert [(r.get("legal_entity_id"), r["value"], r["amount_at_risk"], r["unvalued_breaks"])
                    for r in frame if r["value"]] == [row[:4] for row in now]  # fmt: skip
            if rules is not None:
                wip = records(kpis.unbilled_wip(exceptions, legal_entities=scope, by_entity=by_entity))
                assert [(r.get("legal_entity_id"), r["time_entries"], r["value"], r["unvalued_entries"],
                         r["mean_age_days"], r["max_age_days"]) for r in wip if r["time_entries"]] == [
                    (e, n, amount, unvalued, (Decimal(total) / aged).quantize(Decimal("0.1"), ROUND_HALF_UP) if aged else None, most)
                    for e, n, amount, unvalued, aged, total, most in now
                ]  # fmt: skip


def test_open_breaks_by_aging_add_up_the_breaks(exceptions: duckdb.DuckDBPyConnection) -> None:
    for scope in SCOPES:
        for rules in (None, [kpis.UNBILLED_RULE]):
            frame = records(
                kpis.open_breaks_by_aging(exceptions, legal_entities=scope, rule_ids=rules, by_entity=True)
            )
            got = {(r["legal_entity_id"], r["aging_bucket"]): (r["open_breaks"], r["amount_at_risk"],
                                                                r["unvalued_breaks"]) for r in frame}  # fmt: skip
            expected = _breaks_from_the_views(exceptions, scope, rules, "legal_entity_id, aging_bucket")
            assert got == {
                (entity, bucket): tuple(measures) for entity, bucket, *measures, _, _, _ in expected
            }
            # youngest bucket first within an entity, as the page orders its bars
            for entity in {r["legal_entity_id"] for r in frame}:
                buckets = [r["aging_bucket"] for r in frame if r["legal_entity_id"] == entity]
                order = [b for b, _ in BUCKETS] + [None]
                assert buckets == sorted(buckets, key=order.index)


# ---------------------------------------------------------------- the warehouse file


def _snapshot(
    lake: Lake, tmp: Path, system: str, obj: str, snapshot_id: str, rows: list[dict[str, Any]]
) -> None:
    """Publish ``rows`` (the other canonical columns NULL) as ``system``'s current snapshot of ``obj``."""
    staged = tmp / f"stage-{system}-{obj}-{snapshot_id}"
    (staged / "canonical").mkdir(parents=True)
    columns = ", ".join(f"CAST(NULL AS {c.sql_type}) AS {c.name}" for c in CANONICAL[obj].columns)
    with duckdb.connect() as con:
        con.execute(f"CREATE TABLE rows AS SELECT {columns} WHERE false")
        for row in rows:
            insert(con, "rows", **row)
        con.execute(f"COPY rows TO '{staged / 'canonical' / 'data.parquet'}'")
    lake.publish(staged, SnapshotEntry(system, obj, snapshot_id, "r", "full", "2025-04-02T00:00:00+00:00",
                                       "2025-04-02T00:00:01+00:00", len(rows), 0, None))  # fmt: skip


def _run(store: BreakStore, run_id: str, started: datetime, *, replay: bool = False) -> None:
    """Publish a break run with one rule's figures and one open break (invoice I1's, first seen at RUNS[0])."""
    staged = store.staging(run_id)
    with duckdb.connect() as con:
        for file, columns in (
            ("breaks", BREAK_COLUMNS),
            ("ledger", LEDGER_COLUMNS),
            ("rules", RULE_RUN_COLUMNS),
        ):
            con.execute(f"CREATE TABLE {file} AS {empty_select(columns)}")
        insert(con, "rules", run_id=run_id, rule_id=kpis.UNBILLED_RULE, status="ok", started_at=started,
               replay=replay)  # fmt: skip
        opened = {"break_id": "b1", "rule_id": "invoices_erp_psa", "object": "invoices", "source_system": "erp",
                  "source_id": "I1", "legal_entity_id": "UK", "first_seen": RUNS[0]}  # fmt: skip
        insert(con, "breaks", **opened, category="reconciliation", break_type="missing_in_target",
               amount=Decimal("12.50"), amount_at_risk=Decimal("12.50"), reporting_currency="USD", age_days=3,
               aging_bucket="0-30", last_seen=started, run_id=run_id)  # fmt: skip
        insert(con, "ledger", **opened, break_type="missing_in_target", last_seen=started, times_cleared=0)
        for file in ("breaks", "ledger", "rules"):
            con.execute(f"COPY {file} TO '{staged / file}.parquet' {PARQUET}")
    store.publish(staged, {"run_id": run_id, "started_at": started.isoformat(), "replay": replay})


def test_the_warehouse_file_holds_the_kpi_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    ensure_warehouse(home)
    lake = Lake(home)
    for system in ("erp", "psa"):
        _snapshot(lake, tmp_path, system, "invoices", "i1", [
            {"invoice_id": "I1", "legal_entity_id": "UK", "issue_date": "2025-03-05", "kind": "invoice",
             "status": "posted"},
        ])  # fmt: skip
        _snapshot(lake, tmp_path, system, "time_entries", "t1", [
            {"time_entry_id": "T1", "invoice_id": "I1", "spent_date": "2025-02-03", "hours": "8.00",
             "approved": True, "billable": True},
            {"time_entry_id": "T2", "invoice_id": "I1", "spent_date": "2025-02-25", "hours": "4.00",
             "approved": True, "billable": True},
        ])  # fmt: skip
    store = BreakStore(home, "reconciliation")
    _run(store, "R1", RUNS[0])
    _run(store, "R2", RUNS[1])
    _run(store, "RX", RUNS[2], replay=True)
    con = connect(home)
    try:
        assert con.execute("SELECT run_id, started_at FROM tieout_live_runs ORDER BY ALL").fetchall() == [
            ("R1", RUNS[0]), ("R2", RUNS[1])
        ]  # fmt: skip
        invoiced = "SELECT * FROM tieout_invoiced_time ORDER BY ALL"
        assert con.execute(invoiced).fetchall() == [
            ("erp", date(2025, 3, 5), "UK", 8, 1, Decimal("4.00")), ("erp", date(2025, 3, 5), "UK", 30, 1, Decimal("8.00")),
            ("psa", date(2025, 3, 5), "UK", 8, 1, Decimal("4.00")), ("psa", date(2025, 3, 5), "UK", 30, 1, Decimal("8.00")),
        ]  # fmt: skip
        assert kpis.time_to_invoice(con, period="2025-03")["value"].tolist() == [Decimal("19.0")]
        # R2's one break (invoice I1, UK, 12.50 USD, 3 days old), open since R1
        held = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in kpis.BREAK_TABLES}
        assert held == {
            "tieout_open_breaks": [
                ("invoices_erp_psa", "UK", "0-30", "USD", 1, 1, Decimal("12.50"), 0, 1, 3, 3, 3)
            ],
            "tieout_flagged_invoices": [("erp", "I1")],
            "tieout_previous_open": [("invoices_erp_psa", "UK", 1)],
        }
    finally:
        con.close()

    # a new snapshot of the PSA's time entries: its invoiced time is computed again (here: marked),
    # the ERP's is copied from the previous file
    monkeypatch.setattr(kpis, "INVOICED_TIME", kpis.INVOICED_TIME.replace("count(*) AS", "count(*) + 100 AS"))
    _snapshot(lake, tmp_path, "psa", "time_entries", "t2", [
        {"time_entry_id": "T1", "invoice_id": "I1", "spent_date": "2025-03-01", "hours": "1.00",
         "approved": True, "billable": True},
    ])  # fmt: skip
    con = connect(home)
    try:
        assert con.execute("SELECT system, days, time_entries FROM tieout_invoiced_time ORDER BY ALL").fetchall() == [
            ("erp", 8, 1), ("erp", 30, 1), ("psa", 4, 101),
        ]  # fmt: skip
        assert con.execute("SELECT * FROM tieout_invoiced_time_inputs ORDER BY ALL").fetchall() == [
            ("erp", "t1 i1"), ("psa", "t2 i1")
        ]  # fmt: skip
    finally:
        con.close()


def test_rule_runs_keep_replays_and_stop_live_runs_at_the_latest(tmp_path: Path) -> None:
    """tieout_rule_runs: the previous file's rows, then the new files' (a late live run is the next build's)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = []
    for run_id, started, replay in (("R2", RUNS[1], False), ("R3", RUNS[2], False), ("X1", RUNS[3], True)):
        files.append(tmp_path / f"{run_id}.parquet")
        con.execute(
            "COPY (SELECT ? AS run_id, 'unbilled_time' AS rule_id, ?::TIMESTAMPTZ AS started_at, ? AS replay) "
            f"TO '{files[-1]}' {PARQUET}",
            [run_id, started, replay],
        )
    con.execute("ATTACH ':memory:' AS previous")
    con.execute(f"CREATE TABLE previous.tieout_rule_runs AS {empty_select(RULE_RUN_COLUMNS)}")
    con.execute(
        "INSERT INTO previous.tieout_rule_runs (run_id, started_at, replay) VALUES ('R1', ?, false)",
        [RUNS[0]],
    )
    con.execute(rule_runs_table({"run_id": "R2", "started_at": RUNS[1].isoformat()}, files, "previous"))
    got = con.execute("SELECT run_id, replay FROM tieout_rule_runs ORDER BY run_id").fetchall()
    assert got == [("R1", False), ("R2", False), ("X1", True)]  # R3 started after the latest live run R2
    # a run published while the file is built belongs to the next build, with its breaks
    con.execute(live_runs_table("tieout_rule_runs"))
    assert con.execute("SELECT run_id FROM tieout_live_runs ORDER BY run_id").fetchall() == [("R1",), ("R2",)]
