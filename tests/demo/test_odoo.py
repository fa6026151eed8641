"""The Odoo simulator (demo.odoo) over the small demo firm: JSON-RPC, JSON-2, shapes and faults."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from starlette.applications import Starlette

from demo.faults import FaultSpec, FaultState
from demo.odoo import create_app
from demo.odoo_fields import MODELS
from demo.simulator import SimulatorState
from demo.store import DemoStore
from demo.tables import ODOO_COMPANIES, ODOO_PROJECTS, ODOO_TIMESHEETS, Table
from tests.asgi import request

DB, LOGIN, KEY, UID = "tieout", "admin@tieout.example", "test-odoo-key", 2
REAL = Path(__file__).resolve().parents[3] / "shared" / "real" / "odoo19"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def store(small_demo: Path) -> Iterator[DemoStore]:
    s = DemoStore(small_demo)
    yield s
    s.close()


@pytest.fixture
def sim(store: DemoStore) -> tuple[Starlette, SimulatorState]:
    return create_app(store, database=DB, login=LOGIN, api_key=KEY, uid=UID)


@pytest.fixture
def app(sim: tuple[Starlette, SimulatorState]) -> Starlette:
    return sim[0]


def parquet(small_demo: Path, t: Table, select: str = "*", where: str = "TRUE") -> list[tuple[Any, ...]]:
    """Read a table's Parquet files directly (not through the simulator)."""
    sql = f"SELECT {select} FROM read_parquet('{t.glob(small_demo)}') WHERE {where} ORDER BY 1"
    with duckdb.connect() as con:
        return con.execute(sql).fetchall()


def rpc(app: Starlette, service: str, method: str, *args: Any) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "method": "call",
        "params": {"service": service, "method": method, "args": list(args)},
        "id": 7,
    }
    return request(app, "POST", "/jsonrpc", json=body)


def execute(
    app: Starlette,
    model: str,
    method: str,
    args: list[Any],
    kwargs: dict[str, Any] | None = None,
    key: str = KEY,
    uid: int = UID,
) -> httpx.Response:
    return rpc(app, "object", "execute_kw", DB, uid, key, model, method, args, kwargs or {})


def result(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "error" not in body, body["error"]["data"]["message"]
    assert body["jsonrpc"] == "2.0" and body["id"] == 7
    return body["result"]


def rpc_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == 200 and error["message"] == "Odoo Server Error"
    data: dict[str, Any] = error["data"]
    assert set(data) == {"name", "debug", "message", "arguments", "context"}
    return data


def json2(
    app: Starlette, model: str, method: str, body: Any, key: str = KEY, db: str | None = DB
) -> httpx.Response:
    headers = {"Authorization": f"bearer {key}"} | ({"X-Odoo-Database": db} if db else {})
    return request(app, "POST", f"/json/2/{model}/{method}", json=body, headers=headers)


def json2_error(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"name", "message", "arguments", "context", "debug"}
    assert body["name"] == name
    return body


# -- authentication --------------------------------------------------------------------------


def test_version_and_authenticate(app: Starlette) -> None:
    version = result(rpc(app, "common", "version"))
    assert version["server_version"] == "19.0" and version["protocol_version"] == 1
    assert version["server_version_info"][:2] == [19, 0]
    assert result(rpc(app, "common", "authenticate", DB, LOGIN, KEY, {})) == UID
    assert result(rpc(app, "common", "authenticate", DB, LOGIN, "wrong", {})) is False
    assert result(rpc(app, "common", "authenticate", DB, "someone@else", KEY, {})) is False
    assert result(rpc(app, "common", "login", DB, LOGIN, KEY)) == UID
    assert rpc_error(rpc(app, "common", "authenticate", "nodb", LOGIN, KEY, {}))["name"] == (
        "psycopg2.OperationalError"
    )


@pytest.mark.parametrize(("key", "uid"), [("wrong", UID), (KEY, UID + 1)])
def test_bad_credentials_are_access_denied(app: Starlette, key: str, uid: int) -> None:
    data = rpc_error(execute(app, "res.partner", "search_read", [[]], key=key, uid=uid))
    assert data["name"] == "odoo.exceptions.AccessDenied"
    assert data["message"] == "Access Denied" and data["arguments"] == ["Access Denied"]
    assert data["context"] == {}


# -- listing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "limit"), [(ODOO_COMPANIES, 1), (ODOO_PROJECTS, 7), (ODOO_TIMESHEETS, 500)])
def test_search_read_pages_return_every_record_once(
    app: Starlette, small_demo: Path, t: Table, limit: int
) -> None:
    expected = [row[0] for row in parquet(small_demo, t, "id")]
    seen: list[int] = []
    requests = 0
    while True:
        kwargs = {
            "fields": ["id"],
            "offset": len(seen),
            "limit": limit,
            "order": "id",
            "context": {"active_test": False},
        }
        page = result(execute(app, t.name, "search_read", [[]], kwargs))
        requests += 1
        seen += [r["id"] for r in page]
        if len(page) < limit:
            break
    assert seen == expected
    assert requests == math.floor(len(expected) / limit) + 1
    assert result(execute(app, t.name, "search_count", [[]], {"context": {"active_test": False}})) == (
        len(expected)
    )


@pytest.mark.parametrize("model", sorted(MODELS))
def test_search_count_equals_search_read_length(app: Starlette, small_demo: Path, model: str) -> None:
    t = MODELS[model].table
    where = "active IS TRUE" if "active" in t.schema.names else "TRUE"
    active = len(parquet(small_demo, t, "id", where))
    assert result(execute(app, model, "search_count", [[]])) == active
    assert len(result(execute(app, model, "search_read", [[]], {"fields": ["id"]}))) == active
    assert len(result(execute(app, model, "search", [[]]))) == active


def test_archived_records_are_hidden_unless_asked_for(app: Starlette, small_demo: Path) -> None:
    every = {r[0]: r[1] for r in parquet(small_demo, ODOO_PROJECTS, "id, active")}
    default = result(execute(app, "project.project", "search", [[]]))
    assert default == [i for i, active in every.items() if active]
    archived = result(execute(app, "project.project", "search", [[["active", "=", False]]]))
    assert archived == [i for i, active in every.items() if not active]
    context = {"context": {"active_test": False}}
    assert result(execute(app, "project.project", "search", [[]], context)) == list(every)


# (case, model, domain, SQL over the Parquet columns selecting the same records)
DOMAINS = [
    ("uninvoiced", "account.analytic.line", [["timesheet_invoice_id", "=", False]],
     "timesheet_invoice_id IS NULL"),
    ("invoiced", "account.analytic.line", [["timesheet_invoice_id", "!=", False]],
     "timesheet_invoice_id IS NOT NULL"),
    ("move types", "account.move", [["move_type", "in", ["out_invoice", "out_refund"]]],
     "move_type IN ('out_invoice', 'out_refund')"),
    ("no ref", "res.partner", [["ref", "=", False]], "ref IS NULL AND active IS TRUE"),
    ("name ilike", "res.partner", [["name", "ilike", "ltd"]],
     "name ILIKE '%ltd%' AND active IS TRUE"),
    ("or", "account.move", ["|", ["state", "=", "draft"], ["payment_state", "=", "paid"]],
     "state = 'draft' OR payment_state = 'paid'"),
    ("not", "account.move", ["!", ["move_type", "=", "out_invoice"]],
     "move_type IS DISTINCT FROM 'out_invoice'"),
    ("many2one id and date", "account.analytic.line",
     [["company_id", "=", 1], ["date", ">=", "2026-06-01"]],
     "company_id = 1 AND date >= DATE '2026-06-01'"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "model", "domain", "where"), DOMAINS, ids=[d[0] for d in DOMAINS])
def test_domains_select_the_same_records_as_sql(
    app: Starlette, small_demo: Path, case: str, model: str, domain: list[Any], where: str
) -> None:
    expected = [r[0] for r in parquet(small_demo, MODELS[model].table, "id", where)]
    assert result(execute(app, model, "search", [domain])) == expected
    assert result(execute(app, model, "search_count", [domain])) == len(expected)


def test_order_and_its_validation(app: Starlette) -> None:
    ids = result(execute(app, "account.move", "search", [[]], {"order": "id desc"}))
    assert ids == sorted(ids, reverse=True)
    rows = result(
        execute(
            app,
            "account.move",
            "search_read",
            [[]],
            {"fields": ["write_date"], "order": "write_date asc, id"},
        )
    )
    assert [(r["write_date"], r["id"]) for r in rows] == sorted((r["write_date"], r["id"]) for r in rows)
    data = rpc_error(execute(app, "account.move", "search", [[]], {"order": "id; DROP TABLE x"}))
    assert data["name"] == "odoo.exceptions.UserError"
    data = rpc_error(execute(app, "account.move", "search", [[]], {"order": "nope desc"}))
    assert data["message"] == "Invalid field 'nope' on model 'account.move'"


# -- values ----------------------------------------------------------------------------------


def test_many2one_is_id_and_name_or_false(app: Starlette, small_demo: Path) -> None:
    cols = "id, project_id, project_id__display, timesheet_invoice_id, timesheet_invoice_id__display"
    stored = {r[0]: r[1:] for r in parquet(small_demo, ODOO_TIMESHEETS, cols)}
    fields = ["project_id", "timesheet_invoice_id"]
    records = result(execute(app, "account.analytic.line", "search_read", [[]], {"fields": fields}))
    assert {r["timesheet_invoice_id"] is False for r in records} == {True, False}
    for r in records:
        project, project_name, invoice, invoice_name = stored[r["id"]]
        assert r["project_id"] == ([project, project_name] if project is not None else False)
        assert r["timesheet_invoice_id"] == ([invoice, invoice_name] if invoice else False)


def test_values_have_odoos_json_types(app: Starlette) -> None:
    records = result(execute(app, "account.move", "search_read", [[]], {"limit": 50}))
    fields = MODELS["account.move"].fields
    for record in records:
        assert list(record) == list(fields)  # no fields asked: all of them, id first
        for name, value in record.items():
            kind = fields[name].type
            if kind == "date":
                assert value is False or DATE.match(value), (name, value)
            elif kind == "datetime":
                assert value is False or DATETIME.match(value), (name, value)
            elif kind in ("monetary", "float"):
                assert isinstance(value, float), (name, value)
            elif kind == "integer":
                assert isinstance(value, int) and not isinstance(value, bool), (name, value)
            elif kind == "many2one":
                assert value is False or (isinstance(value[0], int) and isinstance(value[1], str))
            else:
                assert value is False or isinstance(value, str), (name, value)


def test_fields_select_keys_and_unknown_fields_fail(app: Starlette) -> None:
    records = result(
        execute(app, "res.partner", "search_read", [[]], {"fields": ["name", "ref"], "limit": 3})
    )
    assert [list(r) for r in records] == [["id", "name", "ref"]] * 3
    data = rpc_error(execute(app, "res.partner", "search_read", [[]], {"fields": ["name", "nope"]}))
    assert data["name"] == "builtins.ValueError"
    assert data["message"] == "Invalid field 'nope' on model 'res.partner'"
    data = rpc_error(execute(app, "res.partner", "search_read", [[["nope", "=", 1]]]))
    assert data["message"] == "Invalid field res.partner.nope in condition ('nope', '=', 1)"


def test_read_keeps_the_ids_order_and_skips_missing(app: Starlette) -> None:
    ids = result(execute(app, "project.project", "search", [[]], {"context": {"active_test": False}}))
    wanted = [ids[2], ids[0], 999_999_999, ids[1]]
    records = result(execute(app, "project.project", "read", [wanted], {"fields": ["name"]}))
    assert [r["id"] for r in records] == [ids[2], ids[0], ids[1]]
    assert all(list(r) == ["id", "name"] for r in records)


def test_fields_get(app: Starlette) -> None:
    meta = result(
        execute(
            app,
            "project.project",
            "fields_get",
            [],
            {"attributes": ["string", "type", "selection"]},
        )
    )
    assert meta["x_harvest_id"] == {"string": "Harvest ID", "type": "integer"}
    choices = [["time_and_materials", "Time and materials"], ["fixed_fee", "Fixed fee"]]
    assert meta["x_billing_model"] == {
        "string": "Billing model",
        "type": "selection",
        "selection": choices,
    }
    assert meta["partner_id"] == {"string": "Customer", "type": "many2one"}
    full = result(execute(app, "project.project", "fields_get", [["partner_id"]]))
    assert list(full) == ["partner_id"] and full["partner_id"]["relation"] == "res.partner"


@pytest.mark.skipif(not REAL.exists(), reason="real Odoo 19 records (../shared/real/odoo19) absent")
@pytest.mark.parametrize("model", sorted(MODELS))
def test_fields_get_agrees_with_real_odoo(app: Starlette, model: str) -> None:
    path = REAL / f"{model}.json"
    if not path.exists():
        pytest.skip(f"no real fields_get for {model}")
    real = json.loads(path.read_text())["fields_meta"]
    attrs = ["string", "type", "relation", "selection"]
    ours = result(execute(app, model, "fields_get", [], {"attributes": attrs}))
    shared = set(ours) & set(real)
    assert len(shared) >= len(ours) - 2  # only the custom fields and res.currency.active differ
    assert {f: ours[f] for f in shared} == {f: real[f] for f in shared}


def test_read_group_sums_by_many2one(app: Starlette, small_demo: Path) -> None:
    sums = parquet(
        small_demo,
        ODOO_TIMESHEETS,
        "project_id, count(*), sum(unit_amount)",
        "project_id IS NOT NULL GROUP BY project_id",
    )
    groups = result(
        execute(
            app,
            "account.analytic.line",
            "read_group",
            [[["project_id", "!=", False]], ["unit_amount:sum"], ["project_id"]],
            {"lazy": False},
        )
    )
    assert sorted((g["project_id"][0], g["__count"], g["unit_amount"]) for g in groups) == [
        (p, n, float(total)) for p, n, total in sums
    ]
    names = [g["project_id"][1] for g in groups]
    assert names == sorted(names)
    assert groups[0]["__domain"] == [
        "&",
        ["project_id", "!=", False],
        ["project_id", "=", groups[0]["project_id"][0]],
    ]
    lazy = result(
        execute(
            app, "account.analytic.line", "read_group", [[], ["unit_amount"], ["company_id", "project_id"]]
        )
    )
    assert {"company_id", "company_id_count", "unit_amount", "__domain"} <= set(lazy[0])
    assert lazy[0]["__context"] == {"group_by": ["project_id"]}


# -- errors ----------------------------------------------------------------------------------


def test_unknown_model_method_and_bad_arguments(app: Starlette) -> None:
    data = rpc_error(execute(app, "sale.order", "search_read", [[]]))
    assert (data["name"], data["message"]) == (
        "odoo.exceptions.UserError",
        "Object sale.order doesn't exist",
    )
    data = rpc_error(execute(app, "res.partner", "unlink", [[1]]))
    assert data["name"] == "builtins.AttributeError"
    assert rpc_error(execute(app, "res.partner", "_read", [[1]]))["name"] == "odoo.exceptions.AccessError"
    data = rpc_error(execute(app, "res.partner", "search_read", [[]], {"bogus": 1}))
    assert data["name"] == "builtins.TypeError" and "bogus" in data["message"]
    assert request(app, "POST", "/jsonrpc", content=b"{not json").status_code == 400


# -- JSON-2 ----------------------------------------------------------------------------------


def test_json2_search_read_matches_json_rpc(app: Starlette) -> None:
    body = {
        "domain": [["timesheet_invoice_id", "!=", False]],
        "fields": ["date", "project_id"],
        "offset": 3,
        "limit": 20,
        "order": "id desc",
    }
    response = json2(app, "account.analytic.line", "search_read", body)
    assert response.status_code == 200
    kwargs = {k: body[k] for k in ("fields", "offset", "limit", "order")}
    assert response.json() == result(
        execute(app, "account.analytic.line", "search_read", [body["domain"]], kwargs)
    )
    ids = [r["id"] for r in response.json()[:3]]
    read = json2(app, "account.analytic.line", "read", {"ids": ids, "fields": ["date"]})
    assert [r["id"] for r in read.json()] == ids
    count = json2(app, "account.analytic.line", "search_count", {"domain": body["domain"]})
    assert count.json() == result(execute(app, "account.analytic.line", "search_count", [body["domain"]]))


def test_json2_errors(app: Starlette) -> None:
    body = json2_error(
        json2(app, "res.partner", "search_read", {}, key="wrong"),
        401,
        "werkzeug.exceptions.Unauthorized",
    )
    assert body["message"] == "Invalid apikey" and body["arguments"] == ["Invalid apikey", 401]
    missing = request(app, "POST", "/json/2/res.partner/search_read", json={})
    json2_error(missing, 401, "werkzeug.exceptions.Unauthorized")
    json2_error(
        json2(app, "res.partner", "search_read", {}, db="other"),
        404,
        "werkzeug.exceptions.NotFound",
    )
    body = json2_error(json2(app, "sale.order", "search_read", {}), 404, "werkzeug.exceptions.NotFound")
    assert body["message"] == "the model 'sale.order' does not exist"
    json2_error(json2(app, "res.partner", "unlink", {}), 404, "werkzeug.exceptions.NotFound")
    body = json2_error(
        json2(app, "res.partner", "search_read", {"ids": [1]}),
        422,
        "werkzeug.exceptions.UnprocessableEntity",
    )
    assert body["message"] == "cannot call res.partner.search_read with ids"
    json2_error(
        json2(app, "res.partner", "search_read", {"bogus": 1}),
        422,
        "werkzeug.exceptions.UnprocessableEntity",
    )
    json2_error(json2(app, "res.partner", "search_read", {"fields": ["nope"]}), 500, "builtins.ValueError")
    json2_error(
        json2(app, "res.partner", "search", {"domain": [], "order": "x;"}),
        422,
        "odoo.exceptions.UserError",
    )
    bad = request(
        app,
        "POST",
        "/json/2/res.partner/search_read",
        content=b"{nope",
        headers={"Authorization": f"bearer {KEY}"},
    )
    json2_error(bad, 400, "werkzeug.exceptions.BadRequest")
    unauthorized = request(app, "POST", "/json/2/res.partner/search_read", content=b"{nope")
    json2_error(unauthorized, 401, "werkzeug.exceptions.Unauthorized")  # authentication comes first


# -- the real requests of ../shared/real/odoo19/samples ----------------------------------------


def _kind(value: Any) -> str:
    if value is False:
        return "false"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str):
            return "many2one"
        return "list"
    return type(value).__name__


# Empty values Odoo sends instead of a value of the sample's kind.
_EMPTY = {"str": "false", "many2one": "false"}


def _samples() -> list[Path]:
    if not REAL.exists():
        return []
    out = []
    for path in sorted((REAL / "samples").glob("*.json")):
        sample = json.loads(path.read_text())
        model = _sample_model(sample)
        if model in MODELS:
            out.append(path)
    return out


def _sample_model(sample: dict[str, Any]) -> str | None:
    if "request" not in sample:
        return None
    if "/json/2/" in sample["endpoint"]:
        return str(sample["endpoint"].split("/json/2/")[1].split("/")[0])
    args = sample["request"]["params"]["args"]
    return str(args[3]) if len(args) > 3 else None


def _assert_same_shape(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], model: str) -> None:
    assert ours, "the demo returned no records for the sample's request"
    fields = MODELS[model].fields
    keys = [k for k in theirs[0] if k in fields or k.startswith("__")]
    for record in ours:
        assert [k for k in record if k in keys] == keys and set(record) <= set(theirs[0])
        for key in keys:
            if key == "__domain":
                continue
            allowed = {_kind(r[key]) for r in theirs}
            allowed |= {_EMPTY[k] for k in allowed if k in _EMPTY}
            if "bool" in allowed:  # JSON false is also a boolean field's False
                allowed.add("false")
            if fields.get(key) and fields[key].type in ("char", "selection", "date", "datetime"):
                allowed |= {"str", "false"}
            if fields.get(key) and fields[key].type == "many2one":
                allowed |= {"many2one", "false"}
            assert _kind(record[key]) in allowed, (key, record[key], allowed)
            if isinstance(record[key], str) and fields.get(key) and fields[key].type == "date":
                assert DATE.match(record[key])
            if isinstance(record[key], str) and fields.get(key) and fields[key].type == "datetime":
                assert DATETIME.match(record[key])


@pytest.mark.skipif(not REAL.exists(), reason="real Odoo 19 samples (../shared/real/odoo19) absent")
@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.stem)
def test_real_requests_get_real_shaped_answers(app: Starlette, path: Path) -> None:
    sample = json.loads(path.read_text())
    model = _sample_model(sample)
    assert model is not None
    fields = MODELS[model].fields
    if "/json/2/" in sample["endpoint"]:
        body = dict(sample["request"])
        body["fields"] = [f for f in body["fields"] if f in fields]  # the demo stores fewer fields
        response = json2(app, model, sample["endpoint"].rsplit("/", 1)[1], body)
        assert response.status_code == 200, response.text
        if not response.json():  # the demo firm has no such records: check the shape on others
            response = json2(app, model, "search_read", {**body, "domain": []})
        _assert_same_shape(response.json(), sample["response"], model)
        return
    req = sample["request"]
    args = list(req["params"]["args"])
    args[:3] = [DB, UID, KEY]
    method, call_args, kwargs = args[4], list(args[5]), dict(args[6])
    if "fields" in kwargs:
        kwargs["fields"] = [f for f in kwargs["fields"] if f in fields]
    if method == "read":  # the sample's ids are the real instance's; read some of the demo's
        call_args[0] = result(execute(app, model, "search", [[]], {"limit": len(call_args[0])}))
    if method == "read_group":
        call_args[1] = [f for f in call_args[1] if f.split(":")[0] in fields]
    args[5:] = [call_args, kwargs]
    response = request(app, "POST", "/jsonrpc", json={**req, "params": {**req["params"], "args": args}})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == list(sample["response"])
    assert body["id"] == req["id"]
    if not body["result"] and method == "search_read":  # no such records in the demo firm
        body = {"result": result(execute(app, model, method, [[]], kwargs))}
    _assert_same_shape(body["result"], sample["response"]["result"], model)


# -- faults ----------------------------------------------------------------------------------


def faulty(store: DemoStore, **spec: Any) -> Starlette:
    app, _ = create_app(store, database=DB, login=LOGIN, api_key=KEY, faults=FaultState(FaultSpec(**spec)))
    return app


def page(app: Starlette, number: int, size: int = 5) -> httpx.Response:
    kwargs = {"fields": ["name"], "offset": (number - 1) * size, "limit": size}
    return execute(app, "account.analytic.line", "search_read", [[]], kwargs)


def test_injected_429_is_nginxs_page(store: DemoStore) -> None:
    app = faulty(store, extra_429=1, retry_after_s=3)
    first = page(app, 1)
    assert first.status_code == 429 and first.headers["retry-after"] == "3"
    assert first.headers["content-type"].startswith("text/html") and "429 Too Many Requests" in first.text
    assert page(app, 1).status_code == 200


def test_injected_5xx_counter(store: DemoStore) -> None:
    app = faulty(store, error_5xx=2, error_status=502)
    responses = [page(app, 1) for _ in range(3)]
    assert [r.status_code for r in responses] == [502, 502, 200]
    assert "502 Bad Gateway" in responses[0].text


def test_5xx_on_page_2_only(store: DemoStore) -> None:
    app = faulty(store, error_5xx_pages=[2], error_status=503)
    assert [page(app, n).status_code for n in (1, 2, 3, 2)] == [200, 503, 200, 503]
    assert "503 Service Temporarily Unavailable" in page(app, 2).text
    assert json2(app, "account.analytic.line", "search_read", {"offset": 5, "limit": 5}).status_code == 503
    unpaged = execute(app, "account.analytic.line", "search_read", [[]], {"fields": ["id"]})
    assert unpaged.status_code == 200  # no limit: page 1


def test_malformed_page(store: DemoStore) -> None:
    app = faulty(store, malformed_pages=[1])
    broken = page(app, 1)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert broken.content.startswith(b'{"jsonrpc"')
    assert result(page(app, 2))


def test_drop_and_rename_fields(store: DemoStore) -> None:
    app = faulty(
        store,
        drop_fields={"account.analytic.line": ["unit_amount"]},
        rename_fields={"account.analytic.line": {"date": "day"}},
    )
    kwargs = {"fields": ["date", "unit_amount", "amount"], "limit": 3}
    for record in result(execute(app, "account.analytic.line", "search_read", [[]], kwargs)):
        assert list(record) == ["id", "day", "amount"]
    other = result(execute(app, "account.move", "search_read", [[]], {"fields": ["date"], "limit": 1}))
    assert list(other[0]) == ["id", "date"]


def test_slow_request(store: DemoStore) -> None:
    app = faulty(store, slow_requests=1, slow_s=0.2)
    started = time.perf_counter()
    assert page(app, 1).status_code == 200
    slow = time.perf_counter() - started
    started = time.perf_counter()
    assert page(app, 1).status_code == 200
    assert slow >= 0.2 > time.perf_counter() - started
