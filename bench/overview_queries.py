"""The Overview page's query layer on a million breaks: every KPI call of one render.

Target: the queries of one render of the Overview (``pages/overview.py``) in under 1 s, median, for
an executive seeing every legal entity and for a user limited to one.

Input, built once under ``<repo>/.bench/overview/home`` (a home folder, as ``TIEOUT_HOME``) in a
child process, deterministic (seeded formulas, no randomness), rebuilt when
:data:`GENERATOR_VERSION` or the columns of the canonical tables or break files change:

- the lake's current snapshots, sized like the ``large`` demo firm: :data:`CUSTOMERS` customers
  and :data:`PROJECTS` projects in each of crm, psa and erp (the crm's are closed-won deals, most
  handed off to a psa project within 20 days), :data:`TIME_ENTRIES` time entries in psa and in erp
  over January 2025 to mid-November 2026, and one invoice per project and ended month in psa and
  erp (the time entries name them);
- :data:`LIVE_RUNS` live reconciliation runs, one every :data:`RUN_EVERY_HOURS` hours from
  2026-01-01 to 2026-11-15 (every run's ``rules.parquet``, ``summary.parquet``, the latest run's
  repeated, and ``run.json``; the views read only the latest run's breaks and ledger, so older
  folders hold nothing else), and one data-quality run;
- the latest runs' one million breaks (:mod:`bench.breaks_fixture`, four fifths reconciliation,
  one fifth data quality) with aging buckets, objects and systems per rule, a ``first_seen`` at one
  of the runs and 2 % reopened; their ledgers add :data:`CLEARED` reconciliation and
  :data:`CLEARED` // 4 data-quality breaks cleared since 2026-01-01;
- ``HOME/warehouse.duckdb`` built by :func:`data.warehouse.ensure_warehouse` (again whenever its
  definition changes), and the app state (SQLite) with the extraction runs of the demo's schedules
  over the same months (2 % failed).

Method: one render's calls, in the page's order and with its arguments (the sidebar's billing
period "All", so the latest billing period, 2026-11, against the month before): the billing
periods, the six entity-scoped KPI functions, the sync failure rate (app state), freshness,
the trend and the two aging breakdowns, the amount at risk per run, the six monthly KPIs month
by month over twelve months (per legal entity where they have one: the per-entity table takes the
selected month from them), the unbilled WIP per run, and open breaks and unbilled WIP per legal
entity. The
warehouse calls share one read-only connection opened with :func:`data.warehouse.connect`, as a
page render does (``pages/_shared.guarded``); the page's five-minute result cache is not used (the
first render after a publish has nothing cached). Streamlit and plotly rendering are not timed.

One run a day is fewer than a deployment on the demo's schedules publishes (every pipeline run
reconciles: 96 a day): the trend grows with the runs kept (one point per run and entity), and
building the warehouse file (not timed here) reads the files of the runs published since the
previous file. The
sidebar's own calls (``app.py``: the legal entities for the filter) are not counted; its billing
periods are the page's.

Cases, each run :data:`RUNS` times, interleaved: an executive (every legal entity) and a user
limited to ``UK``. Printed: the median and p90 of a whole render, every call's median (slowest
first) and the time spent opening and closing the connection, the peak RSS of the timing process
(the inputs are built in a child), and whether the target is met.
"""

from __future__ import annotations

import hashlib
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench" / "overview"
HOME = BENCH_DIR / "home"
#: Bump when the inputs change, so they are built again.
GENERATOR_VERSION = 2
RUNS = 11
TARGET_MS = 1000.0
BUILD_TIMEOUT_S = 3600.0

CUSTOMERS = 4_000
PROJECTS = 8_000
TIME_ENTRIES = 10_000_000
#: Months of time and invoices: January 2025 to November 2026 (the latest one still open).
MONTHS = 23
CLEARED = 400_000
FIRST_RUN = datetime(2026, 1, 1, tzinfo=UTC)
LATEST_RUN = datetime(2026, 11, 15, tzinfo=UTC)
#: A divisor of 24: first seen, reopened and cleared times fall on midnights, which must be runs' starts.
RUN_EVERY_HOURS = 24
LIVE_RUNS = int((LATEST_RUN - FIRST_RUN) / timedelta(hours=RUN_EVERY_HOURS)) + 1
#: The moment the page is looked at (``now`` of the render): an hour after the latest run.
NOW = LATEST_RUN + timedelta(hours=1)
#: Extraction schedules of the demo's sources.yaml: system -> (objects, minutes between runs).
SCHEDULES = {
    "crm": (("customers", "projects"), 60),
    "psa": (("customers", "projects", "time_entries", "invoices"), 30),
    "erp": (("customers", "projects", "time_entries", "invoices"), 60),
}
FRESHNESS_SLA_MINUTES = {"crm": 180, "psa": 120, "erp": 180}
SCOPED_ENTITY = "UK"

#: The reconciliation rules of :mod:`bench.breaks_fixture`'s breaks.
_RECON_RULES = ["time_entries_psa_erp", "invoices_erp_psa", "unbilled_time", "customers_crm_erp"]
_ENTITY = "['US', 'UK', 'DE'][CAST({} % 3 AS INTEGER) + 1]"
_CURRENCY = "['USD', 'GBP', 'EUR'][CAST({} % 3 AS INTEGER) + 1]"


def _run_id(started: datetime) -> str:
    """A run id as :mod:`reconcile.run` makes them, with a seeded suffix instead of a random one."""
    return f"{started:%Y%m%dT%H%M%S%fZ}-{hashlib.sha256(started.isoformat().encode()).hexdigest()[:6]}"


def _run_starts() -> list[datetime]:
    return [FIRST_RUN + timedelta(hours=RUN_EVERY_HOURS * n) for n in range(LIVE_RUNS)]


# ---------------------------------------------------------------- inputs (built in a child process)


def _canonical(system: str, obj: str) -> str:
    """SQL of one system's canonical rows of ``obj`` (the columns of :data:`data.canonical.CANONICAL`)."""
    from data.canonical import CANONICAL

    te_entity = _ENTITY.format(f"(hash(i) % {PROJECTS}) % {CUSTOMERS}")
    won = "TIMESTAMPTZ '2025-01-01 09:00:00+00' + to_days(CAST(hash(i + 1) % 682 AS INTEGER))"
    invoiced = f"DATE '2025-01-01' + to_months(CAST(i % {MONTHS - 1} AS INTEGER))"
    formulas: dict[str, dict[str, str]] = {
        "customers": {
            "customer_id": f"'{system}-c' || i",
            "name": "'Customer ' || i",
            "country": _ENTITY.format("i"),
            "currency": _CURRENCY.format("i"),
            "legal_entity_id": _ENTITY.format("i"),
            "is_customer": "true",
            "status": "'active'",
            "crm_id": "'crm-c' || i",
            "psa_id": "'psa-c' || i",
            "erp_id": "'erp-c' || i",
            "created_at": "TIMESTAMPTZ '2024-06-01 00:00:00+00' + to_days(CAST(hash(i) % 400 AS INTEGER))",
            "updated_at": "TIMESTAMPTZ '2026-11-01 00:00:00+00'",
        },
        "projects": {
            "project_id": f"'{system}-p' || i",
            "code": f"{_ENTITY.format(f'i % {CUSTOMERS}')} || '-' || lpad(CAST(i AS VARCHAR), 5, '0')",
            "name": "'Project ' || i",
            "customer_id": f"'{system}-c' || (i % {CUSTOMERS})",
            "billing_model": "CASE WHEN i % 20 = 0 THEN 'non_billable' WHEN i % 20 < 4 THEN 'fixed_fee' "
            "ELSE 'time_and_materials' END",
            "status": "'active'",
            "currency": _CURRENCY.format(f"i % {CUSTOMERS}"),
            # deals without their own entity take their customer's (deal_handoff_within_sla)
            "legal_entity_id": f"CASE WHEN i % 10 <> 0 THEN {_ENTITY.format(f'i % {CUSTOMERS}')} END",
            "contract_amount": "CAST(hash(i) % 500000 AS DECIMAL(18,2))",
            "won_at": won if system == "crm" else "NULL",
            "crm_id": "'crm-p' || i",
            "psa_id": "'psa-p' || i",
            "erp_id": "'erp-p' || i",
            # 0-19 days after the deal was won: most within the 14-day SLA
            "created_at": f"{won} + to_days(CAST(hash(i + 2) % 20 AS INTEGER))",
            "updated_at": "TIMESTAMPTZ '2026-11-01 00:00:00+00'",
        },
        "time_entries": {
            "time_entry_id": f"'{system}-t' || i",
            "project_id": f"'{system}-p' || (hash(i) % {PROJECTS})",
            "project_code": f"{te_entity} || '-' || lpad(CAST(hash(i) % {PROJECTS} AS VARCHAR), 5, '0')",
            "customer_id": f"'{system}-c' || (hash(i) % {PROJECTS} % {CUSTOMERS})",
            "person_id": "'u' || (hash(i + 1) % 20800)",
            "person_name": "'Person ' || (hash(i + 1) % 20800)",
            "spent_date": "_spent",
            "billing_period": "strftime(_spent, '%Y-%m')",
            "hours": "CAST((hash(i + 2) % 800) / 100 + 0.25 AS DECIMAL(18,2))",
            "billable": "hash(i + 3) % 10 < 8",
            "approved": "_spent < DATE '2026-11-08' OR hash(i + 4) % 2 = 0",
            "bill_rate": "CAST(150 AS DECIMAL(18,2))",
            "cost_rate": "CAST(90 AS DECIMAL(18,2))",
            "billable_amount": "CAST((hash(i + 2) % 800) / 100 + 0.25 AS DECIMAL(18,2)) * 150",
            "cost_amount": "CAST((hash(i + 2) % 800) / 100 + 0.25 AS DECIMAL(18,2)) * 90",
            "currency": _CURRENCY.format(f"(hash(i) % {PROJECTS}) % {CUSTOMERS}"),
            # billable, approved time of an ended month is invoiced, but for 2 % (the unbilled WIP)
            "invoice_id": f"CASE WHEN hash(i + 3) % 10 < 8 AND _month < {MONTHS - 1} "
            f"AND hash(i + 5) % 50 <> 0 THEN '{system}-i' || ((hash(i) % {PROJECTS}) * {MONTHS - 1} "
            "+ _month) END",
            "legal_entity_id": te_entity,
            "psa_id": "'psa-t' || i",
            "created_at": "CAST(_spent AS TIMESTAMPTZ) + INTERVAL 18 HOUR",
            "updated_at": "CAST(_spent AS TIMESTAMPTZ) + INTERVAL 18 HOUR",
        },
        "invoices": {
            # invoice i bills project i // (MONTHS - 1) for month i % (MONTHS - 1)
            "invoice_id": f"'{system}-i' || i",
            "number": "'INV-' || lpad(CAST(i AS VARCHAR), 7, '0')",
            "kind": "CASE WHEN i % 50 = 0 THEN 'credit_note' ELSE 'invoice' END",
            "customer_id": f"'{system}-c' || (i // {MONTHS - 1} % {CUSTOMERS})",
            "legal_entity_id": _ENTITY.format(f"i // {MONTHS - 1} % {CUSTOMERS}"),
            "issue_date": f"{invoiced} + INTERVAL 1 MONTH + to_days(CAST(hash(i) % 10 AS INTEGER))",
            "due_date": f"{invoiced} + INTERVAL 2 MONTH",
            "period_start": invoiced,
            "period_end": f"{invoiced} + INTERVAL 1 MONTH - INTERVAL 1 DAY",
            "billing_period": f"strftime({invoiced}, '%Y-%m')",
            "currency": _CURRENCY.format(f"i // {MONTHS - 1} % {CUSTOMERS}"),
            "amount_untaxed": "CAST(hash(i + 1) % 5000000 / 100 AS DECIMAL(18,2))",
            "tax_amount": "CAST(hash(i + 1) % 5000000 / 500 AS DECIMAL(18,2))",
            "amount_total": "CAST(hash(i + 1) % 5000000 / 100 * 1.2 AS DECIMAL(18,2))",
            "amount_due": "CAST(0 AS DECIMAL(18,2))",
            "status": "['paid', 'paid', 'posted', 'draft', 'cancelled']"
            "[CAST(hash(i + 2) % 5 AS INTEGER) + 1]",
            "psa_id": "'psa-i' || i",
            "psa_number": "'H-' || i",
            "created_at": f"{invoiced} + INTERVAL 1 MONTH",
            "updated_at": "TIMESTAMPTZ '2026-11-01 00:00:00+00'",
        },
    }
    rows = {"customers": CUSTOMERS, "projects": PROJECTS, "time_entries": TIME_ENTRIES,
            "invoices": PROJECTS * (MONTHS - 1)}[obj]  # fmt: skip
    table = CANONICAL[obj]
    cols = ", ".join(
        f"CAST({formulas[obj].get(c.name, 'NULL')} AS {c.sql_type}) AS {c.name}" for c in table.columns
    )
    # spent dates in order over the months (extraction order), and their month number from January 2025
    days = (LATEST_RUN - datetime(2025, 1, 1, tzinfo=UTC)).days
    spent = f"DATE '2025-01-01' + to_days(CAST(i * {days} // {rows} AS INTEGER))"
    inner = f"SELECT i, {spent} AS _spent FROM range({rows}) AS r(i)"
    month = "(year(_spent) - 2025) * 12 + month(_spent) - 1"
    return f"SELECT {cols} FROM (SELECT *, {month} AS _month FROM ({inner}))"


def _breaks_sql(latest_run_id: str) -> str:
    """The million breaks of the latest runs, with the values the Overview's KPIs read."""
    from bench.breaks_fixture import breaks_select

    invoices = PROJECTS * (MONTHS - 1)
    overrides = {
        "object": "CASE i % 5 WHEN 1 THEN 'invoices' WHEN 3 THEN 'customers' ELSE 'time_entries' END",
        "source_system": "CASE i % 5 WHEN 1 THEN 'erp' WHEN 3 THEN 'crm' ELSE 'psa' END",
        "target_system": "CASE i % 5 WHEN 1 THEN 'psa' WHEN 4 THEN NULL ELSE 'erp' END",
        # ids of existing records, so invoice accuracy finds the invoices its breaks name
        "source_id": f"CASE i % 5 WHEN 1 THEN 'erp-i' || (hash(i + 7) % {invoices}) WHEN 3 THEN 'crm-c' "
        f"|| (hash(i + 7) % {CUSTOMERS}) ELSE 'psa-t' || (hash(i + 7) % {TIME_ENTRIES}) END",
        # the latest billing period is the latest run's month, as in the app
        "invoice_cycle": "strftime(DATE '2024-12-01' + to_months(CAST(hash(i + 2) % 24 AS INTEGER)), "
        "'%Y-%m')",
        "last_seen": f"TIMESTAMPTZ '{LATEST_RUN.isoformat()}'",
        "run_id": f"'{latest_run_id}'",
    }
    bucket = ("CASE WHEN age_days <= 30 THEN '0-30' WHEN age_days <= 60 THEN '31-60' "
              "WHEN age_days <= 90 THEN '61-90' ELSE '90+' END")  # fmt: skip
    # reopened halfway between first seen and now: a day boundary, so the time of a run
    reopened = ("CASE WHEN hash(break_id) % 50 = 0 THEN first_seen "
                "+ to_days(CAST(date_diff('day', first_seen, last_seen) // 2 AS INTEGER)) END")  # fmt: skip
    return (
        f"SELECT * REPLACE (CAST({bucket} AS VARCHAR) AS aging_bucket, CAST({reopened} AS TIMESTAMPTZ) "
        f"AS reopened_at) FROM ({breaks_select(overrides=overrides)})"
    )


def _ledger_sql(breaks: Path, cleared: int, rules: list[str], prefix: str) -> str:
    """A ledger: the open breaks of the ``breaks`` file, and ``cleared`` breaks of ``rules`` cleared since."""
    from data.breaks import LEDGER_COLUMNS

    step = f"to_hours({RUN_EVERY_HOURS})"
    first = f"TIMESTAMPTZ '{FIRST_RUN.isoformat()}' + {step} * CAST(hash(j) % {LIVE_RUNS - 1} AS INTEGER)"
    # open for 1 to 60 days, cleared by a later run (no later than the latest)
    runs = 60 * 24 // RUN_EVERY_HOURS
    cleared_at = (f"least(first_seen + {step} * CAST(1 + hash(j + 1) % {runs} AS INTEGER), "
                  f"TIMESTAMPTZ '{LATEST_RUN.isoformat()}')")  # fmt: skip
    rule = f"{rules}[j % {len(rules)} + 1]"
    gone = (
        f"SELECT '{prefix}' || lpad(CAST(j AS VARCHAR), 8, '0') AS break_id, {rule} AS rule_id, "
        "'missing_in_target' AS break_type, CAST(j AS VARCHAR) AS source_id, NULL AS target_id, "
        f"NULL AS field, {_ENTITY.format('j')} AS legal_entity_id, first_seen, "
        f"cleared_at - {step} AS last_seen, cleared_at, "
        "NULL AS reopened_at, 1 AS times_cleared, 'time_entries' AS object, 'psa' AS source_system "
        f"FROM (SELECT j, first_seen, {cleared_at} AS cleared_at FROM "
        f"(SELECT j, {first} AS first_seen FROM range({cleared}) AS r(j)))"
    )
    still = (
        "SELECT break_id, rule_id, break_type, source_id, target_id, field, legal_entity_id, first_seen, "
        "last_seen, NULL AS cleared_at, reopened_at, CAST(reopened_at IS NOT NULL AS INTEGER) "
        f"AS times_cleared, object, source_system FROM read_parquet('{breaks}')"
    )
    casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t, _ in LEDGER_COLUMNS)
    return f"SELECT {casts} FROM ({still} UNION ALL {gone})"


def _publish_break_runs(home: Path, con: Any) -> int:
    """Every live reconciliation run (rules, summary), the latest with breaks and ledger; one check run."""
    from data.breaks import (
        CHECK_RESULT_COLUMNS,
        PARQUET,
        RULE_RUN_COLUMNS,
        BreakStore,
        empty_select,
        run_summary_sql,
    )
    from reconcile.rules import load_rules
    from reconcile.run import DEFAULT_RULES

    rules = [r.rule_id for r in load_rules(DEFAULT_RULES).rules]
    starts = _run_starts()
    latest = _run_id(starts[-1])
    con.execute(f"CREATE TEMP TABLE _b AS {_breaks_sql(latest)}")
    con.execute(f"CREATE TEMP TABLE _summary AS {run_summary_sql('_b')}")
    recon = BreakStore(home, "reconciliation")
    cols = ", ".join(f"{c} {t}" for c, t, _ in RULE_RUN_COLUMNS)
    con.execute(f"CREATE TEMP TABLE _rule_runs ({cols})")
    for n, started in enumerate(starts):
        run_id = _run_id(started)
        staged = recon.staging(run_id)
        con.execute("DELETE FROM _rule_runs")
        con.executemany(
            f"INSERT INTO _rule_runs VALUES ({', '.join('?' for _ in RULE_RUN_COLUMNS)})",
            [[run_id, rule, "ok", None, started, started, started.date(), False, 100_000 + k, 100_000 + k,
              99_000 + k, 90_000 + n % 100, 9_000 + k, "{}", 1.5 + k] for k, rule in enumerate(rules)],
        )  # fmt: skip
        con.execute(f"COPY _rule_runs TO '{staged / 'rules.parquet'}' {PARQUET}")
        # every run adds up its breaks; older runs repeat the latest run's sums
        con.execute(
            f"COPY (SELECT '{run_id}' AS run_id, * FROM _summary) TO '{staged / 'summary.parquet'}' {PARQUET}"
        )
        if n == len(starts) - 1:
            con.execute(
                f"COPY (SELECT * FROM _b WHERE category = 'reconciliation' ORDER BY rule_id, break_type, "
                f"match_key) TO '{staged / 'breaks.parquet'}' {PARQUET}"
            )
            ledger = _ledger_sql(staged / "breaks.parquet", CLEARED, _RECON_RULES, "c")
            con.execute(f"COPY ({ledger}) TO '{staged / 'ledger.parquet'}' {PARQUET}")
        at = started.isoformat()
        recon.publish(staged, {"run_id": run_id, "started_at": at, "as_of": at,
                               "business_date": started.date().isoformat(), "replay": False})  # fmt: skip
    checks = BreakStore(home, "data_quality")
    staged = checks.staging(latest)
    con.execute(
        f"COPY (SELECT * FROM _b WHERE category = 'data_quality' ORDER BY rule_id, break_type, match_key) "
        f"TO '{staged / 'breaks.parquet'}' {PARQUET}"
    )
    ledger = _ledger_sql(staged / "breaks.parquet", CLEARED // 4, ["time_entries.hours_in_range"], "q")
    con.execute(f"COPY ({ledger}) TO '{staged / 'ledger.parquet'}' {PARQUET}")
    con.execute(f"COPY ({empty_select(CHECK_RESULT_COLUMNS)}) TO '{staged / 'results.parquet'}' {PARQUET}")
    checks.publish(staged, {"run_id": latest, "started_at": starts[-1].isoformat(), "replay": False})
    return int(con.execute("SELECT count(*) FROM _b").fetchone()[0])


def _publish_snapshots(home: Path, con: Any) -> None:
    """The current snapshot of every system and object, extracted ten minutes before the latest run."""
    from data.breaks import PARQUET
    from data.lake import Lake, SnapshotEntry

    lake = Lake(home)
    lake.ensure_layout()
    extracted = LATEST_RUN - timedelta(minutes=10)
    for system, (objects, _) in SCHEDULES.items():
        for obj in objects:
            run_id = f"{system}-{obj}-{extracted:%Y%m%dT%H%M}"
            snapshot_id = f"{extracted:%Y%m%dT%H%M%S%f}Z-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"
            staged = lake.staging_root / f"snapshot-{system}-{obj}"
            (staged / "canonical").mkdir(parents=True)
            con.execute(
                f"COPY ({_canonical(system, obj)}) TO '{staged / 'canonical' / 'data.parquet'}' {PARQUET}"
            )
            rows = int(
                con.execute(f"SELECT count(*) FROM '{staged / 'canonical' / 'data.parquet'}'").fetchone()[0]
            )
            lake.publish(staged, SnapshotEntry(
                system=system, object=obj, snapshot_id=snapshot_id, run_id=run_id, mode="full",
                extracted_at=extracted.isoformat(), rows=rows, quarantined=0, cursor=None,
                published_at=(extracted + timedelta(minutes=5)).isoformat(),
            ))  # fmt: skip
            staged.rmdir()


def _app_state(home: Path) -> int:
    """The extraction runs of the demo's schedules from the first run to the latest; 2 % failed."""
    from data.appstate import EXTRACTION_RUNS, state_engine

    engine = state_engine(home)
    rows: list[dict[str, Any]] = []
    for system, (objects, minutes) in SCHEDULES.items():
        for n in range(int((LATEST_RUN - FIRST_RUN) / timedelta(minutes=minutes))):
            started = FIRST_RUN + timedelta(minutes=minutes * n)
            for k, obj in enumerate(objects):
                failed = (n * 31 + k * 7) % 50 == 0
                rows.append({
                    "run_id": f"{system}-{obj}-{started:%Y%m%dT%H%M}", "correlation_id": f"{system}-{n}",
                    "system": system, "object": obj, "mode": "incremental", "started_at": started,
                    "finished_at": started + timedelta(minutes=2),
                    "status": "failed" if failed else "succeeded",
                    "rows": None if failed else 120, "received": 120, "quarantined": 0, "pages": 2,
                    "requests": 3, "retries": 0, "error_class": "HTTPError" if failed else None,
                })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(EXTRACTION_RUNS.insert(), rows)
    engine.dispose()
    return len(rows)


def _shapes() -> str:
    """A digest of the columns the files are written with (a new canonical column rebuilds them)."""
    from data.breaks import BREAK_COLUMNS, CHECK_RESULT_COLUMNS, LEDGER_COLUMNS, RULE_RUN_COLUMNS
    from data.canonical import CANONICAL, LINEAGE

    tables = [[(c.name, c.sql_type) for c in (*LINEAGE, *t.columns)] for t in CANONICAL.values()]
    tables += [[(c, t) for c, t, _ in cols] for cols in (BREAK_COLUMNS, LEDGER_COLUMNS, RULE_RUN_COLUMNS,
                                                         CHECK_RESULT_COLUMNS)]  # fmt: skip
    return hashlib.sha256(json.dumps(tables).encode()).hexdigest()[:16]


def build(home: Path) -> dict[str, Any]:
    """Build the inputs into the home folder ``home`` unless built already, by this version, same columns.

    Returns:
        What was built: ``breaks``, ``live_runs``, ``extraction_runs`` (counts), ``built_s``
        (seconds, 0 when already built).
    """
    import os
    import shutil

    import duckdb

    from data.warehouse import ensure_warehouse

    os.environ.pop("TIEOUT_STATE_URL", None)  # the app state of ``home``, never a configured database
    marker = home / "built.json"
    key = {"version": GENERATOR_VERSION, "shapes": _shapes()}
    if marker.exists():
        built: dict[str, Any] = json.loads(marker.read_text())
        if {k: built.get(k) for k in key} == key:
            ensure_warehouse(home)  # a new view definition rebuilds the file here, not in the first render
            return built | {"built_s": 0.0}
    started = time.perf_counter()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")
    try:
        _publish_snapshots(home, con)
        breaks = _publish_break_runs(home, con)
    finally:
        con.close()
    ensure_warehouse(home)
    built = key | {"breaks": breaks, "live_runs": LIVE_RUNS, "extraction_runs": _app_state(home)}
    marker.write_text(json.dumps(built))
    return built | {"built_s": time.perf_counter() - started}


# ---------------------------------------------------------------- timing


def _render(
    home: Path, engine: Any, scope: tuple[str, ...] | None
) -> tuple[dict[str, float], dict[str, Any]]:
    """The query-layer calls of one render of the Overview, in the page's order and with its arguments.

    Returns:
        Each call's milliseconds, by label, the label ``connect`` holding the milliseconds spent
        opening the render's connection (and closing it); and a few of the results (``month``,
        ``open_breaks``, ``trend_rows``) to show the inputs are what they should be.
    """
    from data import kpis, queries
    from data.warehouse import connect

    started = time.perf_counter()
    con = connect(home)  # as pages/_shared.guarded: one read-only connection per render
    times: dict[str, float] = {"connect": (time.perf_counter() - started) * 1000}

    def call(label: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(con, **kwargs)
        finally:
            times[label] = (time.perf_counter() - started) * 1000

    # the sidebar's "All": the latest period that has begun
    month = next(p for p in call("billing_periods", queries.billing_periods) if p <= f"{NOW:%Y-%m}")
    calls: dict[str, dict[str, Any]] = {
        "open_breaks": {}, "unbilled_wip": {}, "mean_time_to_resolve": {"period": month},
        "time_to_invoice": {"period": month}, "invoice_accuracy": {"period": month},
        "deal_handoff_within_sla": {"period": month, "as_of": NOW},
    }  # fmt: skip
    tiles = {fn: call(fn, getattr(kpis, fn), legal_entities=scope, **kw) for fn, kw in calls.items()}
    started = time.perf_counter()
    kpis.sync_failure_rate(engine, period=month)
    times["sync_failure_rate"] = (time.perf_counter() - started) * 1000
    objects = {system: objs for system, (objs, _) in SCHEDULES.items()}
    call(
        "freshness_vs_sla", kpis.freshness_vs_sla, sla_minutes=FRESHNESS_SLA_MINUTES, now=NOW, objects=objects
    )
    trend = call("open_breaks_trend, by entity", kpis.open_breaks_trend, legal_entities=scope, by_entity=True)
    call("open_breaks_by_aging, by entity", kpis.open_breaks_by_aging, legal_entities=scope, by_entity=True)
    call("open_breaks_by_aging", kpis.open_breaks_by_aging, legal_entities=scope)
    call("amount_at_risk_trend", kpis.amount_at_risk_trend, legal_entities=scope)
    started = time.perf_counter()
    kpis.monthly_trend(engine, "sync_failure_rate", through=month, months=12)
    times["monthly_trend sync_failure_rate"] = (time.perf_counter() - started) * 1000
    call("monthly_trend freshness_sla_attainment", kpis.monthly_trend, kpi="freshness_sla_attainment",
         through=month, months=12, sla_minutes=FRESHNESS_SLA_MINUTES, now=NOW)  # fmt: skip
    for fn in ("mean_time_to_resolve", "time_to_invoice", "invoice_accuracy", "deal_handoff_within_sla"):
        options = {"as_of": NOW} if fn == "deal_handoff_within_sla" else {}
        call(f"monthly_trend {fn}", kpis.monthly_trend, kpi=fn, through=month, months=12, by_entity=True,
             legal_entities=scope, **options)  # fmt: skip
    call("amount_at_risk_trend unbilled, by entity", kpis.amount_at_risk_trend, legal_entities=scope,
         rule_ids=(kpis.UNBILLED_RULE,), by_entity=True, by_aging=False)  # fmt: skip
    for fn in ("open_breaks", "unbilled_wip"):  # the monthly KPIs per entity are the trends' month
        call(f"{fn}, by entity", getattr(kpis, fn), legal_entities=scope, by_entity=True)
    started = time.perf_counter()
    con.close()
    times["connect"] += (time.perf_counter() - started) * 1000
    shown = {
        "month": month,
        "open_breaks": int(tiles["open_breaks"]["value"].iloc[0]),
        "trend_rows": len(trend),
    }
    return times, shown


def _p90(ms: list[float]) -> float:
    return statistics.quantiles(ms, n=10, method="inclusive")[-1]


_BUILD = (
    "import json, sys\nfrom pathlib import Path\nfrom bench.overview_queries import build\n"
    "print(json.dumps(build(Path(sys.argv[2]))))"
)


def main() -> None:
    """Build the inputs (once, in a child process), time both cases' renders, print medians and the target."""
    import os

    from bench.children import run_child

    print("benchmark: overview_queries")
    os.environ.pop("TIEOUT_STATE_URL", None)  # the app state of the bench's home, never a configured one
    built = run_child(_BUILD, "overview", HOME, BUILD_TIMEOUT_S)
    if "error" in built:
        print(f"  building the inputs failed: {built['error']}")
        sys.exit(1)
    from data.appstate import state_engine

    engine = state_engine(HOME)  # one per app process (pages/_shared._engine)
    cases: dict[str, tuple[str, ...] | None] = {"executive (every entity)": None,
                                                  f"{SCOPED_ENTITY} user": (SCOPED_ENTITY,)}  # fmt: skip
    renders: dict[str, list[float]] = {name: [] for name in cases}
    per_call: dict[str, dict[str, list[float]]] = {name: {} for name in cases}
    shown: dict[str, dict[str, Any]] = {}
    for _ in range(RUNS):
        for name, scope in cases.items():
            started = time.perf_counter()
            times, shown[name] = _render(HOME, engine, scope)
            renders[name].append((time.perf_counter() - started) * 1000)
            for label, took in times.items():
                per_call[name].setdefault(label, []).append(took)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    how = f"built in {built['built_s']:.0f} s" if built["built_s"] else "built before"
    print(f"  {built['breaks']:,} breaks, {built['live_runs']:,} live reconciliation runs, {TIME_ENTRIES:,} "
          f"time entries per system, {built['extraction_runs']:,} extraction runs ({how})")  # fmt: skip
    first = next(iter(per_call.values()))
    calls = [label for label in first if label != "connect"]
    print(f"  one render: {len(calls)} query-layer calls ({len(calls) - 1} on the warehouse, on one "
          f"connection; 1 on the app state); {RUNS} runs each, interleaved")  # fmt: skip
    print(f"  {'case':<28} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}  result")
    for name, ms in renders.items():
        s = shown[name]
        result = f"{s['month']}: {s['open_breaks']:,} open, trend {s['trend_rows']} rows"
        print(f"  {name:<28} {statistics.median(ms):10.1f} {_p90(ms):8.1f} {max(ms):8.1f}  {result}")
    print(f"  per call, median ms ({' / '.join(cases)}):")
    for label in sorted(calls, key=lambda k: -statistics.median(first[k])):
        figures = " / ".join(f"{statistics.median(per_call[name][label]):7.1f}" for name in cases)
        print(f"    {label:<38} {figures}")
    figures = " / ".join(f"{statistics.median(per_call[name]['connect']):7.1f}" for name in cases)
    print(f"    {'opening and closing the connection':<38} {figures}  (data.warehouse.connect, per render)")
    print(f"  peak RSS of the timing process: {peak_mib:,.0f} MiB")
    worst = max(statistics.median(ms) for ms in renders.values())
    met = "yes" if worst < TARGET_MS else "NO"
    print(f"  target: one render's queries < {TARGET_MS:g} ms median: worst case {worst:.1f} ms  met: {met}")
