"""Odoo's external API: JSON-RPC (Odoo 17, 18, 19) or JSON-2 (Odoo 19), as sources.yaml chooses.

JSON-RPC: every call is ``POST /jsonrpc`` with ``{"jsonrpc": "2.0", "method": "call", "params":
{"service", "method", "args"}}``. The connector logs in once with ``common.authenticate [db,
login, key, {}]`` (the uid, or ``false`` for bad credentials; the key is the API key, or the
password) and calls ``object.execute_kw [db, uid, key, model, method, args, kwargs]``. Odoo answers
errors with HTTP 200 and a JSON-RPC ``error`` (``odoo.exceptions.AccessDenied`` for a bad key):
they become :class:`extractors.errors.AuthFailed` or :class:`extractors.errors.ExtractorError`
with Odoo's message.

JSON-2: ``POST /json/2/<model>/<method>`` with the named arguments as a JSON object,
``Authorization: bearer <api key>`` and ``X-Odoo-Database``; the answer is the bare result, errors
are HTTP statuses (401 bad key, 404 unknown model or method, 422 bad arguments) with Odoo's
``{"name", "message"}``, which the HTTP client reports.

Either way the connector asks ``fields_get`` once per model: a field Tieout needs that the
server lacks is :class:`extractors.errors.SchemaDrift` naming the model and fields (optional
fields, such as the firm's custom ``x_harvest_id``, are then read as NULL). It reads each object
with ``search_read(domain, fields, offset, limit, order="id", context={"active_test": false})``,
paged by offset and limit in ``id`` order, archived records included. Incremental pulls add
``write_date >= since`` (Odoo datetimes are UTC ``YYYY-MM-DD HH:MM:SS``); invoice lines are read
whole, as a server or a dump may lack their write_date. Odoo has no rate limit
of its own. The models and their mappings are :mod:`extractors.odoo_models`.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from extractors.base import ConnectorContext, HttpConnector
from extractors.config import OdooSystem, secret
from extractors.errors import AuthFailed, ExtractorError, SchemaDrift
from extractors.http import JsonResponse
from extractors.mapping import ObjectMapping
from extractors.odoo_models import OdooModel, odoo_model
from extractors.paginators import OffsetLimitPaging, RequestSpec
from extractors.staging import RawSink

__all__ = ["OdooConnector"]

logger = logging.getLogger(__name__)
# What prices a timesheet line: its sales order line (model and fields read).
_SALE_LINE, _SALE_LINE_FIELDS = "sale.order.line", ("price_unit", "currency_id")
# Odoo exceptions that mean the credentials or the user's rights were refused.
_AUTH_ERRORS = frozenset({"odoo.exceptions.AccessDenied", "odoo.exceptions.AccessError"})
_MAX_MESSAGE = 300


class OdooConnector(HttpConnector):
    """Extracts Odoo models over JSON-RPC or JSON-2 (see the module docs)."""

    def __init__(self, system: str, config: OdooSystem, ctx: ConnectorContext) -> None:
        auth = config.auth
        json2 = config.protocol == "json2"
        key_env = self._key_env = config.key_env(os.environ)
        what = "Odoo API key" if key_env == auth.api_key_env else "Odoo password"
        self._key = secret(key_env, system=system, what=what)
        self._login = None if json2 else secret(auth.user_env or "", system=system, what="Odoo login")
        headers = {}
        if json2:
            headers = {"Authorization": f"bearer {self._key}", "X-Odoo-Database": config.database}
        super().__init__(system, config, ctx, headers=headers, secret=self._key, secret_env=key_env)
        self.config = config
        self._uid: int | None = None
        self._fields: dict[str, frozenset[str]] = {}
        self._sale_lines: dict[int, dict[str, Any]] = {}

    def model(self, obj: str) -> OdooModel:
        """The model ``obj`` is read from (sources.yaml ``models``, else the object's default)."""
        chosen = {str(o): name for o, name in self.config.models.items()}
        return odoo_model(obj, chosen.get(obj))

    def default_mapping(self, obj: str) -> ObjectMapping:
        """The default mapping of ``obj``: its model's (:mod:`extractors.odoo_models`)."""
        return self.model(obj).mapping

    def incremental(self, obj: str) -> bool:
        """Whether ``obj``'s model is searched by ``write_date``: all but those read whole (invoice lines)."""
        return self.model(obj).incremental

    def extract(self, obj: str, sink: RawSink, *, since: datetime | None) -> None:
        """Read ``obj``'s model page by page into ``sink`` (written at or after ``since``, if given).

        Raises:
            extractors.errors.SchemaDrift: the model lacks a field Tieout needs (not an optional
                one), or an answer is not shaped as Odoo's.
            extractors.errors.AuthFailed: the login, API key or password was refused, or the user
                may not read the model.
            extractors.errors.ExtractorError: Odoo answered with an error (its message is quoted),
                or as :meth:`extractors.http.HttpClient.request_json`.
        """
        model = self.model(obj)
        configured = {str(name): domain for name, domain in self.config.domains.items()}
        domain = list(configured.get(obj, model.domain))
        if since is not None:
            domain.append(["write_date", ">=", since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")])
        named = {
            "domain": domain,
            "fields": self._fields_of(obj, model),
            "order": "id",
            "context": {"active_test": False},
        }
        call = f"{model.name}.search_read"

        def records(response: JsonResponse) -> Any:
            return self._answer(response, obj, call)

        spec = self._call_spec(obj, model.name, "search_read", named)
        paging = OffsetLimitPaging(self.config.page_size, body_path=self._kwargs_path)
        priced = "so_line" in named["fields"] and self._sale_lines_readable(obj)
        for page in self.http.paginate(spec, paging, entity=obj, records_at=records):
            if priced:
                self._add_sale_lines(obj, page)
            sink.records(page)

    def _sale_lines_readable(self, obj: str) -> bool:
        """Whether the server has sale.order.line with its price (``fields_get``, asked once).

        A timesheet line's ``so_line`` prices it; without the model (an Odoo without the Sales app,
        or a replay of records that lack it) the lines stay unpriced, which the log says once.

        Raises:
            SchemaDrift: the model is there without ``price_unit`` or ``currency_id``.
            extractors.errors.AuthFailed, extractors.errors.SourceUnavailable: as any call.
        """
        try:
            available = self._available_fields(obj, _SALE_LINE)
        except ExtractorError as exc:
            if type(exc) is not ExtractorError:  # refused credentials, an unavailable server, ...
                raise
            logger.warning(
                "Odoo %r (%s): %s is not readable (%s); timesheet lines get no bill rate or billable amount.",
                self.system, obj, _SALE_LINE, exc.message,
            )  # fmt: skip
            return False
        missing = [f for f in _SALE_LINE_FIELDS if f not in available]
        if missing:
            raise SchemaDrift(
                f"Odoo {self.system!r} ({obj}): model {_SALE_LINE} has no field {', '.join(missing)} "
                "(fields_get); it prices the timesheet lines.",
                source_system=self.system, entity=obj,
            )  # fmt: skip
        return True

    def _add_sale_lines(self, obj: str, page: list[dict[str, Any]]) -> None:
        """Add ``_sale_line`` (``price_unit``, ``currency_id``) to each record with a ``so_line``.

        Sales order lines are read once per connector (``search_read`` by id) and kept.
        """
        wanted = sorted({r["so_line"][0] for r in page if r.get("so_line")} - self._sale_lines.keys())
        if wanted:
            named = {"domain": [["id", "in", wanted]], "fields": list(_SALE_LINE_FIELDS),
                     "context": {"active_test": False}}  # fmt: skip
            spec = self._call_spec(obj, _SALE_LINE, "search_read", named)
            response = self.http.request_json(spec, entity=obj)
            for line in self._answer(response, obj, f"{_SALE_LINE}.search_read"):
                self._sale_lines[line["id"]] = {f: line.get(f) for f in _SALE_LINE_FIELDS}
        for record in page:
            line = self._sale_lines.get(record["so_line"][0]) if record.get("so_line") else None
            if line is not None:
                record["_sale_line"] = line

    def _fields_of(self, obj: str, model: OdooModel) -> list[str]:
        """The fields of ``model`` to read: all it should have, less the optional ones it lacks.

        Raises:
            SchemaDrift: a needed field is missing on the server.
        """
        available = self._available_fields(obj, model.name)
        missing = [f for f in model.fields if f not in available and f not in model.optional]
        if missing:
            raise SchemaDrift(
                f"Odoo {self.system!r} ({obj}): model {model.name} on database {self.config.database!r} "
                f"has no field {', '.join(missing)} (fields_get); Tieout reads {obj} from it with these "
                "fields (Odoo 17-19 with the Sales, Project, Timesheets and Invoicing apps). Install the "
                "module that adds them, or read the object from another model (sources.yaml `models`).",
                source_system=self.system, entity=obj,
            )  # fmt: skip
        return [f for f in model.fields if f in available]

    def _available_fields(self, obj: str, model: str) -> frozenset[str]:
        """Return the fields ``model`` has (``fields_get``, asked once per model)."""
        if model not in self._fields:
            spec = self._call_spec(obj, model, "fields_get", {"attributes": ["type"]})
            response = self.http.request_json(spec, entity=obj)
            described = self._answer(response, obj, f"{model}.fields_get")
            if not isinstance(described, dict):
                raise SchemaDrift(
                    f"{self._where(obj, response)}: {model}.fields_get answered "
                    f"{type(described).__name__}, not the model's fields.",
                    **self._context(obj, response),
                )
            self._fields[model] = frozenset(described)
        return self._fields[model]

    # -- the two protocols --

    @property
    def _kwargs_path(self) -> str:
        """Where the named arguments sit in a call's JSON body (paging writes offset and limit there)."""
        return "" if self.config.protocol == "json2" else "params.args.6"

    def _call_spec(self, obj: str, model: str, method: str, named: dict[str, Any]) -> RequestSpec:
        """The request calling ``model.method(**named)`` as the user (JSON-RPC: logging in first).

        JSON-RPC passes a ``domain`` positionally, as Odoo's own clients do.
        """
        if self.config.protocol == "json2":
            return RequestSpec(f"/json/2/{model}/{method}", method="POST", json=named)
        kwargs = dict(named)
        args: list[Any] = [kwargs.pop("domain")] if "domain" in kwargs else []
        uid = self._authenticate(obj)
        call = [self.config.database, uid, self._key, model, method, args, kwargs]
        return self._rpc_spec("object", "execute_kw", call)

    def _answer(self, response: JsonResponse, obj: str, call: str) -> Any:
        """The result of a call: JSON-2 answers it bare, JSON-RPC in ``result`` (see :meth:`_result`)."""
        return response.payload if self.config.protocol == "json2" else self._result(response, obj, call)

    def _authenticate(self, obj: str) -> int:
        """Return the user's uid, logging in on first use (JSON-RPC).

        Raises:
            AuthFailed: Odoo refused the login and key.
        """
        if self._uid is not None:
            return self._uid
        args: list[Any] = [self.config.database, self._login, self._key, {}]
        response = self.http.request_json(self._rpc_spec("common", "authenticate", args), entity=obj)
        uid = self._result(response, obj, "common.authenticate")
        if uid is False:
            user_env = self.config.auth.user_env
            raise AuthFailed(
                f"{self._where(obj, response)}: Odoo refused the login of {user_env} on database "
                f"{self.config.database!r}; check the login in {user_env}, the database name in "
                f"sources.yaml, and rotate the key in {self._key_env} (it must be that user's).",
                **self._context(obj, response),
            )
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise SchemaDrift(
                f"{self._where(obj, response)}: common.authenticate answered {uid!r}, not a user id.",
                **self._context(obj, response),
            )
        self._uid = uid
        return uid

    @staticmethod
    def _rpc_spec(service: str, method: str, args: list[Any]) -> RequestSpec:
        params = {"service": service, "method": method, "args": args}
        return RequestSpec(
            "/jsonrpc", method="POST", json={"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}
        )

    def _result(self, response: JsonResponse, obj: str, call: str) -> Any:
        """Return the ``result`` of a JSON-RPC answer.

        Raises:
            AuthFailed: the answer is an ``AccessDenied`` or ``AccessError``.
            ExtractorError: the answer is another error.
            SchemaDrift: the body is not a JSON-RPC answer.
        """
        payload = response.payload
        if not isinstance(payload, dict) or ("result" not in payload and "error" not in payload):
            raise SchemaDrift(
                f"{self._where(obj, response)}: {call} answered {type(payload).__name__} without "
                "'result' or 'error'; check that base_url is the Odoo server.",
                **self._context(obj, response),
            )
        error = payload.get("error")
        if error is None:
            return payload["result"]
        data = error.get("data") if isinstance(error, dict) else None
        data = data if isinstance(data, dict) else {}
        name = str(data.get("name") or "")
        message = data.get("message") or (error.get("message") if isinstance(error, dict) else error)
        message = self.http.redactor.text(str(message))[:_MAX_MESSAGE]
        if name in _AUTH_ERRORS:
            auth = self.config.auth
            raise AuthFailed(
                f"{self._where(obj, response)}: Odoo refused {call} on database {self.config.database!r}: "
                f"{name}: {message}; check the user in {auth.user_env or 'the API key'} and its access "
                f"rights, and rotate the key in {self._key_env}.",
                **self._context(obj, response),
            )
        raise ExtractorError(
            f"{self._where(obj, response)}: Odoo refused {call} on database {self.config.database!r}: "
            f"{name or 'error'}: {message}; check the database name and the {obj} domain in sources.yaml.",
            **self._context(obj, response),
        )

    def _where(self, obj: str, response: JsonResponse) -> str:
        return f"Odoo {self.system!r} ({obj}, POST {response.url})"

    def _context(self, obj: str, response: JsonResponse) -> dict[str, Any]:
        return {
            "source_system": self.system,
            "entity": obj,
            "url": response.url,
            "status_code": response.status_code,
            "attempts": response.attempts,
        }
