"""Trace: one customer, project or invoice across the CRM, PSA and ERP, side by side, with its breaks.

Search by name, code, number or id (in any system), pick one of the matches, and read its record
in each system next to the others (linked by the reconciliation's match keys; see
:mod:`data.operations`), then the open breaks that touch it. Everything stays within the user's
legal entities.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from data import operations
from pages import _shared as shared

_LIMIT = 50
_KIND_LABELS = {"customer": "Customer", "project": "Project", "invoice": "Invoice"}
_BREAK_COLUMNS = {
    "via": st.column_config.TextColumn("Via", help="record: about one of its records; customer / "
                                       "project_code: about its customer name or project code"),
    "amount": st.column_config.NumberColumn("Amount", format="%.2f"),
    "amount_at_risk": st.column_config.NumberColumn("At risk", format="%.2f"),
    "first_seen": st.column_config.DatetimeColumn("First seen (UTC)", format="YYYY-MM-DD", timezone="UTC"),
}  # fmt: skip


def _pick(candidates: pd.DataFrame) -> tuple[str, str]:
    """The selectbox of matches; returns the chosen (kind, key)."""
    labels = {
        f"{row.kind}|{row.key}": f"{_KIND_LABELS[row.kind]} · {row.label} ({row.systems}"
        + (f"; {row.legal_entities})" if row.legal_entities else ")")
        for row in candidates.itertuples()
    }
    choice = st.selectbox("Match", list(labels), format_func=labels.__getitem__, key="trace_choice")
    kind, key = str(choice).split("|", 1)
    return kind, key


def _records(kind: str, key: str, scope: tuple[str, ...] | None) -> None:
    records = shared.cached(operations.trace_records)(kind, key, legal_entities=scope)
    if records.empty:
        st.info("Nothing of it is in your legal entities.")
        return
    sideways = operations.side_by_side(records)
    st.caption(
        f"{len(records)} record(s) in {records['system'].nunique()} system(s); "
        "fields whose values differ across the records are ticked."
    )
    st.dataframe(
        sideways,
        hide_index=True,
        height="content",
        key="trace_records",
        column_config={"differs": st.column_config.CheckboxColumn("Differs")},
    )


def _breaks(kind: str, key: str, scope: tuple[str, ...] | None) -> None:
    breaks = shared.cached(operations.trace_breaks)(kind, key, legal_entities=scope)
    st.subheader(f"Open breaks ({len(breaks)})")
    if breaks.empty:
        st.caption("No open break touches it.")
        return
    st.dataframe(breaks, hide_index=True, column_config=_BREAK_COLUMNS, key="trace_breaks")
    st.page_link("pages/exceptions.py", label="Work them in the exception queue", icon=":material/rule:")


def render() -> None:
    """The page."""
    user = shared.current_user()
    if user is None:  # app.py signs in first
        return
    scope = shared.scope(user)
    st.title("Trace")
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    text = left.text_input(
        "Search", key="trace_search", placeholder="Customer name, project code, invoice number or any id"
    )
    kinds = right.pills(
        "Kinds", list(_KIND_LABELS), selection_mode="multi", default=list(_KIND_LABELS),
        format_func=_KIND_LABELS.__getitem__, key="trace_kinds",
    )  # fmt: skip
    if not text.strip():
        st.info("Search for a customer, project or invoice to trace it across the systems.")
        return
    candidates = shared.cached(operations.trace_candidates)(
        text.strip(), legal_entities=scope, kinds=tuple(kinds or ()), limit=_LIMIT
    )
    if candidates.empty:
        st.warning(f"Nothing in your legal entities matches “{text.strip()}”.")
        return
    if len(candidates) >= _LIMIT:
        st.caption(f"Showing the first {_LIMIT} matches; narrow the search to see others.")
    kind, key = _pick(candidates)
    st.subheader(f"{_KIND_LABELS[kind]} across the systems")
    _records(kind, key, scope)
    _breaks(kind, key, scope)


shared.guarded(render)
