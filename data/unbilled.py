"""Unbilled time for the PMO: approved billable time not invoiced, grouped, aged and valued.

The unbilled time is what reconciliation rule ``unbilled_time`` (:data:`data.kpis.UNBILLED_RULE`)
reports: one ``aged`` break per approved billable PSA time entry on a time-and-materials project,
from an ended billing period, on no invoice. The break carries the grouping and the value
(``project_code``, ``customer``, ``legal_entity_id``, ``invoice_cycle``, ``age_days``,
``aging_bucket``, ``amount`` in ``currency``, ``amount_at_risk`` in the reporting currency);
``source_id`` is the time entry's id in ``source_system``, whose ``time_entries`` row gives the
day, the person and the hours. The totals here are the unbilled WIP of :func:`data.kpis.unbilled_wip`.

Groups are by project, project manager, customer or legal entity. The project manager is the
``project_manager`` of the time entry's project in the same system's current ``projects``
snapshot (Harvest: its users assigned as project manager; Odoo: ``user_id``).

Scope, as everywhere: ``legal_entities=None`` means every entity, ``()`` none, and a break whose
entity is unknown (NULL) only shows without a limit. ``period`` (``YYYY-MM``) keeps the time of
that billing period (the break's ``invoice_cycle``); None keeps every period.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import duckdb
import pandas as pd

from data.kpis import UNBILLED_RULE

__all__ = [
    "DIMENSIONS",
    "ENTRY_COLUMNS",
    "SUMMARY_COLUMNS",
    "Dimension",
    "summary_by_group",
    "unbilled_entries",
    "unbilled_summary",
]

Dimension = Literal["project", "project_manager", "customer", "legal_entity"]
#: Each grouping dimension -> (its column: ``b.`` the break, ``p.`` the time entry's project; its label).
DIMENSIONS: dict[str, tuple[str, str]] = {
    "project": ("b.project_code", "Project"),
    "project_manager": ("p.project_manager", "Project manager"),
    "customer": ("b.customer", "Customer"),
    "legal_entity": ("b.legal_entity_id", "Legal entity"),
}
#: Columns of :func:`unbilled_summary` -> pandas dtype.
SUMMARY_COLUMNS = {
    "group": "object", "aging_bucket": "object", "time_entries": "Int64", "hours": "object",
    "amount_at_risk": "object", "reporting_currency": "object", "unvalued_entries": "Int64",
}  # fmt: skip
#: Columns of :func:`unbilled_entries` -> pandas dtype.
ENTRY_COLUMNS = {
    "time_entry_id": "object", "spent_date": "object", "person_name": "object", "hours": "object",
    "billable_amount": "object", "currency": "object", "amount_at_risk": "object",
    "reporting_currency": "object", "age_days": "Int64", "aging_bucket": "object", "project_code": "object",
    "project_manager": "object", "customer": "object", "legal_entity_id": "object", "invoice_cycle": "object",
    "break_id": "object",
}  # fmt: skip

_FROM = (
    "FROM breaks AS b LEFT JOIN time_entries AS t "
    "ON t.system = b.source_system AND t.time_entry_id = b.source_id "
    "LEFT JOIN projects AS p ON p.system = t.system AND p.project_id = t.project_id"
)


def _column(by: str) -> str:
    """The column of dimension ``by`` (over :data:`_FROM`).

    Raises:
        ValueError: ``by`` is not a key of :data:`DIMENSIONS`.
    """
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}; dimensions: {', '.join(DIMENSIONS)}")
    return DIMENSIONS[by][0]


def _where(legal_entities: Sequence[str] | None, period: str | None, rule_id: str) -> tuple[str, list[Any]]:
    """The condition selecting the rule's open breaks in scope, and its parameters."""
    parts, params = ["b.rule_id = ?", "b.break_type = 'aged'"], [rule_id]
    if legal_entities is not None:
        parts.append(
            f"b.legal_entity_id IN ({', '.join('?' for _ in legal_entities)})" if legal_entities else "false"
        )
        params.extend(legal_entities)
    if period is not None:
        parts.append("b.invoice_cycle = ?")
        params.append(period)
    return " AND ".join(parts), params


def _frame(rows: Sequence[Sequence[Any]], columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            name: pd.Series([r[i] for r in rows], dtype=dtype)
            for i, (name, dtype) in enumerate(columns.items())
        },
        columns=list(columns),
    )


def unbilled_summary(
    con: duckdb.DuckDBPyConnection,
    *,
    by: Dimension,
    legal_entities: Sequence[str] | None = None,
    period: str | None = None,
    rule_id: str = UNBILLED_RULE,
) -> pd.DataFrame:
    """Return the unbilled time per group of dimension ``by`` and aging bucket: entries, hours, value.

    Args:
        con: a connection to the warehouse (views ``breaks``, ``time_entries``, ``projects``).
        by: ``project`` (project code), ``project_manager`` (name), ``customer`` (name) or
            ``legal_entity`` (:data:`DIMENSIONS`).
        legal_entities: the legal entities shown (None: all; ``()``: none).
        period: only time of this billing period ``YYYY-MM`` (None: all periods).
        rule_id: the unbilled-time rule (default :data:`data.kpis.UNBILLED_RULE`).

    Returns:
        One row per group and bucket with time (no row for an empty bucket), columns
        :data:`SUMMARY_COLUMNS`: ``group`` (str, None when the break has no value for the
        dimension), ``aging_bucket`` (str, e.g. ``31-60``), ``time_entries`` (Int64), ``hours``
        (Decimal; None when no entry is in the current snapshot of ``time_entries``),
        ``amount_at_risk`` (Decimal in ``reporting_currency``, None when no entry could be
        valued), ``reporting_currency`` (str or None), ``unvalued_entries`` (Int64: an amount but no
        FX rate). Sorted by bucket, youngest first (by the least age in the bucket), then by group
        (None last). Empty frame, same columns, if none.

    Raises:
        ValueError: an unknown ``by``, or the breaks are valued in several reporting currencies.
    """
    column = _column(by)
    where, params = _where(legal_entities, period, rule_id)
    rows = con.execute(
        f"SELECT {column} AS grp, b.aging_bucket, count(*), sum(t.hours), sum(b.amount_at_risk), "
        "list(DISTINCT b.reporting_currency) FILTER (WHERE b.amount_at_risk IS NOT NULL), "
        "count(*) FILTER (WHERE b.amount IS NOT NULL AND b.amount_at_risk IS NULL), "
        "min(min(b.age_days)) OVER (PARTITION BY b.aging_bucket) AS youngest "
        f"{_FROM} WHERE {where} GROUP BY grp, b.aging_bucket "
        "ORDER BY youngest NULLS LAST, b.aging_bucket, grp NULLS LAST",
        params,
    ).fetchall()
    currencies = sorted({c for r in rows for c in (r[5] or [])})
    if len(currencies) > 1:
        raise ValueError(
            f"the unbilled time is valued in several reporting currencies ({', '.join(currencies)}), "
            "which cannot be added up; run the reconciliation again so all breaks use the current one"
        )
    currency = currencies[0] if currencies else None
    out = [(g, bucket, n, hours, amount, currency if amount is not None else None, unvalued)
           for g, bucket, n, hours, amount, _, unvalued, _ in rows]  # fmt: skip
    return _frame(out, SUMMARY_COLUMNS)


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return a if b is None else b if a is None else a + b


def summary_by_group(summary: pd.DataFrame) -> pd.DataFrame:
    """Return one row per group from :func:`unbilled_summary`, with the value of each bucket beside it.

    Args:
        summary: a frame of :func:`unbilled_summary` (its bucket order is kept).

    Returns:
        ``group``, ``time_entries`` (Int64), ``hours``, ``amount_at_risk`` (Decimal or None: the
        group's totals), then one column per aging bucket holding its ``amount_at_risk`` (Decimal,
        None where the group has no valued time in it). Sorted by ``amount_at_risk``, largest
        first (None last), then group. Empty frame (``group`` and the totals) if none.
    """
    buckets = list(dict.fromkeys(summary["aging_bucket"]))
    groups: dict[Any, dict[str, Any]] = {}
    for r in summary.to_dict("records"):
        g = groups.setdefault(r["group"], {"group": r["group"], "time_entries": 0, "hours": None,
                                           "amount_at_risk": None} | dict.fromkeys(buckets))  # fmt: skip
        g["time_entries"] += int(r["time_entries"])
        g["hours"] = _add(g["hours"], r["hours"])
        g["amount_at_risk"] = _add(g["amount_at_risk"], r["amount_at_risk"])
        g[r["aging_bucket"]] = r["amount_at_risk"]
    ordered = sorted(
        groups.values(),
        key=lambda g: (
            g["amount_at_risk"] is None,
            -(g["amount_at_risk"] or 0),
            g["group"] is None,
            g["group"] or "",
        ),
    )
    columns = {"group": "object", "time_entries": "Int64", "hours": "object", "amount_at_risk": "object"}
    columns |= dict.fromkeys(buckets, "object")
    return _frame([[g[c] for c in columns] for g in ordered], columns)


def unbilled_entries(
    con: duckdb.DuckDBPyConnection,
    *,
    by: Dimension | None = None,
    group: str | None = None,
    legal_entities: Sequence[str] | None = None,
    period: str | None = None,
    aging_bucket: str | None = None,
    rule_id: str = UNBILLED_RULE,
) -> pd.DataFrame:
    """Return the unbilled time entries of one group (the drill-down of :func:`unbilled_summary`).

    Args:
        con: a connection to the warehouse (views ``breaks``, ``time_entries``, ``projects``).
        by: the dimension of ``group`` (None: every entry in scope, ``group`` ignored).
        group: the group's value in dimension ``by``; None selects the entries without one.
        legal_entities: the legal entities shown (None: all; ``()``: none).
        period: only time of this billing period ``YYYY-MM`` (None: all periods).
        aging_bucket: only this bucket (None: all).
        rule_id: the unbilled-time rule (default :data:`data.kpis.UNBILLED_RULE`).

    Returns:
        One row per time entry, columns :data:`ENTRY_COLUMNS`: ``time_entry_id`` (str, in the PSA),
        ``spent_date`` (date), ``person_name`` (str), ``hours`` (Decimal) — these three None when
        the entry is not in the current snapshot of ``time_entries`` —, ``billable_amount``
        (Decimal, hours x bill rate) in ``currency``, ``amount_at_risk`` (Decimal or None) in
        ``reporting_currency``, ``age_days`` (Int64, days since worked), ``aging_bucket``,
        ``project_code``, ``project_manager``, ``customer``, ``legal_entity_id``, ``invoice_cycle``
        (the billing period)
        and ``break_id``. Oldest first, then by ``time_entry_id``. Empty frame, same columns, if none.

    Raises:
        ValueError: an unknown ``by``.
    """
    where, params = _where(legal_entities, period, rule_id)
    if by is not None:
        where += f" AND {_column(by)} IS NOT DISTINCT FROM ?"
        params.append(group)
    if aging_bucket is not None:
        where += " AND b.aging_bucket = ?"
        params.append(aging_bucket)
    rows = con.execute(
        "SELECT b.source_id, t.spent_date, t.person_name, t.hours, b.amount, b.currency, b.amount_at_risk, "
        "b.reporting_currency, b.age_days, b.aging_bucket, b.project_code, p.project_manager, b.customer, "
        "b.legal_entity_id, "
        f"b.invoice_cycle, b.break_id {_FROM} WHERE {where} "
        "ORDER BY b.age_days DESC NULLS LAST, b.source_id",
        params,
    ).fetchall()
    return _frame(rows, ENTRY_COLUMNS)
