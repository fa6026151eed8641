"""HubSpot and Harvest views of the firm whose ERP is the real Odoo, derived from its records.

Every row is in the columns of its :mod:`demo.tables` table, so the simulators serve it unchanged;
ids are HubSpot's and Harvest's own (numbered from each table's first id), never Odoo's. What each
system holds of an Odoo record, before any defect (:mod:`demo.real_erp.defects`):

- HubSpot companies: one per customer partner (``customer_rank > 0``): name, VAT, country, city,
  billing currency (the pricelist's), legal entity (the partner's company; none for a partner
  shared by the companies, as Odoo's partners usually are), and the Harvest client's id.
- HubSpot deals: one per sales order. Confirmed orders are closed-won on their order date, with the
  code of the order's project (the one Odoo created for it, else the first it lists): a confirmed
  order without a coded project is a won deal without a project. Cancelled orders are lost,
  quotations open.
- Harvest clients: one per customer partner; the commercial partner of a project or invoice that
  is not a customer gets one too; projects without a customer share an internal client named
  after the first company, as Harvest requires a client.
- Harvest users: one per employee, at the employee's hourly cost.
- Harvest projects: one per Odoo project, with its analytic account's code (none where Odoo has
  none), its status, and its billing model (time and materials, or non-billable).
- Harvest time entries: one per timesheet line, approved, on the line's project and day, billable
  as the line is, at the user's cost rate and at the price its sales order line was invoiced at
  (else the latest price of the same product in the order's currency); billed on the Harvest
  invoice of the line's Odoo invoice.
- Harvest invoices: one per customer invoice carrying the firm's reference (``ref``): number =
  reference, total, tax, balance, currency and state as Odoo's (Harvest has no credit notes); one
  line item per Odoo invoice line.
- Crosswalks: HubSpot company -> customer code (the partner's ``ref``), for partners that have
  one; Harvest time entry -> Odoo timesheet line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from demo.firm import month_end, month_start
from demo.invoicing import q2
from demo.real_erp.dump import Dump, Record, account_code, m2o, m2o_name, odoo_date, odoo_datetime, text
from extractors.statuses import STATUS_MAPS

__all__ = ["HARVEST_STATE", "Row", "Views", "derive", "erp_billing_model", "erp_invoice_status"]

Row = dict[str, Any]
#: table -> (first id, step) of the ids HubSpot and Harvest give the firm's records.
FIRST_IDS: dict[str, tuple[int, int]] = {
    "crm/companies": (18_400_000_000, 37), "crm/deals": (40_200_000_000, 53),
    "psa/clients": (8_810_000, 11), "psa/users": (3_900_000, 7), "psa/projects": (44_100_000, 13),
    "psa/time_entries": (2_610_000_000, 3), "psa/invoices": (61_500_000, 7),
    "psa/invoice_line_items": (72_500_000, 1),
}  # fmt: skip
#: canonical invoice status -> Harvest invoice state (the inverse of Harvest's mapping).
HARVEST_STATE = {canonical: state for state, canonical in STATUS_MAPS["harvest_invoice_state"].items()}
_TASK_IDS = 19_000_000  # + the Odoo task id: Harvest tasks are the firm's task names
_PRICELIST_CURRENCY = re.compile(r"\(([A-Z]{3})\)$")
_PRODUCT_CODE = re.compile(r"\[([^\]]+)\]")
_REF_PERIOD = re.compile(r"(\d{4})-(\d{2})$")


def erp_billing_model(project: Record) -> str | None:
    """Return the canonical billing model of an Odoo project, as the Odoo mapping reads it."""
    raw = "non_billable" if not project["allow_billable"] else project["pricing_type"]
    return STATUS_MAPS["odoo_billing_model"].get(raw) if raw else None


def erp_invoice_status(move: Record) -> str | None:
    """Return the canonical status of an Odoo invoice (payment state once posted, else its state)."""
    raw = move["payment_state"] if move["state"] == "posted" else move["state"]
    return STATUS_MAPS["odoo_invoice_state"].get(raw)


@dataclass
class Views:
    """The derived HubSpot and Harvest rows, the crosswalks, and where each Odoo record went.

    Attributes:
        tables: ``"crm/companies"`` ... ``"psa/invoice_line_items"`` -> rows.
        customer_codes: HubSpot company id -> customer code (``demo/crosswalks/customers.csv``).
        time_lines: Harvest time entry id -> Odoo timesheet line id
            (``demo/crosswalks/time_entries.csv``).
        company_of, client_of: partner id -> HubSpot company / Harvest client row.
        project_of, invoice_of: Odoo project, invoice id -> Harvest row.
    """

    tables: dict[str, list[Row]] = field(default_factory=lambda: {name: [] for name in FIRST_IDS})
    customer_codes: dict[str, str] = field(default_factory=dict)
    time_lines: dict[int, int] = field(default_factory=dict)
    company_of: dict[int, Row] = field(default_factory=dict)
    client_of: dict[int, Row] = field(default_factory=dict)
    project_of: dict[int, Row] = field(default_factory=dict)
    invoice_of: dict[int, Row] = field(default_factory=dict)
    _issued: dict[str, int] = field(default_factory=dict)

    def new_id(self, table: str) -> int:
        """Return the next id of ``table`` (see :data:`FIRST_IDS`)."""
        first, step = FIRST_IDS[table]
        n = self._issued.get(table, 0)
        self._issued[table] = n + 1
        return first + step * n

    def add(self, table: str, row: Row) -> Row:
        """Append ``row`` to ``table`` and return it."""
        self.tables[table].append(row)
        return row

    def remove(self, table: str, row: Row) -> None:
        """Remove ``row`` (the very object) from ``table``."""
        self.tables[table] = [r for r in self.tables[table] if r is not row]


def derive(dump: Dump) -> Views:
    """Return the HubSpot and Harvest views of ``dump``'s firm, without defects (see the module docs)."""
    v = Views()
    _Deriver(dump, v).run()
    return v


class _Deriver:
    def __init__(self, dump: Dump, v: Views) -> None:
        self.d, self.v = dump, v
        self.partners = dump["res.partner"]
        self.projects = dump["project.project"]
        self.orders = dump["sale.order"]
        # the first order of a name, as a search by name finds it
        self.order_named = {o["name"]: o for o in reversed(list(self.orders.values()))}
        self.read_at = datetime.combine(dump.read_on(), time(), tzinfo=UTC)
        first = min(dump["res.company"].values(), key=lambda c: c["id"])
        self.home_currency = m2o_name(first["currency_id"]) or "USD"
        self.internal: Row | None = None
        self.internal_name = str(first["name"])

    def run(self) -> None:
        customers = [p for p in self.partners.values() if p["customer_rank"] > 0]
        for p in customers:
            self._client(p["id"])
        for p in customers:
            self._company(p)
        for p in self.projects.values():
            self._project(p)
        for order in self.orders.values():
            self._deal(order)
        users = {e["id"]: self._user(e) for e in self.d["hr.employee"].values()}
        for move in self.d["account.move"].values():
            if move["move_type"] == "out_invoice" and move["ref"]:
                self._invoice(move)
        rates = _Rates(self.d)
        for line in self.d["account.analytic.line"].values():
            self._entry(line, users[m2o(line["employee_id"]) or 0], rates)

    # --- customers -----------------------------------------------------------------------------

    def _currency(self, partner: Record) -> str:
        found = _PRICELIST_CURRENCY.search(m2o_name(partner["property_product_pricelist"]) or "")
        return found.group(1) if found else self.home_currency

    def _client(self, partner_id: int | None) -> Row:
        """Return the Harvest client of a partner (its commercial partner's), created on first use."""
        if partner_id is None:
            return self._internal_client()
        commercial = m2o(self.partners[partner_id]["commercial_partner_id"]) or partner_id
        if commercial in self.v.client_of:
            return self.v.client_of[commercial]
        p = self.partners[commercial]
        city, country = text(p["city"]), m2o_name(p["country_id"])
        row = self.v.add("psa/clients", {
            "id": self.v.new_id("psa/clients"), "name": p["name"], "is_active": p["active"],
            "address": ", ".join(x for x in (city, country) if x) or None, "currency": self._currency(p),
            "created_at": odoo_datetime(p["create_date"]), "updated_at": odoo_datetime(p["write_date"]),
        })  # fmt: skip
        self.v.client_of[commercial] = row
        return row

    def _internal_client(self) -> Row:
        if self.internal is None:
            self.internal = self.v.add("psa/clients", {
                "id": self.v.new_id("psa/clients"), "name": self.internal_name, "is_active": True,
                "address": None, "currency": self.home_currency, "created_at": self.read_at,
                "updated_at": self.read_at,
            })  # fmt: skip
        return self.internal

    def _company(self, p: Record) -> None:
        email = text(p["email"])
        row = self.v.add("crm/companies", {
            "id": str(self.v.new_id("crm/companies")), "name": p["name"],
            "domain": email.rpartition("@")[2] if email and "@" in email else None,
            "country": m2o_name(p["country_id"]), "city": text(p["city"]), "lifecyclestage": "customer",
            "vat_number": text(p["vat"]), "billing_currency": self._currency(p),
            "legal_entity": self.d.legal_entity(m2o(p["company_id"])),
            "harvest_client_id": str(self.v.client_of[p["id"]]["id"]),
            "createdate": odoo_datetime(p["create_date"]),
            "hs_lastmodifieddate": odoo_datetime(p["write_date"]), "archived": not p["active"],
        })  # fmt: skip
        self.v.company_of[p["id"]] = row
        if p["ref"]:
            self.v.customer_codes[row["id"]] = str(p["ref"])

    # --- projects and deals --------------------------------------------------------------------

    def _project(self, p: Record) -> None:
        client = self._client(m2o(p["partner_id"]))
        model = erp_billing_model(p)
        billable = model == "time_and_materials"
        order = m2o_name(p["sale_order_id"])
        row = self.v.add("psa/projects", {
            "id": self.v.new_id("psa/projects"), "client_id": client["id"], "client_name": client["name"],
            "client_currency": client["currency"], "name": p["name"], "code": account_code(p["account_id"]),
            "is_active": p["active"], "is_billable": billable, "is_fixed_fee": model == "fixed_fee",
            "bill_by": "People" if billable else "none", "hourly_rate": None, "fee": None,
            "budget": q2(p["allocated_hours"]) if p["allocated_hours"] else None,
            "starts_on": odoo_date(p["date_start"]), "ends_on": odoo_date(p["date"]),
            "notes": f"Sales order {order}" if order else None, "project_manager_id": None,
            "created_at": odoo_datetime(p["create_date"]), "updated_at": odoo_datetime(p["write_date"]),
        })  # fmt: skip
        self.v.project_of[p["id"]] = row

    def order_project(self, order: Record) -> Record | None:
        """Return the project of a sales order: the one Odoo created for it, else the first it lists."""
        listed = [self.projects[i] for i in order["project_ids"] if i in self.projects]
        own = [p for p in listed if m2o(p["sale_order_id"]) == order["id"]]
        return (own + listed)[0] if listed else None

    def _deal(self, order: Record) -> None:
        project = self.order_project(order)
        partner = self.partners[m2o(order["partner_id"]) or 0]
        company = self.v.company_of.get(m2o(partner["commercial_partner_id"]) or partner["id"])
        ordered = odoo_datetime(order["date_order"])
        created = odoo_datetime(order["create_date"])
        assert ordered is not None and created is not None  # Odoo requires both
        self.v.add("crm/deals", {
            "id": str(self.v.new_id("crm/deals")),
            "dealname": f"{order['name']} {project['name'] if project else partner['name']}",
            "amount": q2(order["amount_untaxed"]), "deal_currency_code": m2o_name(order["currency_id"]),
            "dealstage": {"sale": "closedwon", "cancel": "closedlost"}.get(order["state"], "contractsent"),
            "pipeline": "default", "closedate": ordered,
            "project_code": account_code(project["account_id"]) if project else None,
            "company_id": company["id"] if company else None,
            # Odoo's orders were entered after the fact (created after their order date): a deal
            # exists in the CRM by its close date at the latest.
            "createdate": min(created, ordered), "hs_lastmodifieddate": odoo_datetime(order["write_date"]),
            "archived": False,
        })  # fmt: skip

    # --- people, time and invoices -------------------------------------------------------------

    def _user(self, e: Record) -> Row:
        first, _, last = str(e["name"]).partition(" ")
        return self.v.add("psa/users", {
            "id": self.v.new_id("psa/users"), "first_name": first, "last_name": last or first,
            "email": f"{first}.{last}.{e['id']}@tieout.example".lower().replace(" ", "."),
            "is_active": e["active"], "is_project_manager": False, "default_hourly_rate": None,
            "cost_rate": q2(e["hourly_cost"]), "legal_entity": self.d.legal_entity(m2o(e["company_id"])),
            "created_at": self.read_at, "updated_at": self.read_at,
        })  # fmt: skip

    def _invoice_project(self, move: Record, order: Record | None) -> Row | None:
        """Return the Harvest project an invoice bills.

        That of the code its reference starts with (``RS-P1001 2026-01``), else its sales order's.
        """
        code = str(move["ref"]).split(" ")[0]
        coded = next((row for row in self.v.project_of.values() if row["code"] == code), None)
        if coded is not None:
            return coded
        project = self.order_project(order) if order else None
        return self.v.project_of[project["id"]] if project else None

    def _invoice(self, move: Record) -> None:
        client = self._client(m2o(move["commercial_partner_id"]) or m2o(move["partner_id"]))
        issued = odoo_date(move["invoice_date"]) or odoo_date(move["date"])
        assert issued is not None  # an invoice has an accounting date
        start, end = _period(str(move["ref"]), issued)
        order = self.order_named.get(move["invoice_origin"])
        status = erp_invoice_status(move)
        row = self.v.add("psa/invoices", {
            "id": self.v.new_id("psa/invoices"), "client_id": client["id"], "client_name": client["name"],
            "number": move["ref"], "purchase_order": text(order["client_order_ref"]) if order else None,
            "amount": q2(move["amount_total"]), "due_amount": q2(move["amount_residual"]), "tax": None,
            "tax_amount": q2(move["amount_tax"]), "subject": move["ref"],
            "state": HARVEST_STATE[status] if status else None, "period_start": start, "period_end": end,
            "issue_date": issued, "due_date": odoo_date(move["invoice_date_due"]), "paid_date": None,
            "currency": m2o_name(move["currency_id"]), "created_at": odoo_datetime(move["create_date"]),
            "updated_at": odoo_datetime(move["write_date"]),
        })  # fmt: skip
        self.v.invoice_of[move["id"]] = row
        project = self._invoice_project(move, order)
        for line_id in move["invoice_line_ids"]:
            line = self.d["account.move.line"].get(line_id)
            if line is None:  # a note or section line: the dump holds product lines only
                continue
            self.v.add("psa/invoice_line_items", {
                "id": self.v.new_id("psa/invoice_line_items"), "invoice_id": row["id"],
                "project_id": project["id"] if project else None,
                "project_name": project["name"] if project else None,
                "project_code": project["code"] if project else None, "kind": "Service",
                "description": line["name"], "quantity": q2(line["quantity"]),
                "unit_price": q2(line["price_unit"]), "amount": q2(line["price_subtotal"]),
                "taxed": line["price_total"] != line["price_subtotal"],
            })  # fmt: skip

    def _entry(self, line: Record, user: Row, rates: _Rates) -> None:
        project = self.v.project_of[m2o(line["project_id"]) or 0]
        invoice = self.v.invoice_of.get(m2o(line["timesheet_invoice_id"]) or 0)
        billable = str(line["timesheet_invoice_type"]).startswith("billable")
        rate = rates.of(line) if billable else None
        task = m2o(line["task_id"])
        row = self.v.add("psa/time_entries", {
            "id": self.v.new_id("psa/time_entries"), "spent_date": odoo_date(line["date"]),
            "hours": q2(line["unit_amount"]), "notes": text(line["name"]), "is_locked": invoice is not None,
            "is_closed": True, "is_billed": invoice is not None, "billable": billable,
            "billable_rate": q2(rate) if rate is not None else None, "cost_rate": user["cost_rate"],
            "user_id": user["id"], "user_name": f"{user['first_name']} {user['last_name']}",
            "client_id": project["client_id"], "client_name": project["client_name"],
            "client_currency": project["client_currency"], "project_id": project["id"],
            "project_name": project["name"], "project_code": project["code"],
            "task_id": _TASK_IDS + task if task else None, "task_name": m2o_name(line["task_id"]),
            "invoice_id": invoice["id"] if invoice else None,
            "invoice_number": invoice["number"] if invoice else None,
            "created_at": odoo_datetime(line["create_date"]), "updated_at": odoo_datetime(line["write_date"]),
        })  # fmt: skip
        self.v.time_lines[row["id"]] = line["id"]


class _Rates:
    """The price each timesheet line bills at: its sales order line's, as invoiced.

    A sales order line not invoiced yet takes the latest invoiced price of the same product in its
    order's currency; none known leaves the rate empty.
    """

    def __init__(self, d: Dump) -> None:
        moves = d["account.move"]
        self.by_so_line: dict[int, Decimal] = {}
        self.by_product: dict[tuple[str, str], Decimal] = {}
        self.order_currency = {o["id"]: m2o_name(o["currency_id"]) for o in d["sale.order"].values()}
        for line in d["account.move.line"].values():  # id order: later prices win
            for so_line in line["sale_line_ids"]:
                self.by_so_line[so_line] = line["price_unit"]
            code = _product_code(m2o_name(line["product_id"]))
            currency = m2o_name(moves[m2o(line["move_id"]) or 0]["currency_id"])
            if code and currency:
                self.by_product[(code, currency)] = line["price_unit"]

    def of(self, line: Record) -> Decimal | None:
        so_line = m2o(line["so_line"])
        if so_line is None:
            return None
        if so_line in self.by_so_line:
            return self.by_so_line[so_line]
        code = _product_code(m2o_name(line["so_line"]))
        currency = self.order_currency.get(m2o(line["order_id"]) or 0)
        return self.by_product.get((code, currency)) if code and currency else None


def _product_code(name: str | None) -> str | None:
    found = _PRODUCT_CODE.search(name or "")
    return found.group(1) if found else None


def _period(ref: str, issued: date) -> tuple[date, date]:
    """Return the month an invoice bills: its reference's (``RS-P1001 2026-01``), else its issue month."""
    found = _REF_PERIOD.search(ref)
    start = date(int(found.group(1)), int(found.group(2)), 1) if found else month_start(issued)
    return start, month_end(start)
