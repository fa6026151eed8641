"""Pipeline health: the latest runs (live), extraction runs, freshness against the SLAs, data-quality results.

Admins can start a pipeline run from here (``tieout run`` in a child process, so the page never
waits for it); the status panel refreshes itself every ten seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from data import kpis, operations
from data.lock import PipelineBusy
from pages import _shared as shared

_LAUNCH = "health_launch"
_TIME = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss", timezone="UTC")
_RUN_COLUMNS = {
    "started_at": st.column_config.DatetimeColumn(
        "Started (UTC)", format="YYYY-MM-DD HH:mm:ss", timezone="UTC"
    ),
    "finished_at": st.column_config.DatetimeColumn("Finished (UTC)", format="HH:mm:ss", timezone="UTC"),
    "duration_s": st.column_config.NumberColumn("Duration", format="%.1f s"),
    "http_errors": st.column_config.NumberColumn(
        "HTTP errors", help="responses with a status of 400 or more"
    ),
    "http_statuses": st.column_config.TextColumn("HTTP statuses"),
}


def _run_now(user: shared.User) -> None:
    """The admin's button: start a run unless one is in progress."""
    if not user.can("run_pipeline"):
        return
    if st.button("Run the pipeline now", key="health_run_now", icon=":material/play_arrow:", type="primary"):
        try:
            launch = operations.start_pipeline(shared.home())
        except PipelineBusy:
            st.warning("A run is in progress; the panel below follows it. Try again when it has finished.")
        else:
            st.session_state[_LAUNCH], st.session_state[f"{_LAUNCH}_seen"] = launch, False
            st.success(f"Pipeline run started (pid {launch.pid}); its progress shows below.")


@st.fragment(run_every="10s")
def _status_panel() -> None:
    """The live panel: who holds the lock, the run started from this session, the latest pipeline runs."""
    holder = operations.pipeline_holder(shared.home())
    if holder:
        st.info(f"A run is in progress ({holder}).", icon=":material/sync:")
    launch = st.session_state.get(_LAUNCH)
    if launch is not None:
        st.caption(launch.describe())
        if launch.returncode is not None and not st.session_state.get(f"{_LAUNCH}_seen"):
            st.session_state[f"{_LAUNCH}_seen"] = True
            st.rerun()  # the whole page: freshness and results changed
    runs = operations.pipeline_runs(shared._engine(), limit=5)
    if runs.empty:
        st.caption("No extraction has run yet.")
        return
    st.dataframe(runs, hide_index=True, column_config=_RUN_COLUMNS, key="health_latest")


def _freshness() -> None:
    sla, objects = shared.freshness_sla()
    # The next whole minute: cached per minute, and never before an extraction of this minute
    # (a negative age); an age is at most a minute high, on the safe side of the SLA.
    now = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    fresh = shared.cached(kpis.freshness_vs_sla)(sla_minutes=sla, objects=objects, now=now)
    late = fresh[~fresh["within_sla"].fillna(False).astype(bool)]
    st.caption(f"{len(fresh) - len(late)} of {len(fresh)} sources within their SLA at {now:%H:%M} UTC.")
    st.dataframe(
        fresh.drop(columns=["snapshot_id"]),
        hide_index=True,
        key="health_freshness",
        column_config={
            "extracted_at": st.column_config.DatetimeColumn("Extracted (UTC)", format="YYYY-MM-DD HH:mm"),
            "value": st.column_config.NumberColumn("Age (min)", format="%.0f"),
            "sla_minutes": st.column_config.NumberColumn("SLA (min)"),
            "within_sla": st.column_config.CheckboxColumn("Within SLA"),
        },
    )


def _extraction_runs() -> None:
    left, right = st.columns(2)
    systems = left.multiselect("System", operations.run_systems(shared._engine()), key="health_system")
    statuses = right.multiselect(
        "Status", ["running", "succeeded", "failed", "interrupted"], key="health_status"
    )
    runs = operations.extraction_runs(shared._engine(), systems=tuple(systems), statuses=tuple(statuses))
    failed = runs[runs["status"].isin(["failed", "interrupted"])]
    a, b, c = st.columns(3)
    a.metric("Runs shown", len(runs))
    b.metric("Failed", len(failed))
    c.metric("Retries", int(runs["retries"].sum()))
    st.dataframe(runs, hide_index=True, column_config=_RUN_COLUMNS, key="health_runs")


def _quality() -> None:
    summary = shared.cached(operations.check_summary)()
    failed = int(summary["failed"].sum())
    st.caption(f"{failed} failing check(s) of {int(summary['checks'].sum())} in the latest check run.")
    st.dataframe(summary, hide_index=True, key="health_checks", column_config={"checked_at": _TIME})
    st.page_link("pages/data_quality.py", label="Data-quality details", icon=":material/fact_check:")
    shared.data_docs_download("health_docs")


def render() -> None:
    """The page."""
    user = shared.current_user()
    if user is None:  # app.py signs in first
        return
    st.title("Pipeline health")
    _run_now(user)
    st.subheader("Latest runs")
    _status_panel()
    st.subheader("Freshness")
    _freshness()
    st.subheader("Extraction runs")
    _extraction_runs()
    st.subheader("Data quality")
    _quality()


shared.guarded(render)
