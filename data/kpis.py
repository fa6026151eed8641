"""The executive KPIs: each defined once, here, and computed from the warehouse views (and the run log).

Every KPI is a pure function named after it that takes a DuckDB connection to the warehouse
(:func:`data.warehouse.connect`; the sync failure rate takes the app-state engine instead), never
imports Streamlit, and returns a pandas DataFrame whose columns are documented. :data:`DEFINITIONS`
holds each KPI's formula, unit and what "previous" means, for the app to show next to the number;
the docstrings repeat the formula (a test keeps the two the same).

Where a KPI would read a million breaks or ten million time entries on every call, it reads a
table the warehouse file holds instead, a few hundred or thousand rows computed from the views
when the file is built: :data:`BREAK_TABLES` and :data:`INVOICED_TIME`, defined here with the KPIs
that add their counts and sums up as they would the views' rows, and the live runs
(:func:`data.breaks.live_runs_table`).

Conventions:

- The headline number is the column ``value``; ``previous`` is the same number for the previous
  period and ``change`` is ``value - previous`` (percentage points for percents, days for days),
  None when either is None. KPIs without a previous value have neither column.
- Percents are ``Decimal`` in percent (``Decimal("33.33")``), rounded half up to 2 places from exact
  integer counts; days are ``Decimal``; money is ``Decimal`` in the reporting currency (the breaks'
  ``reporting_currency``), never float; counts are ``Int64``. A rate over nothing is None, not 0.
- Legal entities: ``legal_entities=None`` means every entity, ``[]`` none (as in
  :class:`data.queries.QueueFilter`); a row whose entity is unknown (NULL) is only counted when
  ``legal_entities`` is None. ``by_entity=True`` returns one row per legal entity (sorted, an
  unknown entity last, only entities with data in either period); otherwise exactly one row for
  the whole scope. KPIs about systems rather than records (sync failure rate, freshness, match
  rate per rule) have no entity dimension in the data, so they take no ``legal_entities`` and
  :data:`DEFINITIONS` marks them ``scope="firm"``: the app decides who may see them.
- Periods are calendar months ``YYYY-MM`` (the app's billing period filter), in UTC for
  timestamps; "previous" is the month before. The open-break KPIs (:func:`open_breaks`,
  :func:`unbilled_wip`) compare with the previous live reconciliation run instead (see below).
- "Breaks" here are reconciliation breaks (``category = 'reconciliation'``); data-quality
  failures have their own page (only :func:`invoice_accuracy` counts them too). In
  ``break_ledger``, which holds both categories, a reconciliation rule id never contains a dot
  (rule ids match ``^[a-z][a-z0-9_]*$``) while a data-quality one is ``object.check``.

Reconstructing an earlier run from ``break_ledger``: a break was open at the start ``t`` of a run
when ``first_seen <= t``, it had not cleared (``cleared_at`` NULL or after ``t``) and it had not
reopened after ``t``. This is exact for the latest and the previous run. For older runs a break
that was open at ``t``, cleared later and has since reopened is missed (the ledger keeps only the
latest clearing), so older counts in :func:`open_breaks_trend` can be low. The ledger keeps no
amounts or aging buckets: those of earlier runs come from each live run's summary
(:func:`amount_at_risk_trend`), kept since runs write one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import duckdb
import pandas as pd
import sqlalchemy as sa

from data.appstate import EXTRACTION_RUNS
from data.breaks import run_summary_sql

__all__ = [
    "BREAK_TABLES",
    "DEFINITIONS",
    "INVOICED_TIME",
    "UNBILLED_RULE",
    "KpiDefinition",
    "amount_at_risk_trend",
    "deal_handoff_within_sla",
    "freshness_sla_attainment",
    "freshness_vs_sla",
    "invoice_accuracy",
    "match_rate",
    "mean_time_to_resolve",
    "monthly_trend",
    "open_breaks",
    "open_breaks_by_aging",
    "open_breaks_trend",
    "sync_failure_rate",
    "time_to_invoice",
    "unbilled_wip",
]

Unit = Literal["percent", "days", "minutes", "count", "money"]

#: The rule whose breaks are the unbilled WIP (reconcile/rules.yaml).
UNBILLED_RULE = "unbilled_time"


@dataclass(frozen=True)
class KpiDefinition:
    """What one KPI means, for the app to show beside it.

    Attributes:
        name: the key in :data:`DEFINITIONS`.
        title: a short label.
        unit: ``percent`` (0-100), ``days``, ``minutes``, ``count`` or ``money`` (reporting currency).
        formula: how it is computed, from which view or table.
        previous: what the previous value is, or None when the KPI has no previous value.
        scope: ``legal_entity`` (filtered by the user's legal entities) or ``firm`` (system-level,
            no entity in the data).
        function / column: the function computing it and the column of its frame holding it.
        higher_is_better: for the colour of the change.
    """

    name: str
    title: str
    unit: Unit
    formula: str
    previous: str | None
    scope: Literal["legal_entity", "firm"]
    function: str
    column: str
    higher_is_better: bool


_PREV_MONTH = "the previous calendar month"
_PREV_RUN = "the previous live reconciliation run, reconstructed from break_ledger"


def _kpi(
    name: str, title: str, unit: Unit, formula: str, previous: str | None, *, higher_is_better: bool,
    scope: Literal["legal_entity", "firm"] = "legal_entity", function: str | None = None,
    column: str = "value",
) -> KpiDefinition:  # fmt: skip
    return KpiDefinition(
        name, title, unit, formula, previous, scope, function or name, column, higher_is_better
    )


#: Every KPI, by name. The formulas are repeated word for word in the functions' docstrings.
DEFINITIONS: dict[str, KpiDefinition] = {d.name: d for d in (
    _kpi("sync_failure_rate", "Sync failure rate", "percent",
         "failed or interrupted extraction runs / finished extraction runs (succeeded, failed or "
         "interrupted) started in the month (UTC), x 100, from extraction_runs in the app state",
         _PREV_MONTH, scope="firm", higher_is_better=False),
    _kpi("freshness_vs_sla", "Freshness", "minutes",
         "minutes from the start of the extraction of the current snapshot (snapshots.extracted_at) "
         "to now, per system and object; within SLA when at most the system's freshness_sla_minutes",
         None, scope="firm", higher_is_better=False),
    _kpi("freshness_sla_attainment", "Freshness SLA attainment", "percent",
         "time within SLA / time observed x 100 in the month (UTC, up to now), summed over every system "
         "and object from its first published snapshot (snapshots view); a source is within SLA while its "
         "current snapshot's age (from snapshots.extracted_at) is at most its system's "
         "freshness_sla_minutes",
         _PREV_MONTH, scope="firm", higher_is_better=True),
    _kpi("match_rate", "Match rate per rule", "percent",
         "matched / greatest(source_rows, compared) x 100 in the rule's latest successful live run "
         "(reconciliation_runs; matched: compared without a break; compared exceeds source_rows only "
         "for aggregate rules, which count groups found on one side)",
         "the rule's previous successful live run", scope="firm", higher_is_better=True),
    _kpi("open_breaks", "Open exceptions", "count",
         "reconciliation breaks of the latest live run (the breaks view, category reconciliation)",
         _PREV_RUN, higher_is_better=False),
    _kpi("amount_at_risk", "Amount at risk", "money",
         "sum of amount_at_risk (reporting currency) of the open reconciliation breaks; breaks with an "
         "amount but no FX rate are counted in unvalued_breaks instead",
         None, function="open_breaks", column="amount_at_risk", higher_is_better=False),
    _kpi("mean_time_to_resolve", "Mean time to resolve", "days",
         "mean of cleared_at - first_seen, in days, over the reconciliation breaks of break_ledger whose "
         "cleared_at falls in the month (UTC); a break that reopened counts from its first first_seen",
         _PREV_MONTH, higher_is_better=False),
    _kpi("unbilled_wip", "Unbilled WIP", "money",
         "sum of amount_at_risk (reporting currency) of the open breaks of rule unbilled_time: approved "
         "billable time on time-and-materials projects, from an ended billing period, on no invoice",
         None, higher_is_better=False),
    _kpi("unbilled_wip_age", "Unbilled WIP mean age", "days",
         "mean age_days (days since the time was worked) of the open breaks of rule unbilled_time",
         None, function="unbilled_wip", column="mean_age_days", higher_is_better=False),
    _kpi("time_to_invoice", "Time to invoice", "days",
         "median over approved billable time entries of the invoice's issue_date - the entry's "
         "spent_date, in days, for entries on customer invoices (kind invoice, status posted or paid) "
         "issued in the month, both from one system (default erp, the invoices' system of record)",
         _PREV_MONTH, higher_is_better=False),
    _kpi("invoice_accuracy", "Invoice accuracy", "percent",
         "customer invoices (kind invoice, status posted or paid) issued in the month with no open break "
         "(the breaks view, object invoices, naming the invoice as source or target record) / all those "
         "invoices x 100",
         f"{_PREV_MONTH}, against the same (latest) breaks", higher_is_better=True),
    _kpi("deal_handoff_within_sla", "Deals handed off within SLA", "percent",
         "closed-won CRM deals (projects with won_at) won in the month whose PSA project with the same "
         "code was created by won_at + sla_days / those deals that are due (won_at + sla_days has passed, "
         "or already handed off in time) x 100",
         _PREV_MONTH, higher_is_better=True),
)}  # fmt: skip


# ---------------------------------------------------------------- shared helpers


def _month(period: str) -> tuple[date, date]:
    """Start of ``period`` and start of the month after.

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``.
    """
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise ValueError(f"period must be a month YYYY-MM, e.g. 2025-03, not {period!r}")
    year, month = int(period[:4]), int(period[5:])
    start = date(year, month, 1)
    return start, date(year + month // 12, month % 12 + 1, 1)


@dataclass(frozen=True)
class _Window:
    """Consecutive calendar months: ``starts`` is (``YYYY-MM``, first day) oldest first."""

    starts: tuple[tuple[str, date], ...]

    @classmethod
    def ending(cls, through: str, months: int) -> _Window:
        """The ``months`` months up to and including ``through``.

        Raises:
            ValueError: ``through`` is not ``YYYY-MM``, or ``months`` < 1.
        """
        _month(through)
        if months < 1:
            raise ValueError(f"months must be 1 or more, not {months}")
        last = int(through[:4]) * 12 + int(through[5:]) - 1
        return cls(tuple(
            (f"{i // 12:04d}-{i % 12 + 1:02d}", date(i // 12, i % 12 + 1, 1))
            for i in range(last - months + 1, last + 1)
        ))  # fmt: skip

    @property
    def first(self) -> date:
        """The first day of the first month."""
        return self.starts[0][1]

    @property
    def end(self) -> date:
        """The first day after the last month."""
        return _month(self.starts[-1][0])[1]

    def month_of(self, expr: str, *, timestamp: bool) -> tuple[str, list[Any]]:
        """SQL giving the month ``YYYY-MM`` of ``expr`` in the window (NULL outside), and its parameters.

        ``expr`` is a DATE, or with ``timestamp`` a TIMESTAMPTZ (months in UTC).
        """
        bound: Callable[[date], Any] = _utc if timestamp else (lambda day: day)
        whens = " ".join(f"WHEN {expr} >= ? THEN '{label}'" for label, _ in reversed(self.starts))
        params = [bound(self.end)] + [bound(start) for _, start in reversed(self.starts)]
        return f"CASE WHEN {expr} >= ? THEN NULL {whens} END", params


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _in(expr: str, values: Sequence[str] | None) -> tuple[str, list[Any]]:
    """``expr IN (values)``: None is no filter ("true"), an empty list matches nothing."""
    if values is None:
        return "true", []
    if not values:
        return "false", []
    return f"{expr} IN ({', '.join('?' for _ in values)})", list(values)


def _scope(
    entity: str,
    legal_entities: Sequence[str] | None,
    rule: str | None = None,
    rule_ids: Sequence[str] | None = None,
) -> tuple[str, list[Any]]:
    """The entity (and rule) condition and its parameters."""
    where, params = _in(entity, legal_entities)
    if rule is not None:
        rules, more = _in(rule, rule_ids)
        where, params = f"{where} AND {rules}", params + more
    return where, params


def _group(entity: str, by_entity: bool) -> str:
    return f"{entity} AS legal_entity_id" if by_entity else "CAST(NULL AS VARCHAR) AS legal_entity_id"


def _pct(part: int, whole: int) -> Decimal | None:
    """``part / whole`` in percent, 2 places, half up; None for ``whole == 0``."""
    if whole == 0:
        return None
    return (Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _diff(value: Any, previous: Any) -> Any:
    return None if value is None or previous is None else value - previous


def _days(total_us: int, count: int) -> Decimal | None:
    """The mean of ``count`` durations totalling ``total_us`` microseconds, in days, 2 places."""
    if count == 0:
        return None
    return (Decimal(total_us) / count / 86_400_000_000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _frame(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    """A frame with ``columns`` (name -> pandas dtype), in order, from dict rows."""
    rows = list(rows)
    return pd.DataFrame(
        {name: pd.Series([r[name] for r in rows], dtype=dtype) for name, dtype in columns.items()},
        columns=list(columns),
    )


def _period_frame(
    found: Iterable[Sequence[Any]],
    by_key: bool,
    measures: Mapping[str, str],
    value: Callable[[tuple[Any, ...]], Any],
    empty: tuple[Any, ...],
    *,
    key: tuple[str, str] = ("legal_entity_id", "object"),
) -> pd.DataFrame:
    """The frame of a monthly KPI from rows ``(which, key, *measures)``, ``which`` current or previous.

    Columns: the key (``legal_entity_id``, only with ``by_key``), the first ``len(measures)``
    measures (name -> dtype), ``value``, the same measures prefixed ``previous_``, ``previous`` and
    ``change``. ``value`` computes the KPI from one month's measures; a month without rows has
    the measures ``empty``. Without ``by_key`` there is exactly one row.
    """
    found_by: dict[Any, dict[str, tuple[Any, ...]]] = {}
    for which, k, *measured in found:
        found_by.setdefault(k, {})[which] = tuple(measured)
    keys = sorted(found_by, key=lambda e: (e is None, e or "")) if by_key else [None]
    rows = []
    for k in keys:
        cur, prev = (found_by.get(k, {}).get(which, empty) for which in ("current", "previous"))
        now, before = value(cur), value(prev)
        row: dict[str, Any] = {key[0]: k} if by_key else {}
        row |= dict(zip(measures, cur, strict=False)) | {"value": now}
        row |= {f"previous_{m}": v for m, v in zip(measures, prev, strict=False)}
        rows.append(row | {"previous": before, "change": _diff(now, before)})
    columns = ({key[0]: key[1]} if by_key else {}) | dict(measures) | {"value": "object"}
    columns |= {f"previous_{m}": t for m, t in measures.items()} | {"previous": "object", "change": "object"}
    return _frame(rows, columns)


def _entity_column(by_entity: bool) -> dict[str, str]:
    return {"legal_entity_id": "object"} if by_entity else {}


def _strip_entity(row: dict[str, Any], by_entity: bool) -> dict[str, Any]:
    if not by_entity:
        row.pop("legal_entity_id", None)
    return row


def _one_currency(currencies: Iterable[Sequence[str] | None]) -> str | None:
    """The one reporting currency of the amounts summed, or None without amounts.

    Raises:
        ValueError: breaks valued in several reporting currencies (never added up).
    """
    found = sorted({c for group in currencies for c in (group or [])})
    if len(found) > 1:
        raise ValueError(
            f"the breaks are valued in several reporting currencies ({', '.join(found)}), which cannot be "
            "added up; run the reconciliation of every rule again so all breaks use the current one"
        )
    return found[0] if found else None


# ---------------------------------------------------------------- system-level KPIs

_FINISHED = ("succeeded", "failed", "interrupted")
_MICROSECOND = timedelta(microseconds=1)
_FAILED = ("failed", "interrupted")


def sync_failure_rate(engine: sa.Engine, *, period: str, by_system: bool = False) -> pd.DataFrame:
    """Return the share of extraction runs that failed in a month, against the month before.

    Definition: failed or interrupted extraction runs / finished extraction runs (succeeded,
    failed or interrupted) started in the month (UTC), x 100, from extraction_runs in the app
    state. Runs still ``running`` are not counted. Firm-wide: extraction runs belong to systems,
    not legal entities. Month by month: :func:`monthly_trend`.

    Args:
        engine: the app-state database (:func:`data.appstate.state_engine`).
        period: the month ``YYYY-MM``.
        by_system: one row per system (with runs in either month) instead of one row for all.

    Returns:
        ``system`` (str, only with ``by_system``), ``runs``, ``failed_runs`` (Int64), ``value``
        (Decimal percent or None without runs), ``previous_runs``, ``previous_failed_runs``
        (Int64), ``previous`` (Decimal percent or None), ``change`` (Decimal percentage points or
        None). Without ``by_system`` exactly one row; with it, empty (same columns) without runs.

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``.
        sqlalchemy.exc.SQLAlchemyError: the app-state database cannot be read.
    """
    return _against_previous("sync_failure_rate", engine, period, by_system)


def _sync_failure_rows(engine: sa.Engine, window: _Window, by_system: bool) -> list[tuple[Any, ...]]:
    """(month, system or None, finished runs, failed runs) per month of ``window``."""
    runs = EXTRACTION_RUNS.c
    # counted by the database: a month holds tens of thousands of runs on the demo's schedules
    month = sa.case(*[(runs.started_at >= _utc(start), label) for label, start in reversed(window.starts)])
    found = (
        sa.select(month.label("month"), runs.system, runs.status)
        .where(runs.started_at >= _utc(window.first), runs.started_at < _utc(window.end),
               runs.status.in_(_FINISHED))
        .subquery()
    )  # fmt: skip
    # grouped by the subquery's columns: PostgreSQL takes the CASE's parameters in SELECT and GROUP BY
    # for different expressions
    keys = [found.c.month, found.c.system] if by_system else [found.c.month]
    failed = sa.func.sum(sa.case((found.c.status.in_(_FAILED), 1), else_=0))
    query = sa.select(*keys, sa.func.count(), failed).group_by(*keys)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(query)]
    return [(m, str(s), n, f) for m, s, n, f in rows] if by_system else [(m, None, n, f) for m, n, f in rows]


def freshness_vs_sla(
    con: duckdb.DuckDBPyConnection,
    *,
    sla_minutes: Mapping[str, int],
    now: datetime,
    objects: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Return how old each source's current snapshot is, against its system's SLA.

    Definition: minutes from the start of the extraction of the current snapshot
    (snapshots.extracted_at) to now, per system and object; within SLA when at most the
    system's freshness_sla_minutes. A point-in-time reading: no previous value. Firm-wide.

    Args:
        con: a connection to the warehouse (view ``snapshots``).
        sla_minutes: system -> ``freshness_sla_minutes`` (sources.yaml).
        now: the moment to measure against (aware).
        objects: system -> objects it should deliver (sources.yaml); one without a current
            snapshot gets a row with no age, not within SLA.

    Returns:
        One row per system and object, sorted: ``system``, ``object`` (str), ``snapshot_id``
        (str or None), ``extracted_at`` (datetime64 UTC or NaT), ``value`` (Decimal minutes, 1
        place, or None without a snapshot), ``sla_minutes`` (Int64, NA when the system has none),
        ``within_sla`` (boolean; NA without an SLA). Empty frame, same columns, if none.

    Raises:
        ValueError: ``now`` has no time zone.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC), e.g. datetime.now(UTC)")
    found = {
        (str(system), str(obj)): (snapshot_id, extracted_at)
        for system, obj, snapshot_id, extracted_at in con.execute(
            "SELECT system, object, max(snapshot_id), max(extracted_at) FROM snapshots WHERE current "
            "GROUP BY ALL"
        ).fetchall()
    }
    wanted = {(s, o) for s, objs in (objects or {}).items() for o in objs}
    rows = []
    for system, obj in sorted(set(found) | wanted):
        snapshot_id, extracted_at = found.get((system, obj), (None, None))
        sla = sla_minutes.get(system)
        age_us = None if extracted_at is None else (now - extracted_at) // _MICROSECOND
        rows.append({
            "system": system, "object": obj, "snapshot_id": snapshot_id,
            "extracted_at": None if extracted_at is None else extracted_at.astimezone(UTC),
            "value": None if age_us is None else
            (Decimal(age_us) / 60_000_000).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP),
            "sla_minutes": sla,
            "within_sla": None if sla is None else age_us is not None and age_us <= sla * 60_000_000,
        })  # fmt: skip
    return _frame(rows, {"system": "str", "object": "str", "snapshot_id": "object",
                         "extracted_at": "datetime64[us, UTC]", "value": "object", "sla_minutes": "Int64",
                         "within_sla": "boolean"})  # fmt: skip


def match_rate(con: duckdb.DuckDBPyConnection, *, rule_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Return each rule's match rate in its latest successful live run, against the run before.

    Definition: matched / greatest(source_rows, compared) x 100 in the rule's latest successful
    live run (reconciliation_runs; matched: compared without a break; compared exceeds
    source_rows only for aggregate rules, which count groups found on one side). Firm-wide:
    reconciliation_runs counts records per rule, not per legal entity. Skipped, failed and
    ``--as-of`` replay runs are left out.

    Args:
        con: a connection to the warehouse (view ``reconciliation_runs``).
        rule_ids: only these rules (None: all).

    Returns:
        One row per rule with a successful run, by ``rule_id`` (str): ``run_id`` (str),
        ``started_at`` (datetime64 UTC), ``source_rows``, ``compared``, ``matched`` (Int64),
        ``value`` (Decimal percent, None when the rule had nothing to compare), ``previous_run_id``
        (str or None), ``previous`` (Decimal percent or None), ``change`` (Decimal percentage
        points or None). Empty frame, same columns, if none.
    """
    rules, params = _in("rule_id", rule_ids)
    found = con.execute(
        "SELECT rule_id, run_id, started_at, source_rows, compared, matched FROM ("
        "SELECT *, row_number() OVER (PARTITION BY rule_id ORDER BY started_at DESC, run_id DESC) AS n "
        f"FROM reconciliation_runs WHERE status = 'ok' AND replay IS NOT TRUE AND {rules}) "
        "WHERE n <= 2 ORDER BY rule_id, n",
        params,
    ).fetchall()
    latest: dict[str, dict[str, Any]] = {}
    for rule_id, run_id, started_at, source_rows, compared, matched in found:
        rate = _pct(int(matched or 0), max(int(source_rows or 0), int(compared or 0)))
        if rule_id not in latest:
            latest[rule_id] = {
                "rule_id": rule_id, "run_id": run_id, "started_at": started_at.astimezone(UTC),
                "source_rows": source_rows, "compared": compared, "matched": matched, "value": rate,
                "previous_run_id": None, "previous": None, "change": None,
            }  # fmt: skip
        else:
            row = latest[rule_id]
            row |= {"previous_run_id": run_id, "previous": rate, "change": _diff(row["value"], rate)}
    return _frame(latest.values(), {
        "rule_id": "str", "run_id": "str", "started_at": "datetime64[us, UTC]", "source_rows": "Int64",
        "compared": "Int64", "matched": "Int64", "value": "object", "previous_run_id": "object",
        "previous": "object", "change": "object",
    })  # fmt: skip


# ---------------------------------------------------------------- breaks: open, trend, resolution

_RECON_LEDGER = "strpos(l.rule_id, '.') = 0"
#: A ledger row's latest opening: the later of first seen and reopened (NULL without first_seen).
_SINCE = "CASE WHEN l.reopened_at > l.first_seen THEN l.reopened_at ELSE l.first_seen END"

#: Inputs of the break KPIs, SELECTs over the views that the warehouse file holds as tables,
#: built with it (:func:`data.warehouse.ensure_warehouse`; every live run rebuilds it): a few hundred
#: rows each, where the views hold a row per break (a million), read by every call.
BREAK_TABLES: dict[str, str] = {
    # the open reconciliation breaks (the breaks view) per rule, entity, aging bucket and reporting
    # currency: what open_breaks, unbilled_wip and open_breaks_by_aging add up
    "tieout_open_breaks": run_summary_sql("breaks"),
    # the invoices an open break names (any category, as source or target record): what
    # invoice_accuracy flags
    "tieout_flagged_invoices": (
        "SELECT source_system AS system, source_id AS invoice_id FROM breaks "
        "WHERE object = 'invoices' AND source_id IS NOT NULL "
        "UNION SELECT target_system, target_id FROM breaks "
        "WHERE object = 'invoices' AND target_id IS NOT NULL"
    ),
    # the reconciliation breaks open at the start of the previous live run (module notes), per rule and
    # entity: since <= its start < cleared_at (see _open_per_run); no rows before a second run
    "tieout_previous_open": (
        "SELECT l.rule_id, l.legal_entity_id, count(*) AS open_breaks FROM break_ledger AS l "
        "JOIN (SELECT started_at FROM tieout_live_runs ORDER BY started_at DESC, run_id DESC "
        f"LIMIT 1 OFFSET 1) AS r ON {_SINCE} <= r.started_at "
        f"AND (l.cleared_at IS NULL OR l.cleared_at > r.started_at) WHERE {_RECON_LEDGER} GROUP BY ALL"
    ),
}


def _live_runs(con: duckdb.DuckDBPyConnection, latest: int | None = None) -> list[tuple[str, datetime]]:
    """The live reconciliation runs (the ``latest`` so many, if given), oldest first: (run_id, started_at)."""
    rows = con.execute(
        "SELECT * FROM (SELECT run_id, started_at FROM tieout_live_runs "
        "ORDER BY started_at DESC, run_id DESC LIMIT ?) ORDER BY started_at, run_id",
        [latest],
    ).fetchall()
    return [(str(run_id), started.astimezone(UTC)) for run_id, started in rows]


def _open_per_run(
    con: duckdb.DuckDBPyConnection, legal_entities: Sequence[str] | None, rule_ids: Sequence[str] | None,
    by_entity: bool,
) -> dict[tuple[str, str | None], int]:  # fmt: skip
    """(run_id, entity or None) -> reconciliation breaks open at the run's start, from ``break_ledger``.

    A ledger row is open at a run's start ``t`` when ``first_seen <= t``, ``cleared_at`` is NULL or
    after ``t`` and ``reopened_at`` is NULL or at most ``t`` (module notes): exactly when ``since <= t
    < cleared_at``, ``since`` being the later of first seen and reopened (no ``cleared_at``: no end).
    So a run's count is the running sum, up to its start, of +1 at each row's ``since`` and -1 at
    its ``cleared_at``: one pass over the ledger and an as-of join of the runs, rather than joining
    every run to every ledger row (runs x breaks rows). Pairs with no open break have no entry.
    """
    where, params = _scope("l.legal_entity_id", legal_entities, "l.rule_id", rule_ids)
    rows = con.execute(
        f"WITH l AS (SELECT {_group('l.legal_entity_id', by_entity)}, l.cleared_at, {_SINCE} AS since "
        f"FROM break_ledger AS l WHERE l.first_seen IS NOT NULL AND {_RECON_LEDGER} AND {where}), "
        "events AS (SELECT legal_entity_id, since AS moment, 1 AS delta FROM l "
        "WHERE cleared_at IS NULL OR since < cleared_at "
        "UNION ALL SELECT legal_entity_id, cleared_at, -1 FROM l WHERE since < cleared_at), "
        "opened AS (SELECT legal_entity_id, moment, "
        "sum(sum(delta)) OVER (PARTITION BY legal_entity_id ORDER BY moment) AS n FROM events "
        "GROUP BY legal_entity_id, moment), "
        "r AS (SELECT r.run_id, r.started_at, e.legal_entity_id FROM tieout_live_runs AS r "
        "CROSS JOIN (SELECT DISTINCT legal_entity_id FROM opened) AS e) "
        "SELECT r.run_id, r.legal_entity_id, o.n FROM r ASOF JOIN opened AS o "
        "ON o.legal_entity_id IS NOT DISTINCT FROM r.legal_entity_id AND o.moment <= r.started_at "
        "WHERE o.n > 0",
        params,
    ).fetchall()
    return {(str(run_id), entity): int(n) for run_id, entity, n in rows}


def _open_with_previous(
    con: duckdb.DuckDBPyConnection, legal_entities: Sequence[str] | None, rule_ids: Sequence[str] | None,
    by_entity: bool,
) -> tuple[list[dict[str, Any]], tuple[str, datetime] | None, tuple[str, datetime] | None]:  # fmt: skip
    """The open reconciliation breaks now (``breaks``) and at the previous live run (``break_ledger``).

    Read from their tables (:data:`BREAK_TABLES`). Returns one dict per entity (one for the scope
    without ``by_entity``): ``legal_entity_id``, ``breaks``, ``amount_at_risk``,
    ``reporting_currency``, ``unvalued``, ``aged`` (breaks with an age), ``age_sum``, ``age_max``,
    ``previous`` (None before a second run); then the latest and the previous run (run_id,
    started_at) or None.

    Raises:
        ValueError: the breaks in scope are valued in several reporting currencies.
    """
    where, params = _scope("legal_entity_id", legal_entities, "rule_id", rule_ids)
    group = _group("legal_entity_id", by_entity)
    current = con.execute(
        # without by_entity, one row even with no breaks: counts add up to 0, not NULL
        f"SELECT {group}, coalesce(sum(breaks), 0), sum(amount_at_risk), coalesce(sum(unvalued), 0), "
        "coalesce(sum(aged), 0), sum(age_sum), max(age_max), "
        "list(DISTINCT reporting_currency) FILTER (WHERE valued > 0) "
        f"FROM tieout_open_breaks WHERE {where} GROUP BY ALL",
        params,
    ).fetchall()
    currency = _one_currency(r[7] for r in current)
    runs = _live_runs(con, latest=2)
    latest, prev_run = (runs[-1] if runs else None), (runs[-2] if len(runs) > 1 else None)
    before: dict[str | None, int] = {}
    if prev_run is not None:
        found = con.execute(
            f"SELECT {group}, coalesce(sum(open_breaks), 0) FROM tieout_previous_open "
            f"WHERE {where} GROUP BY ALL",
            params,
        ).fetchall()
        before = {entity: int(n) for entity, n in found}
    now = {r[0]: r[1:7] for r in current}
    keys = sorted(set(now) | set(before), key=lambda e: (e is None, e or "")) if by_entity else [None]
    out = []
    for key in keys:
        n, amount, unvalued, aged, age_sum, age_max = now.get(key, (0, None, 0, 0, None, None))
        out.append({
            "legal_entity_id": key, "breaks": n, "amount_at_risk": amount,
            "reporting_currency": currency if amount is not None else None, "unvalued": unvalued,
            "aged": aged, "age_sum": age_sum, "age_max": age_max,
            "previous": before.get(key, 0) if prev_run else None,
        })  # fmt: skip
    return out, latest, prev_run


def open_breaks(
    con: duckdb.DuckDBPyConnection,
    *,
    legal_entities: Sequence[str] | None = None,
    rule_ids: Sequence[str] | None = None,
    by_entity: bool = False,
) -> pd.DataFrame:
    """Return the open reconciliation breaks and their amount at risk, against the previous run.

    Definition (open_breaks): reconciliation breaks of the latest live run (the breaks view,
    category reconciliation). Amount at risk: sum of amount_at_risk (reporting currency) of the
    open reconciliation breaks; breaks with an amount but no FX rate are counted in
    unvalued_breaks instead. Previous: the breaks open at the start of the previous live run,
    from ``break_ledger`` (count only: the ledger keeps no amounts).

    Args:
        con: a connection to the warehouse (tables ``tieout_open_breaks``, ``tieout_previous_open``,
            ``tieout_live_runs``).
        legal_entities: the legal entities counted (None: all; ``[]``: none).
        rule_ids: only breaks of these rules (None: all).
        by_entity: one row per legal entity instead of one row for the scope.

    Returns:
        ``legal_entity_id`` (only with ``by_entity``), ``value`` (Int64 open breaks), ``previous``
        (Int64, NA before a second run), ``change`` (Int64 or NA), ``amount_at_risk`` (Decimal or
        None without valued breaks), ``reporting_currency`` (str or None), ``unvalued_breaks``
        (Int64), ``run_started_at`` / ``previous_run_started_at`` (datetime64 UTC or NaT).

    Raises:
        ValueError: the breaks in scope are valued in several reporting currencies.
    """
    found, latest, prev_run = _open_with_previous(con, legal_entities, rule_ids, by_entity)
    rows = [
        _strip_entity(
            {
                "legal_entity_id": r["legal_entity_id"],
                "value": r["breaks"],
                "previous": r["previous"],
                "change": _diff(r["breaks"], r["previous"]),
                "amount_at_risk": r["amount_at_risk"],
                "reporting_currency": r["reporting_currency"],
                "unvalued_breaks": r["unvalued"],
                "run_started_at": latest[1] if latest else None,
                "previous_run_started_at": prev_run[1] if prev_run else None,
            },
            by_entity,
        )  # fmt: skip
        for r in found
    ]
    return _frame(rows, _entity_column(by_entity) | {
        "value": "Int64", "previous": "Int64", "change": "Int64", "amount_at_risk": "object",
        "reporting_currency": "object", "unvalued_breaks": "Int64", "run_started_at": "datetime64[us, UTC]",
        "previous_run_started_at": "datetime64[us, UTC]",
    })  # fmt: skip


def open_breaks_by_aging(
    con: duckdb.DuckDBPyConnection,
    *,
    legal_entities: Sequence[str] | None = None,
    rule_ids: Sequence[str] | None = None,
    by_entity: bool = False,
) -> pd.DataFrame:
    """Return the open reconciliation breaks and amount at risk per aging bucket (latest run).

    The breakdown of :func:`open_breaks` (same definitions) by ``aging_bucket``; with
    ``rule_ids=[UNBILLED_RULE]`` it is the unbilled WIP by age. Buckets with no breaks have no
    row. No previous value: run by run, see :func:`amount_at_risk_trend` (and :func:`open_breaks_trend`).

    Args:
        con: a connection to the warehouse (table ``tieout_open_breaks``).
        legal_entities: the legal entities counted (None: all; ``[]``: none).
        rule_ids: only breaks of these rules (None: all).
        by_entity: one row per legal entity and bucket.

    Returns:
        ``legal_entity_id`` (only with ``by_entity``), ``aging_bucket`` (str, youngest first, as
        the rules' settings name them), ``open_breaks`` (Int64), ``amount_at_risk`` (Decimal or
        None), ``reporting_currency`` (str or None), ``unvalued_breaks`` (Int64). Empty frame,
        same columns, if none.

    Raises:
        ValueError: the breaks in scope are valued in several reporting currencies.
    """
    where, params = _scope("legal_entity_id", legal_entities, "rule_id", rule_ids)
    found = con.execute(
        f"SELECT {_group('legal_entity_id', by_entity)}, aging_bucket, sum(breaks), sum(amount_at_risk), "
        "sum(unvalued), list(DISTINCT reporting_currency) FILTER (WHERE valued > 0) "
        f"FROM tieout_open_breaks WHERE {where} GROUP BY ALL "
        "ORDER BY legal_entity_id NULLS LAST, min(age_min) NULLS LAST, aging_bucket",
        params,
    ).fetchall()
    currency = _one_currency(r[5] for r in found)
    rows = [
        _strip_entity(
            {
                "legal_entity_id": entity,
                "aging_bucket": bucket,
                "open_breaks": n,
                "amount_at_risk": amount,
                "reporting_currency": currency if amount is not None else None,
                "unvalued_breaks": unvalued,
            },
            by_entity,
        )  # fmt: skip
        for entity, bucket, n, amount, unvalued, _ in found
    ]
    return _frame(rows, _entity_column(by_entity) | {
        "aging_bucket": "object", "open_breaks": "Int64", "amount_at_risk": "object",
        "reporting_currency": "object", "unvalued_breaks": "Int64",
    })  # fmt: skip


def open_breaks_trend(
    con: duckdb.DuckDBPyConnection,
    *,
    legal_entities: Sequence[str] | None = None,
    rule_ids: Sequence[str] | None = None,
    by_entity: bool = False,
    last_runs: int | None = None,
) -> pd.DataFrame:
    """Return the number of open reconciliation breaks at the start of each live reconciliation run.

    The trend of :func:`open_breaks`, reconstructed from ``break_ledger`` (exact for the latest
    two runs; older counts can be low, see the module notes). The latest run's count equals
    :func:`open_breaks`' value.

    Args:
        con: a connection to the warehouse (view ``break_ledger``, table ``tieout_live_runs``).
        legal_entities: the legal entities counted (None: all; ``[]``: none).
        rule_ids: only breaks of these rules (None: all).
        by_entity: one row per run and legal entity (every entity with an open break in any run
            shown, 0 where it had none).
        last_runs: only the latest this many runs (None: all).

    Returns:
        One row per run (and entity), oldest first: ``run_id`` (str), ``started_at`` (datetime64
        UTC), ``legal_entity_id`` (only with ``by_entity``), ``open_breaks`` (Int64), ``change``
        (Int64 against the run before, NA for the first run). Empty frame, same columns, before
        the first run.
    """
    runs = _live_runs(con)
    counts = _open_per_run(con, legal_entities, rule_ids, by_entity)
    entities = sorted({e for _, e in counts}, key=lambda e: (e is None, e or "")) if by_entity else [None]
    rows: list[dict[str, Any]] = []
    before: dict[str | None, int] = {}
    for run_id, started in runs:
        for entity in entities:
            n = counts.get((run_id, entity), 0)
            row = {"run_id": run_id, "started_at": started, "legal_entity_id": entity, "open_breaks": n}
            rows.append(_strip_entity(row | {"change": _diff(n, before.get(entity))}, by_entity))
            before[entity] = n
    if last_runs is not None:
        shown = {run_id for run_id, _ in runs[len(runs) - last_runs :]} if last_runs > 0 else set()
        rows = [r for r in rows if r["run_id"] in shown]
    return _frame(rows, {"run_id": "str", "started_at": "datetime64[us, UTC]"} | _entity_column(by_entity)
                  | {"open_breaks": "Int64", "change": "Int64"})  # fmt: skip


def mean_time_to_resolve(
    con: duckdb.DuckDBPyConnection,
    *,
    period: str,
    legal_entities: Sequence[str] | None = None,
    rule_ids: Sequence[str] | None = None,
    by_entity: bool = False,
) -> pd.DataFrame:
    """Return the mean days from first seen to cleared of the breaks that cleared in a month.

    Definition: mean of cleared_at - first_seen, in days, over the reconciliation breaks of
    break_ledger whose cleared_at falls in the month (UTC); a break that reopened counts from its
    first first_seen. "Cleared" is the reconciliation no longer finding the break (not a status
    set in the app). A break that cleared in a month and has since reopened is not counted for
    that month (the ledger keeps only its latest clearing). Month by month: :func:`monthly_trend`.

    Args:
        con: a connection to the warehouse (view ``break_ledger``).
        period: the month ``YYYY-MM``.
        legal_entities: the legal entities counted (None: all; ``[]``: none).
        rule_ids: only breaks of these rules (None: all).
        by_entity: one row per legal entity instead of one row for the scope.

    Returns:
        ``legal_entity_id`` (only with ``by_entity``), ``cleared_breaks`` (Int64), ``value``
        (Decimal days, 2 places, None if none cleared), ``previous_cleared_breaks`` (Int64),
        ``previous`` (Decimal days or None), ``change`` (Decimal days or None).

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``.
    """
    return _against_previous(
        "mean_time_to_resolve", con, period, by_entity, legal_entities=legal_entities, rule_ids=rule_ids
    )


def _resolve_rows(
    con: duckdb.DuckDBPyConnection, window: _Window, by_entity: bool, *,
    legal_entities: Sequence[str] | None = None, rule_ids: Sequence[str] | None = None,
) -> list[tuple[Any, ...]]:  # fmt: skip
    """(month, entity, cleared breaks, total microseconds open) per month of ``window``."""
    where, params = _scope("l.legal_entity_id", legal_entities, "l.rule_id", rule_ids)
    month, month_params = window.month_of("l.cleared_at", timestamp=True)
    return con.execute(
        f"SELECT {month}, {_group('l.legal_entity_id', by_entity)}, count(*), "
        "sum(epoch_us(l.cleared_at) - epoch_us(l.first_seen)) FROM break_ledger AS l "
        f"WHERE {_RECON_LEDGER} AND l.cleared_at >= ? AND l.cleared_at < ? AND {where} GROUP BY ALL",
        [*month_params, _utc(window.first), _utc(window.end), *params],
    ).fetchall()


def unbilled_wip(
    con: duckdb.DuckDBPyConnection,
    *,
    legal_entities: Sequence[str] | None = None,
    by_entity: bool = False,
    rule_id: str = UNBILLED_RULE,
) -> pd.DataFrame:
    """Return the unbilled WIP (approved billable time not yet invoiced) and its age, latest run.

    Definition: sum of amount_at_risk (reporting currency) of the open breaks of rule
    unbilled_time: approved billable time on time-and-materials projects, from an ended billing
    period, on no invoice. Age (unbilled_wip_age): mean age_days (days since the time was worked)
    of the open breaks of rule unbilled_time. No previous amount: the ledger keeps no amounts, so
    only the number of time entries is compared, with the previous live reconciliation run (from
    ``break_ledger``). By age: :func:`open_breaks_by_aging` with ``rule_ids=[UNBILLED_RULE]``.

    Args:
        con: a connection to the warehouse (tables ``tieout_open_breaks``, ``tieout_previous_open``,
            ``tieout_live_runs``).
        legal_entities: the legal entities counted (None: all; ``[]``: none).
        by_entity: one row per legal entity instead of one row for the scope.
        rule_id: the unbilled-time rule (default :data:`UNBILLED_RULE`).

    Returns:
        ``legal_entity_id`` (only with ``by_entity``), ``value`` (Decimal amount at risk or None),
        ``reporting_currency`` (str or None), ``time_entries`` (Int64), ``unvalued_entries``
        (Int64: amount but no FX rate), ``mean_age_days`` (Decimal, 1 place, or None),
        ``max_age_days`` (Int64 or NA), ``previous_time_entries`` (Int64, NA before a second
        run), ``change_time_entries`` (Int64 or NA).

    Raises:
        ValueError: the breaks in scope are valued in several reporting currencies.
    """
    found, _, _ = _open_with_previous(con, legal_entities, [rule_id], by_entity)
    rows = []
    for r in found:
        mean = Decimal(int(r["age_sum"])) / r["aged"] if r["aged"] else None
        rows.append(_strip_entity({
            "legal_entity_id": r["legal_entity_id"], "value": r["amount_at_risk"],
            "reporting_currency": r["reporting_currency"], "time_entries": r["breaks"],
            "unvalued_entries": r["unvalued"],
            "mean_age_days": None if mean is None else mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP),
            "max_age_days": r["age_max"], "previous_time_entries": r["previous"],
            "change_time_entries": _diff(r["breaks"], r["previous"]),
        }, by_entity))  # fmt: skip
    return _frame(rows, _entity_column(by_entity) | {
        "value": "object", "reporting_currency": "object", "time_entries": "Int64",
        "unvalued_entries": "Int64", "mean_age_days": "object", "max_age_days": "Int64",
        "previous_time_entries": "Int64", "change_time_entries": "Int64",
    })  # fmt: skip


# ---------------------------------------------------------------- billing KPIs (canonical snapshots)

_ISSUED = "i.kind = 'invoice' AND i.status IN ('posted', 'paid')"

#: The input of :func:`time_to_invoice`, a SELECT over the views: per ``system``, its approved billable
#: time entries on its customer invoices (kind invoice, status posted or paid), counted per invoice
#: ``issue_date``, ``legal_entity_id`` (the invoice's, else the time entry's) and ``days``
#: (issue_date - spent_date, NULL without a spent_date): ``time_entries`` (count), ``hours`` (sum,
#: DECIMAL). The warehouse file holds it as table ``tieout_invoiced_time``, built from the current
#: snapshots (:func:`data.warehouse.ensure_warehouse`): the join reads every time entry (10 million:
#: 0.4 s), its result has a few thousand rows, and it only changes with a new snapshot of the
#: system's time entries or invoices.
INVOICED_TIME = (
    "SELECT t.system, i.issue_date, coalesce(i.legal_entity_id, t.legal_entity_id) AS legal_entity_id, "
    "date_diff('day', t.spent_date, i.issue_date) AS days, count(*) AS time_entries, sum(t.hours) AS hours "
    "FROM time_entries AS t JOIN invoices AS i ON i.system = t.system AND i.invoice_id = t.invoice_id "
    f"WHERE t.approved AND t.billable AND {_ISSUED} GROUP BY ALL"
)


def time_to_invoice(
    con: duckdb.DuckDBPyConnection,
    *,
    period: str,
    legal_entities: Sequence[str] | None = None,
    by_entity: bool = False,
    system: str = "erp",
) -> pd.DataFrame:
    """Return the median days from work to invoice for time invoiced in a month, against the month before.

    Definition: median over approved billable time entries of the invoice's issue_date - the
    entry's spent_date, in days, for entries on customer invoices (kind invoice, status posted or
    paid) issued in the month, both from one system (default erp, the invoices' system of
    record). The canonical data has no approval date, so the day worked stands in for "approved".
    Legal entity: the invoice's (else the time entry's). The month is the invoice's issue month.
    Computed from ``tieout_invoiced_time`` (:data:`INVOICED_TIME`): the entries counted per number
    of days, whose median is the mean of the two middle entries' days (one for an odd count), as
    DuckDB's ``median``. Month by month: :func:`monthly_trend`.

    Args:
        con: a connection to the warehouse (table ``tieout_invoiced_time``).
        period: the month ``YYYY-MM``.
        legal_entities: the legal entities counted (None: all; ``[]``: none).
        by_entity: one row per legal entity instead of one row for the scope.
        system: the system whose time entries and invoices are read (ids link them within it).

    Returns:
        ``legal_entity_id`` (only with ``by_entity``), ``time_entries`` (Int64), ``hours``
        (Decimal or None), ``value`` (Decimal days, 1 place, or None), ``previous_time_entries``
        (Int64), ``previous`` (Decimal days or None), ``change`` (Decimal days or None).

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``.
    """
    return _against_previous(
        "time_to_invoice", con, period, by_entity, legal_entities=legal_entities, system=system
    )


def _invoiced_time_rows(
    con: duckdb.DuckDBPyConnection, window: _Window, by_entity: bool, *,
    legal_entities: Sequence[str] | None = None, system: str = "erp",
) -> list[tuple[Any, ...]]:  # fmt: skip
    """(month, entity, time entries, hours, median days) per month of ``window``."""
    where, params = _scope("legal_entity_id", legal_entities)
    month, month_params = window.month_of("issue_date", timestamp=False)
    return con.execute(
        f"WITH h AS (SELECT {month} AS month, "
        f"{_group('legal_entity_id', by_entity)}, days, sum(time_entries) AS n, sum(hours) AS hours "
        "FROM tieout_invoiced_time WHERE system = ? AND issue_date >= ? AND issue_date < ? "
        f"AND {where} GROUP BY ALL), "
        # per month (and entity): the entries with days, and how many have at most a row's days
        "ranked AS (SELECT *, sum(n) FILTER (WHERE days IS NOT NULL) OVER w AS dated, "
        "sum(n) OVER (w ORDER BY days NULLS LAST) AS upto FROM h "
        "WINDOW w AS (PARTITION BY month, legal_entity_id)) "
        # the days of the (dated - 1) // 2-th and the dated // 2-th entry (from 0, by days): the middle ones
        "SELECT month, legal_entity_id, sum(n), sum(hours), CAST((min(days) FILTER "
        "(WHERE upto > (dated - 1) // 2) + min(days) FILTER (WHERE upto > dated // 2)) / 2 AS DECIMAL(18,1)) "
        "FROM ranked GROUP BY ALL",
        [*month_params, system, window.first, window.end, *params],
    ).fetchall()


def invoice_accuracy(
    con: duckdb.DuckDBPyConnection,
    *,
    period: str,
    legal_entities: Sequence[str] | None = None,
    by_entity: bool = False,
    system: str = "erp",
) -> pd.DataFrame:
    """Return the share of a month's invoices with no open break, against the month before.

    Definition: customer invoices (kind invoice, status posted or paid) issued in the month with
    no open break (the breaks view, object invoices, naming the invoice as source or target
    record) / all those invoices x 100. Breaks of any category count (a failed data-quality
    check on the invoice too). Both months are judged against the latest run's breaks, so an
    invoice corrected since counts as accurate: older months tend to look better. Month by month:
    :func:`monthly_trend`.

    Args:
        con: a connection to the warehouse (view ``invoices``, table ``tieout_flagged_invoices``).
        period: the month ``YYYY-MM`` of the invoices' ``issue_date``.
        legal_entities: the legal entities counted (None: all; ``[]``: none).
        by_entity: one row per legal entity instead of one row for the scope.
        system: the invoices' system (default ``erp``, their system of record).

    Returns:
        ``legal_entity_id`` (only with ``by_entity``), ``invoices``, ``accurate_invoices`` (Int64),
        ``value`` (Decimal percent or None without invoices), ``previous_invoices``,
        ``previous_accurate_invoices`` (Int64), ``previous`` (Decimal percent or None), ``change``
        (Decimal percentage points or None).

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``.
    """
    return _against_previous(
        "invoice_accuracy", con, period, by_entity, legal_entities=legal_entities, system=system
    )


def _accuracy_rows(
    con: duckdb.DuckDBPyConnection, window: _Window, by_entity: bool, *,
    legal_entities: Sequence[str] | None = None, system: str = "erp",
) -> list[tuple[Any, ...]]:  # fmt: skip
    """(month, entity, invoices, invoices without an open break) per month of ``window``."""
    where, params = _scope("i.legal_entity_id", legal_entities)
    month, month_params = window.month_of("i.issue_date", timestamp=False)
    return con.execute(
        f"SELECT {month}, {_group('i.legal_entity_id', by_entity)}, count(*), "
        "count(*) FILTER (WHERE f.invoice_id IS NULL) "
        "FROM invoices AS i LEFT JOIN tieout_flagged_invoices AS f "
        "ON f.system = i.system AND f.invoice_id = i.invoice_id "
        f"WHERE i.system = ? AND {_ISSUED} AND i.issue_date >= ? AND i.issue_date < ? AND {where} "
        "GROUP BY ALL",
        [*month_params, system, window.first, window.end, *params],
    ).fetchall()


def deal_handoff_within_sla(
    con: duckdb.DuckDBPyConnection,
    *,
    period: str,
    as_of: datetime,
    legal_entities: Sequence[str] | None = None,
    by_entity: bool = False,
    sla_days: int = 14,
    crm_system: str = "crm",
    psa_system: str = "psa",
) -> pd.DataFrame:
    """Return the share of a month's closed-won deals that got their PSA project within the SLA.

    Definition: closed-won CRM deals (projects with won_at) won in the month whose PSA project
    with the same code was created by won_at + sla_days / those deals that are due (won_at +
    sla_days has passed, or already handed off in time) x 100. A deal still inside its SLA
    without a project is not counted yet; a PSA project whose creation time is unknown counts as
    in time. Legal entity: the deal's, else its CRM customer's. The month is ``won_at``'s (UTC).
    The default SLA matches rule ``deals_without_project``. Month by month: :func:`monthly_trend`.

    Args:
        con: a connection to the warehouse (views ``projects``, ``customers``).
        period: the month ``YYYY-MM`` the deals were won in.
        as_of: the moment deadlines are judged at (aware), e.g. now.
        legal_entities: the legal entities counted (None: all; ``[]``: none).
        by_entity: one row per legal entity instead of one row for the scope.
        sla_days: days from won to project.
        crm_system: the CRM's system slug (the deals and their customers).
        psa_system: the PSA's system slug (the projects).

    Returns:
        ``legal_entity_id`` (only with ``by_entity``), ``deals_due``, ``deals_on_time`` (Int64),
        ``value`` (Decimal percent or None without deals due), ``previous_deals_due``,
        ``previous_deals_on_time`` (Int64), ``previous`` (Decimal percent or None), ``change``
        (Decimal percentage points or None).

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``, ``as_of`` has no time zone, or ``sla_days`` < 0.
    """
    return _against_previous(
        "deal_handoff_within_sla", con, period, by_entity, as_of=as_of, legal_entities=legal_entities,
        sla_days=sla_days, crm_system=crm_system, psa_system=psa_system,
    )  # fmt: skip


def _handoff_rows(
    con: duckdb.DuckDBPyConnection, window: _Window, by_entity: bool, *, as_of: datetime,
    legal_entities: Sequence[str] | None = None, sla_days: int = 14, crm_system: str = "crm",
    psa_system: str = "psa",
) -> list[tuple[Any, ...]]:  # fmt: skip
    """(month, entity, deals due, deals handed off in time) per month of ``window``."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC), e.g. datetime.now(UTC)")
    if sla_days < 0:
        raise ValueError(f"sla_days must be 0 or more, not {sla_days}")
    entity = "coalesce(d.legal_entity_id, c.legal_entity_id)"
    # whole 24-hour days, so the deadline does not move with the session's time zone (DST)
    due = f"d.won_at + to_hours({24 * int(sla_days)})"
    where, params = _scope(entity, legal_entities)
    month, month_params = window.month_of("won_at", timestamp=True)
    return con.execute(
        "WITH handoff AS (SELECT code, min(created_at) AS created_at FROM projects "
        "WHERE system = ? AND code IS NOT NULL GROUP BY code), "
        "owner AS (SELECT customer_id, min(legal_entity_id) AS legal_entity_id FROM customers "
        "WHERE system = ? GROUP BY customer_id), "
        f"deals AS (SELECT d.won_at, {_group(entity, by_entity)}, {due} AS due, "
        f"h.code IS NOT NULL AND (h.created_at IS NULL OR h.created_at <= {due}) AS on_time "
        "FROM projects AS d LEFT JOIN owner AS c ON c.customer_id = d.customer_id "
        "LEFT JOIN handoff AS h ON h.code = d.code "
        f"WHERE d.system = ? AND d.won_at >= ? AND d.won_at < ? AND {where}) "
        f"SELECT {month}, legal_entity_id, count(*), count(*) FILTER (WHERE on_time) FROM deals "
        "WHERE on_time OR due <= ? GROUP BY ALL",
        [psa_system, crm_system, crm_system, _utc(window.first), _utc(window.end), *params, *month_params,
         as_of],
    ).fetchall()  # fmt: skip


def freshness_sla_attainment(
    con: duckdb.DuckDBPyConnection,
    *,
    period: str,
    sla_minutes: Mapping[str, int],
    now: datetime,
    by_system: bool = False,
) -> pd.DataFrame:
    """Return the share of a month's time the sources' current snapshots were within their SLA.

    Definition: time within SLA / time observed x 100 in the month (UTC, up to now), summed over
    every system and object from its first published snapshot (snapshots view); a source is within
    SLA while its current snapshot's age (from snapshots.extracted_at) is at most its system's
    freshness_sla_minutes. The month's history of :func:`freshness_vs_sla`; systems without an SLA
    are not counted. Firm-wide. Month by month: :func:`monthly_trend`.

    Args:
        con: a connection to the warehouse (view ``snapshots``).
        period: the month ``YYYY-MM``.
        sla_minutes: system -> ``freshness_sla_minutes`` (sources.yaml).
        now: the moment the current month is observed up to (aware).
        by_system: one row per system instead of one row for all.

    Returns:
        ``system`` (str, only with ``by_system``), ``observed_us``, ``out_of_sla_us`` (Int64,
        microseconds summed over sources), ``value`` (Decimal percent or None when nothing was
        observed), the same prefixed ``previous_`` for the month before, ``previous`` and
        ``change`` (Decimal percentage points or None).

    Raises:
        ValueError: ``period`` is not ``YYYY-MM``, or ``now`` has no time zone.
    """
    return _against_previous(
        "freshness_sla_attainment", con, period, by_system, sla_minutes=sla_minutes, now=now
    )


def _attainment_rows(
    con: duckdb.DuckDBPyConnection, window: _Window, by_system: bool, *, sla_minutes: Mapping[str, int],
    now: datetime,
) -> list[tuple[Any, ...]]:  # fmt: skip
    """(month, system or None, microseconds observed, microseconds out of SLA) per month of ``window``.

    Between two publishes of a source its snapshot ages from the earlier one's extracted_at, so it
    is out of SLA from extracted_at + SLA (or its publish, if later) to the next publish (or now).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC), e.g. datetime.now(UTC)")
    if not sla_minutes:
        return []
    slas = ", ".join("(?, ?)" for _ in sla_minutes)
    months = ", ".join("(?, ?, ?)" for _ in window.starts)
    bounds = [b for label, start in window.starts for b in (label, _utc(start), _utc(_month(label)[1]))]
    system = "i.system" if by_system else "CAST(NULL AS VARCHAR)"
    return con.execute(
        f"WITH sla(system, minutes) AS (VALUES {slas}), "
        "s AS (SELECT system, extracted_at, published_at, lead(published_at) OVER "
        "(PARTITION BY system, object ORDER BY published_at, snapshot_id) AS next_at FROM snapshots), "
        "i AS (SELECT s.system, s.published_at AS a, least(coalesce(s.next_at, ?), ?) AS b, "
        "greatest(s.published_at, s.extracted_at + to_minutes(CAST(sla.minutes AS BIGINT))) AS stale_from "
        "FROM s JOIN sla ON sla.system = s.system), "
        f"m(month, m0, m1) AS (VALUES {months}) "
        f"SELECT m.month, {system}, sum(epoch_us(least(i.b, m.m1)) - epoch_us(greatest(i.a, m.m0))), "
        "sum(greatest(0, epoch_us(least(i.b, m.m1)) - epoch_us(greatest(i.stale_from, i.a, m.m0)))) "
        "FROM i JOIN m ON i.a < m.m1 AND i.b > m.m0 AND i.a < i.b GROUP BY ALL",
        [*(v for item in sla_minutes.items() for v in item), now, now, *bounds],
    ).fetchall()


# ---------------------------------------------------------------- month by month, run by run


@dataclass(frozen=True)
class _Monthly:
    """A monthly KPI: its rows ``(month, key, *measures)`` for a window, and its value from measures."""

    rows: Callable[..., list[tuple[Any, ...]]]
    measures: Mapping[str, str]
    value: Callable[[tuple[Any, ...]], Any]
    empty: tuple[Any, ...]
    key: tuple[str, str] = ("legal_entity_id", "object")


_MONTHLY: dict[str, _Monthly] = {
    "sync_failure_rate": _Monthly(
        _sync_failure_rows, {"runs": "Int64", "failed_runs": "Int64"}, lambda m: _pct(m[1], m[0]), (0, 0),
        key=("system", "str"),
    ),
    "freshness_sla_attainment": _Monthly(
        _attainment_rows, {"observed_us": "Int64", "out_of_sla_us": "Int64"},
        lambda m: _pct(int(m[0]) - int(m[1]), int(m[0])), (0, 0), key=("system", "str"),
    ),
    "mean_time_to_resolve": _Monthly(
        _resolve_rows, {"cleared_breaks": "Int64"}, lambda m: _days(int(m[1]), int(m[0])), (0, 0)
    ),
    "time_to_invoice": _Monthly(
        _invoiced_time_rows, {"time_entries": "Int64", "hours": "object"}, lambda m: m[2], (0, None, None)
    ),
    "invoice_accuracy": _Monthly(
        _accuracy_rows, {"invoices": "Int64", "accurate_invoices": "Int64"}, lambda m: _pct(m[1], m[0]),
        (0, 0),
    ),
    "deal_handoff_within_sla": _Monthly(
        _handoff_rows, {"deals_due": "Int64", "deals_on_time": "Int64"}, lambda m: _pct(m[1], m[0]), (0, 0)
    ),
}  # fmt: skip
#: The KPIs :func:`monthly_trend` computes month by month.
MONTHLY_KPIS = tuple(_MONTHLY)


def _against_previous(name: str, source: Any, period: str, by_key: bool, **options: Any) -> pd.DataFrame:
    """KPI ``name`` for ``period`` against the month before (see :func:`_period_frame`)."""
    spec = _MONTHLY[name]
    rows = spec.rows(source, _Window.ending(period, 2), by_key, **options)
    labelled = [("current" if month == period else "previous", *rest) for month, *rest in rows]
    return _period_frame(labelled, by_key, spec.measures, spec.value, spec.empty, key=spec.key)


def monthly_trend(
    source: duckdb.DuckDBPyConnection | sa.Engine,
    kpi: str,
    *,
    through: str,
    months: int = 12,
    by_entity: bool = False,
    **options: Any,
) -> pd.DataFrame:
    """Return a monthly KPI for each of the ``months`` months up to ``through``.

    The same definition, arguments and measures as the KPI's own function, computed for every
    month at once.

    Args:
        source: what the KPI's function reads: the app-state engine for ``sync_failure_rate``, else
            a connection to the warehouse.
        kpi: one of :data:`MONTHLY_KPIS`.
        through: the last month ``YYYY-MM``.
        months: how many months, ``through`` included.
        by_entity: one row per month and legal entity (every entity with data in any month, in
            every month); not for the firm-wide KPIs.
        **options: the KPI function's other keyword arguments (e.g. ``legal_entities``, ``as_of``).

    Returns:
        One row per month (and entity), oldest first: ``month`` (str ``YYYY-MM``),
        ``legal_entity_id`` (only with ``by_entity``), the KPI's measures, ``value`` (as the KPI's;
        None for a month without data).

    Raises:
        ValueError: an unknown KPI, ``by_entity`` for a firm-wide one, a bad ``through`` or
            ``months``, or as the KPI's function.
    """
    spec = _MONTHLY.get(kpi)
    if spec is None:
        raise ValueError(f"no monthly trend of {kpi!r}; KPIs: {', '.join(MONTHLY_KPIS)}")
    if by_entity and spec.key[0] != "legal_entity_id":
        raise ValueError(f"{kpi} is firm-wide: it has no legal entities")
    window = _Window.ending(through, months)
    found = {(key, month): tuple(measures) for month, key, *measures in spec.rows(source, window, by_entity,
                                                                                  **options)}  # fmt: skip
    keys = sorted({k for k, _ in found}, key=lambda e: (e is None, e or "")) if by_entity else [None]
    rows = []
    for key in keys:
        for month, _ in window.starts:
            measured = found.get((key, month), spec.empty)
            row = {"month": month, "legal_entity_id": key} | dict(zip(spec.measures, measured, strict=False))
            rows.append(_strip_entity(row | {"value": spec.value(measured)}, by_entity))
    return _frame(
        rows, {"month": "str"} | _entity_column(by_entity) | dict(spec.measures) | {"value": "object"}
    )


def amount_at_risk_trend(
    con: duckdb.DuckDBPyConnection,
    *,
    legal_entities: Sequence[str] | None = None,
    rule_ids: Sequence[str] | None = None,
    by_entity: bool = False,
    by_aging: bool = True,
) -> pd.DataFrame:
    """Return the open reconciliation breaks and their amount at risk, run by run (by aging bucket).

    :func:`open_breaks_by_aging` (same definitions) for every live reconciliation run that kept its
    summary (``tieout_run_summary``: each run adds up its breaks when it publishes them, since the
    ledger keeps no amounts); with ``rule_ids=[UNBILLED_RULE]`` it is the unbilled WIP run by run.

    Args:
        con: a connection to the warehouse (table ``tieout_run_summary``).
        legal_entities: the legal entities counted (None: all; ``[]``: none).
        rule_ids: only breaks of these rules (None: all).
        by_entity: one row per run and legal entity (and bucket).
        by_aging: one row per run and aging bucket (and entity); False: per run (and entity).

    Returns:
        One row per run (and entity, and aging bucket) with breaks, oldest run first, buckets
        youngest first: ``run_id`` (str), ``started_at`` (datetime64 UTC), ``legal_entity_id`` (only
        with ``by_entity``), ``aging_bucket`` (str, only with ``by_aging``), ``open_breaks`` (Int64),
        ``amount_at_risk`` (Decimal or None), ``reporting_currency`` (str or None),
        ``unvalued_breaks`` (Int64).

    Raises:
        ValueError: one run's breaks in scope are valued in several reporting currencies.
    """
    where, params = _scope("legal_entity_id", legal_entities, "rule_id", rule_ids)
    bucket = "aging_bucket" if by_aging else "CAST(NULL AS VARCHAR) AS aging_bucket"
    found = con.execute(
        f"SELECT run_id, started_at, {_group('legal_entity_id', by_entity)}, {bucket}, sum(breaks), "
        "sum(amount_at_risk), sum(unvalued), list(DISTINCT reporting_currency) FILTER (WHERE valued > 0) "
        f"FROM tieout_run_summary WHERE {where} GROUP BY ALL "
        "ORDER BY started_at, run_id, legal_entity_id NULLS LAST, min(age_min) NULLS LAST, aging_bucket",
        params,
    ).fetchall()  # fmt: skip
    per_run: dict[str, list[Sequence[str] | None]] = {}
    for run_id, *_, currencies in found:
        per_run.setdefault(run_id, []).append(currencies)
    currency = {run_id: _one_currency(groups) for run_id, groups in per_run.items()}
    columns = ["run_id", "started_at", "legal_entity_id", "aging_bucket", "open_breaks", "amount_at_risk",
               "unvalued_breaks"]  # fmt: skip
    frame = pd.DataFrame.from_records([r[:7] for r in found], columns=columns)
    frame.insert(6, "reporting_currency", [currency[r[0]] if r[5] is not None else None for r in found])
    dtypes = {"run_id": "str", "started_at": "datetime64[us, UTC]"} | _entity_column(by_entity) | (
        {"aging_bucket": "object"} if by_aging else {}
    ) | {"open_breaks": "Int64", "amount_at_risk": "object", "reporting_currency": "object",
         "unvalued_breaks": "Int64"}  # fmt: skip
    return frame[list(dtypes)].astype(dtypes)
