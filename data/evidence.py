"""Files made from the exception queue: the CSV and XLSX exports and the month-end evidence pack.

The evidence pack proves a billing period's close: a ZIP of the period's breaks (those of the
latest run, and those cleared since, with their workflow status and reason), every workflow change
and comment on them, the rules and data-quality suites in force, and the latest runs' ``run.json``
(which snapshots were reconciled, when). It is scoped like every page: a pack for a user limited to
some legal entities holds no row of the others. ::

    README.txt                      manifest: period, legal entities, runs, counts, files (SHA-256)
    breaks.csv                      one row per break (:data:`EVIDENCE_COLUMNS`)
    history.csv                     the audit rows of those breaks, oldest first (:data:`HISTORY_COLUMNS`)
    rules/<rules file>              the reconciliation rules in force (reconcile.run.rules_path)
    rules/latest_run/<rules file>   the rules the latest run used, if they changed since
    suites/<suite>.yaml             the data-quality suites in force (checks.run.suites_path)
    runs/<category>/run.json        the latest live reconciliation (and data-quality) run
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from openpyxl import Workbook

from data.breaks import BREAK_COLUMNS, CATEGORIES, BreakStore
from data.queries import QUEUE_COLUMNS, QueueFilter, queue_export, queue_export_sql, queue_relation
from data.sql import sql_literal
from data.users import User

__all__ = [
    "EVIDENCE_COLUMNS",
    "EVIDENCE_ROLES",
    "EXPORT_FORMATS",
    "HISTORY_COLUMNS",
    "OUTCOMES",
    "XLSX_MAX_ROWS",
    "can_export_evidence",
    "evidence_pack",
    "frame_csv",
    "frame_xlsx",
    "queue_file",
]

#: Export formats of the queue (:func:`queue_file`) -> MIME type.
EXPORT_FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: Most rows of an XLSX export. Excel takes 1,048,575 (and a header), but openpyxl writes about
#: 50,000 cells a second: 100,000 rows of the queue's 34 columns take about a minute. Use CSV beyond.
XLSX_MAX_ROWS = 100_000
#: Roles that may download the month-end evidence pack (those who work the queue).
EVIDENCE_ROLES = ("finance", "admin")
#: What became of a break in the pack (``outcome``): still open (``open`` or ``in_review``),
#: resolved or accepted in the workflow, or cleared by a run without a workflow resolution.
OUTCOMES = ("open", "resolved", "accepted", "cleared")
#: Columns of ``breaks.csv``: the queue's, then the ledger's and the pack's own.
EVIDENCE_COLUMNS = (*QUEUE_COLUMNS, "cleared_at", "times_cleared", "in_latest_run", "outcome")
#: Columns of ``history.csv`` (:meth:`data.workflow.Workflow.audit`; comments have ``new_value`` = text).
HISTORY_COLUMNS = ("id", "at", "user", "break_id", "action", "field", "old_value", "new_value")


def can_export_evidence(user: User) -> bool:
    """Whether ``user`` may download the month-end evidence pack (roles :data:`EVIDENCE_ROLES`)."""
    return user.role in EVIDENCE_ROLES and user.can("export")


def frame_csv(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV with a header row (no index; timestamps ISO 8601, money as written)."""
    text: str = frame.to_csv(index=False)
    return text.encode("utf-8")


def frame_xlsx(frame: pd.DataFrame, *, sheet: str = "queue") -> bytes:
    """``frame`` as an XLSX workbook of one sheet (header row, then the rows; written streaming).

    Timestamps are written in UTC without a zone (Excel has none), money as numbers.

    Raises:
        ValueError: more rows than :data:`XLSX_MAX_ROWS`; export CSV instead.
    """
    if len(frame) > XLSX_MAX_ROWS:
        raise ValueError(f"{len(frame):,} rows are too many for XLSX ({XLSX_MAX_ROWS:,} at most); use CSV")
    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet)
    ws.append([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False, name=None):
        ws.append([_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def queue_file(
    con: duckdb.DuckDBPyConnection,
    flt: QueueFilter,
    *,
    state: pd.DataFrame | None = None,
    sort: str = "amount_at_risk",
    fmt: str = "csv",
) -> bytes:
    """The whole filtered queue (:func:`data.queries.queue_export`) as a ``csv`` or ``xlsx`` file.

    ``flt.legal_entities`` carries the user's scope: the file holds no row of other legal entities.
    CSV is written by DuckDB (a million rows in seconds; timestamps as ``2026-11-15 06:00:00+00``,
    NULL as empty); XLSX holds at most :data:`XLSX_MAX_ROWS` rows.

    Raises:
        ValueError: an unknown ``fmt`` or ``sort``; more rows than :data:`XLSX_MAX_ROWS` for XLSX.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; formats: {', '.join(EXPORT_FORMATS)}")
    if fmt == "xlsx":
        return frame_xlsx(queue_export(con, flt, state=state, sort=sort))
    query, params = queue_export_sql(con, flt, state=state, sort=sort)
    with tempfile.TemporaryDirectory(prefix="tieout-export-") as folder:
        path = Path(folder) / "queue.csv"
        con.execute(f"COPY ({query}) TO {sql_literal(str(path))} (FORMAT csv, HEADER)", params)
        return path.read_bytes()


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, (str, int, float, Decimal, bool)):
        return value
    return str(value)


def evidence_pack(
    con: duckdb.DuckDBPyConnection,
    home: Path,
    period: str,
    legal_entities: tuple[str, ...] | None,
    state: pd.DataFrame | None,
    history: pd.DataFrame | None,
    *,
    now: datetime | None = None,
) -> bytes:
    """The month-end evidence pack of billing period ``period`` as a ZIP (see the module docs).

    Args:
        con: a connection to the warehouse (views ``breaks``, ``break_ledger``); it also reads the
            earlier runs' break files under ``HOME/lake/breaks`` (for breaks cleared since).
        home: the home folder (rules, suites, runs).
        period: the billing period, ``YYYY-MM`` (the breaks' ``invoice_cycle``).
        legal_entities: the user's scope (None: every entity; ``()``: none).
        state: the workflow state (:meth:`data.workflow.Workflow.state`), or None.
        history: the audit log (:meth:`data.workflow.Workflow.audit`, columns
            :data:`HISTORY_COLUMNS`), or None; only rows of the pack's breaks are kept.
        now: the time the manifest names (tests); default now, UTC.

    Returns:
        The ZIP's bytes. ``breaks.csv`` holds the period's breaks of the latest run (whatever their
        workflow status) and those a run has cleared since (``in_latest_run`` false, as last seen),
        with their ``outcome`` (:data:`OUTCOMES`).

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``.
        duckdb.Error: the warehouse cannot be read.
    """
    from checks.run import suites_path  # the checks package loads only when a pack is made
    from reconcile.run import rules_path

    if len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit():
        raise ValueError(f"billing period must be YYYY-MM, not {period!r}")
    breaks = _period_breaks(con, home, period, legal_entities, state)
    audit = pd.DataFrame(columns=list(HISTORY_COLUMNS)) if history is None else history
    audit = audit.loc[audit["break_id"].isin(set(breaks["break_id"])), list(HISTORY_COLUMNS)]
    audit = audit.sort_values(["at", "id"], kind="stable") if len(audit) else audit

    files: dict[str, bytes] = {"breaks.csv": frame_csv(breaks), "history.csv": frame_csv(audit)}
    rules = rules_path(home)
    files[f"rules/{rules.name}"] = rules.read_bytes()
    ran = BreakStore(home, "reconciliation").latest()
    used = Path(str(ran["rules_file"])) if ran and ran.get("rules_file") else None
    if used is not None and used.is_file() and used.read_bytes() != files[f"rules/{rules.name}"]:
        files[f"rules/latest_run/{used.name}"] = used.read_bytes()  # the rules changed since that run
    for suite in sorted(suites_path(home).glob("*.yaml")):
        files[f"suites/{suite.name}"] = suite.read_bytes()
    runs: list[str] = []
    for category in CATEGORIES:
        run = BreakStore(home, category).latest()
        if run is not None:
            files[f"runs/{category}/run.json"] = _run_json(run, legal_entities)
            runs.append(f"{category}: {run['run_id']} (started {run.get('started_at')})")
    readme = _readme(period, legal_entities, now or datetime.now(UTC), breaks, len(audit), runs, files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", readme)
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def _period_breaks(
    con: duckdb.DuckDBPyConnection,
    home: Path,
    period: str,
    legal_entities: tuple[str, ...] | None,
    state: pd.DataFrame | None,
) -> pd.DataFrame:
    """The period's breaks: the latest run's, then those cleared since (as last seen), in scope."""
    where, params = QueueFilter(legal_entities=legal_entities, billing_periods=(period,)).where()
    cols = ", ".join(c for c, _, _ in BREAK_COLUMNS)
    latest = f"(SELECT {cols}, true AS in_latest_run FROM breaks)"
    sources = [latest]
    files = _run_files(home)
    if files:
        # a cleared break as the last live run that found it saw it
        sources.append(
            f"(SELECT {cols}, false AS in_latest_run "
            f"FROM read_parquet([{', '.join(files)}], union_by_name = true) "
            "WHERE break_id IN (SELECT break_id FROM break_ledger WHERE cleared_at IS NOT NULL) "
            "AND break_id NOT IN (SELECT break_id FROM breaks) "
            "QUALIFY row_number() OVER (PARTITION BY break_id ORDER BY last_seen DESC, run_id DESC) = 1)"
        )
    relation = queue_relation(con, state, source="(" + " UNION ALL BY NAME ".join(sources) + ")")
    outcome = (
        "CASE WHEN q.status IN ('resolved', 'accepted') THEN q.status "
        "WHEN NOT q.in_latest_run THEN 'cleared' ELSE 'open' END"
    )
    pack = (
        f"SELECT {', '.join(f'q.{c}' for c in QUEUE_COLUMNS)}, l.cleared_at, "
        f"coalesce(l.times_cleared, 0) AS times_cleared, q.in_latest_run, {outcome} AS outcome "
        f"FROM ({relation}) AS q LEFT JOIN break_ledger AS l ON l.break_id = q.break_id"
    )
    rows = con.execute(
        f"SELECT {', '.join(EVIDENCE_COLUMNS)} FROM ({pack}) AS q WHERE {where} "
        "ORDER BY in_latest_run DESC, amount_at_risk DESC NULLS LAST, break_id",
        params,
    ).fetchall()
    return pd.DataFrame(rows, columns=list(EVIDENCE_COLUMNS))


def _run_files(home: Path) -> list[str]:
    """SQL literals of the ``breaks.parquet`` of every live run (replays left out), every category."""
    found: list[str] = []
    for category in CATEGORIES:
        store = BreakStore(home, category)
        for run in store.runs():
            path = store.run_dir(str(run["run_id"])) / "breaks.parquet"
            if not run.get("replay") and path.exists():
                found.append(sql_literal(str(path)))
    return found


#: The ``run.json`` keys a scoped pack keeps (the others count breaks over every legal entity).
_RUN_KEYS = ("run_id", "started_at", "as_of", "business_date", "replay", "rules_file", "snapshots")


def _run_json(run: dict[str, Any], legal_entities: tuple[str, ...] | None) -> bytes:
    """A run's ``run.json``; for a scoped pack without the counts over every legal entity."""
    shown = run if legal_entities is None else {k: v for k, v in run.items() if k in _RUN_KEYS}
    return json.dumps(shown, indent=1, default=str).encode("utf-8")


def _readme(
    period: str,
    legal_entities: tuple[str, ...] | None,
    now: datetime,
    breaks: pd.DataFrame,
    history_rows: int,
    runs: Iterable[str],
    files: dict[str, bytes],
) -> str:
    counts = breaks["outcome"].value_counts()
    lines = [
        f"Tieout month-end evidence pack: billing period {period}",
        f"Generated {now.astimezone(UTC).isoformat(timespec='seconds')}",
        "Legal entities: " + ("all" if legal_entities is None else ", ".join(legal_entities) or "none"),
        "",
        "Runs (latest live):",
        *(f"  {r}" for r in runs),
        "",
        f"Breaks: {len(breaks)} ({int(breaks['in_latest_run'].sum())} in the latest run, "
        f"{int((~breaks['in_latest_run'].astype(bool)).sum())} cleared since)",
        *(f"  {o}: {int(counts.get(o, 0))}" for o in OUTCOMES),
        f"History rows (changes and comments): {history_rows}",
        "",
        "Outcome: open = open or in review at the latest run; resolved / accepted = the workflow status "
        "(with reason_code); cleared = no longer found by a run, not resolved in the workflow.",
        "",
        "Files (SHA-256):",
        *(f"  {name}  {len(data)} bytes  {hashlib.sha256(data).hexdigest()}" for name, data in files.items()),
    ]
    if legal_entities is not None:
        lines += [
            "",
            "run.json: counts over every legal entity are left out (a pack scoped to legal entities).",
        ]
    return "\n".join(lines) + "\n"
