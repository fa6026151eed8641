"""Driving the app headless (streamlit.testing.v1.AppTest) on a home: sign in, open pages, read what shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.app.conftest import PASSWORD, REPO

PAGES = (
    "pages/exceptions.py",
    "pages/unbilled.py",
    "pages/overview.py",
    "pages/pipeline_health.py",
    "pages/data_quality.py",
    "pages/trace.py",
)
TIMEOUT_S = 60


class _NoLegacyPagesDir(type(Path())):  # type: ignore[misc]
    """A path for which a folder named ``pages`` does not exist (see :func:`serving_home`)."""

    def exists(self, *args: Any, **kwargs: Any) -> bool:
        return self.name != "pages" and super().exists(*args, **kwargs)


@contextmanager
def serving_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``home`` as the app's home (``TIEOUT_HOME``) while the block runs, with Streamlit's caches empty.

    A ``pages/`` folder beside app.py puts Streamlit in its legacy multipage mode until a script
    calls ``st.navigation``; a live server leaves it at its first run, but AppTest re-enters it on
    every run and then runs the chosen page without app.py (no sidebar, no sign-in gate). Hiding
    the folder from that one check gives AppTest the live server's behaviour.
    """
    from streamlit.runtime import pages_manager

    monkeypatch.setattr(pages_manager, "Path", _NoLegacyPagesDir)
    monkeypatch.setenv("TIEOUT_HOME", str(home))
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        yield home
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()


def submit(at: AppTest, name: str, password: str) -> AppTest:
    """Fill in and send the sign-in form; return the app after the run."""
    at.text_input(key="sign_in_user").input(name)
    at.text_input(key="sign_in_password").input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def signed_in(name: str) -> AppTest:
    """The app after ``name`` signed in with :data:`tests.app.conftest.PASSWORD`."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT_S).run()
    submit(at, name, PASSWORD)
    assert not at.exception, at.exception
    assert at.session_state["signed_in_user"] == name
    return at


def problems(at: AppTest) -> list[str]:
    """The exceptions and error messages the page shows."""
    return [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def entities_shown(at: AppTest, entities: set[str]) -> set[str]:
    """The legal entities in the page's tables (columns ``legal_entity*``) and, of ``entities``, in
    its charts' traces."""
    seen: set[str] = set()
    for df in at.dataframe:
        frame = df.value
        for column in (c for c in frame.columns if str(c).startswith("legal_entity")):
            seen |= {str(v) for v in frame[column].dropna()}
    for chart in at.get("plotly_chart"):
        traces = json.loads(chart.proto.spec).get("data", [])
        seen |= {s for s in _strings(traces) if s in entities}
    return seen
