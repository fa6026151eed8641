"""Valuing breaks: amount at risk in the reporting currency, age, aging bucket and severity (SQL).

FX rates come from a file (``settings.fx_rates``: CSV or Parquet with ``currency``, ``month``
``YYYY-MM`` and ``rate_to_reporting``, reporting currency per unit), one rate per currency and
month; a break uses the rate of its invoice cycle's month, or of the latest earlier month when
that one is missing (an ``ASOF`` join). Amounts stay DECIMAL throughout: ``round(amount * rate, 2)``.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from data.sql import sql_literal
from reconcile.rules import RuleError, Settings

__all__ = ["fx_join", "fx_relation", "valuation_columns"]


def fx_relation(settings: Settings, home: Path) -> str:
    """SQL relation of the FX rates (``currency``, ``month``, ``rate_to_reporting``); empty without a file.

    Raises:
        RuleError: ``settings.fx_rates`` names files that do not exist.
    """
    if settings.fx_rates is None:
        return (
            "(SELECT CAST(NULL AS VARCHAR) AS currency, CAST(NULL AS VARCHAR) AS month, "
            "CAST(NULL AS DECIMAL(18,8)) AS rate_to_reporting WHERE false)"
        )
    pattern = str(home / settings.fx_rates)
    files = sorted(Path(pattern).parent.glob(Path(pattern).name))
    if not files:
        raise RuleError(f"settings.fx_rates: no file matches {settings.fx_rates!r} (relative to {home})")
    reader = "read_csv" if files[0].suffix.lower() == ".csv" else "read_parquet"
    paths = ", ".join(sql_literal(str(f)) for f in files)
    return (
        f"(SELECT CAST(currency AS VARCHAR) AS currency, CAST(month AS VARCHAR) AS month, "
        f"CAST(rate_to_reporting AS DECIMAL(18,8)) AS rate_to_reporting FROM {reader}([{paths}]))"
    )


def valuation_columns(
    settings: Settings, reporting_currency: str, *, business_date: date, moment: datetime
) -> str:
    """SELECT list: ``amount_at_risk``, ``reporting_currency``, ``severity``, ``age_days``, ``aging_bucket``.

    Expects a relation ``b`` (raw break columns, ``first_seen`` and the rule's ``fixed_severity``)
    ASOF-joined to the FX rates as ``fx``. Ages: aged breaks count days from their record's date
    to the business date; others count days open (``first_seen`` to the run's moment).
    """
    reporting = sql_literal(reporting_currency)
    at_risk = (
        f"CASE WHEN b.currency = {reporting} THEN b.amount "
        "ELSE CAST(round(b.amount * fx.rate_to_reporting, 2) AS DECIMAL(18,2)) END"
    )
    age = (
        f"CAST(CASE WHEN b.age_date IS NOT NULL THEN date_diff('day', b.age_date, DATE '{business_date}') "
        f"ELSE greatest(date_diff('day', CAST(b.first_seen AS DATE), "
        f"CAST(TIMESTAMPTZ '{moment.isoformat()}' AS DATE)), 0) END AS INTEGER)"
    )
    buckets = " ".join(
        f"WHEN {age} <= {high} THEN '{label}'" for _, high, label in settings.buckets() if high is not None
    )
    bucket = f"CASE {buckets} ELSE '{settings.buckets()[-1][2]}' END"
    bands = " ".join(
        f"WHEN coalesce({at_risk}, 0) >= {band.amount_at_risk} OR {age} >= {band.age_days} THEN '{name}'"
        for name, band in sorted(settings.severity.items(), key=lambda kv: kv[0] != "high")
    )
    severity = f"coalesce(b.fixed_severity, CASE {bands} ELSE 'low' END)"
    return (
        f"{at_risk} AS amount_at_risk, {reporting} AS reporting_currency, {severity} AS severity, "
        f"{age} AS age_days, {bucket} AS aging_bucket"
    )


def fx_join(fx: str, business_date: date) -> str:
    """``ASOF LEFT JOIN`` of breaks ``b`` to rates ``fx`` on currency and the break's month."""
    month = f"coalesce(b.invoice_cycle, '{business_date:%Y-%m}')"
    return f"ASOF LEFT JOIN {fx} AS fx ON fx.currency = b.currency AND {month} >= fx.month"
