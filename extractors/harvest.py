"""Harvest API v2 (the PSA): clients, projects, time entries and invoices.

Endpoints are ``GET /v2/<resource>`` with ``per_page`` (at most 2000) and Harvest's own paging
links (``links.next``); incremental pulls send ``updated_since`` (ISO 8601, records changed at or
after it). Auth is a personal access token (``Authorization: Bearer``) plus the
``Harvest-Account-Id`` header; Harvest asks every client to send a ``User-Agent`` naming it.
Harvest allows 100 requests per 15 s per token (400 per minute), enforced client-side from
``max_requests_per_min``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from extractors.base import ConnectorContext, HttpConnector
from extractors.config import HarvestSystem, secret
from extractors.mapping import Lookup, ObjectMapping
from extractors.paginators import NextLinkPaging, RequestSpec
from extractors.staging import RawSink

__all__ = ["ENDPOINTS", "MAPPINGS", "HarvestConnector"]


@dataclass(frozen=True)
class Endpoint:
    """One Harvest listing: its path and the key of the records list in the envelope."""

    path: str
    records_at: str


ENDPOINTS: dict[str, Endpoint] = {
    "customers": Endpoint("/v2/clients", "clients"),
    "projects": Endpoint("/v2/projects", "projects"),
    "time_entries": Endpoint("/v2/time_entries", "time_entries"),
    "invoices": Endpoint("/v2/invoices", "invoices"),
}

_MONEY = "DECIMAL(18,2)"
_HOURS = f"CAST($.hours AS {_MONEY})"
# The net amount is the sum of the line items (Harvest's ``amount`` is that, less the discount, plus
# both taxes), so a total that disagrees with its lines shows in the invoices suite's sum check.
_LINES_TOTAL = (
    "coalesce(list_sum(list_transform(CAST(json_extract_string($.line_items, '$[*].amount') AS VARCHAR[]), "
    f"lambda x: CAST(x AS {_MONEY}))), 0)"
)
_TIMESTAMPS = {"created_at": "$.created_at", "updated_at": "$.updated_at"}

MAPPINGS: dict[str, ObjectMapping] = {
    "customers": ObjectMapping("customers", {
        "customer_id": "$.id", "name": "$.name", "currency": "$.currency", "is_customer": "true",
        "status": Lookup("$.is_active", "active_flag"), "psa_id": "$.id", **_TIMESTAMPS,
    }),
    "projects": ObjectMapping("projects", {
        "project_id": "$.id", "code": "$.code", "name": "$.name", "customer_id": "$.client.id",
        "billing_model": Lookup("$.is_fixed_fee || '|' || $.is_billable", "harvest_billing_model"),
        "status": Lookup("$.is_active", "active_flag"), "currency": "$.client.currency",
        "contract_amount": "$.fee", "start_date": "$.starts_on", "end_date": "$.ends_on",
        "project_manager": "$._project_managers",  # added by the connector (user assignments)
        "psa_id": "$.id", **_TIMESTAMPS,
    }),
    "time_entries": ObjectMapping("time_entries", {
        "time_entry_id": "$.id", "project_id": "$.project.id", "project_code": "$.project.code",
        "customer_id": "$.client.id", "person_id": "$.user.id", "person_name": "$.user.name",
        "spent_date": "$.spent_date", "billing_period": "left($.spent_date, 7)", "hours": "$.hours",
        "billable": "$.billable", "approved": "$.is_closed", "bill_rate": "$.billable_rate",
        "cost_rate": "$.cost_rate",
        "billable_amount": f"round({_HOURS} * CAST($.billable_rate AS DECIMAL(18,2)), 2)",
        "cost_amount": f"round({_HOURS} * CAST($.cost_rate AS DECIMAL(18,2)), 2)",
        "currency": "$.client.currency", "bill_currency": "$.client.currency", "invoice_id": "$.invoice.id",
        "psa_id": "$.id", **_TIMESTAMPS,
    }),
    "invoices": ObjectMapping("invoices", {
        "invoice_id": "$.id", "number": "$.number", "kind": "'invoice'", "customer_id": "$.client.id",
        "issue_date": "$.issue_date", "due_date": "$.due_date", "period_start": "$.period_start",
        "period_end": "$.period_end", "billing_period": "left($.period_start, 7)",
        "currency": "$.currency",
        "amount_untaxed": f"{_LINES_TOTAL} - coalesce(CAST($.discount_amount AS {_MONEY}), 0)",
        "tax_amount": f"CAST($.tax_amount AS {_MONEY}) + coalesce(CAST($.tax2_amount AS {_MONEY}), 0)",
        "amount_total": "$.amount", "amount_due": "$.due_amount",
        "status": Lookup("$.state", "harvest_invoice_state"), "psa_id": "$.id", "psa_number": "$.number",
        **_TIMESTAMPS,
    }),
}  # fmt: skip


class HarvestConnector(HttpConnector):
    """Extracts Harvest v2 listings page by page (see the module docs)."""

    def __init__(self, system: str, config: HarvestSystem, ctx: ConnectorContext) -> None:
        token = secret(config.auth.token_env, system=system, what="Harvest access token")
        account = secret(config.auth.account_id_env, system=system, what="Harvest account id")
        super().__init__(system, config, ctx, secret=token, secret_env=config.auth.token_env, headers={
            "Authorization": f"Bearer {token}",
            "Harvest-Account-Id": account,
            "User-Agent": "Tieout reconciliation (https://github.com/tieout)",
        })  # fmt: skip
        self.config = config

    def default_mapping(self, obj: str) -> ObjectMapping:
        """The default mapping of ``obj`` (:data:`MAPPINGS`)."""
        return MAPPINGS[obj]

    def incremental(self, obj: str) -> bool:
        """Every Harvest listing takes ``updated_since``, unless sources.yaml turns it off."""
        return self.config.incremental

    def extract(self, obj: str, sink: RawSink, *, since: datetime | None) -> None:
        """Page through ``obj``'s listing into ``sink`` (changed since ``since``, if given).

        Raises:
            extractors.errors.ExtractorError: as :meth:`extractors.http.HttpClient.paginate`.
        """
        endpoint = ENDPOINTS[obj]
        params: dict[str, str | int] = {"per_page": self.config.page_size}
        if since is not None:
            params["updated_since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        spec = RequestSpec(endpoint.path, params=params)
        managers = self._project_managers(obj) if obj == "projects" else {}
        for page in self.http.paginate(spec, NextLinkPaging("links.next"), entity=obj,
                                       records_at=endpoint.records_at):  # fmt: skip
            for record in page if obj == "projects" else ():
                record["_project_managers"] = managers.get(record.get("id"))
            sink.records(page)

    def _project_managers(self, obj: str) -> dict[int, str]:
        """Project id -> the names of its project managers, sorted and joined by ``, ``.

        Harvest keeps them on the user assignments (``GET /v2/user_assignments``,
        ``is_project_manager``), not on the project, so every pull of projects reads them all
        (archived projects' assignments included: an archived project keeps its manager).
        """
        params: dict[str, str | int] = {"per_page": self.config.page_size}
        spec = RequestSpec("/v2/user_assignments", params=params)
        names: dict[int, set[str]] = {}
        for page in self.http.paginate(spec, NextLinkPaging("links.next"), entity=obj,
                                       records_at="user_assignments"):  # fmt: skip
            for assignment in page:
                user, project = assignment.get("user") or {}, assignment.get("project") or {}
                if assignment.get("is_project_manager") and user.get("name") and "id" in project:
                    names.setdefault(project["id"], set()).add(str(user["name"]))
        return {project: ", ".join(sorted(people)) for project, people in names.items()}
