"""The answer key of the demo with a real ERP: every break ``demo/real_erp/rules.yaml`` must report.

Computed from the finished HubSpot and Harvest views and the real Odoo records, never by the
engine: each record is read as the connectors' mappings read it (canonical values: a Harvest
project's billing model from ``is_fixed_fee|is_billable``, an Odoo invoice's status from its
payment state, ...), and each rule is applied with the semantics :mod:`reconcile.compile` documents:

- match: a source row without a key is ``missing_in_target``, a target row without one
  ``missing_in_source``; rows of one side sharing a key are ``duplicate`` after the first (by
  creation time, then id; a target duplicate names the source row its key pairs with); an unpaired
  row is an ``orphan`` when its key refers to the other system (it is not its own id, nor a
  crosswalk's source), else missing on the other side; paired rows are compared field by field
  within tolerance (NULL equals only NULL);
- aggregate: group sums per key, a missing group as zero (``missing_groups: zero``) or skipped
  (``ignore``); ids are the group key ``a|b`` (NULL parts left out) unless a record id is given;
- aged: every filtered source row, with its aging bucket.

Each break also carries the legal entity the rule's context gives it (source first, else target).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from demo.ground_truth import aging_bucket
from demo.invoicing import q2
from demo.real_erp.derive import Views, erp_billing_model, erp_invoice_status
from demo.real_erp.dump import Dump, account_code, m2o, m2o_name, odoo_datetime, text
from extractors.statuses import STATUS_MAPS, value_maps

__all__ = ["Break", "expected_breaks"]

_COUNTRIES = value_maps({})["countries"]
_PRICELIST_CURRENCY = re.compile(r"\(([A-Z]{3})\)$")
_HANDOFF_DAYS = 14  # deals_without_project: closed-won more than 14 days before as-of


@dataclass(frozen=True, order=True)
class Break:
    """One expected break: the key the test holds the engine to, and where it belongs."""

    rule_id: str
    break_type: str
    source_id: str | None
    target_id: str | None
    field: str | None
    legal_entity_id: str | None = None
    aging_bucket: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None, str | None, str | None]:
        """(rule_id, break_type, source_id, target_id, field)."""
        return (self.rule_id, self.break_type, self.source_id, self.target_id, self.field)


@dataclass(frozen=True)
class _Rec:
    """A canonical row of one side: id, match key, duplicate order, context entity, compared values."""

    id: str
    key: str | None
    created: datetime | None
    entity: str | None
    values: dict[str, Any]


_Same = Callable[[Any, Any], bool]


def _exact(s: Any, t: Any) -> bool:
    return bool(s == t)


def _normalized(value: Any) -> str | None:
    """As reconcile.compile.normalized: lower case, letters and digits only."""
    if value is None:
        return None
    return "".join(c for c in str(value) if unicodedata.category(c)[0] in "LN").lower()


def _text_same(s: Any, t: Any) -> bool:
    return _normalized(s) == _normalized(t)


def _numeric(abs_tol: str, rel_tol: str = "0") -> _Same:
    def same(s: Any, t: Any) -> bool:
        if s is None or t is None:
            return s is None and t is None
        return bool(abs(s - t) <= Decimal(abs_tol) + Decimal(rel_tol) * abs(t))

    return same


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v is not None), None)


def _match(
    rule: str, src: list[_Rec], tgt: list[_Rec], *, s_ref: bool, t_ref: bool,
    compare: dict[str, _Same], report: tuple[str, ...] | None = None,
) -> list[Break]:  # fmt: skip
    """The breaks of a match rule (see the module docs)."""
    out: list[Break] = []

    def groups(rows: list[_Rec]) -> dict[str, list[_Rec]]:
        by_key: dict[str, list[_Rec]] = defaultdict(list)
        for r in sorted(rows, key=lambda r: (r.created is None, r.created or datetime.min, r.id)):
            if r.key is not None:
                by_key[r.key].append(r)
        return by_key

    out += [Break(rule, "missing_in_target", r.id, None, None, r.entity) for r in src if r.key is None]
    out += [Break(rule, "missing_in_source", None, r.id, None, r.entity) for r in tgt if r.key is None]
    s_by, t_by = groups(src), groups(tgt)
    for rows in s_by.values():
        out += [Break(rule, "duplicate", r.id, None, None, r.entity) for r in rows[1:]]
    for key, rows in t_by.items():
        first = s_by[key][0].id if key in s_by else None
        out += [Break(rule, "duplicate", first, r.id, None, r.entity) for r in rows[1:]]
    for key, rows in s_by.items():
        s = rows[0]
        if key not in t_by:
            kind = "orphan" if s_ref else "missing_in_target"
            out.append(Break(rule, kind, s.id, key if s_ref else None, None, s.entity))
            continue
        t = t_by[key][0]
        for name, same in compare.items():
            if not same(s.values[name], t.values[name]):
                out.append(Break(rule, "field_mismatch", s.id, t.id, name, _first(s.entity, t.entity)))
    for key, rows in t_by.items():
        if key not in s_by:
            t = rows[0]
            kind = "orphan" if t_ref else "missing_in_source"
            out.append(Break(rule, kind, key if t_ref else None, t.id, None, t.entity))
    return [b for b in out if report is None or b.break_type in report]


@dataclass(frozen=True)
class _Group:
    """One aggregate group of one side: compared sum, record id and context entity."""

    value: Decimal | None
    record_id: str
    entity: str | None


def _key_text(key: tuple[Any, ...]) -> str:
    """As concat_ws('|', ...): the parts that are not NULL."""
    return "|".join(str(k) for k in key if k is not None)


def _aggregate(
    rule: str, field: str, src: dict[tuple[Any, ...], _Group], tgt: dict[tuple[Any, ...], _Group],
    *, zero: bool, same: _Same,
) -> list[Break]:  # fmt: skip
    """The breaks of an aggregate rule (see the module docs)."""
    keys = (src.keys() | tgt.keys()) if zero else (src.keys() & tgt.keys())
    out = []
    for key in keys:
        s, t = src.get(key), tgt.get(key)
        sv, tv = (s.value if s else None), (t.value if t else None)
        if zero:
            sv, tv = sv or Decimal(0), tv or Decimal(0)
        if not same(sv, tv):
            out.append(Break(
                rule, "aggregate_mismatch", s.record_id if s else _key_text(key),
                t.record_id if t else _key_text(key), field,
                _first(s.entity if s else None, t.entity if t else None),
            ))  # fmt: skip
    return out


def _sum(values: Iterable[Decimal | None]) -> Decimal | None:
    """As SQL's sum: NULLs ignored, NULL when there is nothing to add."""
    known = [v for v in values if v is not None]
    return sum(known, Decimal(0)) if known else None


def _min(values: Iterable[str | None]) -> str | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


class _Canonical:
    """The canonical rows the rules read, built from the views and the dump as the mappings do."""

    def __init__(self, v: Views, d: Dump) -> None:
        self.v, self.d = v, d
        t = v.tables
        self.crm_customers: list[dict[str, Any]] = [{
            "id": c["id"], "name": c["name"], "tax_id": c["vat_number"], "country": _country(c["country"]),
            "currency": c["billing_currency"], "legal_entity_id": c["legal_entity"],
            "is_customer": c["lifecyclestage"] == "customer", "psa_id": c["harvest_client_id"],
            "created": c["createdate"],
        } for c in t["crm/companies"]]  # fmt: skip
        self.erp_customers: list[dict[str, Any]] = [{
            "id": str(p["id"]), "name": p["name"], "tax_id": text(p["vat"]),
            "country": _country(m2o_name(p["country_id"])), "currency": _pricelist_currency(p),
            "legal_entity_id": d.legal_entity(m2o(p["company_id"])), "is_customer": p["customer_rank"] > 0,
            "crm_id": text(p["ref"]), "created": odoo_datetime(p["create_date"]),
        } for p in d["res.partner"].values() if p["is_company"] or p["customer_rank"] > 0]  # fmt: skip
        self.erp_customer = {c["id"]: c for c in self.erp_customers}
        self.psa_customer = {str(c["id"]): c for c in t["psa/clients"]}
        self.psa_project = {str(p["id"]): p for p in t["psa/projects"]}
        self.erp_projects: list[dict[str, Any]] = [{
            "id": str(p["id"]), "code": account_code(p["account_id"]),
            "customer_id": None if m2o(p["partner_id"]) is None else str(m2o(p["partner_id"])),
            "billing_model": erp_billing_model(p), "status": "active" if p["active"] else "archived",
            "legal_entity_id": d.legal_entity(m2o(p["company_id"])),
            "created": odoo_datetime(p["create_date"]),
        } for p in d["project.project"].values()]  # fmt: skip
        self.entity_of_code = {p["code"]: p["legal_entity_id"] for p in self.erp_projects if p["code"]}
        self.psa_invoice = {str(i["id"]): i for i in t["psa/invoices"]}
        self.erp_invoices: list[dict[str, Any]] = [{
            "id": str(m["id"]), "kind": STATUS_MAPS["odoo_move_type"][m["move_type"]],
            "psa_number": text(m["ref"]),
            "amount_total": _signed(m, m["amount_total"]), "amount_untaxed": _signed(m, m["amount_untaxed"]),
            "currency": m2o_name(m["currency_id"]), "status": erp_invoice_status(m),
            "legal_entity_id": d.legal_entity(m2o(m["company_id"])),
            "created": odoo_datetime(m["create_date"]),
        } for m in d["account.move"].values()]  # fmt: skip

    def psa_billing_model(self, project_id: Any) -> str | None:
        p = self.psa_project.get(str(project_id))
        if p is None:
            return None
        return STATUS_MAPS["harvest_billing_model"][f"{p['is_fixed_fee']}|{p['is_billable']}".lower()]

    def psa_entries(self) -> list[dict[str, Any]]:
        """Harvest time entries as canonical rows (approved ones only matter to every rule)."""
        return [{
            "id": str(e["id"]), "project_id": str(e["project_id"]), "project_code": e["project_code"],
            "billing_period": e["spent_date"].strftime("%Y-%m"), "spent_date": e["spent_date"],
            "hours": e["hours"],
            "amount": q2(e["hours"] * e["cost_rate"]) if e["cost_rate"] is not None else None,
            "bill": e["hours"] * e["billable_rate"] if e["billable_rate"] is not None else None,
            "billable": e["billable"], "approved": e["is_closed"],
            "invoice_id": None if e["invoice_id"] is None else str(e["invoice_id"]),
            "created": e["created_at"], "entity": self.entity_of_code.get(e["project_code"]),
        } for e in self.v.tables["psa/time_entries"]]  # fmt: skip

    def erp_lines(self) -> list[dict[str, Any]]:
        """Odoo timesheet lines (lines with a project) as canonical rows."""
        return [{
            "id": str(line["id"]), "project_code": account_code(line["account_id"]),
            "billing_period": str(line["date"])[:7], "hours": q2(line["unit_amount"]),
            "amount": q2(-line["amount"]), "entity": self.d.legal_entity(m2o(line["company_id"])),
            "created": odoo_datetime(line["create_date"]),
        } for line in self.d["account.analytic.line"].values() if line["project_id"]]  # fmt: skip


def _country(name: str | None) -> str | None:
    return None if name is None else _COUNTRIES.get(name, name)


def _pricelist_currency(partner: dict[str, Any]) -> str | None:
    found = _PRICELIST_CURRENCY.search(m2o_name(partner["property_product_pricelist"]) or "")
    return found.group(1) if found else None


def _signed(move: dict[str, Any], amount: Decimal) -> Decimal:
    """Odoo keeps credit notes positive; canonical amounts are negative for them."""
    return q2(-amount if move["move_type"] == "out_refund" else amount)


def expected_breaks(v: Views, d: Dump, as_of: date) -> list[Break]:
    """Return every reconciliation break the rules must report on ``v`` and ``d`` as of ``as_of``, sorted."""
    c = _Canonical(v, d)
    out = _customers(c) + _deals(c, as_of) + _projects(c) + _time(c, v, as_of) + _invoices(c)
    return sorted(out, key=lambda b: tuple(x or "" for x in (*b.key, b.legal_entity_id, b.aging_bucket)))


def _customers(c: _Canonical) -> list[Break]:
    crm = [x for x in c.crm_customers if x["is_customer"]]
    codes = c.v.customer_codes
    erp_fields = ("name", "tax_id", "currency", "legal_entity_id", "country")
    to_erp = _match(
        "customers_crm_erp",
        [_Rec(x["id"], codes.get(x["id"]), x["created"], x["legal_entity_id"], x) for x in crm],
        [_Rec(x["id"], x["crm_id"], x["created"], x["legal_entity_id"], x)
         for x in c.erp_customers if x["is_customer"]],
        s_ref=False, t_ref=True,  # the crosswalk's source is the company's own id
        compare={f: _text_same if f in ("name", "tax_id") else _exact for f in erp_fields},
    )  # fmt: skip
    clients = [
        {"id": str(x["id"]), "name": x["name"], "currency": x["currency"]} for x in c.psa_customer.values()
    ]
    to_psa = _match(
        "customers_crm_psa",
        [_Rec(x["id"], x["psa_id"], x["created"], x["legal_entity_id"], x) for x in crm],
        [_Rec(x["id"], x["id"], c.psa_customer[x["id"]]["created_at"], None, x) for x in clients],
        s_ref=True, t_ref=False, compare={"name": _text_same, "currency": _exact},
    )  # fmt: skip
    return to_erp + to_psa


def _deals(c: _Canonical, as_of: date) -> list[Break]:
    cut = datetime.combine(as_of - timedelta(days=_HANDOFF_DAYS), time(), tzinfo=UTC)
    won = [d for d in c.v.tables["crm/deals"] if d["dealstage"] == "closedwon" and d["closedate"] < cut]
    return _match(
        "deals_without_project",
        [_Rec(d["id"], d["project_code"], d["createdate"], c.entity_of_code.get(d["project_code"]), d)
         for d in won],
        [_Rec(str(p["id"]), p["code"], p["created_at"], None, p) for p in c.psa_project.values()],
        s_ref=True, t_ref=True, compare={}, report=("missing_in_target",),
    )  # fmt: skip


def _projects(c: _Canonical) -> list[Break]:
    src = []
    for p in c.psa_project.values():
        values = {
            "customer": c.psa_customer[str(p["client_id"])]["name"],
            "billing_model": c.psa_billing_model(p["id"]),
            "status": "active" if p["is_active"] else "archived", "currency": p["client_currency"],
        }  # fmt: skip
        src.append(_Rec(str(p["id"]), p["code"], p["created_at"], None, values))
    tgt = []
    for p in c.erp_projects:
        customer = c.erp_customer.get(p["customer_id"] or "")
        values = {"customer": customer["name"] if customer else None, "billing_model": p["billing_model"],
                  "status": p["status"], "currency": customer["currency"] if customer else None}  # fmt: skip
        tgt.append(_Rec(p["id"], p["code"], p["created"], p["legal_entity_id"], values))
    same: dict[str, _Same] = {
        "customer": _text_same,
        "billing_model": _exact,
        "status": _exact,
        "currency": _exact,
    }
    return _match("projects_psa_erp", src, tgt, s_ref=True, t_ref=True, compare=same)


def _time(c: _Canonical, v: Views, as_of: date) -> list[Break]:
    entries = [e for e in c.psa_entries() if e["approved"]]
    lines = c.erp_lines()
    posted = {
        e["id"]: str(v.time_lines[int(e["id"])]) if int(e["id"]) in v.time_lines else None for e in entries
    }
    out = _match(
        "time_entries_psa_erp",
        [_Rec(e["id"], posted[e["id"]], e["created"], e["entity"], e) for e in entries],
        [_Rec(x["id"], x["id"], x["created"], x["entity"], x) for x in lines],
        s_ref=False, t_ref=False,  # matched through the crosswalk, onto the line's own id
        compare={"hours": _numeric("0.01"), "amount": _numeric("0.01"), "project_code": _exact,
                 "billing_period": _exact},
    )  # fmt: skip

    def totals(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], _Group]:
        by: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by[(r["project_code"], r["billing_period"])].append(r)
        return {k: _Group(_sum(r["hours"] for r in g), _key_text(k), _min(r["entity"] for r in g))
                for k, g in by.items()}  # fmt: skip

    out += _aggregate("time_totals_psa_erp", "hours", totals(entries), totals(lines), zero=True,
                      same=_numeric("0.10"))  # fmt: skip
    ended = as_of.strftime("%Y-%m")
    for e in entries:
        if (e["billable"] and e["invoice_id"] is None and e["billing_period"] < ended
                and c.psa_billing_model(e["project_id"]) == "time_and_materials"):  # fmt: skip
            bucket = aging_bucket((as_of - e["spent_date"]).days)
            out.append(Break("unbilled_time", "aged", e["id"], None, None, e["entity"], bucket))
    billed: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for e in c.psa_entries():
        if e["invoice_id"] is not None and c.psa_billing_model(e["project_id"]) == "time_and_materials":
            invoice = c.psa_invoice.get(e["invoice_id"])
            billed[(invoice["number"] if invoice else None,)].append(e)
    src = {
        k: _Group(
            _sum(e["bill"] for e in g), str(_min(e["invoice_id"] for e in g)), _min(e["entity"] for e in g)
        )
        for k, g in billed.items()
    }
    by_ref: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for m in c.erp_invoices:
        by_ref[(m["psa_number"],)].append(m)
    tgt = {k: _Group(_sum(m["amount_untaxed"] for m in g), str(_min(m["id"] for m in g)),
                     _min(m["legal_entity_id"] for m in g)) for k, g in by_ref.items()}  # fmt: skip
    out += _aggregate("invoice_vs_time", "amount", src, tgt, zero=False, same=_numeric("0.01", "0.0001"))
    return out


def _invoices(c: _Canonical) -> list[Break]:
    src = []
    for m in c.erp_invoices:
        if m["kind"] == "invoice":
            values = {"amount": m["amount_total"], "currency": m["currency"], "status": m["status"]}
            src.append(_Rec(m["id"], m["psa_number"], m["created"], m["legal_entity_id"], values))
    tgt = []
    for i in c.psa_invoice.values():
        values = {"amount": i["amount"], "currency": i["currency"],
                  "status": STATUS_MAPS["harvest_invoice_state"].get(i["state"])}  # fmt: skip
        tgt.append(_Rec(str(i["id"]), i["number"], i["created_at"], None, values))
    return _match("invoices_erp_psa", src, tgt, s_ref=True, t_ref=True,
                  compare={"amount": _numeric("0.01"), "currency": _exact, "status": _exact})  # fmt: skip
