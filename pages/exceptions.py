"""Exceptions: the queue of breaks and data-quality failures, one break's detail, triage, exports.

Within the sidebar's legal entities and period: filters, server-side paging, bulk actions on the
selection, the CSV/XLSX export of the filtered queue, the month-end evidence pack.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import streamlit as st

from data import evidence, queries
from data.workflow import REASON_CODES, STATUSES, Workflow, WorkflowError
from pages import _shared as shared


def _none(value: str | None) -> str:
    return value or "(none)"


def _words(name: str) -> str:
    return name.replace("_", " ")


def _filter(user: shared.User, state: Any) -> queries.QueueFilter:
    """The filter widgets, fed by the facets within the user's scope."""
    scope, period = shared.scope(user), shared.period()
    facets = shared.cached(queries.queue_facets)(queries.QueueFilter(legal_entities=scope), state=state)
    facets["billing_periods"] = [period] if period else facets["billing_periods"]
    facets["assignees"] = ["", *facets["assignees"]]
    with st.expander("Filters", icon=":material/filter_list:"):
        cols = st.columns(4)
        chosen = {
            name: tuple(cols[i % 4].multiselect(label, facets[name], key=f"queue_{name}", format_func=_none))
            for i, (name, label) in enumerate(queries.FACET_LABELS.items())
        }
        low = cols[1].number_input("Min age (days)", min_value=0, value=None, key="queue_min_age")
        high = cols[2].number_input("Max age (days)", min_value=0, value=None, key="queue_max_age")
        search = cols[3].text_input("Search (record id, customer)", key="queue_search")
    return queries.queue_filter(scope, period, chosen, min_age_days=low, max_age_days=high, search=search)


def _act(done: str, action: Callable[[], int]) -> None:
    """Run a workflow action; show a refusal, or rerun so the queue shows the new state."""
    try:
        count = action()
    except WorkflowError as exc:
        st.error(str(exc))
        return
    st.session_state["queue_flash"] = f"{done}: {count} break(s)."
    st.rerun()


def _actions(user: shared.User, wf: Workflow, ids: list[str]) -> None:
    """Assign, move status with a reason, comment: on every selected break."""
    left, middle, right = st.columns(3)
    if user.can("assign"):
        with left.form("queue_assign_form"):
            users = ["", *(u.name for u in shared.users())]
            who = st.selectbox("Assign to (none: unassign)", users, key="queue_assignee", format_func=_none)
            if st.form_submit_button(f"Assign {len(ids)}"):
                _act("Assigned", lambda: wf.assign(user, ids, who or None))
    if user.can("set_status"):
        with middle.form("queue_status_form"):
            status = st.selectbox("Move to", (*STATUSES[1:], STATUSES[0]), key="queue_new_status")
            reason = st.selectbox("Reason (to resolve, accept)", [None, *REASON_CODES], key="queue_reason",
                                  format_func=_none)  # fmt: skip
            if st.form_submit_button(f"Set status of {len(ids)}"):
                _act("Status set", lambda: wf.set_status(user, ids, status, reason))
    if user.can("comment"):
        with right.form("queue_comment_form", clear_on_submit=True):
            text = st.text_area("Comment", key="queue_comment", height=90)
            if st.form_submit_button(f"Comment on {len(ids)}"):
                _act("Commented", lambda: len(wf.comment(user, ids, text)))


def _detail(user: shared.User, wf: Workflow, break_id: str) -> None:
    """One break: source and target side by side, ledger dates, fuzzy suggestions, history."""
    found = shared.cached(queries.break_detail)(break_id, legal_entities=shared.scope(user))
    if found.empty:
        st.info("This break is no longer in the latest run, or not in your legal entities.")
        return
    row = found.iloc[0]
    st.subheader(" · ".join(str(row[c]) for c in ("rule_id", "break_type", "field") if row[c]))
    for col, side in zip(st.columns(2), ("source", "target"), strict=True):
        with col.container(border=True):
            st.caption(f"{side.title()}: {row[f'{side}_system'] or '-'}, record {row[f'{side}_id'] or '-'}")
            st.markdown(f"**{_none(row[f'{side}_value'])}**")
    st.dataframe(found[list(queries.DETAIL_KEY_COLUMNS)], hide_index=True, key="queue_facts")
    suggestions = queries.break_suggestions(row["suggestions"])
    if not suggestions.empty:
        st.markdown("**Fuzzy match candidates**")
        st.dataframe(suggestions, hide_index=True, key="queue_suggestions")
    st.markdown("**History and comments**")
    st.dataframe(wf.history(break_id, user=user), hide_index=True, key="queue_history")


def _downloads(user: shared.User, wf: Workflow, export: Callable[..., bytes], state: Any, total: int) -> None:
    """CSV and XLSX of the whole filtered queue (built on click); the evidence pack of the period."""
    cols = st.columns(3)
    if user.can("export"):
        for col, (fmt, mime) in zip(cols, evidence.EXPORT_FORMATS.items(), strict=False):
            too_big = fmt == "xlsx" and total > evidence.XLSX_MAX_ROWS
            col.download_button(
                f"Export {fmt.upper()}", partial(export, fmt=fmt),
                file_name=f"exceptions.{fmt}", mime=mime, key=f"queue_export_{fmt}", on_click="ignore",
                disabled=too_big, help="Too many rows for XLSX: export CSV" if too_big else None,
            )  # fmt: skip
    period, scope = shared.period(), shared.scope(user)
    if evidence.can_export_evidence(user) and period is None:
        cols[2].caption("Choose a billing period in the sidebar for its month-end evidence pack.")
    elif evidence.can_export_evidence(user):
        cols[2].download_button(
            f"Evidence pack {period}", key="queue_evidence", file_name=f"evidence-{period}.zip",
            mime="application/zip", on_click="ignore", data=lambda: shared.cached(evidence.evidence_pack)(
                shared.home(), period, scope, state, wf.audit(user=user)),
        )  # fmt: skip


def render() -> None:
    """The page."""
    user = shared.current_user()
    assert user is not None  # app.py signs in first
    st.title("Exceptions")
    if flash := st.session_state.pop("queue_flash", None):
        st.success(flash)
    wf = shared.workflow()
    state = wf.state(user=user)
    flt = _filter(user, state)
    left, middle, right = st.columns(3)
    sort = left.selectbox("Sort by", list(queries.QUEUE_SORTS), key="queue_sort", format_func=_words)
    size = int(middle.selectbox("Rows per page", (25, 50, 100, 200), index=1, key="queue_page_size"))
    page_no = int(st.session_state.get("queue_page", 1))
    frame, total = shared.cached(queries.exception_queue)(
        flt, state=state, sort=sort, page=page_no - 1, page_size=size
    )
    pages = max(1, -(-total // size))
    page_no = st.session_state["queue_page"] = min(page_no, pages)  # past the end: the last page
    event = st.dataframe(
        frame, hide_index=True, column_order=queries.QUEUE_KEY_COLUMNS, on_select="rerun",
        selection_mode="multi-row",
        key=f"queue_table_{hash((flt, sort, page_no, size)) & 0xFFFFFFFF:x}",  # a new view starts unselected
    )  # fmt: skip
    right.number_input(f"Page of {pages:,} ({total:,} breaks)", 1, pages, key="queue_page")
    ids = [str(b) for b in frame.iloc[[r for r in event.selection.rows if r < len(frame)]]["break_id"]]
    _downloads(
        user, wf, partial(shared.cached(evidence.queue_file), flt, state=state, sort=sort), state, total
    )
    if not ids:
        st.caption("Select breaks in the table to see one in detail or act on several.")
        return
    _actions(user, wf, ids)
    if len(ids) == 1:
        _detail(user, wf, ids[0])


shared.guarded(render)
