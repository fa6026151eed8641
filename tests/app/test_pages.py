"""The app headless (streamlit.testing.v1.AppTest) on a demo home: sign-in, every page, legal-entity scope.

Each role signs in through the form and opens every page, which must render without an exception
or an error message. A user limited to the UK sees no other legal entity anywhere: not in a table,
not in a chart, not in the sidebar's choices, and not in the exports and the evidence pack (built
outside the page, on click, so they are checked through the functions the page calls).
"""

from __future__ import annotations

import io
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from data import evidence, queries
from data.warehouse import connect
from reconcile.run import reconcile
from tests.app.apptest import PAGES, TIMEOUT_S, entities_shown, problems, serving_home, signed_in, submit
from tests.app.conftest import PASSWORD, REPO, ROLES

ENTITIES = {"US", "UK", "DE"}  # the demo firm's legal entities


@pytest.fixture
def home(app_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``app_home`` as the app's home, with Streamlit's caches empty (:func:`serving_home`)."""
    with serving_home(app_home, monkeypatch):
        yield app_home


def _entities_shown(at: AppTest) -> set[str]:
    return entities_shown(at, ENTITIES)


def test_sign_in_refuses_a_wrong_password_then_opens_the_app(home: Path) -> None:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Tieout"]  # the sign-in page only
    submit(at, "finance", "not the password")
    assert [e.value for e in at.error] == ["Unknown user or wrong password."]
    assert "signed_in_user" not in at.session_state
    submit(at, "nobody", PASSWORD)
    assert [e.value for e in at.error] == ["Unknown user or wrong password."]
    submit(at, "finance", PASSWORD)
    assert not problems(at)
    assert at.session_state["signed_in_user"] == "finance"
    assert "Exceptions" in [t.value for t in at.title]  # the default page
    assert any("Signed in as Fiona Finance (finance)" in c.value for c in at.sidebar.caption)
    next(b for b in at.sidebar.button if b.label == "Sign out").click()
    at.run()
    assert "signed_in_user" not in at.session_state
    assert at.text_input(key="sign_in_user") is not None


@pytest.mark.parametrize("user", list(ROLES))
def test_every_page_renders_for_every_role_within_its_legal_entities(home: Path, user: str) -> None:
    at = signed_in(user)
    allowed = ROLES[user]
    choices = set(at.sidebar.multiselect[0].options)
    assert choices == (set(allowed) if allowed else ENTITIES)
    seen: dict[str, set[str]] = {}
    for page in PAGES:
        at.switch_page(page).run()
        assert not problems(at), (user, page, problems(at))
        assert at.title, (user, page, "no title")
        seen[page] = _entities_shown(at)
    shown = set().union(*seen.values())
    if allowed:
        assert shown == set(allowed), seen  # never another entity, and the check saw rows
    else:
        assert shown >= {"US", "UK"}, seen


def test_the_sidebar_entity_filter_scopes_every_page(home: Path) -> None:
    at = signed_in("admin")
    at.sidebar.multiselect[0].select("DE").run()
    for page in PAGES:
        at.switch_page(page).run()
        assert not problems(at), (page, problems(at))
        assert _entities_shown(at) <= {"DE"}, page


@pytest.mark.parametrize(("user", "customer", "found"), [
    ("finance_uk", "Quartz Telecom", False),  # a DE customer
    ("finance_uk", "Alder Textiles", True),  # a UK customer
    ("admin", "Quartz Telecom", True),
])  # fmt: skip
def test_trace_finds_only_the_users_legal_entities(home: Path, user: str, customer: str, found: bool) -> None:
    at = signed_in(user)
    at.switch_page("pages/trace.py").run()
    at.text_input(key="trace_search").input(customer).run()
    assert not problems(at), problems(at)
    headers = [h.value for h in at.subheader]
    if found:
        assert "Customer across the systems" in headers, headers
        assert not at.warning
    else:
        assert "Customer across the systems" not in headers, headers
        assert any("Nothing in your legal entities matches" in w.value for w in at.warning)


def _queue_entities(data: bytes, fmt: str) -> set[str]:
    read = pd.read_csv if fmt == "csv" else pd.read_excel
    frame = read(io.BytesIO(data), dtype=str)
    assert len(frame) > 0
    return {str(v) for v in frame["legal_entity_id"]}


def test_exports_and_the_evidence_pack_hold_only_the_users_legal_entities(home: Path) -> None:
    con = connect(home)
    try:
        for fmt in evidence.EXPORT_FORMATS:
            uk = evidence.queue_file(con, queries.QueueFilter(legal_entities=("UK",)), fmt=fmt)
            assert _queue_entities(uk, fmt) == {"UK"}
            every = evidence.queue_file(con, queries.QueueFilter(), fmt=fmt)
            assert _queue_entities(every, fmt) >= {"US", "UK"}
        periods = queries.billing_periods(con)
        packs = {}
        for period in periods[:3]:
            pack = evidence.evidence_pack(con, home, period, ("UK",), None, None)
            with zipfile.ZipFile(io.BytesIO(pack)) as zf:
                breaks = pd.read_csv(io.BytesIO(zf.read("breaks.csv")), dtype=str)
            packs[period] = set(breaks["legal_entity_id"])
        assert any(packs.values()), packs  # some period has UK breaks
        assert all(seen <= {"UK"} for seen in packs.values()), packs
    finally:
        con.close()


def test_pages_keep_working_while_the_pipeline_publishes(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reconciliation runs publish (new break files, a new warehouse file renamed over the old one)
    while every page renders and the queue is queried: never an error, always one whole run."""
    copy = tmp_path / "home"
    shutil.copytree(home, copy)  # this test's publishes stay out of the other tests' home
    monkeypatch.setenv("TIEOUT_HOME", str(copy))

    def queue_total() -> int:
        con = connect(copy)
        try:
            return queries.exception_queue(con, queries.QueueFilter(), page_size=1)[1]
        finally:
            con.close()

    total = queue_total()
    at = signed_in("finance")
    runs: list[str] = []
    failures: list[BaseException] = []

    def publish() -> None:
        try:
            runs.extend(reconcile(copy).run_id for _ in range(3))
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    publisher = threading.Thread(target=publish)
    publisher.start()
    rounds = 0
    try:
        while publisher.is_alive() or rounds < 2:
            for page in PAGES:
                at.switch_page(page).run()
                assert not problems(at), (page, problems(at))
                assert queue_total() == total  # the same snapshots: each run has the same breaks
            rounds += 1
    finally:
        publisher.join()
    assert failures == [] and len(set(runs)) == 3, (failures, runs)
    con = connect(copy)
    try:
        latest = con.execute(
            "SELECT DISTINCT run_id FROM breaks WHERE category = 'reconciliation'"
        ).fetchall()
    finally:
        con.close()
    assert latest == [(runs[-1],)]
