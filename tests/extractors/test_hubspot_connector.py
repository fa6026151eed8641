"""The HubSpot connector against the HubSpot simulator in-process: raw pages to canonical snapshots."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow.parquet as pq
import pycountry
import pytest

from data.canonical import CANONICAL
from demo.hubspot import create_app
from demo.store import DemoStore
from demo.tables import HUBSPOT_COMPANIES, HUBSPOT_DEALS, Table
from extractors.base import ConnectorContext
from extractors.config import HubSpotSystem
from extractors.errors import AuthFailed
from extractors.hubspot import HubSpotConnector
from extractors.staging import RawSink
from extractors.statuses import value_maps
from extractors.transform import SnapshotCounts, build_snapshot

TOKEN = "pat-na1-hubspot-connector-test"
TOKEN_ENV = "TIEOUT_TEST_HUBSPOT_TOKEN"
PAGE_SIZE = 20
LINEAGE = {
    "system": "'crm'",
    "snapshot_id": "'s1'",
    "run_id": "'r1'",
    "extracted_at": "TIMESTAMPTZ '2026-11-20 00:00:00+00'",
}

# starlette 1.10's TestClient warns that it prefers httpx2 (with httpx it is still an httpx.Client)
# and that it ignores per-request timeouts (which HttpClient always sends; in-process they are moot).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
    pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument with the TestClient"),
]


@pytest.fixture(scope="module")
def crm_demo(small_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small firm's CRM tables with a few companies and closed-won deals archived.

    The small firm archives nothing, so the connector's second pass (``archived=true``) would
    go untested on it.
    """
    demo = tmp_path_factory.mktemp("crm_demo")
    shutil.copyfile(small_demo / "manifest.json", demo / "manifest.json")
    con = duckdb.connect()
    for t, where in ((HUBSPOT_COMPANIES, "TRUE"), (HUBSPOT_DEALS, "dealstage = 'closedwon'")):
        src = t.glob(small_demo)
        target = t.path(demo)
        target.mkdir(parents=True)
        con.execute(
            f"COPY (SELECT * REPLACE (archived OR id IN (SELECT id FROM read_parquet('{src}') WHERE {where} "
            f"ORDER BY CAST(id AS BIGINT) LIMIT 3 OFFSET 5) AS archived) FROM read_parquet('{src}')) "
            f"TO '{target / 'part-00000.parquet'}' (FORMAT parquet)"
        )
    con.close()
    return demo


@pytest.fixture()
def transport(crm_demo: Path) -> Iterator[httpx.BaseTransport]:
    """The simulator's in-process transport (the TestClient's own)."""
    from starlette.testclient import TestClient  # importing it warns (see pytestmark)

    store = DemoStore(crm_demo)
    app, _ = create_app(store, token=TOKEN, faults=None)
    with TestClient(app, base_url="http://hubspot.sim") as client:
        yield client._transport
    store.close()


class Recording(httpx.BaseTransport):
    """Pass requests on to ``inner``, keeping each one."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)


def connect(
    tmp_path: Path,
    transport: httpx.BaseTransport,
    monkeypatch: pytest.MonkeyPatch,
    *,
    token: str = TOKEN,
    **config: Any,
) -> HubSpotConnector:
    monkeypatch.setenv(TOKEN_ENV, token)
    system = HubSpotSystem.model_validate({
        "connector": "hubspot", "base_url": "http://hubspot.sim", "auth": {"token_env": TOKEN_ENV},
        "objects": ["customers", "projects"], "page_size": PAGE_SIZE, **config,
    })  # fmt: skip
    ctx = ConnectorContext(home=tmp_path, correlation_id="c1", transport=transport, sleep=lambda s: None)
    return HubSpotConnector("crm", system, ctx)


def snapshot(
    connector: HubSpotConnector, obj: str, tmp_path: Path
) -> tuple[SnapshotCounts, list[dict[str, Any]]]:
    """Extract ``obj`` and map it as the pipeline does; return the counts and the canonical rows."""
    sink = RawSink(tmp_path / "raw" / obj)
    connector.extract(obj, sink, since=None)
    raw, json_records = sink.relation()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    staged = tmp_path / "st" / obj
    counts = build_snapshot(
        con, raw=raw, json_records=json_records, mapping=connector.default_mapping(obj),
        table=CANONICAL[obj], value_maps=value_maps({}), lineage=LINEAGE, staged=staged, previous=None,
    )  # fmt: skip
    con.close()
    return counts, pq.read_table(staged / "canonical" / "data.parquet").to_pylist()


def demo_rows(t: Table, demo: Path, where: str = "TRUE") -> dict[str, dict[str, Any]]:
    """Rows of a demo table by id, read with DuckDB straight from its Parquet files."""
    con = duckdb.connect()
    table = con.sql(f"SELECT * FROM read_parquet('{t.glob(demo)}') WHERE {where}").to_arrow_table()
    con.close()
    return {row["id"]: row for row in table.to_pylist()}


def test_customers_are_every_company_once(
    tmp_path: Path, transport: httpx.BaseTransport, crm_demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = connect(tmp_path, transport, monkeypatch)
    counts, rows = snapshot(connector, "customers", tmp_path)
    connector.close()
    companies = demo_rows(HUBSPOT_COMPANIES, crm_demo)

    assert counts.quarantined == 0 and counts.received == counts.rows == len(companies)
    assert sorted(r["customer_id"] for r in rows) == sorted(companies)
    assert sum(c["archived"] for c in companies.values()) == 3
    for row in rows:
        company = companies[row["customer_id"]]
        assert (row["name"], row["tax_id"], row["currency"], row["legal_entity_id"], row["psa_id"]) == (
            company["name"], company["vat_number"], company["billing_currency"], company["legal_entity"],
            company["harvest_client_id"],
        )  # fmt: skip
        assert row["country"] == pycountry.countries.lookup(company["country"]).alpha_2
        assert row["is_customer"] is (company["lifecyclestage"] == "customer")
        assert row["status"] == ("archived" if company["archived"] else "active")
        assert row["crm_id"] == row["customer_id"] and row["erp_id"] is None
        assert (row["created_at"], row["updated_at"]) == (
            company["createdate"],
            company["hs_lastmodifieddate"],
        )


def test_projects_are_the_closed_won_deals(
    tmp_path: Path, transport: httpx.BaseTransport, crm_demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = connect(tmp_path, transport, monkeypatch)
    counts, rows = snapshot(connector, "projects", tmp_path)
    connector.close()
    won = demo_rows(HUBSPOT_DEALS, crm_demo, "dealstage = 'closedwon'")

    assert counts.quarantined == 0
    assert counts.received == len(demo_rows(HUBSPOT_DEALS, crm_demo)) > counts.selected
    assert counts.selected == counts.rows == len(won)
    assert sorted(r["project_id"] for r in rows) == sorted(won)
    assert sum(d["archived"] for d in won.values()) == 3
    for row in rows:
        deal = won[row["project_id"]]
        assert (row["code"], row["name"], row["contract_amount"], row["currency"], row["customer_id"]) == (
            deal["project_code"], deal["dealname"], deal["amount"], deal["deal_currency_code"],
            deal["company_id"],
        )  # fmt: skip
        assert row["status"] == ("archived" if deal["archived"] else "active")
        assert (row["won_at"], row["start_date"]) == (deal["closedate"], deal["closedate"].date())
        assert row["crm_id"] == row["project_id"] and row["billing_model"] is None
        assert (row["created_at"], row["updated_at"]) == (deal["createdate"], deal["hs_lastmodifieddate"])


def test_wrong_token_is_auth_failed_without_the_token(
    tmp_path: Path, transport: httpx.BaseTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "pat-na1-not-the-right-token"
    connector = connect(tmp_path, transport, monkeypatch, token=wrong)
    with pytest.raises(AuthFailed) as caught:
        connector.extract("customers", RawSink(tmp_path / "raw"), since=None)
    connector.close()

    err = caught.value
    assert err.source_system == "crm" and "crm" in err.message and err.status_code == 401
    assert wrong not in err.message and wrong not in (err.url or "") and TOKEN_ENV in err.message


def test_requests_name_the_properties_associations_and_archived_passes(
    tmp_path: Path, transport: httpx.BaseTransport, crm_demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = Recording(transport)
    override = {"customers": {"fields": {"name": "$.properties.domain"}}}
    connector = connect(tmp_path, recording, monkeypatch, mappings=override)
    assert connector.incremental("customers") is False and connector.incremental("projects") is False
    connector.extract("projects", RawSink(tmp_path / "deals"), since=None)
    connector.extract("customers", RawSink(tmp_path / "companies"), since=None)
    connector.close()

    for t, path in (
        (HUBSPOT_DEALS, "/crm/v3/objects/deals"),
        (HUBSPOT_COMPANIES, "/crm/v3/objects/companies"),
    ):
        archived = [r["archived"] for r in demo_rows(t, crm_demo).values()]
        passes = [r.url.params["archived"] for r in recording.requests if r.url.path == path]
        live_pages, archived_pages = (
            math.ceil(archived.count(False) / PAGE_SIZE),
            math.ceil(sum(archived) / PAGE_SIZE),
        )
        assert passes == ["false"] * live_pages + ["true"] * archived_pages and live_pages > 1
    for request in recording.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["X-Correlation-Id"] == "c1"
        assert request.url.params["limit"] == str(PAGE_SIZE)
    deal_requests = [r for r in recording.requests if r.url.path == "/crm/v3/objects/deals"]
    assert {r.url.params["associations"] for r in deal_requests} == {"companies"}
    assert set(deal_requests[0].url.params["properties"].split(",")) == {
        "amount", "closedate", "deal_currency_code", "dealname", "dealstage", "project_code",
    }  # fmt: skip
    company_request = recording.requests[-1]
    assert "associations" not in company_request.url.params
    # The override's property (not a default one) is asked for too.
    assert set(company_request.url.params["properties"].split(",")) == {
        "billing_currency", "country", "domain", "harvest_client_id", "legal_entity", "lifecyclestage",
        "name", "vat_number",
    }  # fmt: skip
