"""Odoo 19.0 external API simulator (JSON-RPC and JSON-2) over an :class:`demo.odoo_fields.OdooSource`.

The source is the demo firm's ``erp`` tables (:func:`demo.odoo_fields.firm_source`) or a real
Odoo's records replayed from a dump folder (:mod:`demo.odoo_replay`); both are served by the same
dispatch, methods, domains, paging and faults below.

Endpoints:
    ``POST /jsonrpc`` with ``{"jsonrpc": "2.0", "method": "call", "params": {"service", "method",
    "args"}, "id"}``. Service ``common``: ``version``, ``authenticate`` ``[db, login, password,
    {}]`` and ``login`` ``[db, login, password]`` (uid or ``false``). Service ``object``:
    ``execute_kw`` ``[db, uid, password, model, method, args, kwargs]`` (and ``execute``). Answers
    ``{"jsonrpc", "id", "result"}``; errors are HTTP 200 with ``{"jsonrpc", "id", "error": {"code":
    200, "message": "Odoo Server Error", "data": {"name", "debug", "message", "arguments",
    "context"}}}`` (``odoo.exceptions.AccessDenied`` for bad credentials).
    ``POST /json/2/<model>/<method>`` with ``Authorization: bearer <api key>``, optional
    ``X-Odoo-Database`` and a JSON object of named arguments (plus ``ids`` and ``context``).
    Answers the bare result; errors are ``{"name", "message", "arguments", "context", "debug"}``
    with 401 (bad key), 404 (unknown model or method), 422 (bad arguments, ``UserError``) or 500.
    ``GET /web/version``: ``{"version", "version_info"}``.

Methods (models are the source's; any other model "doesn't exist"): ``search_read``, ``search``,
``search_count``, ``read``, ``fields_get`` and ``read_group`` (sum/min/max/avg/count over
non-date group-bys). Domains and orders follow :mod:`demo.odoo_domain`; the default order is
``id``. Archived records (``active`` false) are hidden unless the domain mentions ``active`` or
the context has ``active_test: false`` (not for ``read`` by ids).

Faults: Odoo has no rate limit. Injected 429s and 5xx are what the reverse proxy in front of a
production Odoo (nginx) sends: its stock HTML error page with that status (429 with
``Retry-After``). Page faults apply to ``search_read`` and ``search``, page ``offset // limit + 1``
(1 without a limit); field drift applies to ``search_read`` and ``read`` records, by model name.
"""

from __future__ import annotations

import hmac
import inspect
import json
from collections.abc import Callable
from typing import Any

import duckdb
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from demo.faults import FaultState
from demo.odoo_domain import OdooError
from demo.odoo_fields import OdooModel, OdooSource, firm_source
from demo.odoo_methods import Methods
from demo.simulator import SimulatorState, build_app, json_response
from demo.store import DemoStore

SERVER_VERSION = "19.0"
SERVER_VERSION_INFO: list[Any] = [19, 0, 0, "final", 0, ""]
_NGINX_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def _nginx_page(status: int, headers: dict[str, str] | None = None) -> Response:
    reason = _NGINX_REASONS.get(status, "Error")
    title = f"{status} {reason}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(body, status_code=status, headers=headers, media_type="text/html")


class OdooErrors:
    """Error responses in front of Odoo: nginx's HTML pages (Odoo itself never sends a 429)."""

    def rate_limited(self, retry_after_s: int) -> Response:
        """Return nginx's 429 page with ``Retry-After`` (seconds)."""
        return _nginx_page(429, {"Retry-After": str(retry_after_s)})

    def server_error(self, status: int) -> Response:
        """Return nginx's page for ``status`` (e.g. 502 Bad Gateway, 503, 504)."""
        return _nginx_page(status)


def _serialize(exc: OdooError) -> dict[str, Any]:
    """Return Odoo's ``serialize_exception`` of ``exc``."""
    debug = (
        "Traceback (most recent call last):\n"
        "  (raised by Tieout's demo Odoo; there is no server traceback)\n"
        f"{exc.name}: {exc.message}\n"
    )
    return {
        "name": exc.name,
        "debug": debug,
        "message": exc.message,
        "arguments": exc.arguments,
        "context": {},
    }


_NOT_FOUND = (
    "The requested URL was not found on the server. If you entered the URL manually please check "
    "your spelling and try again."
)


def _http_error(name: str, status: int, message: str) -> OdooError:
    return OdooError(message, name=f"werkzeug.exceptions.{name}", status=status, arguments=[message, status])


def _access_denied() -> OdooError:
    return OdooError("Access Denied", name="odoo.exceptions.AccessDenied", status=401)


class _Odoo:
    """The simulated Odoo server: credentials, models and the RPC dispatch."""

    def __init__(
        self,
        source: OdooSource,
        state: SimulatorState,
        database: str,
        login: str | None,
        api_key: str,
        uid: int,
    ) -> None:
        self.source = source
        self.state = state
        self.database = database
        self.login = login
        self.api_key = api_key
        self.uid = uid
        self.models = source.models

    def key_ok(self, key: Any) -> bool:
        """Return True when ``key`` is the API key (also accepted as the password)."""
        return isinstance(key, str) and hmac.compare_digest(key.encode(), self.api_key.encode())

    def _check_db(self, db: Any) -> None:
        if db != self.database:
            message = f'connection to server failed: FATAL:  database "{db}" does not exist'
            raise OdooError(message, name="psycopg2.OperationalError")

    def rpc(self, params: Any) -> tuple[Any, int | None]:
        """Run one JSON-RPC ``call``; return its result and the listing page (or None).

        Raises:
            OdooError: whatever Odoo raises for this call.
        """
        if not isinstance(params, dict):
            raise OdooError("'params' must be an object", name="builtins.TypeError")
        service, method = params.get("service"), params.get("method")
        args = params.get("args") or []
        if not isinstance(args, list):
            raise OdooError("'args' must be a list", name="builtins.TypeError")
        if service == "common":
            return self._common(method, args), None
        if service == "object":
            return self._object(method, args)
        raise OdooError(repr(service), name="builtins.KeyError")

    def _common(self, method: Any, args: list[Any]) -> Any:
        if method == "version":
            return {
                "server_version": SERVER_VERSION,
                "server_version_info": SERVER_VERSION_INFO,
                "server_serie": SERVER_VERSION,
                "protocol_version": 1,
            }
        if method in ("authenticate", "login"):
            arity = 4 if method == "authenticate" else 3
            if len(args) != arity:
                message = f"exp_{method}() takes {arity} positional arguments but {len(args)} were given"
                raise OdooError(message, name="builtins.TypeError")
            self._check_db(args[0])
            known = self.login is not None and args[1] == self.login
            return self.uid if known and self.key_ok(args[2]) else False
        raise OdooError(f"Method not found: {method}", name="builtins.Exception")

    def _object(self, method: Any, args: list[Any]) -> tuple[Any, int | None]:
        if method not in ("execute", "execute_kw"):
            raise OdooError(f"Method not available {method}", name="builtins.NameError")
        if len(args) < 5:
            raise OdooError("not enough arguments for execute_kw", name="builtins.TypeError")
        db, uid, password, model, name = args[:5]
        self._check_db(db)
        if uid != self.uid or isinstance(uid, bool) or not self.key_ok(password):
            raise _access_denied()
        kwargs: Any = {}
        if method == "execute":
            call_args = list(args[5:])
        else:
            call_args = args[5] if len(args) > 5 and args[5] is not None else []
            kwargs = args[6] if len(args) > 6 and args[6] is not None else {}
        if not isinstance(call_args, list) or not isinstance(kwargs, dict):
            message = "execute_kw expects args as a list and kwargs as an object"
            raise OdooError(message, name="builtins.TypeError")
        model_obj = self.models.get(model) if isinstance(model, str) else None
        if model_obj is None:
            message = f"Object {model} doesn't exist"
            raise OdooError(message, name="odoo.exceptions.UserError", status=422)
        kwargs = {str(k): v for k, v in kwargs.items()}
        context = kwargs.pop("context", None) or {}
        methods = Methods(self.source, self.state, model_obj, context)
        func = self._public(methods, model_obj, name, lambda m: OdooError(m, name="builtins.AttributeError"))
        if name not in Methods.API_MODEL:
            if not call_args:
                raise OdooError("list index out of range", name="builtins.IndexError")
            methods.ids = call_args[0]
            call_args = call_args[1:]
        try:
            bound = inspect.signature(func).bind(*call_args, **kwargs)
        except TypeError as exc:
            raise OdooError(f"{name}() {exc}", name="builtins.TypeError") from None
        return func(*bound.args, **bound.kwargs), methods.page

    @staticmethod
    def _public(
        methods: Methods, model: OdooModel, name: Any, not_found: Callable[[str], OdooError]
    ) -> Callable[..., Any]:
        if isinstance(name, str) and name.startswith("_"):
            message = f"Private methods (such as '{model.name}.{name}') cannot be called remotely."
            raise OdooError(message, name="odoo.exceptions.AccessError", status=403)
        func = getattr(methods, name, None) if isinstance(name, str) else None
        if name not in Methods.PUBLIC or not callable(func):
            raise not_found(f"The method '{model.name}.{name}' does not exist")
        return func  # type: ignore[no-any-return]

    def json2(self, request: Request, raw: bytes) -> tuple[Any, int | None]:
        """Run one JSON-2 call (``raw`` is the request body); return its result and listing page.

        Raises:
            OdooError: the error Odoo's JSON-2 dispatcher answers, with its HTTP status.
        """
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.key_ok(key.strip()):
            raise _http_error("Unauthorized", 401, "Invalid apikey")
        db = request.headers.get("x-odoo-database")
        if db is not None and db != self.database:
            raise _http_error("NotFound", 404, _NOT_FOUND)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise _http_error("BadRequest", 400, f"could not parse the body as json: {exc}") from None
        model_name, method = request.path_params["model"], request.path_params["method"]
        model = self.models.get(model_name)
        if model is None:
            raise _http_error("NotFound", 404, f"the model {model_name!r} does not exist")
        kwargs = {str(k): v for k, v in body.items()} if isinstance(body, dict) else {}
        ids = kwargs.pop("ids", None) or []
        context = kwargs.pop("context", None) or {}
        methods = Methods(self.source, self.state, model, context)
        func = self._public(methods, model, method, lambda m: _http_error("NotFound", 404, m))
        if method in Methods.API_MODEL and ids:
            raise _http_error("UnprocessableEntity", 422, f"cannot call {model_name}.{method} with ids")
        methods.ids = ids
        try:
            bound = inspect.signature(func).bind(**kwargs)
        except TypeError as exc:
            raise _http_error("UnprocessableEntity", 422, str(exc)) from None
        return func(*bound.args, **bound.kwargs), methods.page


def _call(run: Callable[[], tuple[Any, int | None]]) -> tuple[Any, int | None]:
    """Run ``run`` and translate DuckDB failures into the database error Odoo would report."""
    try:
        return run()
    except duckdb.Error as exc:
        raise OdooError(str(exc), name="psycopg2.errors.DataError") from None


def create_app(
    source: OdooSource | DemoStore,
    *,
    database: str,
    login: str | None,
    api_key: str,
    uid: int = 2,
    faults: FaultState | None = None,
) -> tuple[Starlette, SimulatorState]:
    """Return the Odoo simulator app and its state (``state.name == "odoo"``, no rate limit).

    Args:
        source: what to serve: an :class:`demo.odoo_fields.OdooSource` (e.g. a replayed dump,
            :func:`demo.odoo_replay.load_replay`), or the demo firm's store (its ``erp`` tables).
        database: the database name clients must send (JSON-RPC ``db``, ``X-Odoo-Database``).
        login: the user's login, for ``authenticate``; None when clients use JSON-2 only (which needs
            no login): ``authenticate`` then answers ``false``.
        api_key: the user's API key: the JSON-2 bearer token, also accepted as the password.
        uid: the user's id, returned by ``authenticate`` and expected by ``execute_kw``.
        faults: injected faults, or None for none (switchable later through ``/_admin/faults``).

    Returns:
        The Starlette app (vendor routes behind faults, plus the admin API) and its state.
    """
    state = SimulatorState(name="odoo", errors=OdooErrors(), faults=faults or FaultState())
    served = firm_source(source) if isinstance(source, DemoStore) else source
    sim = _Odoo(served, state, database, login, api_key, uid)

    async def jsonrpc(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("Invalid JSON data", status_code=400)
        if not isinstance(payload, dict):
            return PlainTextResponse("Invalid JSON-RPC data", status_code=400)
        rid = payload.get("id")
        try:
            result, page = await run_in_threadpool(_call, lambda: sim.rpc(payload.get("params")))
        except OdooError as exc:
            error = {"code": 200, "message": "Odoo Server Error", "data": _serialize(exc)}
            return json_response({"jsonrpc": "2.0", "id": rid, "error": error})
        answer = {"jsonrpc": "2.0", "id": rid, "result": result}
        return state.page_fault(page, answer) or json_response(answer)

    async def json2(request: Request) -> Response:
        raw = await request.body()
        try:
            result, page = await run_in_threadpool(_call, lambda: sim.json2(request, raw))
        except OdooError as exc:
            return json_response(_serialize(exc), status=exc.status)
        return state.page_fault(page, result) or json_response(result)

    async def version(_: Request) -> Response:
        return json_response({"version_info": SERVER_VERSION_INFO, "version": SERVER_VERSION})

    routes: list[BaseRoute] = [
        Route("/jsonrpc", jsonrpc, methods=["POST"]),
        Route("/json/2/{model}/{method}", json2, methods=["POST"]),
        Route("/web/version", version, methods=["GET"]),
    ]
    return build_app(state, routes), state
