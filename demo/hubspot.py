"""HubSpot CRM v3 simulator: companies and deals, served from the demo firm's ``crm`` tables.

Endpoints (``Authorization: Bearer <token>`` on every one, else 401 ``INVALID_AUTHENTICATION``):
    ``GET /crm/v3/objects/{type}``: ``limit`` (default 10, at most 100), ``after`` (cursor),
    ``properties``, ``associations``, ``archived`` → ``{"results": [...], "paging": {"next":
    {"after", "link"}}}``, records in numeric id order, ``paging`` omitted on the last page.
    ``GET /crm/v3/objects/{type}/{id}`` → one record, or 404 ``OBJECT_NOT_FOUND``.
    ``POST /crm/v3/objects/{type}/search``: ``filterGroups``, ``sorts``, ``properties``,
    ``query``, ``limit`` (at most 200), ``after`` (an offset below 10,000) → ``{"total",
    "results", "paging"}``; archived records are never found.

``{type}`` is ``companies`` or ``deals`` (or ``company``, ``deal``, ``0-2``, ``0-3``). A record is
``{"id", "properties", "createdAt", "updatedAt", "archived"}`` plus ``archivedAt`` when archived
and ``associations`` when asked for. Property values are strings or null: money as stored
(``"12500.00"``), timestamps ISO-8601 UTC with milliseconds (``"2026-03-01T09:30:00.000Z"``).
Errors have HubSpot's body (``status``, ``message``, ``correlationId``, ``category``); 429s carry
``errorType``/``policyName``: 100 requests per 10 s per token (``TEN_SECONDLY_ROLLING``) and 5
searches per second per token (``SECONDLY``).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from http import HTTPStatus
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from demo.faults import FaultState
from demo.simulator import (
    SimulatorState,
    SlidingWindowLimiter,
    build_app,
    error_json,
    json_response,
)
from demo.store import DemoStore
from demo.tables import HUBSPOT_COMPANIES, HUBSPOT_DEALS, MONEY, TS, Table

REQUESTS_PER_WINDOW, WINDOW_S = 100, 10.0
SEARCH_REQUESTS_PER_S = 5
DEFAULT_LIMIT, LIST_MAX_LIMIT, SEARCH_MAX_LIMIT = 10, 100, 200
SEARCH_MAX_RESULTS = 10_000
SEARCH_MAX_GROUPS, SEARCH_MAX_FILTERS_PER_GROUP = 5, 6
_ALWAYS = {"createdate", "hs_lastmodifieddate", "hs_object_id"}
_AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_BY_ID = "CAST(id AS BIGINT)"

_Kind = Literal["id", "ts", "money", "text"]


@dataclass(frozen=True)
class _ObjectType:
    name: str  # resource name in URLs and in field-drift faults
    table: Table
    defaults: tuple[str, ...]  # properties sent when none are asked for
    text: tuple[str, ...]  # properties a search ``query`` matches
    hidden: tuple[str, ...] = ()  # stored columns that are not HubSpot properties

    @cached_property
    def properties(self) -> dict[str, _Kind]:
        """Property name → how filter values on it are read (``hs_object_id`` is the id)."""
        kinds: dict[str, _Kind] = {"hs_object_id": "id"}
        for f in self.table.schema:
            if f.name not in ("id", "archived", *self.hidden):
                kinds[f.name] = "ts" if f.type == TS else "money" if f.type == MONEY else "text"
        return kinds


_COMPANIES = _ObjectType(
    "companies", HUBSPOT_COMPANIES,
    ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"), ("name", "domain"),
)  # fmt: skip
_DEALS = _ObjectType(
    "deals", HUBSPOT_DEALS,
    ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
     "hs_object_id", "pipeline"), ("dealname",), hidden=("company_id",),
)  # fmt: skip
_OBJECT_TYPES = {
    "companies": _COMPANIES, "company": _COMPANIES, "0-2": _COMPANIES,
    "deals": _DEALS, "deal": _DEALS, "0-3": _DEALS,
}  # fmt: skip


class _Refused(Exception):
    """A request HubSpot refuses: answered with ``status`` and ``category`` in its error body."""

    def __init__(self, message: str, status: int = 400, category: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.status, self.category = status, category


def _error(status: int, *, retry_after_s: int | None = None, **fields: str) -> Response:
    cid = str(uuid.uuid4())
    headers = {"X-HubSpot-Correlation-Id": cid}
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    return error_json(status, {"status": "error", **fields, "correlationId": cid}, headers)


def _rate_limited(retry_after_s: int, policy: str, group: str) -> Response:
    message = f"You have reached your {policy.lower()} limit."
    return _error(429, retry_after_s=retry_after_s, message=message, errorType="RATE_LIMIT",
                  policyName=policy, groupName=f"publicapi:{group}")  # fmt: skip


class HubSpotErrors:
    """HubSpot's 429 and 5xx responses (:class:`demo.simulator.VendorErrors`)."""

    def rate_limited(self, retry_after_s: int) -> Response:
        """Return the burst-limit 429 (``TEN_SECONDLY_ROLLING``), ``Retry-After`` in seconds."""
        group = "private_app-api-calls-ten-secondly"
        return _rate_limited(retry_after_s, "TEN_SECONDLY_ROLLING", group)

    def server_error(self, status: int) -> Response:
        """Return a 5xx (``status`` 500-599) in HubSpot's error shape."""
        return _error(status, message=HTTPStatus(status).phrase)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    utc = value.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _wire(value: Any) -> str | None:
    """Return a stored value as HubSpot sends a property: a string, or None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # Decimal keeps its stored scale: "12500.00"


def _select(obj: _ObjectType, requested: list[str]) -> list[str]:
    """Return the properties to send: the defaults, or those asked for (unknown ones ignored)."""
    if not requested:
        return list(obj.defaults)
    return sorted({p for p in requested if p in obj.properties} | _ALWAYS)


def _records(
    store: DemoStore,
    state: SimulatorState,
    obj: _ObjectType,
    rows: list[dict[str, Any]],
    props: list[str],
    assoc: list[str],
) -> list[dict[str, Any]]:
    """Return ``rows`` as HubSpot records, field drift applied to their ``properties``."""
    links = _associations(store, obj, rows, assoc)
    out = []
    for row in rows:
        values = {**row, "hs_object_id": row["id"]}
        rec: dict[str, Any] = {
            "id": row["id"],
            "properties": state.faults.reshape(obj.name, {p: _wire(values[p]) for p in props}),
            "createdAt": _iso(row["createdate"]),
            "updatedAt": _iso(row["hs_lastmodifieddate"]),
            "archived": bool(row["archived"]),
        }
        if row["archived"]:
            rec["archivedAt"] = rec["updatedAt"]
        if row["id"] in links:
            rec["associations"] = links[row["id"]]
        out.append(rec)
    return out


def _associations(
    store: DemoStore, obj: _ObjectType, rows: list[dict[str, Any]], asked: list[str]
) -> dict[str, dict[str, Any]]:
    """Return record id → ``associations`` (deal ↔ company, from ``deals.company_id``).

    Unknown association types are ignored, as HubSpot does; records without any are left out.
    """
    wanted = {_OBJECT_TYPES.get(a.lower()) for a in asked}
    links: dict[str, list[dict[str, str]]] = {}
    if obj is _DEALS and _COMPANIES in wanted:
        for row in rows:
            if row["company_id"] is not None:
                links[row["id"]] = [{"id": row["company_id"], "type": "deal_to_company"}]
    if obj is _COMPANIES and _DEALS in wanted and rows:
        marks = ", ".join("?" * len(rows))
        where = f"NOT archived AND company_id IN ({marks})"
        params = [row["id"] for row in rows]
        for deal in store.rows(HUBSPOT_DEALS, where=where, params=params, order_by=_BY_ID):
            link = {"id": deal["id"], "type": "company_to_deal"}
            links.setdefault(deal["company_id"], []).append(link)
    other = "companies" if obj is _DEALS else "deals"
    return {rid: {other: {"results": found}} for rid, found in links.items()}


def _csv(values: list[str]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _int(raw: Any, name: str, *, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise _Refused(f"Invalid input: {name} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" + (f" and at most {maximum}" if maximum else "")
        raise _Refused(f"Invalid input: {name} must be {bounds}, got {value}")
    return value


def _object_type(request: Request) -> _ObjectType:
    raw = request.path_params["object_type"]
    try:
        return _OBJECT_TYPES[raw.lower()]
    except KeyError:
        raise _Refused(f"Unable to infer object type from: {raw}") from None


def _archived(request: Request) -> bool:
    raw = request.query_params.get("archived", "false").lower()
    if raw not in ("true", "false"):
        raise _Refused(f"Invalid input: archived must be true or false, got {raw!r}")
    return raw == "true"


def _list_page(store: DemoStore, state: SimulatorState, request: Request) -> Response:
    obj, q = _object_type(request), request.query_params
    limit = _int(q.get("limit"), "limit", default=DEFAULT_LIMIT, maximum=LIST_MAX_LIMIT)
    archived = _archived(request)
    where, offset = "archived = ?", 0
    params: list[Any] = [archived]
    after = q.get("after")
    if after is not None:
        if not after.isdigit():
            raise _Refused(f"Invalid input: after must be a paging cursor, got {after!r}")
        seen = f"archived = ? AND {_BY_ID} <= ?"
        offset = store.count(obj.table, where=seen, params=[archived, int(after)])
        where, params = f"archived = ? AND {_BY_ID} > ?", [archived, int(after)]
    rows = store.rows(obj.table, where=where, params=params, order_by=_BY_ID, limit=limit + 1)
    props, assoc = _select(obj, _csv(q.getlist("properties"))), _csv(q.getlist("associations"))
    payload: dict[str, Any] = {"results": _records(store, state, obj, rows[:limit], props, assoc)}
    if len(rows) > limit:
        cursor = rows[limit - 1]["id"]
        link = str(request.url.include_query_params(after=cursor))
        payload["paging"] = {"next": {"after": cursor, "link": link}}
    return state.page_fault(offset // limit + 1, payload) or json_response(payload)


def _get_one(store: DemoStore, state: SimulatorState, request: Request) -> Response:
    obj, q = _object_type(request), request.query_params
    object_id, archived = request.path_params["object_id"], _archived(request)
    rows = []
    if object_id.isdigit():
        where = "id = ? AND archived = ?"
        rows = store.rows(obj.table, where=where, params=[object_id, archived])
    if not rows:
        raise _Refused("resource not found", 404, "OBJECT_NOT_FOUND")
    props, assoc = _select(obj, _csv(q.getlist("properties"))), _csv(q.getlist("associations"))
    return json_response(_records(store, state, obj, rows, props, assoc)[0])


_COMPARE = {"EQ": "=", "NEQ": "IS DISTINCT FROM", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}


def _column(obj: _ObjectType, prop: Any) -> tuple[str, _Kind]:
    if not isinstance(prop, str) or prop not in obj.properties:
        raise _Refused(f"Invalid input: there is no property {prop!r} on {obj.name}")
    return (_BY_ID if prop == "hs_object_id" else f'"{prop}"'), obj.properties[prop]


def _coerce(kind: _Kind, value: Any, prop: str) -> Any:
    """Return a filter value as its column's type: timestamps from ms epoch or ISO-8601 (UTC)."""
    try:
        if kind == "ts":
            if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
                return datetime.fromtimestamp(int(value) / 1000, UTC)
            parsed = datetime.fromisoformat(str(value))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if kind == "money":
            return Decimal(str(value))
        if kind == "id":
            return int(value)
    except (ValueError, InvalidOperation):
        raise _Refused(f"Invalid input: {value!r} is not a valid value for {prop}") from None
    return _wire(value).lower()  # type: ignore[union-attr]  # text matches case-insensitively


def _predicate(obj: _ObjectType, f: Any) -> tuple[str, list[Any]]:
    """Return the SQL (with ``?`` placeholders) and parameters of one search filter."""
    if not isinstance(f, dict):
        raise _Refused("Invalid input: a filter must be an object")
    col, kind = _column(obj, f.get("propertyName"))
    op, prop = f.get("operator", "EQ"), f["propertyName"]
    lhs = f"lower({col})" if kind == "text" else col
    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return f"{col} IS {'NOT ' if op == 'HAS_PROPERTY' else ''}NULL", []
    if op in ("IN", "NOT_IN"):
        values = f.get("values")
        if not isinstance(values, list) or not values:
            raise _Refused(f"Invalid input: operator {op} on {prop} needs a non-empty values list")
        marks = ", ".join("?" * len(values))
        sql = f"{lhs} IN ({marks})" if op == "IN" else f"({col} IS NULL OR {lhs} NOT IN ({marks}))"
        return sql, [_coerce(kind, v, prop) for v in values]
    if f.get("value") is None:
        raise _Refused(f"Invalid input: operator {op} on {prop} needs a value")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = str(f["value"]).lower().replace("*", "%")
        pattern = pattern if "%" in pattern else f"%{pattern}%"
        sql = f"{lhs} LIKE ?" if op == "CONTAINS_TOKEN" else f"({col} IS NULL OR {lhs} NOT LIKE ?)"
        return sql, [pattern]
    value = _coerce(kind, f["value"], prop)
    if op in _COMPARE:
        return f"{lhs} {_COMPARE[op]} ?", [value]
    if op == "BETWEEN":
        if f.get("highValue") is None:
            raise _Refused(f"Invalid input: operator BETWEEN on {prop} needs a highValue")
        return f"{lhs} BETWEEN ? AND ?", [value, _coerce(kind, f["highValue"], prop)]
    raise _Refused(f"Invalid input: unknown filter operator {op!r}")


def _search_where(obj: _ObjectType, body: dict[str, Any]) -> tuple[str, list[Any]]:
    """Return the SQL predicate of a search: filter groups ORed, filters in a group ANDed."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) > SEARCH_MAX_GROUPS:
        raise _Refused(f"Invalid input: at most {SEARCH_MAX_GROUPS} filterGroups are allowed")
    ors, params = [], []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > SEARCH_MAX_FILTERS_PER_GROUP:
            most = SEARCH_MAX_FILTERS_PER_GROUP
            raise _Refused(f"Invalid input: a filter group has a list of at most {most} filters")
        ands = [_predicate(obj, f) for f in filters]
        ors.append(" AND ".join(sql for sql, _ in ands) or "TRUE")
        params += [p for _, args in ands for p in args]
    where = "NOT archived" + (f" AND ({' OR '.join(ors)})" if ors else "")
    if query := body.get("query"):
        where += " AND (" + " OR ".join(f'"{c}" ILIKE ?' for c in obj.text) + ")"
        params += [f"%{query}%"] * len(obj.text)
    return where, params


def _search_order(obj: _ObjectType, sorts: Any) -> str:
    if not sorts:
        return _BY_ID
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise _Refused("Invalid input: only one sort is allowed")
    sort = sorts[0]
    if isinstance(sort, str):
        col, _ = _column(obj, sort.removeprefix("-"))
        desc = sort.startswith("-")
    elif isinstance(sort, dict):
        col, _ = _column(obj, sort.get("propertyName"))
        desc = sort.get("direction") == "DESCENDING"
    else:
        raise _Refused("Invalid input: a sort is a property name or {propertyName, direction}")
    return f"{col} {'DESC' if desc else 'ASC'} NULLS LAST, {_BY_ID}"


def _search_page(store: DemoStore, state: SimulatorState, request: Request, body: Any) -> Response:
    obj = _object_type(request)
    if not isinstance(body, dict):
        raise _Refused("Invalid input: the search body must be a JSON object")
    limit = _int(body.get("limit"), "limit", default=DEFAULT_LIMIT, maximum=SEARCH_MAX_LIMIT)
    offset = _int(body.get("after"), "after", default=0, minimum=0)
    if offset >= SEARCH_MAX_RESULTS:
        most = SEARCH_MAX_RESULTS
        raise _Refused(f"Invalid input: a search pages through at most {most} results")
    props = body.get("properties") or []
    if not isinstance(props, list):
        raise _Refused("Invalid input: properties must be a list of property names")
    where, params = _search_where(obj, body)
    order = _search_order(obj, body.get("sorts"))
    rows = store.rows(obj.table, where=where, params=params, order_by=order, limit=limit,
                      offset=offset)  # fmt: skip
    total = store.count(obj.table, where=where, params=params)
    results = _records(store, state, obj, rows, _select(obj, [str(p) for p in props]), [])
    payload: dict[str, Any] = {"total": total, "results": results}
    if offset + limit < total:
        after = str(offset + limit)
        payload["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
    return state.page_fault(offset // limit + 1, payload) or json_response(payload)


def _token_key(request: Request) -> str:
    return request.headers.get("authorization", "")


def create_app(
    store: DemoStore,
    *,
    token: str,
    faults: FaultState | None = None,
    search_requests_per_s: int | None = SEARCH_REQUESTS_PER_S,
) -> tuple[Starlette, SimulatorState]:
    """Return the HubSpot simulator app and its state (``state.name == "hubspot"``).

    Args:
        store: the demo firm's tables (``crm/companies`` and ``crm/deals`` are served).
        token: the private-app access token clients must send as ``Authorization: Bearer``.
        faults: injected faults; a fresh, empty :class:`FaultState` when None.
        search_requests_per_s: the search limit per token and second, or None for no limit.

    Returns:
        The Starlette app (vendor routes behind the shared rate limit and faults, plus the admin
        API) and its :class:`SimulatorState`, limited to 100 requests per 10 s per token.
    """
    state = SimulatorState(
        name="hubspot",
        errors=HubSpotErrors(),
        faults=faults or FaultState(),
        limiter=SlidingWindowLimiter(REQUESTS_PER_WINDOW, WINDOW_S),
        limit_key=_token_key,
    )
    per_s = search_requests_per_s
    search_limiter = SlidingWindowLimiter(per_s, 1.0) if per_s else None

    def endpoint(
        handle: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            scheme, _, given = _token_key(request).partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
                return _error(401, message=_AUTH_MESSAGE, category="INVALID_AUTHENTICATION")
            try:
                return await handle(request)
            except _Refused as exc:
                return _error(exc.status, message=str(exc), category=exc.category)

        return guarded

    async def list_objects(request: Request) -> Response:
        return await run_in_threadpool(_list_page, store, state, request)

    async def get_object(request: Request) -> Response:
        return await run_in_threadpool(_get_one, store, state, request)

    async def search(request: Request) -> Response:
        if search_limiter and (wait_s := search_limiter.acquire(_token_key(request))):
            return _rate_limited(wait_s, "SECONDLY", "search-secondly")
        try:
            body = await request.json()
        except ValueError:
            raise _Refused("Invalid input JSON: the request body is not valid JSON") from None
        return await run_in_threadpool(_search_page, store, state, request, body)

    base = "/crm/v3/objects/{object_type}"
    routes: list[BaseRoute] = [
        Route(base, endpoint(list_objects), methods=["GET"]),
        Route(base + "/search", endpoint(search), methods=["POST"]),
        Route(base + "/{object_id}", endpoint(get_object), methods=["GET"]),
    ]
    return build_app(state, routes), state


__all__ = ["HubSpotErrors", "create_app"]
