"""The Odoo-run firm (examples/odoo-firm) on a real Odoo 19's records, replayed over HTTP.

The example folder is the home, as a user would copy it; the server's address and credentials
come from the environment (HOME/.env). ``tieout demo serve --odoo-records`` replays
``../shared/real/odoo19`` where sources.yaml says the server is, and the pipeline runs once
(extract, check, reconcile). Every expectation is computed from the JSON files directly, with
Odoo's own fields, independently of the connector, the mappings and the rules.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from data.users import User, hash_password, save_user
from data.warehouse import connect
from demo.live import free_port_base, serving
from pipeline import PipelineRun, run_pipeline
from tests.app.apptest import PAGES, entities_shown, problems, serving_home, signed_in
from tests.app.conftest import PASSWORD

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "odoo-firm"
RECORDS = REPO.parent / "shared" / "real" / "odoo19"
BUSINESS_DATE = date(2026, 11, 21)  # the day the records were read
LEGAL_ENTITIES = {1: "YC", 2: "USC"}  # examples/odoo-firm/sources.yaml
#: (system, object) -> the dumped model it is read from.
READ_FROM = {("crm", "customers"): "res.partner", ("crm", "projects"): "crm.lead",
             ("psa", "projects"): "project.project", ("psa", "time_entries"): "account.analytic.line",
             ("erp", "invoices"): "account.move", ("erp", "invoice_lines"): "account.move.line"}  # fmt: skip


@cache
def _dumped(model: str) -> tuple[dict[str, Any], ...]:
    dump = json.loads((RECORDS / f"{model}.json").read_text(encoding="utf-8"), parse_float=Decimal)
    return tuple(dump["records"])


def records(model: str) -> list[dict[str, Any]]:
    """The dumped records of ``model``, numbers as Decimal (as exact as the canonical tables), parsed once."""
    return list(_dumped(model))


def m2o(value: Any) -> Any:
    """A many2one's id, or None for Odoo's ``false``."""
    return value[0] if value else None


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, PipelineRun]]:
    """(home, the first pipeline run) of the example firm on the replayed records."""
    if not RECORDS.exists():
        pytest.skip(f"the real Odoo 19 records are not at {RECORDS}")
    home = tmp_path_factory.mktemp("odoo-firm")
    shutil.copytree(EXAMPLE, home, dirs_exist_ok=True)
    with (home / "sources.yaml").open("a") as f:
        f.write(f"business_date: {BUSINESS_DATE.isoformat()}\n")
    port = free_port_base()
    (home / ".env").write_text(
        f"ODOO_URL=http://127.0.0.1:{port}\nODOO_DB=realsys\nODOO_USER=reader@example.com\n"
        "ODOO_API_KEY=replayed-odoo-key-0042\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIEOUT_HOME", str(home))
        for line in (home / ".env").read_text().splitlines():
            mp.setenv(*line.split("=", 1))
        with serving(home, args=["--odoo-records", str(RECORDS)]):
            run = run_pipeline(home)
            yield home, run


def breaks_of(home: Path, rule_id: str) -> list[tuple[Any, ...]]:
    con = connect(home)
    try:
        return con.execute(
            "SELECT break_type, source_id, target_id, field, source_value, target_value FROM breaks "
            "WHERE rule_id = ? ORDER BY ALL",
            [rule_id],
        ).fetchall()
    finally:
        con.close()


def test_every_dumped_record_lands_once_typed_and_mapped(firm: tuple[Path, PipelineRun]) -> None:
    home, run = firm
    assert [(r.system, r.object, r.status) for r in run.extractions if r.status != "succeeded"] == []
    assert run.reconciliation is not None and all(r.status == "ok" for r in run.reconciliation.results)
    con = connect(home)
    try:
        for (system, obj), model in READ_FROM.items():
            key = {"customers": "customer_id", "projects": "project_id", "time_entries": "time_entry_id",
                   "invoices": "invoice_id", "invoice_lines": "invoice_line_id"}[obj]  # fmt: skip
            ids = con.execute(f"SELECT {key} FROM {obj} WHERE system = ?", [system]).fetchall()
            assert sorted(int(i) for (i,) in ids) == sorted(r["id"] for r in records(model)), (system, obj)
            quarantined = con.execute("SELECT count(*) FROM quarantine WHERE system = ?", [system]).fetchall()
            assert quarantined == [(0,)]
        lines = records("account.analytic.line")
        hours = con.execute("SELECT sum(hours), sum(cost_amount) FROM time_entries").fetchall()
        assert hours == [(sum(r["unit_amount"] for r in lines), -sum(r["amount"] for r in lines))]
        got = con.execute("SELECT time_entry_id, sale_line_id, billing_type FROM time_entries "
                          "WHERE system = 'psa'").fetchall()  # fmt: skip
        types = {"billable_time": "time_and_materials", "billable_fixed": "fixed_fee",
                 "billable_milestones": "milestones", "billable_manual": "manual", "non_billable": "non_billable"}  # fmt: skip
        assert sorted(got) == sorted(
            (
                str(r["id"]),
                str(m2o(r["so_line"])) if r["so_line"] else None,
                types[r["timesheet_invoice_type"]],
            )
            for r in lines
        )
        got = con.execute("SELECT invoice_line_id, invoice_id, sale_line_id, quantity, amount, currency, "
                          "legal_entity_id FROM invoice_lines").fetchall()  # fmt: skip
        assert sorted(got) == sorted(
            (str(r["id"]), str(m2o(r["move_id"])), str(r["sale_line_ids"][0]) if r["sale_line_ids"] else None,
             r["quantity"], r["price_subtotal"], r["currency_id"][1], LEGAL_ENTITIES[m2o(r["company_id"])])
            for r in records("account.move.line")
        )  # fmt: skip
        moves = {r["id"]: r for r in records("account.move")}
        got = con.execute("SELECT invoice_id, kind, amount_total, amount_due, reversed_invoice_id, legal_entity_id "
                          "FROM invoices").fetchall()  # fmt: skip
        for invoice_id, kind, total, due, reversed_id, entity in got:
            move = moves[int(invoice_id)]
            sign = -1 if move["move_type"] == "out_refund" else 1
            assert kind == {"out_invoice": "invoice", "out_refund": "credit_note"}[move["move_type"]]
            assert (total, due) == (sign * move["amount_total"], sign * move["amount_residual"])
            assert reversed_id == (str(m2o(move["reversed_entry_id"])) if move["reversed_entry_id"] else None)
            assert entity == LEGAL_ENTITIES[m2o(move["company_id"])]
        won = con.execute(
            "SELECT project_id FROM projects WHERE system = 'crm' AND won_at IS NOT NULL"
        ).fetchall()
        assert sorted(int(i) for (i,) in won) == sorted(
            r["id"] for r in records("crm.lead") if r["won_status"] == "won"
        )
    finally:
        con.close()


def test_unbilled_time_is_odoos_own_state_line_by_line(firm: tuple[Path, PipelineRun]) -> None:
    home, _ = firm
    lines = records("account.analytic.line")
    unbilled = {
        r["id"]
        for r in lines
        if r["timesheet_invoice_type"].startswith("billable") and not r["timesheet_invoice_id"]
    }
    found = breaks_of(home, "unbilled_time")
    assert {b[0] for b in found} == {"aged"} and len(found) == len(unbilled) > 0
    assert {int(b[1]) for b in found} == unbilled  # and every other line is not unbilled


def test_time_unbilled_by_a_credit_note_is_the_released_lines_of_the_reversed_invoices(
    firm: tuple[Path, PipelineRun],
) -> None:
    home, _ = firm
    moves = {r["id"]: r for r in records("account.move")}
    released: set[tuple[str, str]] = set()  # (sales order, month worked) of each reversed invoice
    for note in moves.values():
        original = moves.get(m2o(note["reversed_entry_id"]))
        if (
            note["move_type"] == "out_refund"
            and note["state"] == "posted"
            and original
            and original["state"] == "posted"
        ):
            # The firm invoices a month at the start of the next one, from the sales order.
            year, month = (int(p) for p in original["invoice_date"][:7].split("-"))
            worked = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
            released.add((note["invoice_origin"], worked))
    assert released
    expected = {
        r["id"] for r in records("account.analytic.line")
        if r["timesheet_invoice_type"].startswith("billable") and not r["timesheet_invoice_id"]
        and r["order_id"] and (r["order_id"][1], r["date"][:7]) in released
    }  # fmt: skip
    found = breaks_of(home, "time_unbilled_by_credit_note")
    assert {int(b[1]) for b in found} == expected and len(found) == len(expected) > 0


def test_invoiced_hours_are_the_hours_of_the_timesheet_lines_each_invoice_billed(
    firm: tuple[Path, PipelineRun],
) -> None:
    home, _ = firm
    lines = records("account.analytic.line")
    by_the_hour = {m2o(r["so_line"]) for r in lines if r["timesheet_invoice_type"] == "billable_time"}
    moves = {r["id"]: r for r in records("account.move")}
    invoiced: dict[tuple[int, int], Decimal] = {}  # (invoice, sales order line) -> hours on its lines
    for line in records("account.move.line"):
        move = moves[m2o(line["move_id"])]
        ordered = line["sale_line_ids"][0] if line["sale_line_ids"] else None
        if move["move_type"] == "out_invoice" and move["state"] != "cancel" and ordered in by_the_hour:
            key = (move["id"], ordered)
            invoiced[key] = invoiced.get(key, Decimal(0)) + line["quantity"]
    worked: dict[tuple[int, int], Decimal] = {}  # (invoice, sales order line) -> hours of its timesheets
    for r in lines:
        if r["timesheet_invoice_id"] and r["so_line"]:
            key = (m2o(r["timesheet_invoice_id"]), m2o(r["so_line"]))
            worked[key] = worked.get(key, Decimal(0)) + r["unit_amount"]
    expected = {
        (invoice, invoiced.get((invoice, ordered), Decimal(0)), worked.get((invoice, ordered), Decimal(0)))
        for invoice, ordered in invoiced.keys() | worked.keys()
        if invoiced.get((invoice, ordered), Decimal(0)) != worked.get((invoice, ordered), Decimal(0))
    }
    found = breaks_of(home, "invoiced_hours")
    assert {(b[0], b[3]) for b in found} == {("aggregate_mismatch", "hours")}
    assert {(int(b[1]), Decimal(b[4]), Decimal(b[5])) for b in found} == expected and expected
    # what the dump holds: invoices a credit note reversed, whose timesheets Odoo released
    reversed_ids = {m2o(m["reversed_entry_id"]) for m in moves.values() if m["move_type"] == "out_refund"}
    assert {invoice for invoice, _, _ in expected} <= reversed_ids


def test_invoices_issued_by_another_legal_entity_than_the_customers_projects(
    firm: tuple[Path, PipelineRun],
) -> None:
    home, _ = firm
    entities: dict[int, set[str]] = {}
    for p in records("project.project"):
        if p["partner_id"] and p["company_id"]:
            entities.setdefault(p["partner_id"][0], set()).add(LEGAL_ENTITIES[p["company_id"][0]])
    expected = set()
    for move in records("account.move"):
        customer = m2o(move["commercial_partner_id"]) or m2o(move["partner_id"])
        own = LEGAL_ENTITIES[move["company_id"][0]]
        if move["move_type"] == "out_invoice" and customer in entities and own != min(entities[customer]):
            expected.add((move["id"], own, min(entities[customer])))
    found = breaks_of(home, "invoice_legal_entity")
    assert {b[0] for b in found} == {"field_mismatch"} and {b[3] for b in found} == {"legal_entity_id"}
    assert {(int(b[1]), b[4], b[5]) for b in found} == expected and expected


def test_won_opportunities_without_a_project_and_receivables_past_due(firm: tuple[Path, PipelineRun]) -> None:
    home, _ = firm
    with_project = {m2o(p["partner_id"]) for p in records("project.project")}
    orphans = {
        r["id"]
        for r in records("crm.lead")
        if r["won_status"] == "won" and m2o(r["partner_id"]) not in with_project
    }
    assert {int(b[1]) for b in breaks_of(home, "won_opportunity_without_project")} == orphans and orphans
    past_due = {
        r["id"] for r in records("account.move")
        if r["move_type"] == "out_invoice" and r["state"] == "posted" and r["amount_residual"] > 0
        and date.fromisoformat(r["invoice_date_due"]) < BUSINESS_DATE
    }  # fmt: skip
    assert {int(b[1]) for b in breaks_of(home, "receivables_past_due")} == past_due and past_due


def test_the_app_shows_the_odoo_run_firm_within_each_users_legal_entities(
    firm: tuple[Path, PipelineRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _ = firm
    for name, role, entities in (("admin", "admin", None), ("yc_finance", "finance", ("YC",))):
        user = User(name=name, display_name=name, role=role, legal_entities=entities,
                    password_hash=hash_password(PASSWORD, rounds=4))  # fmt: skip
        save_user(home / "users.yaml", user, replace=True)
    with serving_home(home, monkeypatch):
        for name, allowed in (("admin", {"YC", "USC"}), ("yc_finance", {"YC"})):
            at = signed_in(name)
            assert set(at.sidebar.multiselect[0].options) == allowed
            shown: set[str] = set()
            for page in PAGES:
                at.switch_page(page).run()
                assert not problems(at), (name, page, problems(at))
                shown |= entities_shown(at, set(LEGAL_ENTITIES.values()))
            assert shown == allowed, (name, shown)
