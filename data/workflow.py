"""The exception workflow in the app state: status, assignee, reason codes, comments, audit log.

Only breaks that someone touched have rows here; the queue joins :meth:`Workflow.state` onto the
breaks of the latest run (``break_id`` is stable across runs, see :mod:`data.breaks`). A break
without a row is ``open`` and unassigned.

Tables (on :data:`data.appstate.METADATA`; :class:`Workflow` creates them if missing):

``break_workflow`` (one row per touched break)
    ``break_id`` (primary key), ``status``, ``assignee`` (a user name or NULL), ``reason_code``
    (NULL unless resolved or accepted), ``updated_at`` (UTC) and ``updated_by`` (user name) of
    the last action on the break, comments included.
``break_comments``
    ``id``, ``break_id``, ``author`` (user name), ``at`` (UTC), ``text``.
``audit_log`` (append-only)
    ``id``, ``at`` (UTC), ``user`` (user name), ``break_id``, ``action`` (``assign``,
    ``set_status``, ``comment``), ``field`` (``assignee``, ``status``, ``reason_code``,
    ``comment``), ``old_value``, ``new_value`` (as text; NULL for none). One row per changed field
    per break; a comment's row has the text as ``new_value``. This module inserts audit rows and
    never updates or deletes them, and offers no API that would; changes are made only through
    :class:`Workflow`, in the same transaction as their audit rows.

Statuses and transitions (:data:`TRANSITIONS`)::

    open ──> in_review ──> resolved   (reason code required)
                      └──> accepted   (reason code required: a known, justified difference)
    in_review, resolved, accepted ──> open   (reopen; clears the reason code)

Reason codes (:data:`REASON_CODES`): ``timing_difference``, ``fx_rounding``, ``data_entry_error``,
``missing_sync``, ``duplicate_posting``, ``known_exception``, ``other`` (explain in a comment).

Legal entities: a user limited to some legal entities (:meth:`data.users.User.entity_filter`) may
only read and act on breaks of those entities. The app supplies the breaks' entities through
``legal_entity_of``: a mapping ``break_id -> legal_entity_id`` or a callable that returns one for
a list of break ids, read from the ``breaks`` view of the latest run, e.g.::

    def entities(break_ids):
        with connect(home) as con:   # data.warehouse, read-only
            return dict(con.execute(
                "SELECT break_id, legal_entity_id FROM breaks WHERE break_id IN (SELECT unnest(?))",
                [list(break_ids)]).fetchall())

    workflow = Workflow(state_engine(home), legal_entity_of=entities, users=load_users(home / "users.yaml"))

With a resolver, a write naming a break it does not know is refused (:class:`UnknownBreak`).
Without one, limited users are refused every write and every read of a given break (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from data.appstate import METADATA, as_utc
from data.users import PERMISSIONS, Action, User, Users

__all__ = [
    "AUDIT_LOG",
    "BREAK_COMMENTS",
    "BREAK_WORKFLOW",
    "REASON_CODES",
    "STATUSES",
    "TRANSITIONS",
    "BreakStatus",
    "ConcurrentChange",
    "EntityResolver",
    "InvalidRequest",
    "InvalidTransition",
    "NotPermitted",
    "UnknownBreak",
    "Workflow",
    "WorkflowError",
]

BreakStatus = Literal["open", "in_review", "resolved", "accepted"]
STATUSES: tuple[BreakStatus, ...] = get_args(BreakStatus)

#: Allowed moves: status -> statuses it may move to.
TRANSITIONS: Mapping[BreakStatus, frozenset[BreakStatus]] = {
    "open": frozenset({"in_review"}),
    "in_review": frozenset({"resolved", "accepted", "open"}),
    "resolved": frozenset({"open"}),
    "accepted": frozenset({"open"}),
}

#: Statuses that need a reason code.
_NEEDS_REASON: frozenset[BreakStatus] = frozenset({"resolved", "accepted"})

#: Resolution reason codes and what each means.
REASON_CODES: Mapping[str, str] = {
    "timing_difference": "posted in different periods or not synced yet; clears by itself",
    "fx_rounding": "currency conversion or rounding difference",
    "data_entry_error": "keyed wrong in one system; corrected at the source",
    "missing_sync": "the integration did not carry the record; re-synced",
    "duplicate_posting": "posted twice; the duplicate was reversed",
    "known_exception": "a known, justified difference (e.g. contractual); accepted as is",
    "other": "none of the above; explained in a comment",
}

#: A mapping break_id -> legal_entity_id, or a callable returning one for the break ids given.
EntityResolver = Mapping[str, str | None] | Callable[[Sequence[str]], Mapping[str, str | None]]

_TS = sa.DateTime(timezone=True)
_USER = sa.String(64)
_ID = sa.String(128)
_CHUNK = 500  # break ids per IN list
_MAX_COMMENT_CHARS = 10_000

BREAK_WORKFLOW = sa.Table(
    "break_workflow", METADATA,
    sa.Column("break_id", _ID, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("assignee", _USER),
    sa.Column("reason_code", sa.String(32)),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("updated_by", _USER, nullable=False),
)  # fmt: skip

BREAK_COMMENTS = sa.Table(
    "break_comments", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("break_id", _ID, nullable=False, index=True),
    sa.Column("author", _USER, nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)  # fmt: skip

AUDIT_LOG = sa.Table(
    "audit_log", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _TS, nullable=False),
    sa.Column("user", _USER, nullable=False),
    sa.Column("break_id", _ID, nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("field", sa.String(32), nullable=False),
    sa.Column("old_value", sa.Text),
    sa.Column("new_value", sa.Text),
    sa.Index("ix_audit_log_at", "at"),
)  # fmt: skip

_TABLES = [BREAK_WORKFLOW, BREAK_COMMENTS, AUDIT_LOG]
_STATE_COLUMNS = ["break_id", "status", "assignee", "reason_code", "updated_at", "updated_by"]
_COMMENT_COLUMNS = ["id", "break_id", "author", "at", "text"]
_HISTORY_COLUMNS = ["at", "user", "action", "field", "old_value", "new_value", "text"]
_AUDIT_COLUMNS = ["id", "at", "user", "break_id", "action", "field", "old_value", "new_value"]


class WorkflowError(Exception):
    """A workflow action was refused; the message says which breaks, why and what to do."""


class InvalidRequest(WorkflowError, ValueError):
    """The request itself is wrong: no break ids, an unknown status or reason code, an empty comment."""


class InvalidTransition(InvalidRequest):
    """A break cannot move from its status to the one asked for.

    Attributes:
        to_status: the status asked for.
        refused: (break_id, current status) of every break that cannot move.
    """

    def __init__(self, to_status: str, refused: Sequence[tuple[str, BreakStatus]]) -> None:
        self.to_status = to_status
        self.refused = list(refused)
        shown = ", ".join(f"{b} ({s} -> {to_status})" for b, s in refused[:10])
        more = f" and {len(refused) - 10} more" if len(refused) > 10 else ""
        allowed = "; ".join(f"{s} -> {', '.join(sorted(TRANSITIONS[s]))}" for s in STATUSES)
        super().__init__(
            f"cannot move {len(refused)} break(s) to {to_status}: {shown}{more}. Nothing was changed. "
            f"Allowed: {allowed}"
        )


class UnknownBreak(InvalidRequest):
    """A break id is not among the breaks the app knows (the entity resolver has no entry for it)."""


class NotPermitted(WorkflowError, PermissionError):
    """The user's role or legal entities do not allow the action."""


class ConcurrentChange(WorkflowError, RuntimeError):
    """Someone else changed one of the breaks meanwhile; nothing was changed. Reload and try again."""


@dataclass(frozen=True)
class _Row:
    status: BreakStatus
    assignee: str | None
    reason_code: str | None


_UNTOUCHED = _Row("open", None, None)


class Workflow:
    """Status, assignee, reason codes and comments of breaks, every change audited.

    Every method takes the signed-in :class:`data.users.User`, checks the role's permission and
    the user's legal entities, and records the user's name. Bulk methods validate every break
    first and apply all changes in one transaction: one refused break and nothing is applied.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        legal_entity_of: EntityResolver | None = None,
        users: Users | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Open the workflow on the app-state ``engine`` (:func:`data.appstate.state_engine`).

        Args:
            engine: the app-state database; the workflow tables are created if missing.
            legal_entity_of: the breaks' legal entities (see the module docs). Needed for users
                limited to some legal entities.
            users: when given, an assignee must be one of them and see the break's legal entity.
            clock: returns the current time (tests); default ``datetime.now(UTC)``.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the tables cannot be created.
        """
        self.engine = engine
        self._resolver = legal_entity_of
        self._users = users
        self._clock = clock or (lambda: datetime.now(UTC))
        METADATA.create_all(engine, tables=_TABLES)

    # ---- actions -------------------------------------------------------------------------------

    def assign(self, user: User, break_ids: Iterable[str], assignee: str | None) -> int:
        """Assign breaks to ``assignee`` (a user name), or unassign them with None.

        Returns:
            The number of breaks whose assignee changed (already assigned ones are skipped).

        Raises:
            NotPermitted: the role may not assign, a break is outside the user's legal entities,
                or (with ``users``) the assignee does not see a break's legal entity.
            InvalidRequest: no break ids; (with ``users``) the assignee is not a user.
            UnknownBreak: the entity resolver does not know a break.
            ConcurrentChange: a break changed meanwhile.
        """
        self._require(user, "assign")
        ids = _ids(break_ids)
        entities = self._scope(user, ids)
        target = (assignee or "").strip() or None
        if target is not None and self._users is not None:
            self._check_assignee(target, ids, entities)
        now = self._now()
        with self.engine.begin() as con:
            current = _current(con, ids)
            changes = [
                (b, current.get(b), {"assignee": target})
                for b in ids
                if current.get(b, _UNTOUCHED).assignee != target
            ]
            _apply(con, user, "assign", changes, now)
        return len(changes)

    def set_status(
        self, user: User, break_ids: Iterable[str], status: BreakStatus, reason_code: str | None = None
    ) -> int:
        """Move breaks to ``status`` (see :data:`TRANSITIONS`), with a reason code for resolved/accepted.

        Reopening (``open``) clears the reason code.

        Returns:
            The number of breaks changed (all of them, or an exception and none).

        Raises:
            NotPermitted: the role may not set a status, or a break is outside the user's legal entities.
            InvalidRequest: no break ids, an unknown status or reason code, a reason code missing
                for resolved/accepted or given for open/in_review.
            InvalidTransition: a break cannot move to ``status`` from where it is.
            UnknownBreak: the entity resolver does not know a break.
            ConcurrentChange: a break changed meanwhile.
        """
        self._require(user, "set_status")
        ids = _ids(break_ids)
        if status not in STATUSES:
            raise InvalidRequest(f"unknown status {status!r}; statuses: {', '.join(STATUSES)}")
        reason = _reason(status, reason_code)
        self._scope(user, ids)
        now = self._now()
        with self.engine.begin() as con:
            current = _current(con, ids)
            olds = {b: current.get(b, _UNTOUCHED).status for b in ids}
            refused = [(b, s) for b, s in olds.items() if status not in TRANSITIONS[s]]
            if refused:
                raise InvalidTransition(status, refused)
            changes = [(b, current.get(b), {"status": status, "reason_code": reason}) for b in ids]
            _apply(con, user, "set_status", changes, now)
        return len(changes)

    def comment(self, user: User, break_ids: Iterable[str], text: str) -> list[int]:
        """Add one comment to each of ``break_ids`` (also an audit row each, and their last action).

        All or nothing: one transaction, refused whole if any break is refused.

        Returns:
            The comments' ids, in the order of ``break_ids``.

        Raises:
            NotPermitted: the role may not comment, or a break is outside the user's legal entities.
            InvalidRequest: no break, or the text is empty or longer than 10,000 characters.
            UnknownBreak: the entity resolver does not know a break.
            ConcurrentChange: a break's row was created meanwhile.
        """
        self._require(user, "comment")
        ids = _ids(break_ids)
        body = text.strip()
        if not body:
            raise InvalidRequest(f"break {ids[0]}: the comment is empty")
        if len(body) > _MAX_COMMENT_CHARS:
            raise InvalidRequest(
                f"break {ids[0]}: the comment is longer than {_MAX_COMMENT_CHARS} characters"
            )
        self._scope(user, ids)
        now = self._now()
        made: list[int] = []
        with self.engine.begin() as con:
            current = _current(con, ids)
            for break_id in ids:
                _touch(con, user, break_id, current.get(break_id), {}, now)
                result = con.execute(
                    sa.insert(BREAK_COMMENTS).values(break_id=break_id, author=user.name, at=now, text=body)
                )
                con.execute(sa.insert(AUDIT_LOG).values(
                    at=now, user=user.name, break_id=break_id, action="comment", field="comment",
                    old_value=None, new_value=body,
                ))  # fmt: skip
                key = result.inserted_primary_key
                assert key is not None
                made.append(int(key[0]))
        return made

    # ---- reads ---------------------------------------------------------------------------------

    def state(self, break_ids: Iterable[str] | None = None, *, user: User | None = None) -> pd.DataFrame:
        """Return the workflow state of touched breaks (all, or those of ``break_ids``).

        Args:
            break_ids: the breaks to return (untouched ones have no row); None for all.
            user: when given, needs ``view`` and sees only breaks of their legal entities.

        Returns:
            One row per touched break, by break_id: break_id, status, assignee, reason_code (text;
            missing as NA), updated_at (datetime64, UTC), updated_by. Empty frame, same columns, if
            none.

        Raises:
            NotPermitted: ``user`` may not view.
        """
        query = sa.select(BREAK_WORKFLOW).order_by(BREAK_WORKFLOW.c.break_id)
        with self.engine.connect() as con:
            if break_ids is None:
                rows = _dicts(con.execute(query))
            else:
                ids, rows = _ids(break_ids, allow_empty=True), []
                for chunk in _chunks(ids):
                    rows += _dicts(con.execute(query.where(BREAK_WORKFLOW.c.break_id.in_(chunk))))
        rows = self._visible(user, rows)
        return _frame(sorted(rows, key=lambda r: str(r["break_id"])), _STATE_COLUMNS, ["updated_at"])

    def comments(self, break_id: str, *, user: User | None = None) -> pd.DataFrame:
        """Return a break's comments, oldest first.

        Returns:
            id (int), break_id, author, at (datetime64, UTC), text. Empty frame, same columns, if none.

        Raises:
            NotPermitted: ``user`` (when given) may not view, or the break is outside their legal entities.
        """
        self._read_check(user, break_id)
        query = (
            sa.select(BREAK_COMMENTS)
            .where(BREAK_COMMENTS.c.break_id == break_id)
            .order_by(BREAK_COMMENTS.c.at, BREAK_COMMENTS.c.id)
        )
        with self.engine.connect() as con:
            rows = _dicts(con.execute(query))
        return _frame(rows, _COMMENT_COLUMNS, ["at"])

    def history(self, break_id: str, *, user: User | None = None) -> pd.DataFrame:
        """Return a break's history: every change (audit rows) and comment, oldest first.

        Returns:
            at (datetime64, UTC), user, action (``assign``, ``set_status``, ``comment``), field
            (``assignee``, ``status``, ``reason_code``; NA for comments), old_value, new_value
            (text, NA for none and for comments), text (the comment; NA for changes). Empty frame,
            same columns, for an untouched break.

        Raises:
            NotPermitted: ``user`` (when given) may not view, or the break is outside their legal entities.
        """
        self._read_check(user, break_id)
        changes = (
            sa.select(AUDIT_LOG)
            .where(AUDIT_LOG.c.break_id == break_id, AUDIT_LOG.c.action != "comment")
            .order_by(AUDIT_LOG.c.id)
        )
        notes = (
            sa.select(BREAK_COMMENTS)
            .where(BREAK_COMMENTS.c.break_id == break_id)
            .order_by(BREAK_COMMENTS.c.id)
        )
        with self.engine.connect() as con:
            audit = _dicts(con.execute(changes))
            said = _dicts(con.execute(notes))
        rows = [
            {"at": r["at"], "user": r["user"], "action": r["action"], "field": r["field"],
             "old_value": r["old_value"], "new_value": r["new_value"], "text": None, "_k": (0, r["id"])}
            for r in audit
        ] + [
            {"at": c["at"], "user": c["author"], "action": "comment", "field": None,
             "old_value": None, "new_value": None, "text": c["text"], "_k": (1, c["id"])}
            for c in said
        ]  # fmt: skip
        rows.sort(key=lambda r: (r["at"], r["_k"]))
        return _frame(rows, _HISTORY_COLUMNS, ["at"])

    def audit(self, *, since: datetime | None = None, user: User | None = None) -> pd.DataFrame:
        """Return the audit log (for export), oldest first; from ``since`` (UTC) on when given.

        Returns:
            id (int), at (datetime64, UTC), user, break_id, action, field, old_value, new_value
            (text, NA for none). A ``user`` limited to some legal entities gets only rows of their breaks.

        Raises:
            NotPermitted: ``user`` (when given) may not export.
        """
        if user is not None:
            self._require(user, "export")
        query = sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.id)
        if since is not None:
            query = query.where(AUDIT_LOG.c.at >= since.astimezone(UTC))
        with self.engine.connect() as con:
            rows = _dicts(con.execute(query))
        return _frame(self._visible(user, rows), _AUDIT_COLUMNS, ["at"])

    # ---- checks --------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _require(self, user: User, action: Action) -> None:
        if not user.can(action):
            roles = ", ".join(r for r, acts in PERMISSIONS.items() if action in acts)
            raise NotPermitted(
                f"user {user.name!r} (role {user.role}) may not {action.replace('_', ' ')}; "
                f"roles that may: {roles}"
            )

    def _entities(self, ids: Sequence[str]) -> Mapping[str, str | None]:
        assert self._resolver is not None
        if isinstance(self._resolver, Mapping):
            return {b: self._resolver[b] for b in ids if b in self._resolver}
        return self._resolver(ids)

    def _scope(self, user: User, ids: list[str]) -> Mapping[str, str | None]:
        """Check a write: every break known to the resolver and within the user's legal entities."""
        limited = user.entity_filter()
        if self._resolver is None:
            if limited is not None:
                raise NotPermitted(
                    f"user {user.name!r} is limited to legal entities {', '.join(limited)}, and the breaks' "
                    "legal entities are not known here (the workflow has no legal_entity_of); "
                    "nothing was changed"
                )
            return {}
        entities = self._entities(ids)
        unknown = [b for b in ids if b not in entities]
        if unknown:
            raise UnknownBreak(
                f"{len(unknown)} break(s) not in the latest breaks: {_few(unknown)}; nothing was changed. "
                "Reload the queue."
            )
        outside = [f"{b} ({entities[b] or 'no legal entity'})" for b in ids if not user.sees(entities[b])]
        if outside:
            raise NotPermitted(
                f"user {user.name!r} is limited to legal entities {', '.join(limited or [])}; "
                f"{len(outside)} break(s) belong to others: "
                f"{_few(outside)}; nothing was changed"
            )
        return entities

    def _check_assignee(self, name: str, ids: list[str], entities: Mapping[str, str | None]) -> None:
        assert self._users is not None
        target = self._users.get(name)
        if target is None:
            raise InvalidRequest(
                f"cannot assign to {name!r}: no such user; users: {', '.join(u.name for u in self._users)}"
            )
        if target.entity_filter() is not None:
            if not entities:
                raise NotPermitted(f"cannot assign to {name!r}: they are limited to some legal entities, "
                                   "and the breaks' legal entities are not known here")  # fmt: skip
            outside = [b for b in ids if not target.sees(entities[b])]
            if outside:
                limits = ", ".join(target.entity_filter() or [])
                raise NotPermitted(
                    f"cannot assign to {name!r}: limited to legal entities {limits}; not {_few(outside)}"
                )

    def _read_check(self, user: User | None, break_id: str) -> None:
        if user is None:
            return
        self._require(user, "view")
        if user.entity_filter() is None:
            return
        if self._resolver is None:
            raise NotPermitted(f"user {user.name!r} is limited to some legal entities, "
                               "and the breaks' legal entities are not known here")  # fmt: skip
        entity = self._entities([break_id]).get(break_id)
        if not user.sees(entity):
            raise NotPermitted(
                f"user {user.name!r} may not see break {break_id} (legal entity {entity or 'unknown'})"
            )

    def _visible(self, user: User | None, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if user is None:
            return rows
        self._require(user, "view")
        if user.entity_filter() is None:
            return rows
        if self._resolver is None:
            return []
        ids = sorted({str(r["break_id"]) for r in rows})
        entities = self._entities(ids) if ids else {}
        return [r for r in rows if r["break_id"] in entities and user.sees(entities[r["break_id"]])]


# ---- writing -----------------------------------------------------------------------------------


def _current(con: sa.Connection, ids: list[str]) -> dict[str, _Row]:
    out: dict[str, _Row] = {}
    cols = BREAK_WORKFLOW.c
    for chunk in _chunks(ids):
        query = sa.select(cols.break_id, cols.status, cols.assignee, cols.reason_code).where(
            cols.break_id.in_(chunk)
        )
        for r in con.execute(query):
            out[r.break_id] = _Row(r.status, r.assignee, r.reason_code)
    return out


def _apply(
    con: sa.Connection,
    user: User,
    action: str,
    changes: list[tuple[str, _Row | None, dict[str, str | None]]],
    now: datetime,
) -> None:
    """Write ``changes`` (break_id, row as read or None, new field values) and their audit rows."""
    audit: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    stamp = {"updated_at": now, "updated_by": user.name}
    for break_id, row, fields in changes:
        old = row or _UNTOUCHED
        for field, new in fields.items():
            before = getattr(old, field)
            if before != new:
                audit.append({"at": now, "user": user.name, "break_id": break_id, "action": action,
                              "field": field, "old_value": before, "new_value": new})  # fmt: skip
        if row is None:
            new_rows.append({"break_id": break_id, **asdict(_UNTOUCHED), **fields, **stamp})
        else:
            _touch(con, user, break_id, row, fields, now)
    if new_rows:
        try:
            con.execute(sa.insert(BREAK_WORKFLOW), new_rows)
        except IntegrityError:  # another session touched one of them meanwhile; all is rolled back
            raise ConcurrentChange(
                "one of the breaks was changed by someone else meanwhile; nothing was changed. "
                "Reload and try again."
            ) from None
    if audit:
        con.execute(sa.insert(AUDIT_LOG), audit)


def _touch(
    con: sa.Connection,
    user: User,
    break_id: str,
    row: _Row | None,
    fields: Mapping[str, str | None],
    now: datetime,
) -> None:
    """Insert or update one break's row, refusing if it changed since it was read (optimistic check)."""
    cols = BREAK_WORKFLOW.c
    stamp = {"updated_at": now, "updated_by": user.name}
    if row is None:
        values = {"status": "open", "assignee": None, "reason_code": None, **fields, **stamp}
        try:
            con.execute(sa.insert(BREAK_WORKFLOW).values(break_id=break_id, **values))
        except IntegrityError:  # inserted meanwhile; raising rolls the whole transaction back
            raise _concurrent(break_id) from None
        return
    result = con.execute(
        sa.update(BREAK_WORKFLOW)
        .where(
            cols.break_id == break_id,
            cols.status == row.status,
            cols.assignee.is_not_distinct_from(row.assignee),
            cols.reason_code.is_not_distinct_from(row.reason_code),
        )
        .values(**fields, **stamp)
    )
    if result.rowcount != 1:
        raise _concurrent(break_id)


def _concurrent(break_id: str) -> ConcurrentChange:
    return ConcurrentChange(
        f"break {break_id} was changed by someone else meanwhile; nothing was changed. Reload and try again."
    )


# ---- helpers -----------------------------------------------------------------------------------


def _reason(status: str, reason_code: str | None) -> str | None:
    if status in _NEEDS_REASON:
        if not reason_code:
            raise InvalidRequest(f"status {status} needs a reason code: {', '.join(REASON_CODES)}")
        if reason_code not in REASON_CODES:
            raise InvalidRequest(
                f"unknown reason code {reason_code!r}; reason codes: {', '.join(REASON_CODES)}"
            )
        return reason_code
    if reason_code:
        raise InvalidRequest(f"reason codes are for resolved and accepted breaks, not {status}")
    return None


def _ids(break_ids: Iterable[str], *, allow_empty: bool = False) -> list[str]:
    """Distinct break ids in the order given (a lone string counts as one id)."""
    if isinstance(break_ids, str):
        break_ids = [break_ids]
    ids = list(dict.fromkeys(break_ids))
    bad = [b for b in ids if not isinstance(b, str) or not b.strip()]
    if bad:
        raise InvalidRequest(f"break ids must be non-empty strings, got {bad[:5]!r}")
    if not ids and not allow_empty:
        raise InvalidRequest("no break ids given")
    return ids


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _few(items: list[str], n: int = 10) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _dicts(result: sa.CursorResult[Any]) -> list[dict[str, Any]]:
    return [
        {str(k): as_utc(v) if isinstance(v, datetime) else v for k, v in r.items()} for r in result.mappings()
    ]


def _frame(rows: list[dict[str, Any]], columns: list[str], times: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    for col in times:
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame
