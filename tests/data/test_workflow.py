"""The exception workflow on a real SQLite app-state file: transitions, audit, comments, bulk, permissions, scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import data.workflow as workflow_mod
from data.appstate import state_engine
from data.users import ROLES, User, Users, hash_password
from data.workflow import (
    AUDIT_LOG,
    REASON_CODES,
    ConcurrentChange,
    InvalidRequest,
    InvalidTransition,
    NotPermitted,
    UnknownBreak,
    Workflow,
    WorkflowError,
)

HASH = hash_password("pw", rounds=4)
T0 = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)
ENTITIES: dict[str, str | None] = {"us-1": "US", "us-2": "US", "uk-1": "UK", "uk-2": "UK", "none-1": None}


def _make(name: str, role: str, entities: list[str] | None = None) -> User:
    return User(name=name, display_name=name.title(), role=role, password_hash=HASH, legal_entities=entities)


FIN = _make("fiona", "finance")
UK = _make("uma", "finance", ["UK"])
PMO = _make("piet", "pmo")
EXEC = _make("eve", "executive")
ADMIN = _make("ada", "admin")
USERS = Users([FIN, UK, PMO, EXEC, ADMIN])


class Clock:
    """One second later on every call."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TIEOUT_STATE_URL", raising=False)
    return tmp_path


@pytest.fixture
def engine(home: Path) -> Iterator[sa.Engine]:
    engine = state_engine(home)
    yield engine
    engine.dispose()


@pytest.fixture
def make(engine: sa.Engine) -> Callable[..., Workflow]:
    def build(**kwargs: Any) -> Workflow:
        kwargs.setdefault("legal_entity_of", ENTITIES)
        kwargs.setdefault("clock", Clock())
        return Workflow(engine, **kwargs)

    return build


@pytest.fixture
def wf(make: Callable[..., Workflow]) -> Workflow:
    return make(users=USERS)


def _audit(wf: Workflow) -> list[tuple[Any, ...]]:
    frame = wf.audit()[["user", "break_id", "action", "field", "old_value", "new_value"]]
    return [tuple(None if pd.isna(v) else v for v in r) for r in frame.itertuples(index=False, name=None)]


def _status(wf: Workflow, break_id: str) -> str:
    frame = wf.state([break_id])
    return "open" if frame.empty else str(frame.iloc[0]["status"])


# ---- storage -----------------------------------------------------------------------------------


def test_tables_live_in_the_state_file(wf: Workflow, home: Path) -> None:
    assert (home / "state.db").exists()
    names = set(sa.inspect(wf.engine).get_table_names())
    assert {"break_workflow", "break_comments", "audit_log", "extraction_runs"} <= names


def test_untouched_breaks_have_no_rows(wf: Workflow) -> None:
    frame = wf.state()
    assert frame.empty
    assert list(frame.columns) == [
        "break_id",
        "status",
        "assignee",
        "reason_code",
        "updated_at",
        "updated_by",
    ]
    assert wf.history("us-1").empty and wf.comments("us-1").empty


def test_state_survives_a_new_engine(wf: Workflow, home: Path) -> None:
    wf.set_status(FIN, ["us-1"], "in_review")
    engine = state_engine(home)
    try:
        again = Workflow(engine, legal_entity_of=ENTITIES)
        frame = again.state()
        assert frame.fillna("-").to_dict("records")[0] | {"updated_at": None} == {
            "break_id": "us-1", "status": "in_review", "assignee": "-", "reason_code": "-",
            "updated_at": None, "updated_by": "fiona",
        }  # fmt: skip
        assert (
            str(frame["updated_at"].dtype).startswith("datetime64")
            and str(frame["updated_at"].dt.tz) == "UTC"
        )
        assert frame.iloc[0]["updated_at"] == pd.Timestamp(T0 + timedelta(seconds=1))
    finally:
        engine.dispose()


# ---- transitions -------------------------------------------------------------------------------


def test_full_lifecycle_with_audit(wf: Workflow) -> None:
    assert wf.set_status(FIN, ["us-1"], "in_review") == 1
    assert wf.set_status(FIN, ["us-1"], "resolved", "timing_difference") == 1
    row = wf.state(["us-1"]).iloc[0]
    assert (row["status"], row["reason_code"], row["updated_by"]) == (
        "resolved",
        "timing_difference",
        "fiona",
    )
    assert wf.set_status(ADMIN, ["us-1"], "open") == 1  # reopen clears the reason
    assert wf.set_status(ADMIN, "us-1", "in_review") == 1  # a lone id works too
    assert wf.set_status(ADMIN, ["us-1"], "accepted", "known_exception") == 1
    assert _audit(wf) == [
        ("fiona", "us-1", "set_status", "status", "open", "in_review"),
        ("fiona", "us-1", "set_status", "status", "in_review", "resolved"),
        ("fiona", "us-1", "set_status", "reason_code", None, "timing_difference"),
        ("ada", "us-1", "set_status", "status", "resolved", "open"),
        ("ada", "us-1", "set_status", "reason_code", "timing_difference", None),
        ("ada", "us-1", "set_status", "status", "open", "in_review"),
        ("ada", "us-1", "set_status", "status", "in_review", "accepted"),
        ("ada", "us-1", "set_status", "reason_code", None, "known_exception"),
    ]
    audit = wf.audit()
    assert audit["at"].is_monotonic_increasing and str(audit["at"].dt.tz) == "UTC"


@pytest.mark.parametrize(
    ("path", "to"),
    [
        ([], "resolved"),
        ([], "accepted"),
        ([], "open"),
        (["in_review"], "in_review"),
        (["in_review", "resolved"], "accepted"),
        (["in_review", "resolved"], "in_review"),
        (["in_review", "accepted"], "resolved"),
    ],
)
def test_invalid_transitions(wf: Workflow, path: list[str], to: str) -> None:
    for status in path:
        wf.set_status(FIN, ["us-1"], status, "fx_rounding" if status in ("resolved", "accepted") else None)  # type: ignore[arg-type]
    before = len(wf.audit())
    current = path[-1] if path else "open"
    with pytest.raises(InvalidTransition) as info:
        wf.set_status(FIN, ["us-1"], to, "fx_rounding" if to in ("resolved", "accepted") else None)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert f"us-1 ({current} -> {to})" in str(info.value)
    assert info.value.refused == [("us-1", current)] and info.value.to_status == to
    assert len(wf.audit()) == before and _status(wf, "us-1") == current


def test_reason_codes(wf: Workflow) -> None:
    wf.set_status(FIN, ["us-1"], "in_review")
    with pytest.raises(InvalidRequest, match="needs a reason code: timing_difference"):
        wf.set_status(FIN, ["us-1"], "resolved")
    with pytest.raises(InvalidRequest, match="unknown reason code 'because'"):
        wf.set_status(FIN, ["us-1"], "accepted", "because")
    with pytest.raises(InvalidRequest, match="not in_review"):
        wf.set_status(FIN, ["us-2"], "in_review", "other")
    with pytest.raises(InvalidRequest, match="unknown status 'done'"):
        wf.set_status(FIN, ["us-1"], "done")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="no break ids"):
        wf.set_status(FIN, [], "in_review")
    assert set(REASON_CODES) == {"timing_difference", "fx_rounding", "data_entry_error", "missing_sync",
                                 "duplicate_posting", "known_exception", "other"}  # fmt: skip
    for code in REASON_CODES:
        wf.set_status(FIN, ["us-1"], "resolved", code)
        wf.set_status(FIN, ["us-1"], "open")
        wf.set_status(FIN, ["us-1"], "in_review")


# ---- assign and comment ------------------------------------------------------------------------


def test_assign_and_unassign(wf: Workflow) -> None:
    assert wf.assign(FIN, ["us-1", "uk-1"], "piet") == 2
    assert wf.assign(FIN, ["us-1", "us-2"], "piet") == 1  # us-1 already has piet
    assert wf.assign(ADMIN, ["us-1"], None) == 1
    state = wf.state().set_index("break_id")
    assert state["assignee"].fillna("-").to_dict() == {"uk-1": "piet", "us-1": "-", "us-2": "piet"}
    assert set(state["status"]) == {"open"}
    assert state.loc["us-1", "updated_by"] == "ada"
    assert _audit(wf) == [
        ("fiona", "us-1", "assign", "assignee", None, "piet"),
        ("fiona", "uk-1", "assign", "assignee", None, "piet"),
        ("fiona", "us-2", "assign", "assignee", None, "piet"),
        ("ada", "us-1", "assign", "assignee", "piet", None),
    ]


def test_assignee_must_be_a_user_who_sees_the_break(wf: Workflow) -> None:
    with pytest.raises(InvalidRequest, match="cannot assign to 'zed': no such user"):
        wf.assign(FIN, ["us-1"], "zed")
    with pytest.raises(NotPermitted, match="cannot assign to 'uma': limited to legal entities UK; not us-1"):
        wf.assign(FIN, ["uk-1", "us-1"], "uma")
    assert wf.state().empty
    assert wf.assign(FIN, ["uk-1"], "uma") == 1


def test_comments_and_history(wf: Workflow) -> None:
    wf.set_status(FIN, ["us-1"], "in_review")
    (first,) = wf.comment(PMO, ["us-1"], "  Posted in December in the ERP.  ")
    wf.assign(FIN, ["us-1"], "fiona")
    (second,) = wf.comment(FIN, ["us-1"], "Confirmed with AP.")
    wf.set_status(FIN, ["us-1"], "resolved", "timing_difference")
    assert second > first

    comments = wf.comments("us-1")
    assert list(comments.columns) == ["id", "break_id", "author", "at", "text"]
    assert comments[["author", "text"]].values.tolist() == [
        ["piet", "Posted in December in the ERP."], ["fiona", "Confirmed with AP."],
    ]  # fmt: skip

    history = wf.history("us-1")
    assert list(history.columns) == ["at", "user", "action", "field", "old_value", "new_value", "text"]
    assert history["at"].is_monotonic_increasing
    got = [tuple(None if pd.isna(v) else v for v in r) for r in
           history[["user", "action", "field", "old_value", "new_value", "text"]].itertuples(index=False)]  # fmt: skip
    assert got == [
        ("fiona", "set_status", "status", "open", "in_review", None),
        ("piet", "comment", None, None, None, "Posted in December in the ERP."),
        ("fiona", "assign", "assignee", None, "fiona", None),
        ("fiona", "comment", None, None, None, "Confirmed with AP."),
        ("fiona", "set_status", "status", "in_review", "resolved", None),
        ("fiona", "set_status", "reason_code", None, "timing_difference", None),
    ]
    # The audit log holds the comments too, and a comment touches the break.
    assert ("piet", "us-1", "comment", "comment", None, "Posted in December in the ERP.") in _audit(wf)
    wf.comment(PMO, ["us-2"], "Looking into it.")
    row = wf.state(["us-2"]).iloc[0]
    assert (row["status"], row["updated_by"]) == ("open", "piet")


def test_empty_or_huge_comment_is_refused(wf: Workflow) -> None:
    with pytest.raises(InvalidRequest, match="us-1: the comment is empty"):
        wf.comment(FIN, ["us-1"], "   ")
    with pytest.raises(InvalidRequest, match="longer than 10000"):
        wf.comment(FIN, ["us-1"], "x" * 10_001)
    assert wf.audit().empty and wf.state().empty


# ---- bulk --------------------------------------------------------------------------------------


def test_bulk_is_all_or_nothing_on_an_invalid_transition(wf: Workflow) -> None:
    wf.set_status(FIN, ["us-2"], "in_review")
    before = _audit(wf)
    with pytest.raises(
        InvalidTransition, match=r"cannot move 1 break\(s\) to in_review: us-2 \(in_review -> in_review\)"
    ):
        wf.set_status(FIN, ["us-1", "us-2", "uk-1"], "in_review")
    assert _audit(wf) == before
    assert wf.state()["break_id"].tolist() == ["us-2"]


def test_bulk_is_all_or_nothing_on_an_unknown_break(wf: Workflow) -> None:
    with pytest.raises(UnknownBreak, match="not in the latest breaks: nope"):
        wf.assign(FIN, ["us-1", "nope", "uk-1"], "piet")
    with pytest.raises(UnknownBreak):
        wf.comment(FIN, ["nope"], "hello")
    assert wf.state().empty and wf.audit().empty


def test_bulk_is_all_or_nothing_on_a_concurrent_change(wf: Workflow, monkeypatch: pytest.MonkeyPatch) -> None:
    wf.set_status(FIN, ["us-2"], "in_review")
    stale = workflow_mod._Row("open", None, None)  # what another session read before us-2 moved
    real = workflow_mod._current

    def stale_current(con: sa.Connection, ids: list[str]) -> dict[str, Any]:
        return {**real(con, ids), "us-2": stale}

    monkeypatch.setattr(workflow_mod, "_current", stale_current)
    before = _audit(wf)
    with pytest.raises(ConcurrentChange, match="us-2 was changed by someone else"):
        wf.set_status(FIN, ["us-1", "us-2"], "in_review")
    assert _audit(wf) == before and wf.state()["break_id"].tolist() == ["us-2"]


def test_concurrent_insert_is_refused_too(wf: Workflow, monkeypatch: pytest.MonkeyPatch) -> None:
    wf.assign(FIN, ["us-2"], "piet")
    real = workflow_mod._current

    def blind_current(con: sa.Connection, ids: list[str]) -> dict[str, Any]:
        return {k: v for k, v in real(con, ids).items() if k != "us-2"}  # as if not yet touched

    monkeypatch.setattr(workflow_mod, "_current", blind_current)
    with pytest.raises(ConcurrentChange):
        wf.set_status(FIN, ["us-1", "us-2"], "in_review")
    assert len(wf.audit()) == 1 and wf.state()["status"].tolist() == ["open"]


def test_audit_log_is_append_only(wf: Workflow) -> None:
    wf.set_status(FIN, ["us-1"], "in_review")
    wf.assign(FIN, ["us-1"], "fiona")
    with wf.engine.connect() as con:
        first = [tuple(r) for r in con.execute(sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.id))]
    wf.set_status(FIN, ["us-1"], "open")
    wf.assign(FIN, ["us-1"], None)
    with wf.engine.connect() as con:
        later = [tuple(r) for r in con.execute(sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.id))]
    assert later[: len(first)] == first and len(later) == len(first) + 2
    public = {n for n in dir(Workflow) if not n.startswith("_")}
    assert public == {"assign", "set_status", "comment", "state", "history", "comments", "audit"}


def test_bulk_over_many_breaks_in_one_call(make: Callable[..., Workflow]) -> None:
    ids = [f"b-{i:04d}" for i in range(1_234)]
    wf = make(legal_entity_of=dict.fromkeys(ids, "US"))
    assert wf.set_status(FIN, ids, "in_review") == len(ids)
    assert wf.set_status(FIN, [*ids, ids[0]], "resolved", "missing_sync") == len(ids)  # duplicates count once
    assert len(wf.state(ids)) == len(ids) and set(wf.state()["status"]) == {"resolved"}
    assert len(wf.audit()) == 3 * len(ids)


# ---- permissions -------------------------------------------------------------------------------

ALLOWED = {
    "finance": {"assign", "comment", "set_status"},
    "pmo": {"comment"},
    "executive": set(),
    "admin": {"assign", "comment", "set_status"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ["assign", "comment", "set_status"])
def test_permissions_per_role(wf: Workflow, role: str, action: str) -> None:
    user = _make("someone", role)
    calls: dict[str, Callable[[], object]] = {
        "assign": lambda: wf.assign(user, ["us-1"], "fiona"),
        "comment": lambda: wf.comment(user, ["us-1"], "note"),
        "set_status": lambda: wf.set_status(user, ["us-1"], "in_review"),
    }
    if action in ALLOWED[role]:
        calls[action]()
        assert wf.audit()["user"].tolist() == ["someone"]
    else:
        with pytest.raises(NotPermitted) as info:
            calls[action]()
        assert isinstance(info.value, PermissionError) and isinstance(info.value, WorkflowError)
        assert f"user 'someone' (role {role}) may not {action.replace('_', ' ')}" in str(info.value)
        assert wf.audit().empty


@pytest.mark.parametrize("user", [FIN, PMO, EXEC, ADMIN], ids=lambda u: u.role)
def test_every_role_may_view(wf: Workflow, user: User) -> None:
    wf.comment(FIN, ["us-1"], "note")
    assert len(wf.state(user=user)) == 1 and len(wf.history("us-1", user=user)) == 1
    assert len(wf.comments("us-1", user=user)) == 1


def test_audit_export_needs_export_permission(wf: Workflow) -> None:
    wf.comment(FIN, ["us-1"], "note")
    assert len(wf.audit(user=PMO)) == 1
    with pytest.raises(NotPermitted, match="may not export"):
        wf.audit(user=EXEC)
    assert len(wf.audit(since=T0 + timedelta(hours=1))) == 0 and len(wf.audit(since=T0)) == 1


# ---- legal entities ----------------------------------------------------------------------------


def test_uk_user_acts_on_uk_breaks_only(wf: Workflow) -> None:
    assert wf.set_status(UK, ["uk-1", "uk-2"], "in_review") == 2
    wf.comment(UK, ["uk-1"], "UK only")
    with pytest.raises(
        NotPermitted, match=r"limited to legal entities UK; 1 break\(s\) belong to others: us-1 \(US\)"
    ):
        wf.set_status(UK, ["uk-1", "us-1"], "open")
    with pytest.raises(NotPermitted, match=r"none-1 \(no legal entity\)"):
        wf.assign(UK, ["none-1"], "uma")
    with pytest.raises(NotPermitted):
        wf.comment(UK, ["uk-2", "us-1"], "not mine")  # a bulk comment is all or nothing
    assert len(wf.comments("uk-2")) == 0 and len(wf.comments("uk-1")) == 1
    assert len(wf.comment(UK, ["uk-1", "uk-2"], "both")) == 2
    assert [len(wf.comments(b)) for b in ("uk-1", "uk-2")] == [2, 1]
    assert sorted(wf.state()["break_id"]) == ["uk-1", "uk-2"]
    assert _status(wf, "uk-1") == "in_review"  # the mixed bulk changed nothing


def test_uk_user_reads_uk_rows_only(wf: Workflow) -> None:
    for b in ("us-1", "uk-1", "none-1"):
        wf.comment(FIN, [b], f"note on {b}")
    assert wf.state(user=UK)["break_id"].tolist() == ["uk-1"]
    assert wf.state(["us-1", "uk-1"], user=UK)["break_id"].tolist() == ["uk-1"]
    assert wf.audit(user=UK)["break_id"].tolist() == ["uk-1"]
    assert len(wf.history("uk-1", user=UK)) == 1
    with pytest.raises(NotPermitted, match="may not see break us-1"):
        wf.history("us-1", user=UK)
    with pytest.raises(NotPermitted):
        wf.comments("none-1", user=UK)
    assert len(wf.state(user=FIN)) == 3


def test_resolver_may_be_a_callable(make: Callable[..., Workflow]) -> None:
    asked: list[Sequence[str]] = []

    def lookup(ids: Sequence[str]) -> dict[str, str | None]:
        asked.append(list(ids))
        return {b: ENTITIES[b] for b in ids if b in ENTITIES}

    wf = make(legal_entity_of=lookup)
    assert wf.assign(UK, ["uk-1", "uk-2"], "uma") == 2
    with pytest.raises(NotPermitted):
        wf.assign(UK, ["us-1"], "uma")
    assert asked[0] == ["uk-1", "uk-2"]


def test_without_a_resolver_limited_users_are_refused(make: Callable[..., Workflow]) -> None:
    wf = make(legal_entity_of=None)
    assert wf.set_status(FIN, ["anything"], "in_review") == 1  # unlimited users are not scoped
    with pytest.raises(NotPermitted, match="legal entities are not known here"):
        wf.set_status(UK, ["uk-1"], "in_review")
    with pytest.raises(NotPermitted):
        wf.history("anything", user=UK)
    assert wf.state(user=UK).empty and len(wf.state(user=FIN)) == 1
