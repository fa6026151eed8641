"""Each system's view of the firm's master data (customers, deals, people, projects), with defects.

Builds the rows of the HubSpot, Harvest and Odoo master tables (``demo.tables``) from the true
firm (``demo.firm``) and injects the customer, deal and project defects, recording each in the
ground truth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from demo.firm import ENTITY, LEGAL_ENTITIES, ODOO_COUNTRY_IDS, Customer, Firm, Project
from demo.ground_truth import GroundTruth

Row = dict[str, Any]
CURRENCY_IDS = {"USD": 1, "GBP": 147, "EUR": 126}
PRICELIST_IDS = {"USD": 1, "GBP": 2, "EUR": 3}


def ts(d: date, hour: int = 9) -> datetime:
    """Return ``d`` at ``hour``:00 UTC."""
    return datetime.combine(d, time(hour), tzinfo=UTC)


def company_m2o(entity: str) -> tuple[int, str]:
    """Return the Odoo ``company_id`` (id, display name) of a legal entity."""
    le = ENTITY[entity]
    return le.odoo_company_id, le.name


@dataclass
class MasterViews:
    """Rows per table (keyed ``system/name``) and the lookups the time and invoice views need.

    Attributes:
        tables: ``"erp/res.partner"`` → list of rows (columns of ``demo.tables``).
        erp_project: Harvest project id → its Odoo project row (absent: not in Odoo).
        erp_partner: HubSpot id → Odoo partner row of the customer.
        psa_client: HubSpot id → Harvest client row.
        user_name: consultant id → full name (a Harvest user, an Odoo user).
    """

    tables: dict[str, list[Row]] = field(default_factory=dict)
    erp_project: dict[int, Row] = field(default_factory=dict)
    erp_partner: dict[str, Row] = field(default_factory=dict)
    psa_client: dict[str, Row] = field(default_factory=dict)
    user_name: dict[int, str] = field(default_factory=dict)

    def add(self, key: str, row: Row) -> Row:
        """Append ``row`` to table ``key`` and return it."""
        self.tables.setdefault(key, []).append(row)
        return row


def _pick(rng: random.Random, pool: list[Any], n: int, taken: set[int]) -> list[Any]:
    """Draw ``n`` items of ``pool`` not yet in ``taken`` (by id()), marking them taken."""
    free = [x for x in pool if id(x) not in taken]
    chosen = rng.sample(free, min(n, len(free)))
    taken.update(id(x) for x in chosen)
    return chosen


def _count(firm: Firm, rate: float, pool: int) -> int:
    return max(firm.config.defects.minimum, round(rate * pool))


def _respell(name: str) -> str:
    """Return ``name`` as another system might type it: other case, punctuation and spacing."""
    return name.upper().replace(".", "").replace(" ", "  ", 1)


def build_master(firm: Firm, gt: GroundTruth) -> MasterViews:
    """Return every system's master tables for ``firm``, with defects recorded in ``gt``."""
    rng = random.Random(firm.config.seed * 7919 + 1)
    v = MasterViews()
    _reference_tables(v)
    _people(firm, v)
    _customers(firm, v, gt, rng)
    _deals(firm, v, gt, rng)
    _projects(firm, v, gt, rng)
    return v


def _reference_tables(v: MasterViews) -> None:
    for cur, cid in CURRENCY_IDS.items():
        v.add("erp/res.currency", {"id": cid, "name": cur, "symbol": cur, "active": True})
        v.add("erp/product.pricelist", {
            "id": PRICELIST_IDS[cur], "name": f"Default ({cur})", "currency_id": cid,
            "currency_id__display": cur, "company_id": None, "company_id__display": None})  # fmt: skip
    for le in LEGAL_ENTITIES:
        v.add("erp/res.company", {
            "id": le.odoo_company_id, "name": le.name, "currency_id": CURRENCY_IDS[le.currency],
            "currency_id__display": le.currency, "country_id": ODOO_COUNTRY_IDS[le.country],
            "country_id__display": le.country, "vat": None})  # fmt: skip


def _people(firm: Firm, v: MasterViews) -> None:
    start = ts(firm.window_start - timedelta(days=400))
    for c in firm.consultants:
        v.add("psa/users", {
            "id": c.id, "first_name": c.first_name, "last_name": c.last_name,
            "email": f"{c.first_name}.{c.last_name}.{c.id}@tieout.example".lower(),
            "is_active": True, "is_project_manager": c.is_project_manager,
            "default_hourly_rate": c.bill_rate, "cost_rate": c.cost_rate,
            "legal_entity": c.legal_entity, "created_at": start, "updated_at": start})  # fmt: skip
        v.user_name[c.id] = f"{c.first_name} {c.last_name}"
        cid, cname = company_m2o(c.legal_entity)
        v.add("erp/hr.employee", {
            "id": c.odoo_employee_id, "name": c.name, "active": True, "company_id": cid,
            "company_id__display": cname, "hourly_cost": c.cost_rate})  # fmt: skip


def _customers(firm: Firm, v: MasterViews, gt: GroundTruth, rng: random.Random) -> None:
    rates = firm.config.defects
    customers = [c for c in firm.customers if c.is_customer]
    idle = [c for c in customers if not c.project_ids]  # no projects: safe to drop downstream
    taken: set[int] = set()
    n = _count(firm, rates.customer, len(customers))
    missing_erp = {id(c) for c in _pick(rng, idle, n, taken)}
    missing_psa = {id(c) for c in _pick(rng, idle, n, taken)}
    changes = {kind: {id(c) for c in _pick(rng, customers, n, taken)} for kind in (
        "customer_name_changed", "customer_name_respelled_inside", "customer_tax_id_changed",
        "customer_tax_id_spaced_inside", "customer_currency_changed", "customer_entity_changed",
        "customer_country_changed", "client_name_changed", "client_name_respelled_inside",
        "customer_duplicated_in_erp")}  # fmt: skip
    # A client's currency is its projects' currency in Harvest: change it only where no project
    # would inherit the difference.
    changes["client_currency_changed"] = {id(c) for c in _pick(rng, idle, n, taken)}
    partner_id = 1000
    client_id = 8_800_000
    for c in firm.customers:
        created = ts(c.created)
        client: Row | None = None
        if c.is_customer and id(c) not in missing_psa:
            client_id += 11
            name = c.name
            if id(c) in changes["client_name_changed"]:
                name = f"{c.name.split(' ')[0]} Group {c.name.split(' ')[-1]}"
                gt.add("client_name_changed", source_id=c.crm_id, target_id=client_id,
                       legal_entity_id=c.legal_entity)  # fmt: skip
            elif id(c) in changes["client_name_respelled_inside"]:
                name = _respell(c.name)
                gt.add("client_name_respelled_inside", source_id=c.crm_id, target_id=client_id,
                       legal_entity_id=c.legal_entity)  # fmt: skip
            currency = c.currency
            if id(c) in changes["client_currency_changed"]:
                currency = "USD" if c.currency != "USD" else "EUR"
                gt.add("client_currency_changed", source_id=c.crm_id, target_id=client_id,
                       legal_entity_id=c.legal_entity)  # fmt: skip
            client = v.add("psa/clients", {
                "id": client_id, "name": name, "is_active": True,
                "address": f"{c.city}, {c.country}", "currency": currency,
                "created_at": created, "updated_at": created})  # fmt: skip
            v.psa_client[c.crm_id] = client
        elif id(c) in missing_psa:
            gt.add("client_missing_in_psa", source_id=c.crm_id, target_id=None,
                   legal_entity_id=c.legal_entity)  # fmt: skip
        v.add("crm/companies", {
            "id": c.crm_id, "name": c.name, "domain": c.domain, "country": c.country,
            "city": c.city, "lifecyclestage": "customer" if c.is_customer else "lead",
            "vat_number": c.tax_id, "billing_currency": c.currency, "legal_entity": c.legal_entity,
            "harvest_client_id": str(client["id"]) if client else None, "createdate": created,
            "hs_lastmodifieddate": created + timedelta(days=3), "archived": False})  # fmt: skip
        if not c.is_customer:
            continue
        if id(c) in missing_erp:
            gt.add("customer_missing_in_erp", source_id=c.crm_id, target_id=None,
                   legal_entity_id=c.legal_entity)  # fmt: skip
            continue
        partner_id += 1
        row = _partner(c, partner_id, created)
        for kind in ("customer_name_changed", "customer_name_respelled_inside",
                     "customer_tax_id_changed", "customer_tax_id_spaced_inside",
                     "customer_currency_changed", "customer_entity_changed",
                     "customer_country_changed"):  # fmt: skip
            if id(c) in changes[kind]:
                _change_partner(row, kind, c)
                gt.add(kind, source_id=c.crm_id, target_id=partner_id,
                       legal_entity_id=c.legal_entity)  # fmt: skip
        v.erp_partner[c.crm_id] = v.add("erp/res.partner", row)
        if id(c) in changes["customer_duplicated_in_erp"]:
            partner_id += 1
            v.add("erp/res.partner", {**_partner(c, partner_id, created + timedelta(days=30))})
            gt.add("customer_duplicated_in_erp", source_id=c.crm_id, target_id=partner_id,
                   legal_entity_id=c.legal_entity)  # fmt: skip
    # Partners created directly in Odoo, and partners whose CRM reference points nowhere.
    fake = firm.customers[0]
    for i in range(_count(firm, rates.customer, len(customers))):
        for kind in ("customer_only_in_erp", "customer_unknown_crm_ref"):
            partner_id += 1
            ref = None if kind == "customer_only_in_erp" else str(9_000_000_000 + 101 * (i + 1))
            row = _partner(fake, partner_id, ts(firm.config.as_of - timedelta(days=20 + i)))
            walk_in = f"Walk-in Client {partner_id} LLC"
            row.update(name=walk_in, display_name=walk_in,
                       ref=ref, vat=None)  # fmt: skip
            v.add("erp/res.partner", row)
            gt.add(kind, source_id=ref, target_id=partner_id, legal_entity_id=fake.legal_entity)
    for i in range(_count(firm, rates.customer, len(customers))):
        client_id += 11
        stamp = ts(firm.config.as_of - timedelta(days=40 + i))
        v.add("psa/clients", {
            "id": client_id, "name": f"Direct Client {client_id} Ltd", "is_active": True,
            "address": None, "currency": "GBP", "created_at": stamp, "updated_at": stamp})  # fmt: skip
        gt.add("client_only_in_psa", source_id=None, target_id=client_id, legal_entity_id="UK")


def _partner(c: Customer, pid: int, created: datetime) -> Row:
    cid, cname = company_m2o(c.legal_entity)
    return {
        "id": pid, "name": c.name, "display_name": c.name, "ref": c.crm_id, "vat": c.tax_id,
        "is_company": True, "customer_rank": 1 + pid % 9,
        "country_id": ODOO_COUNTRY_IDS[c.country], "country_id__display": c.country,
        "city": c.city, "email": f"accounts@{c.domain}", "company_id": cid,
        "company_id__display": cname, "property_product_pricelist": PRICELIST_IDS[c.currency],
        "property_product_pricelist__display": f"Default ({c.currency})", "active": True,
        "create_date": created, "write_date": created + timedelta(days=1),
    }  # fmt: skip


def _change_partner(row: Row, kind: str, c: Customer) -> None:
    if kind == "customer_name_changed":
        row["name"] = row["display_name"] = f"{c.name.split(' ')[0]} Holdings {c.name.split(' ')[-1]}"
    elif kind == "customer_name_respelled_inside":
        row["name"] = row["display_name"] = _respell(c.name)
    elif kind == "customer_tax_id_changed":
        row["vat"] = c.tax_id[:-3] + str((int(c.tax_id[-3:]) + 111) % 1000).zfill(3)
    elif kind == "customer_tax_id_spaced_inside":
        row["vat"] = " ".join(c.tax_id[i : i + 3] for i in range(0, len(c.tax_id), 3))
    elif kind == "customer_currency_changed":
        cur = "USD" if c.currency != "USD" else "EUR"
        row["property_product_pricelist"] = PRICELIST_IDS[cur]
        row["property_product_pricelist__display"] = f"Default ({cur})"
    elif kind == "customer_entity_changed":
        other = "US" if c.legal_entity != "US" else "UK"
        row["company_id"], row["company_id__display"] = company_m2o(other)
    elif kind == "customer_country_changed":
        row["country_id"], row["country_id__display"] = ODOO_COUNTRY_IDS["France"], "France"


def _deals(firm: Firm, v: MasterViews, gt: GroundTruth, rng: random.Random) -> None:
    as_of = firm.config.as_of
    customers = [c for c in firm.customers if c.is_customer]
    n = _count(firm, firm.config.defects.deal, len(firm.projects))
    extra = []
    for i in range(n):
        old = as_of - timedelta(days=firm.config.deal_handoff_days + 1 + rng.randint(0, 120))
        recent = as_of - timedelta(days=rng.randint(0, firm.config.deal_handoff_days - 1))
        extra += [("deal_without_project", old, i), ("deal_in_handoff_inside", recent, i)]
    rows = [(d.id, d.name, d.customer, d.amount, d.stage, d.close_date, d.project_code)
            for d in firm.deals]  # fmt: skip
    for kind, close, i in extra:
        cust = rng.choice(customers)
        deal_id = str(39_000_000_000 + len(rows) * 7)
        rows.append((deal_id, f"{cust.name.split(' ')[0]} Phase {i + 2}", cust,
                     Decimal(rng.randrange(20, 200) * 1000), "closedwon", close, None))  # fmt: skip
        gt.add(kind, source_id=deal_id, target_id=None, legal_entity_id=cust.legal_entity)
    for deal_id, name, cust, amount, stage, close, code in rows:
        created = ts(close - timedelta(days=45))
        v.add("crm/deals", {
            "id": deal_id, "dealname": name, "amount": amount, "deal_currency_code": cust.currency,
            "dealstage": stage, "pipeline": "default", "closedate": ts(close, 15),
            "project_code": code, "company_id": cust.crm_id, "createdate": created,
            "hs_lastmodifieddate": ts(min(close + timedelta(days=2), as_of), 16),
            "archived": False})  # fmt: skip


def _projects(firm: Firm, v: MasterViews, gt: GroundTruth, rng: random.Random) -> None:
    as_of = firm.config.as_of
    rates = firm.config.defects
    future = [p for p in firm.projects if p.starts_on >= as_of]
    started = [p for p in firm.projects if p.starts_on < as_of]
    n = _count(firm, rates.project, len(firm.projects))
    taken: set[int] = set()
    missing = {id(p) for p in _pick(rng, future, n, taken)}
    kinds = ("project_customer_changed", "project_billing_model_changed",
             "project_status_changed", "project_currency_changed", "project_entity_changed")  # fmt: skip
    changes = {k: {id(p) for p in _pick(rng, started, n, taken)} for k in kinds}
    analytic_id = 200
    erp_id = 500
    for p in firm.projects:
        client = v.psa_client[p.customer.crm_id]
        active = p.ends_on >= as_of
        created = ts(min(p.starts_on, as_of) - timedelta(days=5))
        pm = p.manager_id
        v.add("psa/projects", {
            "id": p.id, "client_id": client["id"], "client_name": client["name"],
            "client_currency": client["currency"], "name": p.name, "code": p.code,
            "is_active": active, "is_billable": True, "is_fixed_fee": p.fixed_fee,
            "bill_by": "none" if p.fixed_fee else "People", "hourly_rate": None,
            "fee": p.monthly_fee * _months(p) if p.fixed_fee else None, "budget": None,
            "starts_on": p.starts_on, "ends_on": p.ends_on, "notes": f"HubSpot deal {p.deal_id}",
            "project_manager_id": pm, "created_at": created,
            "updated_at": created if active else ts(p.ends_on + timedelta(days=1))})  # fmt: skip
        if id(p) in missing:
            gt.add("project_missing_in_erp", source_id=p.id, target_id=None,
                   legal_entity_id=p.legal_entity)  # fmt: skip
            continue
        analytic_id += 1
        erp_id += 1
        row = _erp_project(p, v, erp_id, analytic_id, active, created)
        for kind in kinds:
            if id(p) in changes[kind]:
                _change_project(row, kind, p, v, rng)
                gt.add(kind, source_id=p.id, target_id=erp_id, legal_entity_id=p.legal_entity)
        v.erp_project[p.id] = v.add("erp/project.project", row)
    # Projects opened directly in Odoo, never in Harvest.
    for i in range(n):
        base = rng.choice(started)
        analytic_id += 1
        erp_id += 1
        row = _erp_project(base, v, erp_id, analytic_id, True, ts(as_of - timedelta(days=10 + i)))
        code = f"{base.legal_entity}-9{i:04d}"
        row.update(name=f"{code} Internal Pilot", x_harvest_id=None,
                   account_id__display=f"[{code}] {code} Internal Pilot")  # fmt: skip
        v.tables["erp/account.analytic.account"][-1].update(code=code, name=f"{code} Internal Pilot")
        v.add("erp/project.project", row)
        gt.add("project_only_in_erp", source_id=None, target_id=erp_id,
               legal_entity_id=base.legal_entity)  # fmt: skip


def _months(p: Project) -> int:
    return (p.ends_on.year - p.starts_on.year) * 12 + p.ends_on.month - p.starts_on.month + 1


def _erp_project(p: Project, v: MasterViews, erp_id: int, analytic_id: int, active: bool,
                 created: datetime) -> Row:  # fmt: skip
    partner = v.erp_partner[p.customer.crm_id]
    cid, cname = company_m2o(p.legal_entity)
    v.add("erp/account.analytic.account", {
        "id": analytic_id, "name": p.name, "code": p.code, "active": active, "company_id": cid,
        "company_id__display": cname, "partner_id": partner["id"],
        "partner_id__display": partner["display_name"]})  # fmt: skip
    return {
        "id": erp_id, "name": p.name, "active": active, "account_id": analytic_id,
        "account_id__display": f"[{p.code}] {p.name} - {partner['display_name']}",
        "partner_id": partner["id"], "partner_id__display": partner["display_name"],
        "company_id": cid, "company_id__display": cname,
        "currency_id": CURRENCY_IDS[p.currency], "currency_id__display": p.currency,
        "allow_billable": True, "pricing_type": "fixed_rate" if p.fixed_fee else "employee_rate",
        "x_billing_model": "fixed_fee" if p.fixed_fee else "time_and_materials",
        "x_harvest_id": p.id, "date_start": p.starts_on, "date": p.ends_on,
        # The firm's consultants are Odoo users with the same ids as in Harvest.
        "user_id": p.manager_id, "user_id__display": v.user_name[p.manager_id],
        "create_date": created, "write_date": created,
    }  # fmt: skip


def _change_project(row: Row, kind: str, p: Project, v: MasterViews, rng: random.Random) -> None:
    if kind == "project_customer_changed":
        others = [r for k, r in v.erp_partner.items()
                  if k != p.customer.crm_id and r["company_id"] == row["company_id"]]  # fmt: skip
        other = rng.choice(others or [r for k, r in v.erp_partner.items() if k != p.customer.crm_id])
        row["partner_id"], row["partner_id__display"] = other["id"], other["display_name"]
    elif kind == "project_billing_model_changed":
        row["x_billing_model"] = "time_and_materials" if p.fixed_fee else "fixed_fee"
    elif kind == "project_status_changed":
        row["active"] = not row["active"]
    elif kind == "project_currency_changed":
        cur = "USD" if p.currency != "USD" else "EUR"
        row["currency_id"], row["currency_id__display"] = CURRENCY_IDS[cur], cur
    elif kind == "project_entity_changed":
        entity = "US" if p.legal_entity != "US" else "DE"
        row["company_id"], row["company_id__display"] = company_m2o(entity)
