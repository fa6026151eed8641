"""HubSpot CRM v3 (the CRM): companies as customers, closed-won deals as projects.

Endpoints are ``GET /crm/v3/objects/<type>`` with ``limit`` (at most 100) and HubSpot's cursor
(``paging.next.after``, sent back as ``after``); the listing has no updated-since filter, so every
pull is a full one. HubSpot returns only a few default properties unless ``properties`` names
them, so each request asks for every ``$.properties.<name>`` the object's mapping reads (the
default mapping and the system's overrides in sources.yaml). A deal's company is an association
(``associations=companies``), not a property. Archived records are listed only with
``archived=true``, so each object is pulled twice (live, then archived) and the record's own
``archived`` flag gives the canonical status. Auth is a private-app token (``Authorization:
Bearer``). Private apps may send 100 requests per 10 s (600 per minute), enforced client-side
from ``max_requests_per_min``.

Closed-won deals are those in stage ``closedwon`` (the default pipeline's); a portal with custom
pipelines overrides the projects ``where`` in sources.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from extractors.base import ConnectorContext, HttpConnector
from extractors.config import HubSpotSystem, secret
from extractors.mapping import Expr, Lookup, ObjectMapping
from extractors.paginators import CursorPaging, RequestSpec
from extractors.staging import RawSink

__all__ = ["ENDPOINTS", "MAPPINGS", "HubSpotConnector"]


@dataclass(frozen=True)
class Endpoint:
    """One HubSpot object listing: its path and the associated object types to include."""

    path: str
    associations: tuple[str, ...] = ()


ENDPOINTS: dict[str, Endpoint] = {
    "customers": Endpoint("/crm/v3/objects/companies"),
    "projects": Endpoint("/crm/v3/objects/deals", associations=("companies",)),
}

_COMMON: dict[str, Expr] = {
    "status": Lookup("$.archived", "archived_flag"), "crm_id": "$.id",
    "created_at": "$.createdAt", "updated_at": "$.updatedAt",
}  # fmt: skip

MAPPINGS: dict[str, ObjectMapping] = {
    "customers": ObjectMapping("customers", {
        "customer_id": "$.id", "name": "$.properties.name", "tax_id": "$.properties.vat_number",
        "country": Lookup("$.properties.country", "countries", strict=False),
        "currency": "$.properties.billing_currency",
        "legal_entity_id": Lookup("$.properties.legal_entity", "legal_entities", strict=False),
        "is_customer": "coalesce($.properties.lifecyclestage = 'customer', false)",
        "psa_id": "$.properties.harvest_client_id", **_COMMON,
    }),
    "projects": ObjectMapping("projects", {
        "project_id": "$.id", "code": "$.properties.project_code", "name": "$.properties.dealname",
        "customer_id": "$.associations.companies.results[0].id",
        "currency": "$.properties.deal_currency_code", "contract_amount": "$.properties.amount",
        "start_date": "left($.properties.closedate, 10)", "won_at": "$.properties.closedate", **_COMMON,
    }, where="$.properties.dealstage = 'closedwon'"),
}  # fmt: skip

_PROPERTY = re.compile(r"\$\.properties\.([A-Za-z_][A-Za-z0-9_]*)")


class HubSpotConnector(HttpConnector):
    """Extracts HubSpot CRM v3 object listings page by page (see the module docs)."""

    def __init__(self, system: str, config: HubSpotSystem, ctx: ConnectorContext) -> None:
        token = secret(config.auth.token_env, system=system, what="HubSpot private app token")
        super().__init__(system, config, ctx, headers={"Authorization": f"Bearer {token}"}, secret=token,
                         secret_env=config.auth.token_env)  # fmt: skip
        self.config = config

    def default_mapping(self, obj: str) -> ObjectMapping:
        """The default mapping of ``obj`` (:data:`MAPPINGS`)."""
        return MAPPINGS[obj]

    def incremental(self, obj: str) -> bool:
        """Never: HubSpot's object listings cannot filter on the last change."""
        return False

    def properties(self, obj: str) -> list[str]:
        """The properties to ask for: those the default mapping and sources.yaml's override read."""
        mappings = [MAPPINGS[obj]]
        override = self.config.mappings.get(obj)  # type: ignore[call-overload]
        if override is not None:
            mappings.append(override.applied_to(MAPPINGS[obj]))
        exprs = [e for m in mappings for e in (m.where, *m.fields.values())]
        texts = [e if isinstance(e, str) else e.value for e in exprs if e is not None]
        return sorted({name for text in texts for name in _PROPERTY.findall(text)})

    def extract(self, obj: str, sink: RawSink, *, since: datetime | None) -> None:
        """Page through ``obj``'s live records, then its archived ones, into ``sink``.

        ``since`` is ignored: every pull is a full one (:meth:`incremental`).

        Raises:
            extractors.errors.ExtractorError: as :meth:`extractors.http.HttpClient.paginate`.
        """
        endpoint = ENDPOINTS[obj]
        properties = ",".join(self.properties(obj))
        params: dict[str, str | int] = {"limit": self.config.page_size, "properties": properties}
        if endpoint.associations:
            params["associations"] = ",".join(endpoint.associations)
        for archived in ("false", "true"):
            spec = RequestSpec(endpoint.path, params={**params, "archived": archived})
            for page in self.http.paginate(spec, CursorPaging("paging.next.after", "after"), entity=obj,
                                           records_at="results"):  # fmt: skip
                sink.records(page)
