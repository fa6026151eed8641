"""Tieout's Streamlit app: sign-in, the global filters, and the navigation between the pages.

Run it with ``tieout serve`` (which also runs the scheduler), or ``streamlit run app.py`` with
``TIEOUT_HOME`` set. The global filters (legal entity, billing period) live here, in the sidebar,
so they keep their values across pages.
"""

from __future__ import annotations

import streamlit as st

from pages import _shared as shared

st.set_page_config(page_title="Tieout", page_icon=":material/balance:", layout="wide")


def _sidebar(user: shared.User) -> None:
    allowed = user.entity_filter()
    entities = allowed if allowed is not None else shared.legal_entities()
    st.sidebar.multiselect("Legal entity", entities, key=shared.ENTITY_KEY, placeholder="All in your scope")
    st.sidebar.selectbox("Billing period", ["All", *shared.billing_periods()], key=shared.PERIOD_KEY)
    st.sidebar.caption(f"Signed in as {user.display_name} ({user.role})")
    if st.sidebar.button("Sign out", key="sign_out"):
        shared.sign_out()
        st.rerun()


def main() -> None:
    """Sign in, then render the sidebar and the page chosen in the navigation."""
    user = shared.current_user()
    if user is None:
        shared.guarded(shared.sign_in)
        return
    _sidebar(user)
    pages = {
        "Exceptions": [
            st.Page("pages/exceptions.py", title="Exceptions", icon=":material/rule:", default=True),
            st.Page("pages/unbilled.py", title="Unbilled time", icon=":material/schedule:"),
        ],
        "KPIs": [st.Page("pages/overview.py", title="Overview", icon=":material/monitoring:")],
        "Operations": [
            st.Page("pages/pipeline_health.py", title="Pipeline health", icon=":material/sync:"),
            st.Page("pages/data_quality.py", title="Data quality", icon=":material/fact_check:"),
            st.Page("pages/trace.py", title="Trace", icon=":material/travel_explore:"),
        ],
    }
    st.navigation(pages).run()


main()
