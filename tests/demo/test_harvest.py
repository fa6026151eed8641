"""The Harvest v2 simulator against the small demo firm's Parquet files, read independently."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from demo.faults import FaultSpec, FaultState
from demo.harvest import create_app
from demo.store import DemoStore
from demo.tables import HARVEST_INVOICES, HARVEST_TIME_ENTRIES, Table, table
from tests.asgi import request
from tests.conftest import AS_OF

TOKEN = "tok-harvest-demo"
ACCOUNT = "123456"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Harvest-Account-Id": ACCOUNT}
INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid "
    "for other reasons.",
}
ENVELOPE_KEYS = [
    "per_page", "total_pages", "total_entries", "next_page", "previous_page", "page", "links"
]  # fmt: skip


@pytest.fixture(scope="module")
def store(small_demo: Path) -> Iterator[DemoStore]:
    demo_store = DemoStore(small_demo)
    yield demo_store
    demo_store.close()


@pytest.fixture()
def app(store: DemoStore) -> Any:
    return create_app(store, token=TOKEN, account_id=ACCOUNT)[0]


def parquet_rows(small_demo: Path, t: Table) -> list[dict[str, Any]]:
    """Rows of a demo table read straight from its Parquet files (not through the simulator)."""
    rows: list[dict[str, Any]] = ds.dataset(t.path(small_demo), format="parquet").to_table().to_pylist()
    return rows


def get(app: Any, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    return request(app, "GET", path, params=params, headers=AUTH if headers is None else headers)


def page_through(app: Any, resource: str, per_page: int, **params: Any) -> list[dict[str, Any]]:
    """Every record of a listing, fetched by page number; checks the envelope on the way."""
    out: list[dict[str, Any]] = []
    page, total_pages = 1, 1
    while page <= total_pages:
        resp = get(app, f"/v2/{resource}", page=page, per_page=per_page, **params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert list(body) == [resource, *ENVELOPE_KEYS]
        assert (body["page"], body["per_page"]) == (page, per_page)
        total_pages = body["total_pages"]
        assert body["next_page"] == (page + 1 if page < total_pages else None)
        assert body["previous_page"] == (page - 1 if page > 1 else None)
        assert len(body[resource]) == min(per_page, body["total_entries"] - len(out))
        out += body[resource]
        page += 1
    assert len(out) == body["total_entries"]
    return out


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in records]


@pytest.mark.parametrize(
    ("resource", "table_name", "per_page"),
    [
        ("clients", "clients", 1),
        ("clients", "clients", 7),
        ("users", "users", 7),
        ("projects", "projects", 7),
        ("time_entries", "time_entries", 2000),
        ("invoices", "invoices", 7),
        ("invoices", "invoices", 2000),
    ],
)
def test_paging_returns_every_record_exactly_once(
    app: Any, small_demo: Path, resource: str, table_name: str, per_page: int
) -> None:
    got = ids(page_through(app, resource, per_page))
    expected = sorted(r["id"] for r in parquet_rows(small_demo, table("psa", table_name)))
    assert expected, "the demo firm has no rows here"
    assert got == expected  # sorted by id, each exactly once


def test_following_links_next_reaches_every_record_with_filters_kept(app: Any, small_demo: Path) -> None:
    expected = sorted(r["id"] for r in parquet_rows(small_demo, HARVEST_TIME_ENTRIES) if r["is_billed"])
    resp = get(app, "/v2/time_entries", per_page=500, is_billed="true")
    seen: list[int] = []
    while True:
        body = resp.json()
        seen += ids(body["time_entries"])
        links = body["links"]
        assert links["first"].startswith("http://sim.local/v2/time_entries?page=1&per_page=500")
        assert "is_billed=true" in links["last"]
        if links["next"] is None:
            break
        assert "is_billed=true" in links["next"]
        resp = request(app, "GET", links["next"], headers=AUTH)
    assert seen == expected


def test_links_never_carry_credentials(app: Any) -> None:
    query_auth = {"access_token": TOKEN, "account_id": ACCOUNT}
    body = get(app, "/v2/clients", headers={}, per_page=1, **query_auth).json()
    for url in body["links"].values():
        assert url is None or (TOKEN not in url and "account_id" not in url)


def test_updated_since_returns_rows_updated_at_or_after_it(app: Any, small_demo: Path) -> None:
    rows = parquet_rows(small_demo, HARVEST_TIME_ENTRIES)
    cutoff = sorted(r["updated_at"] for r in rows)[len(rows) // 2]
    expected = sorted(r["id"] for r in rows if r["updated_at"] >= cutoff)
    since = cutoff.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    got = page_through(app, "time_entries", 2000, updated_since=since)
    assert ids(got) == expected
    assert 0 < len(expected) < len(rows)


def test_filters_on_time_entries_and_invoices(app: Any, small_demo: Path) -> None:
    entries = parquet_rows(small_demo, HARVEST_TIME_ENTRIES)
    project_id = entries[0]["project_id"]
    day = sorted(r["spent_date"] for r in entries)[len(entries) // 3]
    got = page_through(app, "time_entries", 2000, project_id=project_id, to=day.isoformat())
    assert ids(got) == sorted(
        r["id"] for r in entries if r["project_id"] == project_id and r["spent_date"] <= day
    )
    invoices = parquet_rows(small_demo, HARVEST_INVOICES)
    got = page_through(app, "invoices", 2000, state="paid")
    assert ids(got) == sorted(r["id"] for r in invoices if r["state"] == "paid")


@pytest.mark.parametrize(
    "params",
    [{"per_page": 2001}, {"per_page": 0}, {"page": 0}, {"page": "x"}, {"is_active": "yes"},
     {"updated_since": "last week"}],
)  # fmt: skip
def test_invalid_parameters_get_422_with_a_message(app: Any, params: dict[str, Any]) -> None:
    resp = get(app, "/v2/clients", **params)
    assert resp.status_code == 422
    assert list(resp.json()) == ["message"]
    assert next(iter(params)) in resp.json()["message"]


def test_time_entries_carry_their_invoice_when_billed(app: Any, small_demo: Path) -> None:
    truth = {r["id"]: r for r in parquet_rows(small_demo, HARVEST_TIME_ENTRIES)}
    got = page_through(app, "time_entries", 2000)
    billed = [e for e in got if e["is_billed"]]
    assert billed, "the demo firm has no billed time"
    for entry in got:
        row = truth[entry["id"]]
        if row["invoice_id"] is None:
            assert entry["invoice"] is None
        else:
            assert entry["invoice"] == {"id": row["invoice_id"], "number": row["invoice_number"]}


def test_records_have_harvests_shapes(app: Any) -> None:
    entry = get(app, "/v2/time_entries", per_page=1).json()["time_entries"][0]
    assert set(entry) >= {
        "id", "spent_date", "hours", "rounded_hours", "notes", "is_locked", "locked_reason",
        "is_closed", "is_billed", "timer_started_at", "started_time", "ended_time", "is_running",
        "billable", "budgeted", "billable_rate", "cost_rate", "created_at", "updated_at", "user",
        "client", "project", "task", "user_assignment", "task_assignment", "invoice",
        "external_reference",
    }  # fmt: skip
    assert set(entry["client"]) == {"id", "name", "currency"}
    assert set(entry["project"]) == {"id", "name", "code"}
    datetime.strptime(entry["updated_at"], "%Y-%m-%dT%H:%M:%SZ")
    datetime.strptime(entry["spent_date"], "%Y-%m-%d")
    assert isinstance(entry["hours"], float)
    project = get(app, "/v2/projects", per_page=1).json()["projects"][0]
    assert set(project["client"]) == {"id", "name", "currency"}
    assert "project_manager_id" not in project
    invoice = get(app, "/v2/invoices", per_page=1).json()["invoices"][0]
    assert invoice["state"] in ("draft", "open", "paid", "closed")
    assert set(invoice["client"]) == {"id", "name"}
    assert invoice["line_items"], "invoice without line items"
    assert set(invoice["line_items"][0]) == {
        "id", "kind", "description", "quantity", "unit_price", "amount", "taxed", "taxed2",
        "project",
    }  # fmt: skip
    client = get(app, "/v2/clients", per_page=1).json()["clients"][0]
    assert set(client) == {
        "id", "name", "is_active", "address", "statement_key", "currency", "created_at",
        "updated_at",
    }  # fmt: skip


def test_quality_defects_are_served_as_harvest_records(app: Any, small_demo: Path) -> None:
    """Each data-quality defect of the answer key reaches the client where Harvest carries the field."""
    truth = pq.read_table(small_demo / "ground_truth.parquet").to_pylist()
    defects = {(r["defect"], int(r["source_id"])) for r in truth if r["break_type"] == "failed_expectation"}
    assert {d for d, _ in defects} == {"negative_hours", "future_date", "unknown_currency", "null_project"}
    clients = {c["id"]: c["currency"] for c in page_through(app, "clients", 2000)}
    for defect, entry_id in sorted(defects):
        entry = get(app, f"/v2/time_entries/{entry_id}").json()
        assert entry["is_closed"] is False
        if defect == "negative_hours":
            assert entry["hours"] < 0 and entry["hours"] == entry["rounded_hours"]
        elif defect == "future_date":
            assert date.fromisoformat(entry["spent_date"]) > AS_OF
            assert entry["created_at"] < AS_OF.isoformat()  # typed in before as-of, dated after it
        elif defect == "unknown_currency":
            assert entry["client"]["currency"] == "XYZ" and clients[entry["client"]["id"]] != "XYZ"
        else:
            assert entry["project"] is None and entry["client"] is not None
    fine = get(app, "/v2/time_entries", per_page=50).json()["time_entries"]
    assert all(e["client"]["currency"] == clients[e["client"]["id"]] for e in fine)


def test_project_managers_are_user_assignments(app: Any, small_demo: Path) -> None:
    projects = parquet_rows(small_demo, table("psa", "projects"))
    managed = {r["id"]: r["project_manager_id"] for r in projects if r["project_manager_id"]}
    got = page_through(app, "user_assignments", 2000)
    assert {a["project"]["id"]: a["user"]["id"] for a in got} == managed
    assert all(a["is_project_manager"] for a in got)


def test_one_record_by_id_and_404(app: Any, small_demo: Path) -> None:
    row = parquet_rows(small_demo, HARVEST_INVOICES)[0]
    resp = get(app, f"/v2/invoices/{row['id']}")
    assert resp.status_code == 200
    assert (resp.json()["id"], resp.json()["number"]) == (row["id"], row["number"])
    for missing in ("999999999", "abc"):
        resp = get(app, f"/v2/invoices/{missing}")
        assert resp.status_code == 404
        assert resp.json() == {"status": 404, "error": "Not Found"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong", "Harvest-Account-Id": ACCOUNT},
        {"Authorization": f"Bearer {TOKEN}", "Harvest-Account-Id": "999"},
        {"Authorization": f"Bearer {TOKEN}"},
    ],
    ids=["no-token", "wrong-token", "wrong-account", "no-account"],
)
def test_auth_failures_get_harvests_401(app: Any, headers: dict[str, str]) -> None:
    for path in ("/v2/clients", "/v2/clients/1"):
        resp = get(app, path, headers=headers)
        assert resp.status_code == 401
        assert resp.json() == INVALID_TOKEN


def test_query_string_auth_is_accepted(app: Any) -> None:
    resp = get(app, "/v2/clients", headers={}, access_token=TOKEN, account_id=ACCOUNT)
    assert resp.status_code == 200


def faulty(store: DemoStore, **spec: Any) -> Any:
    faults = FaultState(FaultSpec(**spec))
    return create_app(store, token=TOKEN, account_id=ACCOUNT, faults=faults)[0]


def test_injected_429_has_retry_after(store: DemoStore) -> None:
    app = faulty(store, extra_429=1, retry_after_s=7)
    resp = get(app, "/v2/clients")
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.json() == {"status": 429, "error": "Too Many Requests"}
    assert get(app, "/v2/clients").status_code == 200


def test_injected_5xx_counter(store: DemoStore) -> None:
    app = faulty(store, error_5xx=2, error_status=502)
    for _ in range(2):
        resp = get(app, "/v2/time_entries")
        assert resp.status_code == 502
        assert resp.json() == {"status": 502, "error": "Bad Gateway"}
    assert get(app, "/v2/time_entries").status_code == 200


def test_injected_5xx_on_page_two_only(store: DemoStore) -> None:
    app = faulty(store, error_5xx_pages=[2])
    assert get(app, "/v2/clients", per_page=2, page=1).status_code == 200
    for _ in range(2):  # a page fault stays until it is switched off
        resp = get(app, "/v2/clients", per_page=2, page=2)
        assert resp.status_code == 503
        assert resp.json() == {"status": 503, "error": "Service Unavailable"}


def test_malformed_page_is_not_parseable(store: DemoStore) -> None:
    app = faulty(store, malformed_pages=[1])
    resp = get(app, "/v2/projects")
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)
    assert get(app, "/v2/projects", per_page=1, page=2).json()["projects"]


def test_field_drift_drops_and_renames(store: DemoStore) -> None:
    app = faulty(
        store,
        drop_fields={"time_entries": ["hours"]},
        rename_fields={"time_entries": {"spent_date": "date"}, "invoices": {"number": "num"}},
    )
    entry = get(app, "/v2/time_entries", per_page=1).json()["time_entries"][0]
    assert "hours" not in entry and "spent_date" not in entry and "date" in entry
    invoice = get(app, "/v2/invoices", per_page=1).json()["invoices"][0]
    assert "num" in invoice and "number" not in invoice
    single = get(app, f"/v2/time_entries/{entry['id']}").json()
    assert "hours" not in single and "date" in single
    client = get(app, "/v2/clients", per_page=1).json()["clients"][0]
    assert "name" in client


def test_slow_response_is_delayed(store: DemoStore) -> None:
    app = faulty(store, slow_requests=1, slow_s=0.2)
    started = time.perf_counter()
    assert get(app, "/v2/clients", per_page=1).status_code == 200
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    assert get(app, "/v2/clients", per_page=1).status_code == 200
    assert time.perf_counter() - started < 0.2


def test_rate_limit_refuses_the_101st_request_within_15_s(app: Any) -> None:
    for _ in range(100):
        assert get(app, "/v2/clients", per_page=1).status_code == 200
    resp = get(app, "/v2/clients", per_page=1)
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 15
    assert resp.json() == {"status": 429, "error": "Too Many Requests"}
