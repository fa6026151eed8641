"""Overview (executives): the KPI tiles with their change, the trends, and the KPIs per legal entity.

Every number and its definition comes from :mod:`data.kpis` (:data:`data.kpis.DEFINITIONS`): a
tile's help text is the KPI's formula. Monthly KPIs use the sidebar's billing period (the latest
one that has begun when "All" is chosen) against the month before; break KPIs use the latest
reconciliation run against the previous one. The sync failure rate and freshness are firm-wide (they are about
systems, not legal entities); every other number stays within the user's legal entities.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import reduce
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from data import kpis
from pages import _shared as shared

_TILES = (
    "open_breaks", "amount_at_risk", "unbilled_wip", "unbilled_wip_age", "mean_time_to_resolve",
    "time_to_invoice", "invoice_accuracy", "deal_handoff_within_sla", "sync_failure_rate", "freshness_vs_sla",
)  # fmt: skip
_SUFFIX = {"percent": " %", "days": " days", "minutes": " min", "count": "", "money": ""}
_DELTA_UNIT = {"percent": " pp", "days": " days", "minutes": " min", "count": "", "money": ""}
#: KPIs whose change is not in ``change`` (column, unit).
_DELTAS = {"unbilled_wip": ("change_time_entries", " time entries")}
_NONE = "(unknown)"
_MONTHS = 12
#: The entity-scoped monthly KPIs charted month by month.
_ENTITY_MONTHLY = ("mean_time_to_resolve", "time_to_invoice", "invoice_accuracy", "deal_handoff_within_sla")
_LABELS = {"legal_entity_id": "Legal entity", "aging_bucket": "Age (days)", "started_at": "Run",
           "open_breaks": "Open exceptions"}  # fmt: skip


def _missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))


def _text(value: Any, unit: str, currency: str | None) -> str:
    if _missing(value):
        return "–"
    return f"{value:,.0f} {currency or ''}".strip() if unit == "money" else f"{value}{_SUFFIX[unit]}"


def _tile(slot: Any, name: str, frame: pd.DataFrame, *, shown: str | None = None) -> None:
    """One KPI tile: its value, its change against the previous period, its definition as help."""
    d = kpis.DEFINITIONS[name]
    row = frame.iloc[0].to_dict() if len(frame) else {}
    currency = row.get("reporting_currency")
    column, unit = _DELTAS.get(name, ("change", _DELTA_UNIT[d.unit]))
    change = row.get(column) if d.previous or name in _DELTAS else None
    compared = f" Compared with {d.previous}." if d.previous else ""
    flat = not _missing(change) and change == 0
    slot.metric(
        d.title, shown or _text(row.get(d.column), d.unit, currency),
        delta=None if _missing(change) else f"{change:+}{unit}", delta_arrow="off" if flat else "auto",
        delta_color="off" if flat else "normal" if d.higher_is_better else "inverse",
        help=f"{d.formula}.{compared}" + (" Firm-wide." if d.scope == "firm" else ""), border=True,
    )  # fmt: skip


def _entity(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(legal_entity_id=[_NONE if _missing(e) else e for e in frame["legal_entity_id"]])


def _trends(scope: tuple[str, ...] | None) -> None:
    """Run by run: open exceptions, amount at risk by age; the latest run by age."""
    st.subheader("Trends")
    trend = shared.cached(kpis.open_breaks_trend)(legal_entities=scope, by_entity=True)
    aging = shared.cached(kpis.open_breaks_by_aging)(legal_entities=scope, by_entity=True)
    if trend.empty and aging.empty:
        st.info("No reconciliation breaks in your legal entities yet.")
        return
    at_risk = shared.cached(kpis.amount_at_risk_trend)(legal_entities=scope)
    currency = next(
        (c for c in (*aging["reporting_currency"], *at_risk["reporting_currency"]) if not _missing(c)), ""
    )
    labels = _LABELS | {"amount": f"Amount at risk {currency}"}
    # buckets youngest first, in the whole scope's order (an entity may lack a bucket)
    order = list(shared.cached(kpis.open_breaks_by_aging)(legal_entities=scope)["aging_bucket"])
    left, right = st.columns(2)
    fig = px.line(_entity(trend), x="started_at", y="open_breaks", color="legal_entity_id", markers=True,
                  labels=labels, title="Open exceptions per run")  # fmt: skip
    left.plotly_chart(fig, width="stretch")
    amounts = at_risk.assign(amount=at_risk["amount_at_risk"].astype("float64"))
    fig = px.bar(amounts, x="started_at", y="amount", color="aging_bucket", labels=labels,
                  category_orders={"aging_bucket": order}, title="Amount at risk per run by age")  # fmt: skip
    right.plotly_chart(fig, width="stretch")
    shown = _entity(aging).assign(amount=aging["amount_at_risk"].astype("float64"))
    for slot, y in zip(st.columns(2), ("open_breaks", "amount"), strict=True):
        fig = px.bar(shown, x="aging_bucket", y=y, color="legal_entity_id", labels=labels,
                     category_orders={"aging_bucket": order},
                     title=f"{labels[y]} by age, latest run")  # fmt: skip
        slot.plotly_chart(fig, width="stretch")


def _monthly(
    scope: tuple[str, ...] | None, month: str, now: datetime, sla: dict[str, int]
) -> dict[str, pd.DataFrame]:
    """The monthly KPIs over the last twelve months, per legal entity where they have one; returns them.

    ``sla``: system -> freshness SLA in minutes (sources.yaml).
    """
    st.subheader("Month by month")
    series = {
        "sync_failure_rate": shared.cached_run_log(kpis.monthly_trend)("sync_failure_rate", through=month,
                                                                       months=_MONTHS),
        "freshness_sla_attainment": shared.cached(kpis.monthly_trend)(
            "freshness_sla_attainment", through=month, months=_MONTHS, sla_minutes=sla, now=now),
    }  # fmt: skip
    for name in _ENTITY_MONTHLY:
        options = {"as_of": now} if name == "deal_handoff_within_sla" else {}
        series[name] = shared.cached(kpis.monthly_trend)(
            name, through=month, months=_MONTHS, by_entity=True, legal_entities=scope, **options
        )
    unbilled = shared.cached(kpis.amount_at_risk_trend)(
        legal_entities=scope, rule_ids=(kpis.UNBILLED_RULE,), by_entity=True, by_aging=False
    )
    columns = st.columns(2)
    for i, (name, frame) in enumerate(series.items()):
        d = kpis.DEFINITIONS[name]
        shown = frame.assign(value=frame["value"].astype("float64"))
        by_entity = "legal_entity_id" in frame
        fig = px.line(_entity(shown) if by_entity else shown, x="month", y="value", markers=True,
                      color="legal_entity_id" if by_entity else None,
                      labels=_LABELS | {"month": "Month", "value": f"{d.title}{_SUFFIX[d.unit]}"},
                      title=d.title + (" (firm-wide)" if d.scope == "firm" else ""))  # fmt: skip
        fig.update_xaxes(type="category")  # every month shown, one without data too
        if shown["value"].isna().all():
            fig.add_annotation(text="No data in these months", showarrow=False, xref="paper", yref="paper",
                               x=0.5, y=0.5)  # fmt: skip
        columns[i % 2].plotly_chart(fig, width="stretch")
    wip = unbilled.assign(amount=unbilled["amount_at_risk"].astype("float64"))
    fig = px.line(_entity(wip), x="started_at", y="amount", color="legal_entity_id", markers=True,
                  labels=_LABELS | {"amount": "Unbilled WIP"}, title="Unbilled WIP per run")  # fmt: skip
    columns[len(series) % 2].plotly_chart(fig, width="stretch")
    st.caption(
        "Amounts at risk and unbilled WIP per run are each run's breaks added up when it published them; "
        "open exceptions per run are rebuilt from the break ledger (older counts can be low)."
    )
    return series


def _per_entity(scope: tuple[str, ...] | None, month: str, series: dict[str, pd.DataFrame]) -> None:
    """One row per legal entity, one column per entity-scoped KPI (monthly ones: the trends' month)."""
    st.subheader("Per legal entity")
    frames = {fn: shared.cached(getattr(kpis, fn))(legal_entities=scope, by_entity=True)
              for fn in ("open_breaks", "unbilled_wip")}  # fmt: skip
    frames |= {name: series[name][series[name]["month"] == month] for name in _ENTITY_MONTHLY}
    names = [n for n in _TILES if kpis.DEFINITIONS[n].scope == "legal_entity"]
    parts = [
        frames[d.function][["legal_entity_id", d.column]].rename(columns={d.column: d.name})
        for d in (kpis.DEFINITIONS[n] for n in names)
    ]
    table = reduce(lambda a, b: a.merge(b, on="legal_entity_id", how="outer"), parts)
    if table.empty:
        st.info("No data in your legal entities.")
        return
    config: dict[str, Any] = {"legal_entity_id": "Legal entity"}
    for n in names:
        d = kpis.DEFINITIONS[n]
        config[n] = st.column_config.NumberColumn(f"{d.title}{_SUFFIX[d.unit]}", help=d.formula, format="%.2f"
                                                  if d.unit in ("money", "percent") else None)  # fmt: skip
    st.dataframe(_entity(table), hide_index=True, column_config=config)


def render() -> None:
    """The page: tiles, trends, per legal entity."""
    user = shared.current_user()
    assert user is not None  # app.py signs in first
    scope = shared.scope(user)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # "All": the latest billing period that has begun (a mistyped future date makes later ones)
    this_month = f"{now:%Y-%m}"
    month = shared.period() or next((p for p in shared.billing_periods() if p <= this_month), this_month)
    st.title("Overview")
    st.caption(f"Monthly KPIs for {month} against the month before (billing period in the sidebar); "
               "exceptions against the previous reconciliation run.")  # fmt: skip
    calls: dict[str, dict[str, Any]] = {  # the entity-scoped KPI functions and their other arguments
        "open_breaks": {}, "unbilled_wip": {}, "mean_time_to_resolve": {"period": month},
        "time_to_invoice": {"period": month}, "invoice_accuracy": {"period": month},
        "deal_handoff_within_sla": {"period": month, "as_of": now},
    }  # fmt: skip
    frames = {fn: shared.cached(getattr(kpis, fn))(legal_entities=scope, **kw) for fn, kw in calls.items()}
    frames["sync_failure_rate"] = shared.cached_run_log(kpis.sync_failure_rate)(period=month)
    sla, objects = shared.freshness_sla()
    fresh = shared.cached(kpis.freshness_vs_sla)(sla_minutes=sla, now=now, objects=objects)
    frames["freshness_vs_sla"] = fresh
    within = f"{int(fresh['within_sla'].eq(True).sum())} of {len(fresh)} sources in SLA"
    for row in (_TILES[:5], _TILES[5:]):
        for slot, name in zip(st.columns(len(row)), row, strict=True):
            shown = within if name == "freshness_vs_sla" else None
            _tile(slot, name, frames[kpis.DEFINITIONS[name].function], shown=shown)
    _trends(scope)
    _per_entity(scope, month, _monthly(scope, month, now, sla))


shared.guarded(render)
