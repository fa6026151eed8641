"""The HubSpot CRM v3 simulator against the small demo firm's Parquet files (read with pyarrow)."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from demo.faults import FaultSpec, FaultState
from demo.hubspot import create_app
from demo.simulator import SlidingWindowLimiter
from demo.store import DemoStore
from demo.tables import HUBSPOT_COMPANIES, HUBSPOT_DEALS, Table
from tests.asgi import request

TOKEN = "pat-eu1-0000-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = "/crm/v3/objects"
ALWAYS = {"createdate", "hs_lastmodifieddate", "hs_object_id"}


@pytest.fixture(scope="module")
def demo_dir(small_demo: Path) -> Path:
    return small_demo


@pytest.fixture(scope="module")
def store(demo_dir: Path) -> Iterator[DemoStore]:
    s = DemoStore(demo_dir)
    yield s
    s.close()


@pytest.fixture(scope="module")
def parquet(demo_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The companies and deals tables as stored, read without the simulator."""

    def read(t: Table) -> list[dict[str, Any]]:
        return ds.dataset(t.path(demo_dir), format="parquet").to_table().to_pylist()

    return {"companies": read(HUBSPOT_COMPANIES), "deals": read(HUBSPOT_DEALS)}


@pytest.fixture(scope="module")
def edge_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStore]:
    """A tiny firm with what the small firm lacks: ids of mixed length, archived rows, nulls."""
    demo_dir = tmp_path_factory.mktemp("hubspot_edge")
    t0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    companies = [
        {"id": cid, "name": f"Co {cid}", "domain": None if cid == "9" else f"c{cid}.test",
         "country": "DE", "city": "Berlin", "lifecyclestage": "customer",
         "vat_number": None if cid in ("9", "1000") else f"DE{cid}", "billing_currency": "EUR",
         "legal_entity": "DE", "harvest_client_id": None, "createdate": t0,
         "hs_lastmodifieddate": t0 + timedelta(milliseconds=int(cid)), "archived": cid == "77"}
        for cid in ("1000", "9", "77", "10", "200")
    ]  # fmt: skip
    deals = [
        {"id": did, "dealname": f"Deal {did}", "amount": amount, "deal_currency_code": "EUR",
         "dealstage": "closedwon", "pipeline": "default", "closedate": None,
         "project_code": None, "company_id": company, "createdate": t0,
         "hs_lastmodifieddate": t0, "archived": did == "3"}
        for did, amount, company in (
            ("3", Decimal("5.00"), "9"), ("20", None, None),
            ("100", Decimal("12500.00"), "9"), ("4", Decimal("0.10"), "10"),
        )
    ]  # fmt: skip
    for t, rows in ((HUBSPOT_COMPANIES, companies), (HUBSPOT_DEALS, deals)):
        t.path(demo_dir).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), t.path(demo_dir) / "p.parquet")
    (demo_dir / "manifest.json").write_text("{}")
    s = DemoStore(demo_dir)
    yield s
    s.close()


def make_app(store: DemoStore, faults: FaultSpec | None = None, *, limited: bool = False) -> Any:
    """Return a simulator; without ``limited`` its rate limits cannot get in the way."""
    kwargs: dict[str, Any] = {} if limited else {"search_requests_per_s": None}
    app, state = create_app(store, token=TOKEN, faults=FaultState(faults), **kwargs)
    if not limited:
        state.limiter = SlidingWindowLimiter(100_000, 10)
    return app, state


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def live_ids(rows: list[dict[str, Any]], *, archived: bool = False) -> list[str]:
    return sorted((r["id"] for r in rows if r["archived"] == archived), key=int)


def wire(value: Any) -> str | None:
    return iso(value) if isinstance(value, datetime) else None if value is None else str(value)


def walk(app: Any, path: str, params: dict[str, Any]) -> list[httpx.Response]:
    """GET every page of a listing by following ``paging.next.after``."""

    async def go() -> list[httpx.Response]:
        pages: list[httpx.Response] = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.local") as client:
            query = dict(params)
            while True:
                resp = await client.get(path, params=query, headers=AUTH)
                assert resp.status_code == 200, resp.text
                pages.append(resp)
                paging = resp.json().get("paging")
                if paging is None:
                    return pages
                query["after"] = paging["next"]["after"]
                assert len(pages) < 10_000, "cursor never ends"

    return asyncio.run(go())


def search_all(app: Any, obj: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    body = dict(body)
    while True:
        resp = request(app, "POST", f"{BASE}/{obj}/search", json=body, headers=AUTH)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        results += page["results"]
        if "paging" not in page:
            assert page["total"] == len(results)
            return results
        body["after"] = page["paging"]["next"]["after"]


def assert_error(resp: httpx.Response, status: int, category: str) -> dict[str, Any]:
    assert resp.status_code == status
    body = resp.json()
    assert set(body) == {"status", "message", "correlationId", "category"}
    assert body["status"] == "error" and body["category"] == category and body["message"]
    uuid.UUID(body["correlationId"])
    return body


@pytest.mark.parametrize("obj", ["companies", "deals"])
@pytest.mark.parametrize("limit", [1, 7, 100])
def test_paging_returns_every_record_once_in_id_order(store, parquet, obj, limit) -> None:
    app, _ = make_app(store)
    pages = walk(app, f"{BASE}/{obj}", {"limit": limit})
    ids = [rec["id"] for page in pages for rec in page.json()["results"]]
    expected = live_ids(parquet[obj])
    assert ids == expected
    assert len(pages) == max(1, math.ceil(len(expected) / limit))
    assert all(len(p.json()["results"]) == limit for p in pages[:-1])
    link = pages[0].json().get("paging", {}).get("next", {}).get("link", "")
    assert len(pages) == 1 or f"after={pages[0].json()['paging']['next']['after']}" in link


def test_archived_listing_and_records_match_parquet(store, parquet) -> None:
    app, _ = make_app(store)
    by_id = {r["id"]: r for r in parquet["deals"]}
    pages = walk(app, f"{BASE}/deals", {"limit": 100, "properties": "amount,closedate,dealstage"})
    for rec in (r for p in pages for r in p.json()["results"]):
        row = by_id[rec["id"]]
        assert rec["createdAt"] == iso(row["createdate"])
        assert rec["updatedAt"] == iso(row["hs_lastmodifieddate"])
        assert rec["archived"] is False
        assert rec["properties"]["amount"] == wire(row["amount"])
        assert rec["properties"]["closedate"] == iso(row["closedate"])
        assert rec["properties"]["hs_object_id"] == rec["id"]
    archived = walk(app, f"{BASE}/deals", {"limit": 100, "archived": "true"})
    ids = [r["id"] for p in archived for r in p.json()["results"]]
    assert ids == live_ids(parquet["deals"], archived=True)
    assert all(r["archived"] and r["archivedAt"] for p in archived for r in p.json()["results"])


def test_wire_formats(store) -> None:
    app, _ = make_app(store)
    deals = walk(app, f"{BASE}/deals", {"limit": 100})
    props = [r["properties"] for p in deals for r in p.json()["results"]]
    amounts = [p["amount"] for p in props if p["amount"] is not None]
    assert amounts and all(isinstance(a, str) and a.split(".")[1].isdigit() for a in amounts)
    assert all(len(a.split(".")[1]) == 2 for a in amounts)
    stamps = [p[k] for p in props for k in ("closedate", "createdate") if p[k] is not None]
    assert all(len(s) == 24 and s.endswith("Z") and s[19] == "." for s in stamps)


@pytest.mark.parametrize(("limit", "status"), [(100, 200), (101, 400), (0, 400), ("x", 400)])
def test_list_limit_bounds(store, limit, status) -> None:
    app, _ = make_app(store)
    resp = request(app, "GET", f"{BASE}/companies", params={"limit": limit}, headers=AUTH)
    if status == 400:
        assert_error(resp, 400, "VALIDATION_ERROR")
    else:
        assert resp.status_code == 200


def test_properties_selection(store, parquet) -> None:
    app, _ = make_app(store)
    custom = ["vat_number", "billing_currency", "legal_entity", "harvest_client_id"]
    params = {"limit": 100, "properties": ",".join([*custom, "no_such_property"])}
    pages = walk(app, f"{BASE}/companies", params)
    by_id = {r["id"]: r for r in parquet["companies"]}
    records = [r for p in pages for r in p.json()["results"]]
    assert records
    for rec in records:
        assert set(rec["properties"]) == set(custom) | ALWAYS
        for name in custom:
            assert rec["properties"][name] == by_id[rec["id"]][name]
    default = request(app, "GET", f"{BASE}/companies", headers=AUTH).json()["results"][0]
    assert set(default["properties"]) == {"name", "domain"} | ALWAYS


def test_deal_to_company_associations(store, parquet) -> None:
    app, _ = make_app(store)
    params = {"limit": 100, "associations": "companies", "properties": "project_code"}
    deals = [r for p in walk(app, f"{BASE}/deals", params) for r in p.json()["results"]]
    company_of = {r["id"]: r["company_id"] for r in parquet["deals"]}
    assert any(company_of[d["id"]] for d in deals)
    for deal in deals:
        company = company_of[deal["id"]]
        if company is None:
            assert "associations" not in deal
        else:
            link = {"id": company, "type": "deal_to_company"}
            assert deal["associations"] == {"companies": {"results": [link]}}
        assert "company_id" not in deal["properties"]


def test_company_to_deal_associations(store, parquet) -> None:
    app, _ = make_app(store)
    params = {"limit": 100, "associations": "deals"}
    companies = [r for p in walk(app, f"{BASE}/companies", params) for r in p.json()["results"]]
    for company in companies:
        expected = sorted(
            (d["id"] for d in parquet["deals"] if d["company_id"] == company["id"]
             and not d["archived"]),
            key=int,
        )  # fmt: skip
        got = company.get("associations", {}).get("deals", {}).get("results", [])
        assert [a["id"] for a in got] == expected
        assert all(a["type"] == "company_to_deal" for a in got)


def test_get_one_and_not_found(store, parquet) -> None:
    app, _ = make_app(store)
    company = next(r for r in parquet["companies"] if not r["archived"])
    resp = request(app, "GET", f"{BASE}/companies/{company['id']}?properties=vat_number", headers=AUTH)
    assert resp.status_code == 200
    assert resp.json()["properties"]["vat_number"] == company["vat_number"]
    assert_error(request(app, "GET", f"{BASE}/companies/999999999", headers=AUTH), 404, "OBJECT_NOT_FOUND")
    assert_error(request(app, "GET", f"{BASE}/tickets", headers=AUTH), 400, "VALIDATION_ERROR")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(value: datetime) -> int:
    """Milliseconds since the epoch, as HubSpot filters take them (truncated, exact)."""
    return (value - EPOCH) // timedelta(milliseconds=1)


@pytest.mark.parametrize("op", ["GTE", "GT", "LT", "LTE", "EQ", "NEQ"])
def test_search_on_last_modified(store, parquet, op) -> None:
    app, _ = make_app(store)
    live = [r for r in parquet["deals"] if not r["archived"]]
    stamps = sorted(r["hs_lastmodifieddate"] for r in live)
    cutoff = EPOCH + timedelta(milliseconds=ms(stamps[len(stamps) // 2]))  # an existing value
    compare = {
        "GTE": lambda v: v >= cutoff, "GT": lambda v: v > cutoff, "LT": lambda v: v < cutoff,
        "LTE": lambda v: v <= cutoff, "EQ": lambda v: v == cutoff, "NEQ": lambda v: v != cutoff,
    }[op]  # fmt: skip
    flt = {"propertyName": "hs_lastmodifieddate", "operator": op, "value": str(ms(cutoff))}
    body = {"filterGroups": [{"filters": [flt]}], "limit": 7,
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["dealstage"]}  # fmt: skip
    found = search_all(app, "deals", body)
    expected = {r["id"] for r in live if compare(r["hs_lastmodifieddate"])}
    assert {r["id"] for r in found} == expected and len(found) == len(expected)
    modified = [r["properties"]["hs_lastmodifieddate"] for r in found]
    assert modified == sorted(modified)


def test_search_property_filters(store, parquet) -> None:
    app, _ = make_app(store)
    live = [r for r in parquet["companies"] if not r["archived"]]
    for op, keep in (("HAS_PROPERTY", True), ("NOT_HAS_PROPERTY", False)):
        body = {"filterGroups": [{"filters": [{"propertyName": "vat_number", "operator": op}]}]}
        found = {r["id"] for r in search_all(app, "companies", body)}
        assert found == {r["id"] for r in live if (r["vat_number"] is not None) == keep}
    deals = [r for r in parquet["deals"] if not r["archived"]]
    groups = [{"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": stage}]}
              for stage in ("closedwon", "closedlost")]  # fmt: skip
    found = {r["id"] for r in search_all(app, "deals", {"filterGroups": groups, "limit": 200})}
    assert found == {r["id"] for r in deals if r["dealstage"] in ("closedwon", "closedlost")}


def test_search_validation(store) -> None:
    app, _ = make_app(store)
    url = f"{BASE}/deals/search"
    assert_error(request(app, "POST", url, json={"limit": 201}, headers=AUTH), 400, "VALIDATION_ERROR")
    bad = {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]}
    assert_error(request(app, "POST", url, json=bad, headers=AUTH), 400, "VALIDATION_ERROR")
    assert_error(request(app, "POST", url, json={"after": "10000"}, headers=AUTH), 400, "VALIDATION_ERROR")
    assert_error(request(app, "POST", url, content=b"{", headers=AUTH), 400, "VALIDATION_ERROR")
    assert request(app, "POST", url, json={"limit": 200}, headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_auth_failures(store, headers) -> None:
    app, _ = make_app(store)
    for method, path in (("GET", f"{BASE}/companies"), ("POST", f"{BASE}/deals/search")):
        body = assert_error(
            request(app, method, path, headers=headers, json={}), 401, "INVALID_AUTHENTICATION"
        )
        assert body["message"].startswith("Authentication credentials not found.")


def test_injected_429_has_retry_after_and_documented_body(store) -> None:
    app, state = make_app(store, FaultSpec(extra_429=2, retry_after_s=3))
    for _ in range(2):
        resp = request(app, "GET", f"{BASE}/companies", headers=AUTH)
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"
        body = resp.json()
        assert body["status"] == "error" and body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        uuid.UUID(body["correlationId"])
    assert request(app, "GET", f"{BASE}/companies", headers=AUTH).status_code == 200
    assert state.by_status[429] == 2


def test_5xx_counter(store) -> None:
    app, _ = make_app(store, FaultSpec(error_5xx=1, error_status=502))
    resp = request(app, "GET", f"{BASE}/deals", headers=AUTH)
    assert resp.status_code == 502
    body = resp.json()
    assert body["status"] == "error" and body["message"] == "Bad Gateway"
    uuid.UUID(body["correlationId"])
    assert request(app, "GET", f"{BASE}/deals", headers=AUTH).status_code == 200


def test_5xx_on_page_two_only(store, parquet) -> None:
    app, _ = make_app(store, FaultSpec(error_5xx_pages=[2]))
    first = request(app, "GET", f"{BASE}/companies?limit=5", headers=AUTH)
    assert first.status_code == 200
    after = first.json()["paging"]["next"]["after"]
    for _ in range(2):  # a page fault is not consumed
        resp = request(app, "GET", f"{BASE}/companies?limit=5&after={after}", headers=AUTH)
        assert resp.status_code == 503 and resp.json()["status"] == "error"
    third = live_ids(parquet["companies"])[9]  # the cursor of page 3 is the last id of page 2
    assert request(app, "GET", f"{BASE}/companies?limit=5&after={third}", headers=AUTH).status_code == 200
    search = request(app, "POST", f"{BASE}/companies/search", json={"limit": 5, "after": "5"}, headers=AUTH)
    assert search.status_code == 503


def test_malformed_page_is_not_json(store) -> None:
    app, _ = make_app(store, FaultSpec(malformed_pages=[1]))
    resp = request(app, "GET", f"{BASE}/deals?limit=3", headers=AUTH)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)


def test_field_drift(store) -> None:
    spec = FaultSpec(drop_fields={"companies": ["domain"]}, rename_fields={"deals": {"amount": "amount_eur"}})
    app, _ = make_app(store, spec)
    company = request(app, "GET", f"{BASE}/companies", headers=AUTH).json()["results"][0]
    assert "domain" not in company["properties"] and "name" in company["properties"]
    deal = request(app, "GET", f"{BASE}/deals", headers=AUTH).json()["results"][0]
    assert "amount" not in deal["properties"] and "amount_eur" in deal["properties"]
    found = request(app, "POST", f"{BASE}/deals/search", json={}, headers=AUTH).json()["results"][0]
    assert "amount_eur" in found["properties"]


def test_slow_response_and_faults_switched_at_run_time(store) -> None:
    app, state = make_app(store)
    spec = FaultSpec(slow_requests=1, slow_s=0.2).model_dump()
    assert request(app, "PUT", "/_admin/faults", json=spec).status_code == 200
    started = time.monotonic()
    assert request(app, "GET", f"{BASE}/companies", headers=AUTH).status_code == 200
    assert time.monotonic() - started >= 0.2
    assert state.faults.spec.slow_requests == 0


def test_rate_limit_refuses_request_101_within_ten_seconds(store) -> None:
    app, state = make_app(store, limited=True)
    assert (state.limiter.max_requests, state.limiter.window_s) == (100, 10)

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.local") as client:
            statuses = [await client.get(f"{BASE}/companies?limit=1", headers=AUTH) for _ in range(101)]
            statuses.append(await client.get(f"{BASE}/companies", headers={"Authorization": "Bearer x"}))
            return statuses

    started = time.monotonic()
    responses = asyncio.run(go())
    assert time.monotonic() - started < 10
    assert [r.status_code for r in responses[:100]] == [200] * 100
    refused = responses[100]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert responses[101].status_code == 401  # another token has its own window


def test_search_limit_per_second(store) -> None:
    app, _ = make_app(store, limited=True)
    codes = [request(app, "POST", f"{BASE}/deals/search", json={}, headers=AUTH) for _ in range(6)]
    assert [c.status_code for c in codes[:5]] == [200] * 5
    assert codes[5].status_code == 429 and codes[5].json()["policyName"] == "SECONDLY"
    assert codes[5].json()["message"] == "You have reached your secondly limit."


def test_edge_firm_order_archive_and_nulls(edge_store) -> None:
    app, _ = make_app(edge_store)
    pages = walk(app, f"{BASE}/companies", {"limit": 2, "properties": "vat_number,domain"})
    records = [r for p in pages for r in p.json()["results"]]
    assert [r["id"] for r in records] == ["9", "10", "200", "1000"]  # numeric, not text, order
    assert records[0]["properties"]["vat_number"] is None
    assert records[0]["properties"]["domain"] is None
    archived = request(app, "GET", f"{BASE}/companies?archived=true", headers=AUTH).json()
    assert [r["id"] for r in archived["results"]] == ["77"] and "paging" not in archived
    assert archived["results"][0]["archivedAt"] == archived["results"][0]["updatedAt"]
    assert request(app, "GET", f"{BASE}/companies/77", headers=AUTH).status_code == 404
    assert request(app, "GET", f"{BASE}/companies/77?archived=true", headers=AUTH).status_code == 200
    body = {"filterGroups": [{"filters": [{"propertyName": "vat_number", "operator": "NOT_HAS_PROPERTY"}]}]}
    assert [r["id"] for r in search_all(app, "companies", body)] == ["9", "1000"]


def test_edge_firm_deals(edge_store) -> None:
    app, _ = make_app(edge_store)
    page = request(app, "GET", f"{BASE}/deals?associations=companies", headers=AUTH).json()
    deals = {r["id"]: r for r in page["results"]}
    assert list(deals) == ["4", "20", "100"]
    assert [deals[i]["properties"]["amount"] for i in deals] == ["0.10", None, "12500.00"]
    assert deals["100"]["properties"]["closedate"] is None
    assert "associations" not in deals["20"]
    companies = request(app, "GET", f"{BASE}/companies?associations=deals", headers=AUTH).json()
    links = {r["id"]: r.get("associations") for r in companies["results"]}
    # archived deal 3 of company 9 is not linked
    assert links["9"] == {"deals": {"results": [{"id": "100", "type": "company_to_deal"}]}}
    assert links["200"] is None and links["1000"] is None
    between = {"propertyName": "amount", "operator": "BETWEEN", "value": "0.10", "highValue": "100"}
    found = search_all(app, "deals", {"filterGroups": [{"filters": [between]}]})
    assert [r["id"] for r in found] == ["4"]
