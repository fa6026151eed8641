"""A Harvest API v2 simulator serving the demo firm's ``psa`` tables.

Routes (all ``GET``, JSON, Harvest's record shapes from :mod:`demo._harvest_records`):
    ``/v2/clients``, ``/v2/users``, ``/v2/projects``, ``/v2/time_entries``, ``/v2/invoices``,
    ``/v2/user_assignments`` (project managers) and ``/v2/<resource>/<id>`` for one record.

Listings take ``page`` (default 1) and ``per_page`` (1..2000, default 2000), ``updated_since``
(ISO 8601 datetime; records with ``updated_at >= updated_since``) and per resource:
``is_active`` (clients, users, projects, user_assignments), ``client_id`` (projects, time entries,
invoices), ``project_id`` (time entries; invoices with a line item for it), ``user_id``,
``task_id``, ``is_billed``, ``is_running``, ``from``/``to`` (time entries: ``spent_date``;
invoices: ``issue_date``; inclusive dates) and ``state`` (invoices: draft, open, paid, closed).
Unknown parameters are ignored, as Harvest does. A listing answers Harvest's envelope::

    {"<resource>": [...], "per_page": n, "total_pages": n, "total_entries": n,
     "next_page": n | null, "previous_page": n | null, "page": n,
     "links": {"first": url, "next": url | null, "previous": url | null, "last": url}}

Links are absolute URLs on the request's base URL that carry the request's filters (never the
``access_token``/``account_id`` query parameters). Harvest's ``links.next`` uses an opaque
``cursor``; this simulator uses ``page`` numbers in it, which a client that follows links cannot
tell apart. Harvest sorts time entries by ``spent_date`` descending; the simulator sorts every
resource by ``id`` so that paging is stable and returns every record exactly once.

Auth: ``Authorization: Bearer <token>`` plus ``Harvest-Account-Id: <id>`` (or the
``access_token`` and ``account_id`` query parameters). Rate limit: 100 requests per 15 s per
token. Error bodies:
    401: ``{"error": "invalid_token", "error_description": "The access token provided is ..."}``;
    404: ``{"status": 404, "error": "Not Found"}``;
    422 (bad parameter): ``{"message": "<what is wrong>"}``;
    429: ``{"status": 429, "error": "Too Many Requests"}`` with ``Retry-After`` (seconds);
    5xx: ``{"status": <code>, "error": "<reason phrase>"}``.
Harvest documents only the status codes and ``Retry-After``; the 404/429/5xx bodies follow the
JSON Harvest answers for a missing record.

Faults (:mod:`demo.faults`): page faults use Harvest's ``page`` number; field drift applies to the
resource names above (top-level record attributes).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from demo import _harvest_records as records
from demo import tables
from demo.faults import FaultState
from demo.simulator import (
    SimulatorState,
    SlidingWindowLimiter,
    build_app,
    error_json,
    json_response,
)
from demo.store import DemoStore

MAX_PER_PAGE = 2000
RATE_LIMIT_REQUESTS = 100
RATE_LIMIT_WINDOW_S = 15.0
INVOICE_STATES = ("draft", "open", "paid", "closed")

_INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid "
    "for other reasons.",
}
# Query parameters that never travel into pagination links.
_NOT_CARRIED = frozenset({"page", "per_page", "ref", "cursor", "access_token", "account_id"})


class HarvestErrors:
    """Harvest's error responses (see the module docstring for the bodies)."""

    def rate_limited(self, retry_after_s: int) -> Response:
        """Return Harvest's 429 with ``Retry-After: retry_after_s`` (seconds)."""
        return error_json(
            429, {"status": 429, "error": "Too Many Requests"}, {"Retry-After": str(retry_after_s)}
        )

    def server_error(self, status: int) -> Response:
        """Return Harvest's ``status`` (5xx) response."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Server Error"
        return error_json(status, {"status": status, "error": phrase})

    def unauthorized(self) -> Response:
        """Return Harvest's 401 for a missing or wrong token or account id."""
        return error_json(401, dict(_INVALID_TOKEN))

    def not_found(self) -> Response:
        """Return Harvest's 404 for an unknown record or id."""
        return error_json(404, {"status": 404, "error": "Not Found"})

    def unprocessable(self, message: str) -> Response:
        """Return Harvest's 422 for an invalid parameter, with ``message`` saying which."""
        return error_json(422, {"message": message})


class _InvalidParam(ValueError):
    """A query parameter Harvest would refuse with 422; the message names it and its value."""


def _bool(name: str, raw: str) -> bool:
    if raw in ("true", "false"):
        return raw == "true"
    raise _InvalidParam(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _InvalidParam(f"{name} must be an integer, got {raw!r}") from None


def _date(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _InvalidParam(f"{name} must be an ISO 8601 date (YYYY-MM-DD), got {raw!r}") from None


def _datetime(name: str, raw: str) -> datetime:
    for text in (raw, raw.replace(" ", "+")):  # an unescaped '+' in a query arrives as ' '
        try:
            value = datetime.fromisoformat(text)
            break
        except ValueError:
            continue
    else:
        raise _InvalidParam(f"{name} must be an ISO 8601 datetime, got {raw!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _state(name: str, raw: str) -> str:
    if raw in INVOICE_STATES:
        return raw
    raise _InvalidParam(f"{name} must be one of {', '.join(INVOICE_STATES)}, got {raw!r}")


# A filter: SQL predicate with one placeholder, and the parser of the parameter's value.
_Filter = tuple[str, Callable[[str, str], Any]]
_UPDATED_SINCE: _Filter = ("updated_at >= ?", _datetime)
_IS_ACTIVE: _Filter = ("is_active = ?", _bool)


@dataclass(frozen=True)
class _Resource:
    """One Harvest listing: URL segment (= envelope key = drift name), table, shape, filters."""

    name: str
    table: tables.Table
    shape: Callable[..., records.Row]
    filters: dict[str, _Filter] = field(default_factory=dict)
    base_where: str = "TRUE"


_LINE_ITEMS_VIEW = tables.view_name(tables.HARVEST_INVOICE_LINE_ITEMS)
RESOURCES: tuple[_Resource, ...] = (
    _Resource("clients", tables.HARVEST_CLIENTS, records.client, {"is_active": _IS_ACTIVE}),
    _Resource("users", tables.HARVEST_USERS, records.user, {"is_active": _IS_ACTIVE}),
    _Resource(
        "projects",
        tables.HARVEST_PROJECTS,
        records.project,
        {"is_active": _IS_ACTIVE, "client_id": ("client_id = ?", _int)},
    ),
    _Resource(
        "time_entries",
        tables.HARVEST_TIME_ENTRIES,
        records.time_entry,
        {
            "user_id": ("user_id = ?", _int),
            "client_id": ("client_id = ?", _int),
            "project_id": ("project_id = ?", _int),
            "task_id": ("task_id = ?", _int),
            "is_billed": ("is_billed = ?", _bool),
            "is_running": ("? = FALSE", _bool),  # no timer runs: true → none, false → all
            "from": ("spent_date >= ?", _date),
            "to": ("spent_date <= ?", _date),
        },
    ),
    _Resource(
        "invoices",
        tables.HARVEST_INVOICES,
        records.invoice,
        {
            "client_id": ("client_id = ?", _int),
            "project_id": (
                f"id IN (SELECT invoice_id FROM {_LINE_ITEMS_VIEW} WHERE project_id = ?)",
                _int,
            ),
            "state": ("state = ?", _state),
            "from": ("issue_date >= ?", _date),
            "to": ("issue_date <= ?", _date),
        },
    ),
    _Resource(
        "user_assignments",
        tables.HARVEST_PROJECTS,
        records.user_assignment,
        {"is_active": _IS_ACTIVE, "user_id": ("project_manager_id = ?", _int)},
        base_where="project_manager_id IS NOT NULL",
    ),
)


@dataclass(frozen=True)
class _Query:
    page: int
    per_page: int
    where: str
    params: list[Any]


def _parse(resource: _Resource, query: QueryParams) -> _Query:
    """Return the page, page size and SQL filter of a listing request.

    Raises:
        _InvalidParam: ``page`` < 1, ``per_page`` outside 1..2000, or a filter value of the
            wrong type.
    """
    page = _int("page", query["page"]) if "page" in query else 1
    per_page = _int("per_page", query["per_page"]) if "per_page" in query else MAX_PER_PAGE
    if page < 1:
        raise _InvalidParam(f"page must be 1 or more, got {page}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise _InvalidParam(f"per_page must be between 1 and {MAX_PER_PAGE}, got {per_page}")
    clauses, params = [resource.base_where], []
    for name, (sql, parse) in {"updated_since": _UPDATED_SINCE, **resource.filters}.items():
        if name in query:
            clauses.append(sql)
            params.append(parse(name, query[name]))
    return _Query(page, per_page, " AND ".join(clauses), params)


def _credentials(request: Request) -> tuple[str, str]:
    """Return (token, account id) from Harvest's headers, else its query parameters ('' if none)."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    else:
        token = request.query_params.get("access_token", "")
    account = request.headers.get("harvest-account-id") or request.query_params.get("account_id")
    return token, account or ""


def _links(request: Request, q: _Query, total_pages: int) -> dict[str, str | None]:
    carried = [(k, v) for k, v in request.query_params.multi_items() if k not in _NOT_CARRIED]

    def url(page: int, ref: str) -> str:
        query = urlencode([("page", page), ("per_page", q.per_page), *carried, ("ref", ref)])
        return str(request.url.replace(query=query))

    return {
        "first": url(1, "first"),
        "next": url(q.page + 1, "next") if q.page < total_pages else None,
        "previous": url(q.page - 1, "previous") if q.page > 1 else None,
        "last": url(max(total_pages, 1), "last"),
    }


class _Api:
    """The request handlers of one simulator instance."""

    def __init__(self, store: DemoStore, state: SimulatorState, token: str, account_id: str):
        self.store = store
        self.state = state
        self.errors = HarvestErrors()
        self._token = token.encode()
        self._account_id = account_id.encode()
        users = store.rows(tables.HARVEST_USERS)
        self.lookups = records.Lookups(
            user_name={r["id"]: f"{r['first_name']} {r['last_name']}" for r in users},
        )

    def authorized(self, request: Request) -> bool:
        """Return True when the request carries the simulator's token and account id."""
        token, account = _credentials(request)
        token_ok = hmac.compare_digest(token.encode(), self._token)
        account_ok = hmac.compare_digest(account.encode(), self._account_id)
        return token_ok and account_ok

    def shape(self, resource: _Resource, rows: Sequence[records.Row]) -> list[records.Row]:
        """Return ``rows`` as Harvest records (invoices with their line items), drift applied."""
        items: dict[int, list[records.Row]] = {}
        if resource.name == "invoices" and rows:
            ids = [r["id"] for r in rows]
            where = f"invoice_id IN ({', '.join('?' * len(ids))})"
            for li in self.store.rows(tables.HARVEST_INVOICE_LINE_ITEMS, where=where, params=ids):
                items.setdefault(li["invoice_id"], []).append(li)
        out = []
        for row in rows:
            extra = (items.get(row["id"], []),) if resource.name == "invoices" else ()
            record = resource.shape(row, self.lookups, *extra)
            out.append(self.state.faults.reshape(resource.name, record))
        return out

    def fetch_page(self, resource: _Resource, q: _Query) -> tuple[list[records.Row], int]:
        """Return one page of records and the number of matching records (blocking I/O)."""
        total = self.store.count(resource.table, where=q.where, params=q.params)
        rows = self.store.rows(
            resource.table,
            where=q.where,
            params=q.params,
            order_by="id",
            limit=q.per_page,
            offset=(q.page - 1) * q.per_page,
        )
        return self.shape(resource, rows), total

    def fetch_one(self, resource: _Resource, record_id: int) -> records.Row | None:
        """Return the record ``record_id`` of ``resource``, or None (blocking I/O)."""
        where = f"({resource.base_where}) AND id = ?"
        rows = self.store.rows(resource.table, where=where, params=[record_id])
        return self.shape(resource, rows)[0] if rows else None

    def listing(self, resource: _Resource) -> Callable[[Request], Awaitable[Response]]:
        """Return the handler of ``GET /v2/<resource>``."""

        async def handle(request: Request) -> Response:
            if not self.authorized(request):
                return self.errors.unauthorized()
            try:
                q = _parse(resource, request.query_params)
            except _InvalidParam as exc:
                return self.errors.unprocessable(str(exc))
            page_records, total = await run_in_threadpool(self.fetch_page, resource, q)
            total_pages = -(-total // q.per_page)
            payload = {
                resource.name: page_records,
                "per_page": q.per_page,
                "total_pages": total_pages,
                "total_entries": total,
                "next_page": q.page + 1 if q.page < total_pages else None,
                "previous_page": q.page - 1 if q.page > 1 else None,
                "page": q.page,
                "links": _links(request, q, total_pages),
            }
            return self.state.page_fault(q.page, payload) or json_response(payload)

        return handle

    def single(self, resource: _Resource) -> Callable[[Request], Awaitable[Response]]:
        """Return the handler of ``GET /v2/<resource>/<id>``."""

        async def handle(request: Request) -> Response:
            if not self.authorized(request):
                return self.errors.unauthorized()
            raw_id = request.path_params["record_id"]
            if not raw_id.isdigit():
                return self.errors.not_found()
            record = await run_in_threadpool(self.fetch_one, resource, int(raw_id))
            return self.errors.not_found() if record is None else json_response(record)

        return handle


def create_app(
    store: DemoStore, *, token: str, account_id: str, faults: FaultState | None = None
) -> tuple[Starlette, SimulatorState]:
    """Return the Harvest simulator app over ``store`` and its state (``state.name == "harvest"``).

    Args:
        store: the demo firm's tables (its ``psa`` tables must exist).
        token: the personal access token clients must send.
        account_id: the Harvest account id clients must send.
        faults: injected faults, or None for none (switchable later through ``/_admin/faults``).

    Raises:
        duckdb.Error: the store lacks the Harvest tables (read at start-up for lookups).
    """

    def limit_key(request: Request) -> str:
        return f"token:{_credentials(request)[0]}"

    state = SimulatorState(
        name="harvest",
        errors=HarvestErrors(),
        faults=faults if faults is not None else FaultState(),
        limiter=SlidingWindowLimiter(RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW_S),
        limit_key=limit_key,
    )
    api = _Api(store, state, token, account_id)
    routes: list[BaseRoute] = []
    for resource in RESOURCES:
        routes.append(Route(f"/v2/{resource.name}", api.listing(resource), methods=["GET"]))
        path = f"/v2/{resource.name}/{{record_id}}"
        routes.append(Route(path, api.single(resource), methods=["GET"]))
    return build_app(state, routes), state
