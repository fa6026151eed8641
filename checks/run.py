"""One check run: GX suites and snapshot checks on current snapshots, published as data-quality breaks.

:func:`check` validates the current snapshot of each chosen system and object with its suite
(:mod:`checks.validate`), runs the snapshot-level checks (:mod:`checks.snapshot`: schema drift,
volume, quarantine) and the freshness of every configured system and object, and publishes the
run through :class:`data.breaks.BreakStore` (category ``data_quality``):

- ``results.parquet``: one row per check and snapshot (:data:`data.breaks.CHECK_RESULT_COLUMNS`),
  the ``check_results`` view;
- ``breaks.parquet`` and ``ledger.parquet``: failed checks as breaks, in the same queue as the
  reconciliation's. A failing record is one break (``source_id`` its key, ``match_key``
  ``system|key``; its legal entity, when its own row has none, from the other systems:
  :mod:`checks.entities`); a check about the whole snapshot (drift: per field) is one break per snapshot;
  an expectation failing on more than :data:`MAX_RECORD_BREAKS` rows is one break for the snapshot.
  Ids are stable (:data:`reconcile.identity.BREAK_ID_SQL`), so breaks age, clear and reopen.

Snapshots not checked this time keep their previous results and breaks. GX Data Docs of the run
are built in ``HOME/data_docs`` (``index.html``).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from checks.build import Bounds, GxContext
from checks.entities import entity_lookup
from checks.snapshot import Finding, freshness, previous_snapshot, quarantined, schema_drift, volume
from checks.spec import DEFAULT_SUITES, Suite, Volume, load_suites
from checks.validate import ExpectationOutcome, validate_snapshot
from data.breaks import CHECK_RESULT_COLUMNS, PARQUET, BreakStore
from data.canonical import CANONICAL
from data.lake import Lake, SnapshotEntry
from data.lock import PipelineLock
from data.sql import sql_literal
from data.warehouse import ensure_warehouse
from extractors.config import ConfigError, SourcesConfig, load_sources
from reconcile.identity import BREAK_ID_SQL, ran_sql, write_breaks
from reconcile.rules import load_rules
from reconcile.run import rules_path
from reconcile.valuation import fx_join, fx_relation, valuation_columns

__all__ = ["BATCH_ROWS", "MAX_RECORD_BREAKS", "WORKERS", "CheckRun", "check", "docs_dir", "suites_path"]

#: Rows per pandas batch handed to GX (memory stays bounded on the largest snapshot).
BATCH_ROWS = 1_000_000
#: Processes validating a large snapshot's batches at once.
WORKERS = min(2, os.cpu_count() or 1)
#: Most failing records reported one by one per expectation and snapshot.
MAX_RECORD_BREAKS = 1000
_SAMPLE_IDS = 20
# a result's or break's snapshot, ``system/object``, as the run's ``checked`` list names it
_UNIT = "{system} || '/' || object"
# context columns of a break, per object: break column -> canonical column
_CONTEXT = {
    "customers": {"customer": "name"},
    "projects": {"project_code": "code"},
    "time_entries": {"project_code": "project_code", "invoice_cycle": "billing_period"},
    "invoices": {"invoice_cycle": "billing_period"},
    "invoice_lines": {},
}
_RAW = (
    "rule_id VARCHAR, break_type VARCHAR, object VARCHAR, source_system VARCHAR, source_id VARCHAR, "
    "match_key VARCHAR, field VARCHAR, source_value VARCHAR, target_value VARCHAR, legal_entity_id VARCHAR, "
    "customer VARCHAR, project_code VARCHAR, invoice_cycle VARCHAR, fixed_severity VARCHAR"
)


@dataclass(frozen=True)
class CheckRun:
    """A finished check run.

    Attributes:
        run_id: its id (folder under ``lake/breaks/data_quality``). started_at: UTC.
        checked: ``system/object`` -> snapshot id of each snapshot checked.
        results: rows of ``check_results`` from this run. failed: of which failed.
        breaks: data-quality breaks after the run (carried-over ones included).
        outcomes: ``system/object`` -> the result rows of that snapshot (dicts of CHECK_RESULT_COLUMNS).
        path: the published folder. docs: the Data Docs index, or None.
    """

    run_id: str
    started_at: datetime
    checked: dict[str, str]
    results: int
    failed: int
    breaks: int
    outcomes: dict[str, list[dict[str, Any]]]
    path: Path
    docs: Path | None


def suites_path(home: Path) -> Path:
    """The suites folder: ``HOME/checks`` if it holds suites, else the project's ``checks/suites``."""
    own = home / "checks"
    return own if any(own.glob("*.yaml")) else DEFAULT_SUITES


def docs_dir(home: Path) -> Path:
    """Where the GX Data Docs are built: ``HOME/data_docs`` (``index.html`` is the entry page)."""
    return home / "data_docs"


def check(
    home: Path,
    *,
    systems: list[str] | None = None,
    objects: list[str] | None = None,
    units: list[tuple[str, str]] | None = None,
    lock_wait_s: float = 0,
    docs: bool = True,
    batch_rows: int = BATCH_ROWS,
) -> CheckRun:
    """Check the current snapshots of ``systems`` x ``objects`` (default: all) and publish the results.

    ``units`` (``(system, object)`` pairs, e.g. the snapshots a pipeline run just published) narrows
    the choice further. Freshness is checked for every configured system and object each time.

    Raises:
        extractors.config.ConfigError: sources.yaml is invalid, or a system or object is unknown.
        checks.spec.SuiteError: a suite file is invalid (nothing runs).
        data.lock.PipelineBusy: another run holds the pipeline lock.
    """
    sources = load_sources(home / "sources.yaml")
    folder = suites_path(home)
    # the starter suites name the demo's systems; a home's own suites must name its systems
    suites = load_suites(folder, sources.systems if folder != DEFAULT_SUITES else None)
    for system in systems or []:
        if system not in sources.systems:
            raise ConfigError(
                f"unknown system {system!r}; systems in sources.yaml: {', '.join(sources.systems)}"
            )
    for obj in objects or []:
        if obj not in CANONICAL:
            raise ConfigError(f"unknown object {obj!r}; objects: {', '.join(CANONICAL)}")
    with PipelineLock(home, wait_s=lock_wait_s):
        lake = Lake(home)
        entries = [
            e for e in lake.entries()
            if e.current and (not systems or e.system in systems) and (not objects or e.object in objects)
            and (units is None or (e.system, e.object) in units)
        ]  # fmt: skip
        return _run(home, sources, suites, lake, entries, docs=docs, batch_rows=batch_rows)


def _run(
    home: Path, sources: SourcesConfig, suites: dict[str, Suite], lake: Lake, entries: list[SnapshotEntry],
    *, docs: bool, batch_rows: int,
) -> CheckRun:  # fmt: skip
    started = datetime.now(UTC)
    run_id = f"{started:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"
    store = BreakStore(home, "data_quality")
    staged = store.staging(run_id)
    site = docs_dir(home) if docs else None
    if site is not None:
        # the index lists this run's validations only; older pages would be unreachable
        shutil.rmtree(site / "validations", ignore_errors=True)
    bounds = Bounds(founded=sources.founded, today=sources.business_date or started.date())
    gx = GxContext(site)
    con = duckdb.connect()
    try:
        con.execute(f"SET temp_directory = {sql_literal(str(staged / 'spill'))}")
        con.execute(f"CREATE TEMP TABLE _dq_raw ({_RAW})")
        rows: list[dict[str, Any]] = []
        for entry in entries:
            rows += _check_snapshot(con, lake, entry, suites.get(entry.object), gx, bounds, run_id, started,
                                    batch_rows)  # fmt: skip
        fresh = freshness(lake, sources, started)
        rows += [_finding_row(f, _snapshot_of(lake, f), run_id, started) for f in fresh]
        _insert_findings(con, [f for f in fresh if not f.success])
        checked = sorted({f"{e.system}/{e.object}" for e in entries})
        ran = f"({ran_sql(_UNIT.format(system='source_system'), checked)} OR break_type = 'stale')"
        previous = store.latest()
        prev_dir = store.run_dir(previous["run_id"]) if previous else None
        total = _write_breaks(
            con, home, sources, prev_dir, ran, started=started, staged=staged, run_id=run_id
        )
        _write_results(con, rows, prev_dir, checked, staged)
    finally:
        con.close()
    shutil.rmtree(staged / "spill", ignore_errors=True)
    snapshots = {f"{e.system}/{e.object}": e.snapshot_id for e in entries}
    failed = sum(1 for r in rows if not r["success"])
    run = {
        "run_id": run_id, "started_at": started.isoformat(), "replay": False, "snapshots": snapshots,
        "results": len(rows), "failed": failed, "breaks": total,
    }  # fmt: skip
    path = store.publish(staged, run)
    ensure_warehouse(home)
    outcomes: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        outcomes.setdefault(f"{r['system']}/{r['object']}", []).append(r)
    index = gx.build_docs()
    return CheckRun(run_id, started, snapshots, len(rows), failed, total, outcomes, path, index)


def _check_snapshot(
    con: duckdb.DuckDBPyConnection, lake: Lake, entry: SnapshotEntry, suite: Suite | None, gx: GxContext,
    bounds: Bounds, run_id: str, started: datetime, batch_rows: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Validate one snapshot; record its failures in ``_dq_raw``; return its result rows."""
    rows: list[dict[str, Any]] = []
    snapshot = lake.snapshot_query(entry)
    table = CANONICAL[entry.object]
    if suite is not None:
        gx_suite = gx.suite(suite, entry.system, key=table.key, bounds=bounds, max_ids=MAX_RECORD_BREAKS)
        outcomes, result = validate_snapshot(snapshot, entry.rows, gx_suite, batch_rows=batch_rows,
                                             workers=WORKERS)  # fmt: skip
        gx.keep(result, gx_suite, entry.snapshot_id)
        for out in outcomes:
            rows.append(_outcome_row(out, entry, run_id, started))
            if not out.success:
                _insert_failures(con, lake, out, entry, snapshot)
    previous = previous_snapshot(lake, entry)
    band = (suite.volume if suite is not None else Volume()).max_change_pct
    findings = [*schema_drift(con, lake, entry, previous), volume(entry, previous, band)]
    findings += quarantined(con, lake, entry)
    _insert_findings(con, [f for f in findings if not f.success])
    summary: dict[str, list[Finding]] = {}
    for f in findings:
        summary.setdefault(f.check_type, []).append(f)
    for group in summary.values():
        rows.append(_findings_row(group, entry, run_id, started))
    return rows


def _outcome_row(
    out: ExpectationOutcome, entry: SnapshotEntry, run_id: str, started: datetime
) -> dict[str, Any]:
    return {
        "run_id": run_id, "checked_at": started, "system": entry.system, "object": entry.object,
        "snapshot_id": entry.snapshot_id, "suite": entry.object, "expectation": out.expectation,
        "rule_id": out.rule_id, "check_type": "expectation", "gx_type": out.gx_type,
        "column_name": out.column,
        "success": out.success, "element_count": out.element_count, "unexpected_count": out.unexpected_count,
        "unexpected_percent": out.unexpected_percent, "sample_ids": json.dumps(out.ids[:_SAMPLE_IDS]),
        "observed": None, "expected": None, "error": out.error,
    }  # fmt: skip


def _finding_row(f: Finding, entry: SnapshotEntry | None, run_id: str, started: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id, "checked_at": started, "system": f.system, "object": f.object,
        "snapshot_id": entry.snapshot_id if entry else None, "suite": f.object, "expectation": f.check_type,
        "rule_id": f.rule_id, "check_type": f.check_type, "gx_type": None, "column_name": f.field,
        "success": f.success, "element_count": 1, "unexpected_count": 0 if f.success else 1,
        "unexpected_percent": 0.0 if f.success else 100.0, "sample_ids": "[]", "observed": f.observed,
        "expected": f.expected, "error": None,
    }  # fmt: skip


def _findings_row(
    group: list[Finding], entry: SnapshotEntry, run_id: str, started: datetime
) -> dict[str, Any]:
    """One result row for the findings of one snapshot-level check (drift fields, quarantined records)."""
    failed = [f for f in group if not f.success]
    row = _finding_row(group[0], entry, run_id, started)
    if failed:
        ids = [f.record_id for f in failed if f.record_id is not None]
        row.update(
            success=False, unexpected_count=len(failed), unexpected_percent=100.0,
            column_name=", ".join(f.field for f in failed if f.field) or None,
            observed="; ".join(
                f"{f.field}: {f.observed}" if f.field else f.observed for f in failed[:_SAMPLE_IDS]
            ),
            sample_ids=json.dumps(ids[:_SAMPLE_IDS]),
        )  # fmt: skip
        if group[0].check_type == "quarantined":
            row["element_count"] = entry.rows + entry.quarantined
            row["unexpected_percent"] = 100.0 * len(failed) / max(row["element_count"], 1)
    return row


def _snapshot_of(lake: Lake, f: Finding) -> SnapshotEntry | None:
    return lake.current(f.system, f.object)


def _severity(break_type: str, on_key: bool = False) -> str:
    """``high`` for drift, staleness and a broken record key (matching cannot work), else ``medium``."""
    return "high" if break_type in ("schema_drift", "stale") or on_key else "medium"


def _insert_findings(con: duckdb.DuckDBPyConnection, findings: list[Finding]) -> None:
    """Failed snapshot-level findings as raw breaks (per snapshot; drift per field; per record refused)."""
    types = {"schema_drift": "schema_drift", "volume": "volume_change", "freshness": "stale",
             "quarantined": "quarantined"}  # fmt: skip
    rows = []
    for f in findings:
        kind = types[f.check_type]
        key = "|".join(x for x in (f.system, f.object, f.field or f.record_id or f.record_hash) if x)
        rows.append((f.rule_id, kind, f.object, f.system, f.record_id, key, f.field, f.observed, f.expected,
                     None, None, None, None, _severity(kind)))  # fmt: skip
    if rows:
        con.executemany(f"INSERT INTO _dq_raw VALUES ({', '.join('?' for _ in range(14))})", rows)


def _insert_failures(
    con: duckdb.DuckDBPyConnection, lake: Lake, out: ExpectationOutcome, entry: SnapshotEntry, snapshot: str
) -> None:
    """A failed expectation as raw breaks: one per failing record, or one for the snapshot beyond the cap."""
    table = CANONICAL[entry.object]
    severity = _severity("failed_expectation", on_key=out.column == table.key)
    if out.error is not None or out.unexpected_count > len(out.ids) or not out.ids:
        why = out.error or f"{out.unexpected_count} of {out.element_count} rows fail"
        con.execute(
            "INSERT INTO _dq_raw VALUES "
            "(?, 'failed_expectation', ?, ?, NULL, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?)",
            [
                out.rule_id,
                entry.object,
                entry.system,
                f"{entry.system}|{entry.object}",
                out.column,
                why,
                severity,
            ],
        )
        return
    context = _CONTEXT[entry.object]
    ctx = ", ".join(
        f"s.{context[c]}" if c in context else "NULL" for c in ("customer", "project_code", "invoice_cycle")
    )
    value = f"CAST(s.{out.column} AS VARCHAR)" if out.column in table.names else "NULL"
    lookup = entity_lookup(lake, entry, snapshot)
    elsewhere = f"LEFT JOIN ({lookup}) AS x ON x.id = f.id" if lookup else ""
    entity = "coalesce(s.legal_entity_id, x.legal_entity_id)" if lookup else "s.legal_entity_id"
    con.execute(
        "INSERT INTO _dq_raw SELECT DISTINCT ON (f.id) ?, 'failed_expectation', ?, ?, f.id, "
        "? || '|' || coalesce(f.id, '(no id)'), ?, "
        f"{value}, NULL, {entity}, {ctx}, ? "
        f"FROM unnest(?::VARCHAR[]) AS f(id) LEFT JOIN ({snapshot}) AS s ON s.{table.key} = f.id {elsewhere}",
        [out.rule_id, entry.object, entry.system, entry.system, out.column, severity, out.ids],
    )


def _write_breaks(
    con: duckdb.DuckDBPyConnection, home: Path, sources: SourcesConfig, prev_dir: Path | None, ran: str, *,
    started: datetime, staged: Path, run_id: str,
) -> int:  # fmt: skip
    """Identify, age and write ``breaks.parquet`` and ``ledger.parquet``; return the break count."""
    settings = load_rules(rules_path(home)).settings
    now = f"TIMESTAMPTZ '{started.isoformat()}'"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _found AS SELECT {BREAK_ID_SQL} AS break_id, "
        "'data_quality' AS category, "
        "r.*, NULL::VARCHAR AS target_system, NULL::VARCHAR AS target_id, NULL::DECIMAL(18,2) AS amount, "
        "NULL::VARCHAR AS currency, NULL::DATE AS age_date, NULL::VARCHAR AS suggestions "
        "FROM (SELECT DISTINCT * FROM _dq_raw) AS r"
    )
    business_date = sources.business_date or started.date()
    valued = valuation_columns(
        settings, sources.reporting_currency, business_date=business_date, moment=started
    )
    # data-quality breaks carry no amount, so no FX rate is ever needed
    fx = fx_join(fx_relation(settings.model_copy(update={"fx_rates": None}), home), business_date)
    return write_breaks(con, prev_dir=prev_dir, ran=ran, carry=f"NOT {ran}", valued=valued, fx=fx, now=now,
                        run_id=run_id, staged=staged)  # fmt: skip


def _write_results(
    con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], prev_dir: Path | None, checked: list[str],
    staged: Path,
) -> None:  # fmt: skip
    """``results.parquet``: this run's rows, and the previous run's for snapshots not checked now."""
    cols = ", ".join(f"{c} {t}" for c, t, _ in CHECK_RESULT_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _results ({cols})")
    names = [c for c, _, _ in CHECK_RESULT_COLUMNS]
    con.executemany(
        f"INSERT INTO _results VALUES ({', '.join('?' for _ in names)})",
        [[r[c] for c in names] for r in rows],
    )
    carried = ""
    if prev_dir is not None and (prev_dir / "results.parquet").exists():
        carried = (
            " UNION ALL BY NAME SELECT * FROM "
            f"read_parquet({sql_literal(str(prev_dir / 'results.parquet'))}) "
            f"WHERE check_type <> 'freshness' AND NOT {ran_sql(_UNIT.format(system='system'), checked)}"
        )
    con.execute(
        f"COPY (SELECT * FROM _results{carried} ORDER BY system, object, rule_id) "
        f"TO {sql_literal(str(staged / 'results.parquet'))} {PARQUET}"
    )
