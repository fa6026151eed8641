"""Odoo external JSON-RPC API (the ERP): partners, projects, timesheet lines and customer invoices.

Every call is ``POST /jsonrpc`` with ``{"jsonrpc": "2.0", "method": "call", "params": {"service",
"method", "args"}}``. The connector logs in once with ``common.authenticate [db, login, api_key,
{}]`` (the uid, or ``false`` for bad credentials), asks ``fields_get`` once per model which of the
wanted fields exist (``x_harvest_id`` and ``x_billing_model`` are the firm's custom fields, which a
stock Odoo lacks: the mapping then reads them as NULL), and reads each object with ``object.execute_kw
[db, uid, api_key, model, "search_read", [domain], {fields, offset, limit, order, context}]``, paged
by offset and limit in ``id`` order, archived records included (``active_test: false``).
Incremental pulls add ``write_date >= since`` (Odoo datetimes are UTC ``YYYY-MM-DD HH:MM:SS``).
Odoo answers errors with HTTP 200 and a JSON-RPC ``error`` (``odoo.exceptions.AccessDenied`` for a
bad key): they become :class:`extractors.errors.AuthFailed` or
:class:`extractors.errors.ExtractorError` with Odoo's message. Odoo has no rate limit of its own.

Odoo's records: a many2one is ``[id, "display name"]`` or ``false`` (``$.partner_id[0]`` is NULL
when empty); an empty char, selection or date is ``false`` (hence the ``nullif(..., 'false')``);
an empty integer is ``0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from extractors.base import ConnectorContext, HttpConnector
from extractors.config import OdooSystem, secret
from extractors.errors import AuthFailed, ExtractorError, SchemaDrift
from extractors.http import JsonResponse
from extractors.mapping import Lookup, ObjectMapping
from extractors.paginators import OffsetLimitPaging, RequestSpec
from extractors.staging import RawSink

__all__ = ["MAPPINGS", "MODELS", "OdooConnector", "OdooModel"]


@dataclass(frozen=True)
class OdooModel:
    """One Odoo model read for a canonical object.

    Attributes:
        name: the model, e.g. ``account.analytic.line``.
        domain: the default search domain (Odoo's Polish-notation list, as JSON lists); the
            system's ``domains`` in sources.yaml replace it.
        fields: the fields to read, those of them the server has (see :meth:`OdooConnector.extract`).
    """

    name: str
    domain: list[Any]
    fields: tuple[str, ...]


_AUDIT = ("create_date", "write_date")

MODELS: dict[str, OdooModel] = {
    # Companies and whoever is a customer (contacts of companies are neither).
    "customers": OdooModel("res.partner", ["|", ["is_company", "=", True], ["customer_rank", ">", 0]], (
        "id", "name", "vat", "country_id", "property_product_pricelist", "company_id", "is_company",
        "customer_rank", "active", "ref", *_AUDIT,
    )),
    "projects": OdooModel("project.project", [], (
        "id", "name", "account_id", "partner_id", "company_id", "currency_id", "allow_billable",
        "pricing_type", "x_billing_model", "active", "date_start", "date", "x_harvest_id", *_AUDIT,
    )),
    # Timesheet lines are the analytic lines with a project.
    "time_entries": OdooModel("account.analytic.line", [["project_id", "!=", False]], (
        "id", "date", "project_id", "account_id", "partner_id", "employee_id", "unit_amount", "amount",
        "currency_id", "company_id", "timesheet_invoice_id", "timesheet_invoice_type", "x_harvest_id",
        *_AUDIT,
    )),
    "invoices": OdooModel("account.move", [["move_type", "in", ["out_invoice", "out_refund"]]], (
        "id", "name", "ref", "move_type", "state", "payment_state", "partner_id", "commercial_partner_id",
        "company_id", "currency_id", "invoice_date", "invoice_date_due", "amount_untaxed", "amount_tax",
        "amount_total", "amount_residual", "x_harvest_id", *_AUDIT,
    )),
}  # fmt: skip

_TIMESTAMPS = {  # UTC without a zone on the wire
    "created_at": "nullif($.create_date, 'false') || '+00'",
    "updated_at": "nullif($.write_date, 'false') || '+00'",
}
_LEGAL_ENTITY = Lookup("$.company_id[0]", "legal_entities", strict=False)
_STATUS = Lookup("$.active", "active_flag")
# An empty integer custom field reads as 0 (a char one as false).
_HARVEST_ID = "nullif(nullif($.x_harvest_id, 'false'), '0')"
# The project code is the analytic account's code, which its display name starts with: "[CODE] name".
_ACCOUNT_CODE = r"nullif(regexp_extract($.account_id[1], '^\[([^\]]+)\]', 1), '')"
# Odoo keeps credit-note amounts positive; canonical amounts are negative for credit notes.
_SIGN = "CASE $.move_type WHEN 'out_refund' THEN -1 ELSE 1 END"


def _signed(path: str) -> str:
    return f"{_SIGN} * CAST({path} AS DECIMAL(18,2))"


MAPPINGS: dict[str, ObjectMapping] = {
    "customers": ObjectMapping("customers", {
        "customer_id": "$.id", "name": "$.name", "tax_id": "nullif($.vat, 'false')",
        "country": Lookup("$.country_id[1]", "countries", strict=False),
        # The pricelist's display name ends in its currency: "Default (USD)".
        "currency": r"nullif(regexp_extract($.property_product_pricelist[1], '\(([A-Z]{3})\)$', 1), '')",
        "legal_entity_id": _LEGAL_ENTITY, "is_customer": "CAST($.customer_rank AS INTEGER) > 0",
        "status": _STATUS, "crm_id": "nullif($.ref, 'false')", "erp_id": "$.id", **_TIMESTAMPS,
    }),
    "projects": ObjectMapping("projects", {
        "project_id": "$.id", "code": _ACCOUNT_CODE, "name": "$.name", "customer_id": "$.partner_id[0]",
        # The firm's x_billing_model, else the stock pricing type (false on a non-billable project).
        "billing_model": Lookup(
            "coalesce(nullif($.x_billing_model, 'false'), CASE WHEN $.allow_billable = 'false' "
            "THEN 'non_billable' ELSE nullif($.pricing_type, 'false') END)", "odoo_billing_model",
        ),
        "status": _STATUS, "currency": "$.currency_id[1]", "legal_entity_id": _LEGAL_ENTITY,
        "start_date": "nullif($.date_start, 'false')", "end_date": "nullif($.date, 'false')",
        "psa_id": _HARVEST_ID, "erp_id": "$.id", **_TIMESTAMPS,
    }),
    "time_entries": ObjectMapping("time_entries", {
        "time_entry_id": "$.id", "project_id": "$.project_id[0]", "project_code": _ACCOUNT_CODE,
        "customer_id": "$.partner_id[0]", "person_id": "$.employee_id[0]",
        "person_name": "$.employee_id[1]", "spent_date": "$.date", "billing_period": "left($.date, 7)",
        "hours": "$.unit_amount", "billable": "$.timesheet_invoice_type LIKE 'billable%'",
        "approved": "true", "cost_amount": "-CAST($.amount AS DECIMAL(18,2))",
        "currency": "$.currency_id[1]", "invoice_id": "$.timesheet_invoice_id[0]",
        "legal_entity_id": _LEGAL_ENTITY, "psa_id": _HARVEST_ID, **_TIMESTAMPS,
    }),
    "invoices": ObjectMapping("invoices", {
        "invoice_id": "$.id", "number": "nullif(nullif($.name, 'false'), '/')",  # drafts: '/' or false
        "kind": Lookup("$.move_type", "odoo_move_type"),
        "customer_id": "coalesce($.commercial_partner_id[0], $.partner_id[0])",
        "legal_entity_id": _LEGAL_ENTITY, "issue_date": "nullif($.invoice_date, 'false')",
        "due_date": "nullif($.invoice_date_due, 'false')", "currency": "$.currency_id[1]",
        "amount_untaxed": _signed("$.amount_untaxed"), "tax_amount": _signed("$.amount_tax"),
        "amount_total": _signed("$.amount_total"), "amount_due": _signed("$.amount_residual"),
        # Posted moves say paid or not in payment_state; drafts and cancelled ones in state.
        "status": Lookup("CASE WHEN $.state = 'posted' THEN $.payment_state ELSE $.state END",
                         "odoo_invoice_state"),
        "psa_id": _HARVEST_ID, "psa_number": "nullif($.ref, 'false')", **_TIMESTAMPS,
    }),
}  # fmt: skip

# Odoo exceptions that mean the credentials or the user's rights were refused.
_AUTH_ERRORS = frozenset({"odoo.exceptions.AccessDenied", "odoo.exceptions.AccessError"})
_MAX_MESSAGE = 300


class OdooConnector(HttpConnector):
    """Extracts Odoo models through the external JSON-RPC API (see the module docs)."""

    def __init__(self, system: str, config: OdooSystem, ctx: ConnectorContext) -> None:
        self._login = secret(config.auth.user_env, system=system, what="Odoo login")
        self._api_key = secret(config.auth.api_key_env, system=system, what="Odoo API key")
        super().__init__(
            system, config, ctx, headers={}, secret=self._api_key, secret_env=config.auth.api_key_env
        )
        self.config = config
        self._uid: int | None = None
        self._fields: dict[str, frozenset[str]] = {}

    def default_mapping(self, obj: str) -> ObjectMapping:
        """The default mapping of ``obj`` (:data:`MAPPINGS`)."""
        return MAPPINGS[obj]

    def incremental(self, obj: str) -> bool:
        """Every model is searched by ``write_date``, so every pull can be incremental."""
        return True

    def extract(self, obj: str, sink: RawSink, *, since: datetime | None) -> None:
        """Read ``obj``'s model page by page into ``sink`` (written at or after ``since``, if given).

        Only the wanted fields the server has are requested (:attr:`OdooModel.fields`).

        Raises:
            extractors.errors.AuthFailed: the login or API key was refused, or the user may not
                read the model.
            extractors.errors.ExtractorError: Odoo answered with an error (its message is quoted),
                or as :meth:`extractors.http.HttpClient.request_json`.
        """
        model = MODELS[obj]
        configured = {str(name): domain for name, domain in self.config.domains.items()}
        domain = list(configured.get(obj, model.domain))
        if since is not None:
            domain.append(["write_date", ">=", since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")])
        available = self._available_fields(obj, model.name)
        kwargs = {
            "fields": [f for f in model.fields if f in available],
            "order": "id",
            "context": {"active_test": False},
        }
        call = f"{model.name}.search_read"

        def records(response: JsonResponse) -> Any:
            return self._result(response, obj, call)

        spec = self._execute_kw(obj, model.name, "search_read", [domain], kwargs)
        paging = OffsetLimitPaging(self.config.page_size, body_path="params.args.6")
        for page in self.http.paginate(spec, paging, entity=obj, records_at=records):
            sink.records(page)

    # -- JSON-RPC --

    def _authenticate(self, obj: str) -> int:
        """Return the user's uid, logging in on first use.

        Raises:
            AuthFailed: Odoo refused the login and API key.
        """
        if self._uid is not None:
            return self._uid
        args = [self.config.database, self._login, self._api_key, {}]
        response = self.http.request_json(self._rpc_spec("common", "authenticate", args), entity=obj)
        uid = self._result(response, obj, "common.authenticate")
        if uid is False:
            auth = self.config.auth
            raise AuthFailed(
                f"{self._where(obj, response)}: Odoo refused the login of {auth.user_env} on database "
                f"{self.config.database!r}; check the login in {auth.user_env}, the database name in "
                f"sources.yaml, and rotate the API key in {auth.api_key_env} (it must be that user's).",
                **self._context(obj, response),
            )
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise SchemaDrift(
                f"{self._where(obj, response)}: common.authenticate answered {uid!r}, not a user id.",
                **self._context(obj, response),
            )
        self._uid = uid
        return uid

    def _available_fields(self, obj: str, model: str) -> frozenset[str]:
        """Return the fields ``model`` has (``fields_get``, asked once per model)."""
        if model not in self._fields:
            spec = self._execute_kw(obj, model, "fields_get", [], {"attributes": ["type"]})
            response = self.http.request_json(spec, entity=obj)
            described = self._result(response, obj, f"{model}.fields_get")
            if not isinstance(described, dict):
                raise SchemaDrift(
                    f"{self._where(obj, response)}: {model}.fields_get answered "
                    f"{type(described).__name__}, not the model's fields.",
                    **self._context(obj, response),
                )
            self._fields[model] = frozenset(described)
        return self._fields[model]

    def _execute_kw(
        self, obj: str, model: str, method: str, args: list[Any], kwargs: dict[str, Any]
    ) -> RequestSpec:
        """Return the request calling ``model.method(*args, **kwargs)`` as the user (logging in first)."""
        uid = self._authenticate(obj)
        call = [self.config.database, uid, self._api_key, model, method, args, kwargs]
        return self._rpc_spec("object", "execute_kw", call)

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
                f"{name}: {message}; check the user in {auth.user_env} and its access rights, and "
                f"rotate the API key in {auth.api_key_env}.",
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
