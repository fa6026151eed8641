"""Unbilled time (PMO): approved billable time not invoiced, by project, manager, customer or entity.

Groups the open breaks of rule ``unbilled_time`` by a chosen dimension and aging bucket (hours and
value in the reporting currency), and drills down from one group to its time entries. Everything
stays within the user's legal entities and the sidebar's billing period; the query layer is
:mod:`data.unbilled`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from data import unbilled
from pages import _shared as shared

_NONE = "(none)"
_MEASURES = {"amount_at_risk": "Value", "hours": "Hours", "time_entries": "Time entries"}


def _label(value: object) -> str:
    return _NONE if value is None or value is pd.NA else str(value)


def _chart(summary: pd.DataFrame, measure: str, group_label: str, currency: str | None) -> None:
    """A bar per group, stacked by aging bucket (youngest at the bottom)."""
    shown = summary.assign(
        group=[_label(g) for g in summary["group"]], value=summary[measure].astype("float64")
    )
    unit = f" ({currency})" if measure == "amount_at_risk" and currency else ""
    fig = px.bar(
        shown, x="group", y="value", color="aging_bucket",
        category_orders={"aging_bucket": list(dict.fromkeys(summary["aging_bucket"]))},
        labels={"group": group_label, "value": _MEASURES[measure] + unit, "aging_bucket": "Age (days)"},
        color_discrete_sequence=px.colors.sequential.Oranges[2::2],
    )  # fmt: skip
    fig.update_layout(barmode="stack", xaxis={"categoryorder": "total descending"}, margin={"t": 30})
    st.plotly_chart(fig, width="stretch")


def _money(label: str) -> Any:
    return st.column_config.NumberColumn(label, format="%.2f")


def _drill_down(table: pd.DataFrame, by: str, group_label: str, scope: tuple[str, ...] | None) -> None:
    """Pick a group (and a bucket), list its time entries, and offer them as CSV to who may export."""
    st.subheader("Time entries")
    left, right = st.columns([3, 1])
    group = left.selectbox(group_label, list(table["group"]), format_func=_label, key="unbilled_group")
    buckets = [c for c in table.columns if c not in ("group", "time_entries", "hours", "amount_at_risk")]
    bucket = right.selectbox("Aging bucket", ["All", *buckets], key="unbilled_bucket")
    entries = shared.cached(unbilled.unbilled_entries)(
        by=by, group=group, legal_entities=scope, period=shared.period(),
        aging_bucket=None if bucket == "All" else bucket,
    )  # fmt: skip
    st.dataframe(
        entries, hide_index=True,
        column_order=("spent_date", "person_name", "hours", "billable_amount", "currency", "amount_at_risk",
                      "age_days", "aging_bucket", "project_code", "customer", "legal_entity_id",
                      "invoice_cycle", "time_entry_id"),
        column_config={
            "spent_date": st.column_config.DateColumn("Date"), "person_name": "Person",
            "hours": st.column_config.NumberColumn("Hours", format="%.2f"),
            "billable_amount": _money("Billable amount"), "currency": "Currency",
            "amount_at_risk": _money("Value (reporting)"), "age_days": "Age (days)", "aging_bucket": "Bucket",
            "project_code": "Project", "customer": "Customer", "legal_entity_id": "Legal entity",
            "invoice_cycle": "Billing period", "time_entry_id": "PSA time entry",
        },
    )  # fmt: skip
    user = shared.current_user()
    if user is not None and user.can("export") and not entries.empty:
        st.download_button(
            "Download CSV", entries.to_csv(index=False), file_name=f"unbilled_{_label(group)}.csv",
            mime="text/csv", key="unbilled_export",
        )  # fmt: skip


def render() -> None:
    """The page: dimension, chart, summary table, drill-down."""
    user = shared.current_user()
    assert user is not None  # app.py signs in first
    scope, period = shared.scope(user), shared.period()
    st.title("Unbilled time")
    st.caption(
        "Approved billable time on time-and-materials projects, from an ended billing period, on no "
        f"invoice (rule unbilled_time). Billing period: {period or 'all'}."
    )
    left, right = st.columns(2)
    by = left.radio(
        "Group by", list(unbilled.DIMENSIONS), format_func=lambda d: unbilled.DIMENSIONS[d][1],
        horizontal=True, key="unbilled_by",
    )  # fmt: skip
    measure = right.radio(
        "Measure", list(_MEASURES), format_func=_MEASURES.__getitem__, horizontal=True, key="unbilled_measure"
    )
    summary = shared.cached(unbilled.unbilled_summary)(by=by, legal_entities=scope, period=period)
    if summary.empty:
        st.info("No unbilled time in your scope for this period.")
        return
    group_label = unbilled.DIMENSIONS[by][1]
    currency = next((c for c in summary["reporting_currency"] if c is not None), None)
    _chart(summary, measure, group_label, currency)
    table = unbilled.summary_by_group(summary)
    buckets = {c: _money(f"{c} days") for c in table.columns[4:]}
    st.dataframe(
        table.assign(group=[_label(g) for g in table["group"]]), hide_index=True,
        column_config={
            "group": group_label, "time_entries": "Time entries",
            "hours": st.column_config.NumberColumn("Hours", format="%.2f"),
            "amount_at_risk": _money(f"Value ({currency})" if currency else "Value"), **buckets,
        },
    )  # fmt: skip
    _drill_down(table, by, group_label, scope)


shared.guarded(render)
