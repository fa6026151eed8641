"""The Odoo simulator replaying a real Odoo 19's records (demo.odoo_replay), in-process and over loopback.

Expectations are computed in plain Python from the dump's JSON (../shared/real/odoo19, beside the
repository), never through the simulator's own code.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from typer.testing import CliRunner

from cli import app as cli_app
from demo.live import READY_LINE, free_port_base
from demo.odoo import create_app
from demo.odoo_replay import ReplayError, ReplaySource, load_replay
from demo.serve import build_simulators
from tests.asgi import request
from tests.demo.test_odoo import result, rpc

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "real" / "odoo19"
needs_dump = pytest.mark.skipif(
    not REAL.exists(),
    reason=f"the real Odoo 19 records are absent (expected in {REAL.name}/ of ../shared/real)",
)
DB, LOGIN, KEY, UID = "realsys", "integration@tieout.example", "replay-test-key", 2
MODELS = (
    "res.company", "res.currency", "res.currency.rate", "res.partner", "crm.lead", "sale.order",
    "account.analytic.account", "project.project", "hr.employee", "account.analytic.line",
    "account.move", "account.move.line",
)  # fmt: skip
PAGE = 100
ALL = {"active_test": False}


@functools.cache
def dump(model: str) -> dict[str, Any]:
    """The dump of ``model``, read straight from its JSON file."""
    data: dict[str, Any] = json.loads((REAL / f"{model}.json").read_text())
    return data


def records(model: str) -> list[dict[str, Any]]:
    return list(dump(model)["records"])


def by_id(model: str) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in records(model)}


def canonical(value: Any) -> str:
    """JSON text that tells 1 from 1.0 and true (dict equality does not)."""
    return json.dumps(value, sort_keys=True)


@pytest.fixture(scope="module")
def source() -> Iterator[ReplaySource]:
    if not REAL.exists():
        pytest.skip(f"the real Odoo 19 records are absent ({REAL})")
    loaded = load_replay(REAL)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def app(source: ReplaySource) -> Starlette:
    return create_app(source, database=DB, login=LOGIN, api_key=KEY, uid=UID)[0]


def execute(
    app: Starlette, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None,
    key: str = KEY,
) -> httpx.Response:  # fmt: skip
    return rpc(app, "object", "execute_kw", DB, UID, key, model, method, args, kwargs or {})


def rpc_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["error"]["data"]
    return data


def json2(app: Starlette, model: str, method: str, body: Any, key: str = KEY) -> httpx.Response:
    headers = {"Authorization": f"bearer {key}", "X-Odoo-Database": DB}
    return request(app, "POST", f"/json/2/{model}/{method}", json=body, headers=headers)


def search_all(
    app: Starlette, model: str, domain: list[Any], fields: list[str], order: str = "id"
) -> tuple[list[Any], int]:
    """search_read every matching record, archived included, page by page (as the connector does).

    Returns the records and the number of pages requested.
    """
    out: list[Any] = []
    pages = 0
    while True:
        kwargs = {"fields": fields, "order": order, "offset": len(out), "limit": PAGE, "context": ALL}
        page = result(execute(app, model, "search_read", [domain], kwargs))
        pages += 1
        out += page
        if len(page) < PAGE:
            return out, pages


# -- loading ---------------------------------------------------------------------------------


@needs_dump
def test_every_model_is_loaded_with_its_records_and_fields(source: ReplaySource) -> None:
    summary = json.loads((REAL / "summary.json").read_text())["models"]
    assert sorted(source.models) == sorted(MODELS)
    assert dict(source.counts) == summary
    for name in MODELS:
        assert list(source.models[name].fields) == list(dump(name)["fields_meta"])
    # What the dumps' own domains pin without reading it: searchable, not readable.
    assert dict(source.models["res.currency"].filters) == {"active": "boolean"}
    assert dict(source.models["crm.lead"].filters) == {"type": "char"}


# -- round trip ------------------------------------------------------------------------------


@needs_dump
@pytest.mark.parametrize("model", MODELS)
def test_search_read_with_the_dumps_domain_returns_the_dumps_records(app: Starlette, model: str) -> None:
    data = dump(model)
    got, pages = search_all(app, model, data["domain"], list(data["fields_meta"]))
    assert canonical(got) == canonical(data["records"])
    assert pages == math.floor(len(data["records"]) / PAGE) + 1  # every record once, in pages of 100
    count = result(execute(app, model, "search_count", [data["domain"]], {"context": ALL}))
    assert count == len(data["records"])
    beyond = {"offset": len(data["records"]) + 5, "limit": PAGE, "context": ALL}
    assert result(execute(app, model, "search", [data["domain"]], beyond)) == []


@needs_dump
@pytest.mark.parametrize("model", MODELS)
def test_read_by_ids_keeps_their_order_and_skips_missing(app: Starlette, model: str) -> None:
    rows = records(model)
    wanted = [r["id"] for r in rows[::7]][::-1] + [max(r["id"] for r in rows) + 1000]
    fields = list(dump(model)["fields_meta"])
    got = result(execute(app, model, "read", [wanted], {"fields": fields}))
    known = by_id(model)
    assert canonical(got) == canonical([known[i] for i in wanted if i in known])
    via_json2 = json2(app, model, "read", {"ids": wanted[:3], "fields": fields})
    assert canonical(via_json2.json()) == canonical([known[i] for i in wanted[:3] if i in known])


@needs_dump
@pytest.mark.parametrize(
    "model", ["res.partner", "project.project", "hr.employee", "account.analytic.account"]
)
def test_archived_records_are_hidden_unless_asked_for(app: Starlette, model: str) -> None:
    rows = records(model)
    active = [r["id"] for r in rows if r["active"]]
    assert result(execute(app, model, "search", [[]])) == active
    assert result(execute(app, model, "search_count", [[]])) == len(active)
    assert result(execute(app, model, "search", [[]], {"context": ALL})) == [r["id"] for r in rows]
    mentioned = [["active", "in", [True, False]]]
    assert result(execute(app, model, "search_count", [mentioned])) == len(rows)
    archived = [r["id"] for r in rows if not r["active"]]
    assert [
        r["id"] for r in result(execute(app, model, "read", [archived], {"fields": ["active"]}))
    ] == archived


@needs_dump
def test_fields_the_dumps_domain_pinned_filter_but_do_not_read(app: Starlette) -> None:
    assert result(execute(app, "res.currency", "search_count", [[]])) == 3  # all active, as the domain said
    assert result(execute(app, "res.currency", "search_count", [[["active", "=", False]]])) == 0
    assert result(execute(app, "crm.lead", "search_count", [[["type", "=", "lead"]]])) == 0
    error = rpc_error(execute(app, "crm.lead", "search_read", [[]], {"fields": ["type"]}))
    assert error["message"] == "Invalid field 'type' on model 'crm.lead'"
    assert "type" not in result(execute(app, "crm.lead", "fields_get", []))


# -- domains ---------------------------------------------------------------------------------


def m2o(value: Any) -> Any:
    """The id of a many2one value as read (``[id, name]`` or false)."""
    return value[0] if value else False


def first(field: str) -> Any:
    """The first timesheet line's ``field`` id that is set."""
    return next(m2o(r[field]) for r in records("account.analytic.line") if r[field] is not False)


def median(model: str, field: str) -> Any:
    values = sorted(r[field] for r in records(model) if r[field] is not False)
    return values[len(values) // 2]


Predicate = Callable[[dict[str, Any]], Any]
Case = Callable[[], tuple[str, list[Any], Predicate]]


def _move(line: dict[str, Any]) -> dict[str, Any]:
    return by_id("account.move")[line["move_id"][0]]


def _partner(record: dict[str, Any], field: str) -> dict[str, Any]:
    return by_id("res.partner").get(m2o(record[field]), {})


# name → () -> (model, domain, what a record must satisfy), evaluated once the dump is known present.
DOMAINS: dict[str, Case] = {
    "m2o = false": lambda: ("account.analytic.line", [["timesheet_invoice_id", "=", False]],
                            lambda r: r["timesheet_invoice_id"] is False),
    "m2o != false": lambda: ("account.analytic.line", [["timesheet_invoice_id", "!=", False]],
                             lambda r: r["timesheet_invoice_id"] is not False),
    "write_date >= datetime": lambda: (
        "account.analytic.line", [["write_date", ">=", (cut := median("account.analytic.line", "write_date"))]],
        lambda r: r["write_date"] >= cut),
    "date < day": lambda: ("account.analytic.line", [["date", "<", (day := median("account.analytic.line", "date"))]],
                           lambda r: r["date"] < day),
    "& date range": lambda: ("account.analytic.line",
                             ["&", ["date", ">=", "2026-03-01"], ["date", "<=", "2026-03-31"]],
                             lambda r: "2026-03-01" <= r["date"] <= "2026-03-31"),
    "float >": lambda: ("account.analytic.line", [["unit_amount", ">", 4]], lambda r: r["unit_amount"] > 4),
    "monetary <=": lambda: ("account.analytic.line", [["amount", "<=", -500]], lambda r: r["amount"] <= -500),
    "m2o in ids": lambda: ("account.analytic.line", [["employee_id", "in", (ids := [1, 3, 5])]],
                           lambda r: m2o(r["employee_id"]) in ids),
    "m2o not in keeps unset": lambda: ("account.analytic.line", [["partner_id", "not in", (ids := [7, 14])]],
                                       lambda r: m2o(r["partner_id"]) not in ids),
    "m2o != id keeps unset": lambda: ("account.analytic.line", [["task_id", "!=", (tid := first("task_id"))]],
                                      lambda r: m2o(r["task_id"]) != tid),
    "selection =like": lambda: ("account.analytic.line", [["timesheet_invoice_type", "=like", "billable%"]],
                                lambda r: r["timesheet_invoice_type"].startswith("billable")),
    "| (the connector's customers)": lambda: (
        "res.partner", ["|", ["is_company", "=", True], ["customer_rank", ">", 0]],
        lambda r: r["is_company"] or r["customer_rank"] > 0),
    "! boolean": lambda: ("res.partner", ["!", ["is_company", "=", True]], lambda r: not r["is_company"]),
    "integer >= and <": lambda: ("res.partner", [["customer_rank", ">=", 1], ["customer_rank", "<", 3]],
                                 lambda r: 1 <= r["customer_rank"] < 3),
    "char =like": lambda: ("res.partner", [["ref", "=like", "RS-C%"]],
                           lambda r: r["ref"] is not False and r["ref"].startswith("RS-C")),
    "char ilike": lambda: ("res.partner", [["name", "ilike", "corp"]], lambda r: "corp" in r["name"].lower()),
    "char like": lambda: ("res.partner", [["vat", "like", "DE"]], lambda r: r["vat"] is not False and "DE" in r["vat"]),
    "char not ilike keeps empty": lambda: ("res.partner", [["email", "not ilike", "example"]],
                                           lambda r: r["email"] is False or "example" not in r["email"].lower()),
    "char = false": lambda: ("res.partner", [["city", "=", False]], lambda r: r["city"] is False),
    "char =ilike": lambda: ("hr.employee", [["name", "=ilike", "m%"]], lambda r: r["name"].lower().startswith("m")),
    "m2o = display name": lambda: ("res.partner", [["country_id", "=", "Germany"]],
                                   lambda r: r["country_id"] is not False and r["country_id"][1] == "Germany"),
    "m2o ilike display name": lambda: ("account.move.line", [["product_id", "ilike", "workshop"]],
                                       lambda r: "workshop" in r["product_id"][1].lower()),
    "path on a many2one (the dump's own)": lambda: (
        "account.move.line", [["move_id.move_type", "=", "out_refund"]],
        lambda r: _move(r)["move_type"] == "out_refund"),
    "path with a negative operator": lambda: ("account.move.line", [["move_id.state", "!=", "posted"]],
                                              lambda r: _move(r)["state"] != "posted"),
    "! path": lambda: ("account.move.line", ["!", ["move_id.move_type", "=", "out_invoice"]],
                       lambda r: _move(r)["move_type"] != "out_invoice"),
    "two-step path": lambda: ("account.move.line", [["move_id.partner_id.country_id", "=", 57]],
                              lambda r: m2o(_partner(_move(r), "partner_id").get("country_id")) == 57),
    "path to the same model": lambda: ("res.partner", [["parent_id.is_company", "=", True]],
                                       lambda r: _partner(r, "parent_id").get("is_company") is True),
    "path through a pinned field's model": lambda: (
        "account.move", [["currency_id.name", "=", "EUR"]], lambda r: r["currency_id"][1] == "EUR"),
    "any": lambda: ("account.move.line", [["move_id", "any", [["payment_state", "=", "paid"]]]],
                    lambda r: _move(r)["payment_state"] == "paid"),
    "selection in / not in": lambda: ("account.move", [["move_type", "in", ["out_invoice", "out_refund"]],
                                                        ["state", "not in", ["draft"]]],
                                      lambda r: r["state"] != "draft"),
    "monetary > 0": lambda: ("account.move", [["amount_residual", ">", 0]], lambda r: r["amount_residual"] > 0),
    "char name = false": lambda: ("account.move", [["name", "=", False]], lambda r: r["name"] is False),
    "date >=": lambda: ("account.move", [["invoice_date", ">=", "2026-06-01"]],
                        lambda r: r["invoice_date"] >= "2026-06-01"),
    "json = false": lambda: ("account.move.line", [["analytic_distribution", "=", False]],
                             lambda r: r["analytic_distribution"] is False),
    "many2many = false": lambda: ("account.move.line", [["sale_line_ids", "=", False]],
                                  lambda r: r["sale_line_ids"] == []),
    "many2many != false": lambda: ("sale.order", [["project_ids", "!=", False]], lambda r: r["project_ids"] != []),
    "many2many in ids": lambda: ("sale.order", [["invoice_ids", "in", (inv := [
        i for r in records("sale.order") for i in r["invoice_ids"]][:3])]],
        lambda r: bool(set(r["invoice_ids"]) & set(inv))),
    "one2many not in": lambda: ("account.move", [["invoice_line_ids", "not in", (lines := [
        records("account.move.line")[0]["id"]])]], lambda r: not set(r["invoice_line_ids"]) & set(lines)),
    "datetime = false": lambda: ("crm.lead", [["date_closed", "=", False]], lambda r: r["date_closed"] is False),
    "pinned field": lambda: ("crm.lead", [["type", "=", "opportunity"]], lambda r: True),
    "path to a code": lambda: ("project.project", [["account_id.code", "=like", "RS-%"]],
                               lambda r: str(by_id("account.analytic.account").get(m2o(r["account_id"]), {})
                                             .get("code")).startswith("RS-")),
    "boolean and m2o set": lambda: ("project.project", [["allow_billable", "=", True], ["partner_id", "!=", False]],
                                    lambda r: r["allow_billable"] and r["partner_id"] is not False),
    "date field called name": lambda: ("res.currency.rate", [["name", ">=", "2026-06-01"], ["currency_id", "=", 126]],
                                       lambda r: r["name"] >= "2026-06-01" and m2o(r["currency_id"]) == 126),
}  # fmt: skip


@needs_dump
@pytest.mark.parametrize("case", list(DOMAINS))
def test_domains_select_what_odoo_selects(app: Starlette, case: str) -> None:
    model, domain, keep = DOMAINS[case]()
    expected = [r["id"] for r in records(model) if keep(r)]
    assert expected, "the case selects nothing: it would not test much"
    assert result(execute(app, model, "search", [domain], {"order": "id", "context": ALL})) == expected
    assert result(execute(app, model, "search_count", [domain], {"context": ALL})) == len(expected)


@needs_dump
def test_unsupported_conditions_are_refused_not_guessed(app: Starlette) -> None:
    error = rpc_error(execute(app, "account.analytic.line", "search", [[["task_id.name", "=", "x"]]]))
    assert error["message"].startswith("Not supported by the demo Odoo")  # project.task is not in the dump
    error = rpc_error(execute(app, "res.partner", "search", [[["supplier_rank", ">", 0]]]))
    assert (
        error["message"] == "Invalid field res.partner.supplier_rank in condition ('supplier_rank', '>', 0)"
    )


# -- ordering --------------------------------------------------------------------------------


def by(field: str, *, desc: bool = False) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Sort on ``field`` keeping the order of ties (Python's sort is stable, also reversed)."""
    return lambda rows: sorted(rows, key=lambda r: r[field], reverse=desc)


def parent_name(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Many2ones sort by display name, empty last (PostgreSQL puts NULLs last ascending)."""
    return sorted(rows, key=lambda r: (r["parent_id"] is False, r["parent_id"] and r["parent_id"][1]))


# name → (model, order, the dump's records (in id order) → sorted)
ORDERS: dict[str, tuple[str, str, Callable[[list[dict[str, Any]]], list[dict[str, Any]]]]] = {
    "datetime desc, id": ("account.move", "write_date desc, id", by("write_date", desc=True)),
    "monetary desc (id breaks ties)": ("account.move", "amount_total desc", by("amount_total", desc=True)),
    "many2one by display name": ("res.partner", "parent_id", parent_name),
    "date asc, id desc": ("account.move", "invoice_date asc, id desc",
                          lambda rows: by("invoice_date")(by("id", desc=True)(rows))),
}  # fmt: skip


@needs_dump
@pytest.mark.parametrize("case", list(ORDERS))
def test_order_and_paging_agree_with_sorting_the_dump(app: Starlette, case: str) -> None:
    model, order, sort = ORDERS[case]
    got = [r["id"] for r in search_all(app, model, [], ["id"], order=order)[0]]
    assert got == [r["id"] for r in sort(records(model))]


# -- fields_get ------------------------------------------------------------------------------


@needs_dump
@pytest.mark.parametrize("model", MODELS)
def test_fields_get_answers_the_dumps_metadata(app: Starlette, model: str) -> None:
    meta = dump(model)["fields_meta"]
    assert canonical(result(execute(app, model, "fields_get", []))) == canonical(meta)
    types = result(execute(app, model, "fields_get", [], {"attributes": ["type"]}))
    assert types == {name: {"type": entry["type"]} for name, entry in meta.items()}
    some = [name for name in meta if name != "id"][:2] + ["no_such_field"]
    attrs = ["string", "relation"]
    got = result(execute(app, model, "fields_get", [some], {"attributes": attrs}))
    assert got == {n: {a: meta[n][a] for a in attrs if a in meta[n]} for n in some if n in meta}


# -- JSON-2, credentials, errors -------------------------------------------------------------


@needs_dump
def test_json2_search_read_with_a_bearer_key(app: Starlette) -> None:
    fields = ["date", "project_id", "unit_amount"]
    body = {
        "domain": [["project_id", "!=", False]],
        "fields": fields,
        "offset": PAGE,
        "limit": PAGE,
        "order": "id",
    }
    response = json2(app, "account.analytic.line", "search_read", body)
    assert response.status_code == 200, response.text
    rows = records("account.analytic.line")[PAGE : 2 * PAGE]
    assert canonical(response.json()) == canonical([{k: r[k] for k in ("id", *fields)} for r in rows])
    count = json2(app, "account.analytic.line", "search_count", {"domain": body["domain"]})
    assert count.json() == len(records("account.analytic.line"))


@needs_dump
def test_bad_credentials_and_unknown_models_are_refused_like_odoo(app: Starlette) -> None:
    assert result(rpc(app, "common", "authenticate", DB, LOGIN, KEY, {})) == UID
    assert result(rpc(app, "common", "authenticate", DB, LOGIN, "wrong", {})) is False
    assert (
        rpc_error(execute(app, "res.partner", "search", [[]], key="wrong"))["name"]
        == "odoo.exceptions.AccessDenied"
    )
    refused = json2(app, "res.partner", "search_read", {}, key="wrong")
    assert refused.status_code == 401 and refused.json()["message"] == "Invalid apikey"
    error = rpc_error(execute(app, "product.product", "search_read", [[]]))
    assert (error["name"], error["message"]) == (
        "odoo.exceptions.UserError",
        "Object product.product doesn't exist",
    )
    missing = json2(app, "product.product", "search_read", {})
    assert (
        missing.status_code == 404
        and missing.json()["message"] == "the model 'product.product' does not exist"
    )


# -- the real instance's own answers (samples/) ----------------------------------------------


# What real Odoo sorts by when a request gives no order (the model's _order); the simulator's default
# is "id", which the connector always sends anyway.
ODOO_ORDER = {"account.move": "date desc, name desc, invoice_date desc, id desc"}


def _samples() -> list[Path]:
    return sorted(p for p in (REAL / "samples").glob("*.json") if "request" in json.loads(p.read_text()))


@needs_dump
@pytest.mark.parametrize("path", _samples() if REAL.exists() else [], ids=lambda p: p.stem)
def test_samples_are_answered_as_the_real_odoo_answered(app: Starlette, path: Path) -> None:
    """Each recorded request, minus fields the dump lacks, gets the recorded answer (those fields too)."""
    sample = json.loads(path.read_text())
    if "/json/2/" in sample["endpoint"]:
        model, method = sample["endpoint"].split("/json/2/")[1].split("/")
        body, expected = dict(sample["request"]), sample["response"]
    else:
        args = sample["request"]["params"]["args"]
        model, method, (call_args, body), expected = args[3], args[4], args[5:7], sample["response"]["result"]
    known = dump(model)["fields_meta"]
    if "fields" in body and method != "read_group":
        body = {**body, "fields": [f for f in body["fields"] if f in known]}
        expected = [{k: v for k, v in r.items() if k in known} for r in expected]
    if method == "search_read" and "order" not in body:
        body["order"] = ODOO_ORDER[model]
    if "/json/2/" in sample["endpoint"]:
        got = json2(app, model, method, body).json()
    else:
        got = result(execute(app, model, method, call_args, body))
    assert canonical(got) == canonical(expected)


# -- tieout demo serve --odoo-records ------------------------------------------------------------


def replay_home(
    root: Path, port: int, env_lines: str = "REPLAY_ODOO_USER=admin\nREPLAY_ODOO_KEY=k3y\n"
) -> Path:
    """A home whose only system is an Odoo on loopback (no generated firm)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sources.yaml").write_text(f"""\
systems:
  erp:
    connector: odoo
    base_url: http://127.0.0.1:{port}
    database: {DB}
    auth: {{user_env: REPLAY_ODOO_USER, api_key_env: REPLAY_ODOO_KEY}}
    objects: [customers, projects, time_entries, invoices]
""")
    (root / ".env").write_text(env_lines)
    return root


def _post(url: str, body: Any) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback only)
        return json.load(resp)


@needs_dump
def test_tieout_demo_serve_replays_the_records_on_loopback(tmp_path: Path) -> None:
    port = free_port_base()
    home = replay_home(tmp_path / "home", port)
    env = {**os.environ, "TIEOUT_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "demo", "serve", "--odoo-records", str(REAL)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(READY_LINE in ln for ln in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert any(READY_LINE in ln for ln in lines), (
            lines,
            proc.stderr.read() if proc.poll() is not None else "",
        )
        assert lines[0].startswith(f"odoo     http://127.0.0.1:{port}  (Odoo JSON-RPC and JSON-2; replaying")
        assert len(lines) == 2  # no HubSpot or Harvest without a generated firm

        def call(service: str, method: str, *args: Any) -> Any:
            body = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method,
                    "args": list(args)}, "id": 1}  # fmt: skip
            return _post(f"http://127.0.0.1:{port}/jsonrpc", body)["result"]

        uid = call("common", "authenticate", DB, "admin", "k3y", {})
        assert uid == 2
        domain = [["project_id", "!=", False]]
        count = call(
            "object", "execute_kw", DB, uid, "k3y", "account.analytic.line", "search_count", [domain]
        )
        assert count == len(records("account.analytic.line"))
        page = call("object", "execute_kw", DB, uid, "k3y", "account.move", "search_read",
                    [dump("account.move")["domain"]], {"fields": ["name"], "limit": 2, "offset": 1})  # fmt: skip
        assert page == [{"id": r["id"], "name": r["name"]} for r in records("account.move")[1:3]]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        proc.stdout.close()
        proc.stderr.close()


@needs_dump
@pytest.mark.parametrize(
    ("env_lines", "sources", "message"),
    [
        ("REPLAY_ODOO_USER=admin\n", None, "REPLAY_ODOO_KEY is unset"),
        ("REPLAY_ODOO_KEY=k\n", None, "REPLAY_ODOO_USER is unset"),
        ("REPLAY_ODOO_USER=a\nREPLAY_ODOO_KEY=b\n", "systems: {}\n", "systems"),
        ("REPLAY_ODOO_USER=a\nREPLAY_ODOO_KEY=b\n",
         "systems:\n  erp: {connector: odoo, base_url: 'https://odoo.example.com', database: d,\n"
         "    auth: {user_env: REPLAY_ODOO_USER, api_key_env: REPLAY_ODOO_KEY}, objects: [customers]}\n",
         "must be http://127.0.0.1:PORT"),
    ],
)  # fmt: skip
def test_tieout_demo_serve_refuses_what_the_connector_could_not_use(
    tmp_path: Path, env_lines: str, sources: str | None, message: str
) -> None:
    home = replay_home(tmp_path / "home", free_port_base(), env_lines)
    if sources is not None:
        (home / "sources.yaml").write_text(sources)
    for var in ("REPLAY_ODOO_USER", "REPLAY_ODOO_KEY"):
        os.environ.pop(var, None)  # the conftest restores the environment afterwards
    outcome = CliRunner().invoke(cli_app, ["demo", "serve", "--home", str(home), "--odoo-records", str(REAL)])
    assert outcome.exit_code == 2, outcome.output
    assert message in outcome.output


@needs_dump
def test_an_installations_variables_in_sources_yaml_decide_where_and_as_whom(tmp_path: Path) -> None:
    """sources.yaml naming ODOO_URL, ODOO_DB, ODOO_USER and ODOO_API_KEY: the replay answers there."""
    home = replay_home(tmp_path / "home", 0)
    (home / "sources.yaml").write_text("""\
systems:
  erp:
    connector: odoo
    base_url: ${ODOO_URL:-http://127.0.0.1:8069}
    database: ${ODOO_DB}
    auth: {user_env: ODOO_USER, api_key_env: ODOO_API_KEY}
    objects: [customers]
""")
    env = {
        "ODOO_URL": "http://127.0.0.1:18069",
        "ODOO_DB": "prod",
        "ODOO_USER": "me",
        "ODOO_API_KEY": "s3cret",
    }
    [sim] = build_simulators(home, env=env, odoo_records=REAL)  # env only: os.environ has none of them
    assert (sim.name, sim.url) == ("odoo", "http://127.0.0.1:18069")
    body = {"jsonrpc": "2.0", "method": "call", "params": {"service": "common", "method": "authenticate",
            "args": ["prod", "me", "s3cret", {}]}, "id": 1}  # fmt: skip
    assert request(sim.app, "POST", "/jsonrpc", json=body).json()["result"] == UID


@needs_dump
def test_a_json2_connector_needs_no_login(tmp_path: Path) -> None:
    home = replay_home(tmp_path / "home", 18070)
    (home / "sources.yaml").write_text(
        (home / "sources.yaml").read_text().replace("connector: odoo", "connector: odoo\n    protocol: json2")
    )
    [sim] = build_simulators(home, env={"REPLAY_ODOO_KEY": "k3y"}, odoo_records=REAL)
    headers = {"Authorization": "bearer k3y", "X-Odoo-Database": DB}
    answer = request(
        sim.app, "POST", "/json/2/res.company/search_read", json={"fields": ["name"]}, headers=headers
    )
    assert answer.json() == [{"id": r["id"], "name": r["name"]} for r in records("res.company")]


# -- dumps the simulator cannot render back unchanged ----------------------------------------


def _write_dump(folder: Path, records: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    meta = meta or {
        "id": {"string": "ID", "type": "integer"},
        "write_date": {"string": "W", "type": "datetime"},
    }
    (folder / "x.model.json").write_text(json.dumps({"model": "x.model", "domain": [], "fields_meta": meta,
                                                     "records": records}))  # fmt: skip
    return folder


@pytest.mark.parametrize(
    ("rows", "meta", "message"),
    [
        ([{"id": 1, "write_date": "2026-01-01T00:00:00"}], None, "record 1, field 'write_date' (datetime)"),
        ([{"id": 1}], None, "exactly the fields of fields_meta"),
        ([{"id": 1, "write_date": False}, {"id": 1, "write_date": False}], None, "not a unique integer"),
        (
            [{"id": 1, "p": {"a": 1}}],
            {"id": {"type": "integer"}, "p": {"type": "properties"}},
            "cannot replay",
        ),
    ],
)
def test_load_refuses_values_it_could_not_render_back(
    tmp_path: Path, rows: list[dict[str, Any]], meta: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(ReplayError, match=re.escape(message)):
        load_replay(_write_dump(tmp_path / "dump", rows, meta))
    with pytest.raises(ReplayError, match="no Odoo dump"):
        load_replay(tmp_path)
