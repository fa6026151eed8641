"""Data quality: the latest check results (GX expectations, snapshot checks), failing first; their breaks.

Check results belong to systems and are shown to everyone; the failing record ids in them only to
users who see every legal entity. The data-quality breaks are scoped by legal entity like the queue.
"""

from __future__ import annotations

import streamlit as st

from data import operations
from pages import _shared as shared

_CHECK_COLUMNS = {
    "success": st.column_config.CheckboxColumn("Passed"),
    "column_name": st.column_config.TextColumn("Column"),
    "element_count": st.column_config.NumberColumn("Rows checked"),
    "unexpected_count": st.column_config.NumberColumn("Failing rows"),
    "unexpected_percent": st.column_config.NumberColumn("Failing %", format="%.2f"),
    "sample_ids": st.column_config.ListColumn("Sample failing ids"),
    "checked_at": st.column_config.DatetimeColumn("Checked (UTC)", format="YYYY-MM-DD HH:mm", timezone="UTC"),
}
_BREAK_COLUMNS = {
    "first_seen": st.column_config.DatetimeColumn(
        "First seen (UTC)", format="YYYY-MM-DD HH:mm", timezone="UTC"
    ),
    "last_seen": st.column_config.DatetimeColumn(
        "Last seen (UTC)", format="YYYY-MM-DD HH:mm", timezone="UTC"
    ),
}


def _filters() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], bool]:
    facets = shared.cached(operations.check_facets)()
    a, b, c, d = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
    systems = a.multiselect("System", facets["systems"], key="dq_system", placeholder="All")
    objects = b.multiselect("Object", facets["objects"], key="dq_object", placeholder="All")
    types = c.multiselect("Check type", facets["check_types"], key="dq_check_type", placeholder="All")
    failing = d.toggle("Failing only", key="dq_failing")
    return tuple(systems), tuple(objects), tuple(types), failing


def _data_docs() -> None:
    index = operations.data_docs_index(shared.home())
    if shared.data_docs_download("dq_docs"):
        st.caption(f"GX Data Docs of the latest check run: `{index}` on the Tieout server.")
    else:
        st.caption("No GX Data Docs yet: they are built by each check run (`tieout check` or `tieout run`).")


def render() -> None:
    """The page."""
    user = shared.current_user()
    if user is None:  # app.py signs in first
        return
    st.title("Data quality")
    systems, objects, types, failing = _filters()
    results = shared.cached(operations.check_results)(
        systems=systems,
        objects=objects,
        check_types=types,
        failing_only=failing,
        with_samples=user.entity_filter() is None,
    )
    passed = int(results["success"].sum())
    a, b, c = st.columns(3)
    a.metric("Checks", len(results))
    b.metric("Failing", len(results) - passed)
    c.metric("Could not run", int(results["error"].notna().sum()))
    st.dataframe(results, hide_index=True, column_config=_CHECK_COLUMNS, key="dq_results")
    if user.entity_filter() is not None:
        st.caption("Failing record ids are shown only to users who see every legal entity.")
    _data_docs()

    st.subheader("Data-quality breaks")
    breaks = shared.cached(operations.quality_breaks)(
        legal_entities=shared.scope(user), systems=systems, objects=objects
    )
    if breaks.empty:
        st.caption("No open data-quality breaks in your scope.")
    else:
        st.dataframe(breaks, hide_index=True, column_config=_BREAK_COLUMNS, key="dq_breaks")
    if user.entity_filter() is not None:
        st.caption(
            "Breaks about a whole snapshot (stale, drift, volume) have no legal entity and are not shown."
        )
    st.page_link("pages/exceptions.py", label="Work them in the exception queue", icon=":material/rule:")


shared.guarded(render)
