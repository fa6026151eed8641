"""Seeded defects in the derived HubSpot and Harvest views; the real Odoo is never edited.

Each kind is injected :data:`COUNT` times, on records drawn with the generator's seed among those
it can hit (a name change needs a customer the rules can pair; an invoice removed from Harvest
must bill no time entry). An injection returns the breaks it must cause on its own, by the rules of
``demo/real_erp/rules.yaml``: :data:`KINDS` lists them; kinds ending in ``_inside`` are differences
within tolerance and must cause none. A defect may also move aggregates and filters (a time entry
moved to another project unbalances two time totals): those breaks are left to the ground truth
(:mod:`demo.real_erp.truth`), which computes every break from the finished views.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from demo.firm import add_months, month_end
from demo.invoicing import q2
from demo.real_erp.derive import Row, Views
from demo.real_erp.dump import Dump, m2o

__all__ = ["COUNT", "KINDS", "Expected", "inject"]

#: (rule_id, break_type, source_id, target_id, field) of one break, ids as text.
Expected = tuple[str, str, str | None, str | None, str | None]
COUNT = 2
_CUSTOMERS_ERP, _CUSTOMERS_PSA = "customers_crm_erp", "customers_crm_psa"
_PROJECTS, _TIME, _INVOICES = "projects_psa_erp", "time_entries_psa_erp", "invoices_erp_psa"

#: kind -> the breaks one injection causes on its own: (rule_id, break_type, field), in the order
#: of the rules file; empty for a difference within tolerance.
KINDS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "crm_customer_not_in_erp": ((_CUSTOMERS_ERP, "missing_in_target", None),),
    "erp_customer_not_in_crm": (
        (_CUSTOMERS_ERP, "orphan", None), (_CUSTOMERS_PSA, "missing_in_source", None),
    ),
    "crm_customer_duplicated": ((_CUSTOMERS_ERP, "duplicate", None), (_CUSTOMERS_PSA, "duplicate", None)),
    "crm_name_changed": (
        (_CUSTOMERS_ERP, "field_mismatch", "name"), (_CUSTOMERS_PSA, "field_mismatch", "name"),
    ),
    "crm_name_respelled_inside": (),
    "crm_tax_id_changed": ((_CUSTOMERS_ERP, "field_mismatch", "tax_id"),),
    "crm_tax_id_spaced_inside": (),
    "crm_currency_changed": (
        (_CUSTOMERS_ERP, "field_mismatch", "currency"), (_CUSTOMERS_PSA, "field_mismatch", "currency"),
    ),
    "crm_entity_changed": ((_CUSTOMERS_ERP, "field_mismatch", "legal_entity_id"),),
    "crm_country_changed": ((_CUSTOMERS_ERP, "field_mismatch", "country"),),
    "crm_client_link_missing": (
        (_CUSTOMERS_PSA, "missing_in_target", None), (_CUSTOMERS_PSA, "missing_in_source", None),
    ),
    "client_only_in_psa": ((_CUSTOMERS_PSA, "missing_in_source", None),),
    "client_name_changed": ((_CUSTOMERS_PSA, "field_mismatch", "name"),),
    "client_currency_changed": ((_CUSTOMERS_PSA, "field_mismatch", "currency"),),
    "deal_without_project": (("deals_without_project", "missing_in_target", None),),
    "deal_in_handoff_inside": (),
    "project_not_in_erp": ((_PROJECTS, "orphan", None),),
    "project_customer_changed": ((_PROJECTS, "field_mismatch", "customer"),),
    "project_billing_model_changed": ((_PROJECTS, "field_mismatch", "billing_model"),),
    "project_status_changed": ((_PROJECTS, "field_mismatch", "status"),),
    "time_not_in_erp": ((_TIME, "missing_in_target", None),),
    "time_missing_in_psa": ((_TIME, "missing_in_source", None),),
    "time_double_entered": ((_TIME, "duplicate", None),),
    "time_hours_changed": ((_TIME, "field_mismatch", "hours"), (_TIME, "field_mismatch", "amount")),
    "time_cost_changed": ((_TIME, "field_mismatch", "amount"),),
    "time_wrong_project": ((_TIME, "field_mismatch", "project_code"),),
    "time_wrong_period": ((_TIME, "field_mismatch", "billing_period"),),
    "time_date_shift_inside": (),
    "time_invoice_not_linked": (("unbilled_time", "aged", None),),
    "invoice_missing_in_psa": ((_INVOICES, "orphan", None),),
    "invoice_only_in_psa": ((_INVOICES, "orphan", None),),
    "invoice_duplicated_in_psa": ((_INVOICES, "duplicate", None),),
    "invoice_amount_changed": ((_INVOICES, "field_mismatch", "amount"),),
    "invoice_tax_rounding_inside": (),
    "invoice_currency_changed": ((_INVOICES, "field_mismatch", "currency"),),
    "invoice_status_not_fed_back": ((_INVOICES, "field_mismatch", "status"),),
}  # fmt: skip


@dataclass(frozen=True)
class Injected:
    """One injected defect: its kind, the Harvest/HubSpot record it hit and the breaks it causes."""

    kind: str
    record_id: str
    expected: tuple[Expected, ...]


def inject(v: Views, dump: Dump, seed: int, as_of: date) -> list[Injected]:
    """Inject :data:`COUNT` defects of every kind of :data:`KINDS` into ``v``, seeded.

    Raises:
        ValueError: the records offer too few candidates for a kind.
    """
    return _Injector(v, dump, random.Random(seed * 7919 + 17), as_of).run()


@dataclass
class _Injector:
    v: Views
    d: Dump
    rng: random.Random
    as_of: date
    taken: set[int] = field(default_factory=set)  # id() of rows already hit
    done: list[Injected] = field(default_factory=list)

    def run(self) -> list[Injected]:
        self.partner_of_company = {id(r): pid for pid, r in self.v.company_of.items()}
        self.move_of = {id(r): mid for mid, r in self.v.invoice_of.items()}
        self.odoo_project = {r["id"]: pid for pid, r in self.v.project_of.items()}
        billed = {e["invoice_id"] for e in self.v.tables["psa/time_entries"]}
        self.busy_clients = {p["client_id"] for p in self.v.tables["psa/projects"]}
        self.busy_clients |= {i["client_id"] for i in self.v.tables["psa/invoices"]}
        self.timeless_invoices = [i for i in self.v.tables["psa/invoices"] if i["id"] not in billed]
        self.erp_customers = {p["id"] for p in self.d["res.partner"].values()
                              if p["is_company"] or p["customer_rank"] > 0}  # fmt: skip
        for kind in KINDS:
            inject_one: Callable[[int], tuple[Row, list[Expected]]] = getattr(self, f"_{kind}")
            for n in range(COUNT):
                row, expected = inject_one(n)
                self.taken.add(id(row))
                self.done.append(Injected(kind, str(row["id"]), tuple(expected)))
        return self.done

    # --- drawing -------------------------------------------------------------------------------

    def _draw(self, kind: str, pool: list[Row]) -> Row:
        free = [r for r in pool if id(r) not in self.taken]
        if not free:
            raise ValueError(f"no record left to inject {kind} into")
        return self.rng.choice(free)

    def _coded_companies(self) -> list[Row]:
        """HubSpot companies paired with an ERP partner (by code) and with their Harvest client."""
        return [c for c in self.v.tables["crm/companies"]
                if c["id"] in self.v.customer_codes and c["harvest_client_id"]]  # fmt: skip

    def _idle_companies(self) -> list[Row]:
        """Coded companies whose Harvest client has no project and no invoice."""
        return [c for c in self._coded_companies() if int(c["harvest_client_id"]) not in self.busy_clients]

    def _client_of(self, company: Row) -> Row:
        return next(c for c in self.v.tables["psa/clients"] if str(c["id"]) == company["harvest_client_id"])

    def _partner(self, company: Row) -> str:
        return str(self.partner_of_company[id(company)])

    def _coded_projects(self) -> list[Row]:
        return [p for p in self.v.tables["psa/projects"] if p["code"] and p["id"] in self.odoo_project]

    def _tm_projects(self) -> list[Row]:
        """Coded time-and-materials projects whose ERP customer the rules can name."""
        return [p for p in self._coded_projects() if p["is_billable"] and not p["is_fixed_fee"]
                and m2o(self._odoo_project(p)["partner_id"]) in self.erp_customers]  # fmt: skip

    def _odoo_project(self, project: Row) -> dict[str, Any]:
        return self.d["project.project"][self.odoo_project[project["id"]]]

    def _entries(self, *, invoiced: bool | None = None) -> list[Row]:
        """Time entries on projects no project defect touched (whose filters they would change)."""
        entries = [e for e in self.v.tables["psa/time_entries"] if e["id"] in self.v.time_lines]
        touched = {p["id"] for p in self.v.tables["psa/projects"] if id(p) in self.taken}
        entries = [e for e in entries if e["project_id"] not in touched]
        if invoiced is not None:
            entries = [e for e in entries if (e["invoice_id"] is not None) == invoiced]
        return entries

    def _costed(self, entry: Row) -> bool:
        """Whether the entry costs what its Odoo line does (Odoo costed some lines at another rate)."""
        line = self.d["account.analytic.line"][self.v.time_lines[entry["id"]]]
        return bool(q2(entry["hours"] * entry["cost_rate"]) == -line["amount"])

    def _line(self, entry: Row) -> str:
        return str(self.v.time_lines[entry["id"]])

    def _stamp(self, days_before: int) -> datetime:
        return datetime.combine(self.as_of - timedelta(days=days_before), time(9), tzinfo=UTC)

    # --- customers -----------------------------------------------------------------------------

    def _crm_customer_not_in_erp(self, n: int) -> tuple[Row, list[Expected]]:
        template = self._draw("crm_customer_not_in_erp", self._coded_companies())
        client = self.v.add("psa/clients", {
            **self._client_of(template), "id": self.v.new_id("psa/clients"),
            "name": f"Newfield Ventures {n + 1} Ltd",
        })  # fmt: skip
        row = self.v.add("crm/companies", {
            **template, "id": str(self.v.new_id("crm/companies")), "name": client["name"], "vat_number": None,
            "harvest_client_id": str(client["id"]),
        })  # fmt: skip
        self.v.customer_codes[row["id"]] = f"RS-C9{n:03d}"  # a code the ERP has not issued
        self.taken.add(id(template))
        return row, [(_CUSTOMERS_ERP, "missing_in_target", row["id"], None, None)]

    def _erp_customer_not_in_crm(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("erp_customer_not_in_crm", self._idle_companies())
        code = self.v.customer_codes.pop(row["id"])
        self.v.remove("crm/companies", row)
        client = self._client_of(row)
        return row, [(_CUSTOMERS_ERP, "orphan", code, self._partner(row), None),
                     (_CUSTOMERS_PSA, "missing_in_source", None, str(client["id"]), None)]  # fmt: skip

    def _crm_customer_duplicated(self, n: int) -> tuple[Row, list[Expected]]:
        original = self._draw("crm_customer_duplicated", self._coded_companies())
        row = self.v.add("crm/companies", {
            **original, "id": str(self.v.new_id("crm/companies")),
            "createdate": original["createdate"] + timedelta(days=30),
        })  # fmt: skip
        self.v.customer_codes[row["id"]] = self.v.customer_codes[original["id"]]
        self.taken.add(id(original))
        return row, [(_CUSTOMERS_ERP, "duplicate", row["id"], None, None),
                     (_CUSTOMERS_PSA, "duplicate", row["id"], None, None)]  # fmt: skip

    def _crm_name_changed(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("crm_name_changed", self._coded_companies())
        words = str(row["name"]).split(" ")
        row["name"] = f"{words[0]} Holdings {words[-1]}"
        client = self._client_of(row)
        return row, [(_CUSTOMERS_ERP, "field_mismatch", row["id"], self._partner(row), "name"),
                     (_CUSTOMERS_PSA, "field_mismatch", row["id"], str(client["id"]), "name")]  # fmt: skip

    def _crm_name_respelled_inside(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("crm_name_respelled_inside", self._coded_companies())
        row["name"] = str(row["name"]).upper().replace(".", "").replace(" ", "  ", 1)
        return row, []

    def _crm_tax_id_changed(self, n: int) -> tuple[Row, list[Expected]]:
        pool = [c for c in self._coded_companies() if c["vat_number"]]
        row = self._draw("crm_tax_id_changed", pool)
        vat = str(row["vat_number"])
        row["vat_number"] = vat[:-3] + str((int(vat[-3:]) + 111) % 1000).zfill(3)
        return row, [(_CUSTOMERS_ERP, "field_mismatch", row["id"], self._partner(row), "tax_id")]

    def _crm_tax_id_spaced_inside(self, n: int) -> tuple[Row, list[Expected]]:
        pool = [c for c in self._coded_companies() if c["vat_number"]]
        row = self._draw("crm_tax_id_spaced_inside", pool)
        vat = str(row["vat_number"])
        row["vat_number"] = " ".join(vat[i : i + 3] for i in range(0, len(vat), 3))
        return row, []

    def _crm_currency_changed(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("crm_currency_changed", self._coded_companies())
        row["billing_currency"] = "EUR" if row["billing_currency"] == "USD" else "USD"
        client = self._client_of(row)
        return row, [
            (_CUSTOMERS_ERP, "field_mismatch", row["id"], self._partner(row), "currency"),
            (_CUSTOMERS_PSA, "field_mismatch", row["id"], str(client["id"]), "currency"),
        ]

    def _crm_entity_changed(self, n: int) -> tuple[Row, list[Expected]]:
        pool = [c for c in self._coded_companies() if c["legal_entity"] is None]
        row = self._draw("crm_entity_changed", pool)
        row["legal_entity"] = self.d.legal_entity(
            min(self.d["res.company"])
        )  # the CRM says: the first company
        return row, [(_CUSTOMERS_ERP, "field_mismatch", row["id"], self._partner(row), "legal_entity_id")]

    def _crm_country_changed(self, n: int) -> tuple[Row, list[Expected]]:
        pool = [c for c in self._coded_companies() if c["country"]]
        row = self._draw("crm_country_changed", pool)
        row["country"] = "Germany" if row["country"] == "France" else "France"
        return row, [(_CUSTOMERS_ERP, "field_mismatch", row["id"], self._partner(row), "country")]

    def _crm_client_link_missing(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("crm_client_link_missing", self._coded_companies())
        client = self._client_of(row)
        row["harvest_client_id"] = None
        return row, [(_CUSTOMERS_PSA, "missing_in_target", row["id"], None, None),
                     (_CUSTOMERS_PSA, "missing_in_source", None, str(client["id"]), None)]  # fmt: skip

    def _client_only_in_psa(self, n: int) -> tuple[Row, list[Expected]]:
        stamp = self._stamp(40 + n)
        row = self.v.add("psa/clients", {
            "id": self.v.new_id("psa/clients"), "name": f"Direct Client {n + 1} Ltd", "is_active": True,
            "address": None, "currency": "GBP", "created_at": stamp, "updated_at": stamp,
        })  # fmt: skip
        return row, [(_CUSTOMERS_PSA, "missing_in_source", None, str(row["id"]), None)]

    def _client_name_changed(self, n: int) -> tuple[Row, list[Expected]]:
        company = self._draw("client_name_changed", self._idle_companies())
        row = self._client_of(company)
        words = str(row["name"]).split(" ")
        row["name"] = f"{words[0]} Group {words[-1]}"
        self.taken.add(id(company))
        return row, [(_CUSTOMERS_PSA, "field_mismatch", company["id"], str(row["id"]), "name")]

    def _client_currency_changed(self, n: int) -> tuple[Row, list[Expected]]:
        company = self._draw("client_currency_changed", self._idle_companies())
        row = self._client_of(company)
        row["currency"] = "EUR" if row["currency"] == "USD" else "USD"
        self.taken.add(id(company))
        return row, [(_CUSTOMERS_PSA, "field_mismatch", company["id"], str(row["id"]), "currency")]

    # --- deals and projects --------------------------------------------------------------------

    def _new_deal(self, n: int, closed_days_ago: int) -> Row:
        company = self.rng.choice(self._coded_companies())
        closed = self._stamp(closed_days_ago)
        return self.v.add("crm/deals", {
            "id": str(self.v.new_id("crm/deals")),
            "dealname": f"{str(company['name']).split(' ')[0]} Phase {n + 2}",
            "amount": Decimal(self.rng.randrange(20, 200) * 1000),
            "deal_currency_code": company["billing_currency"],
            "dealstage": "closedwon", "pipeline": "default", "closedate": closed, "project_code": None,
            "company_id": company["id"], "createdate": closed - timedelta(days=45),
            "hs_lastmodifieddate": closed, "archived": False,
        })  # fmt: skip

    def _deal_without_project(self, n: int) -> tuple[Row, list[Expected]]:
        # won more than the 14 days of the handoff ago (15 days at least, a day clear of the cut)
        row = self._new_deal(n, 16 + self.rng.randrange(100))
        return row, [("deals_without_project", "missing_in_target", row["id"], None, None)]

    def _deal_in_handoff_inside(self, n: int) -> tuple[Row, list[Expected]]:
        return self._new_deal(n, 1 + self.rng.randrange(12)), []

    def _project_not_in_erp(self, n: int) -> tuple[Row, list[Expected]]:
        template = self._draw("project_not_in_erp", self._tm_projects())
        code = f"RS-P9{n:03d}"  # opened in Harvest, not yet in Odoo
        row = self.v.add("psa/projects", {
            **template, "id": self.v.new_id("psa/projects"), "code": code, "name": f"{code} Pilot",
            "notes": None, "created_at": self._stamp(10 + n), "updated_at": self._stamp(10 + n),
        })  # fmt: skip
        self.taken.add(id(template))
        return row, [(_PROJECTS, "orphan", str(row["id"]), code, None)]

    def _project_customer_changed(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("project_customer_changed", self._tm_projects())
        others = [c for pid, c in self.v.client_of.items() if self.d["res.partner"][pid]["customer_rank"] > 0
                  and c["currency"] == row["client_currency"] and c["id"] != row["client_id"]]  # fmt: skip
        other = self.rng.choice(others)
        row.update(client_id=other["id"], client_name=other["name"])
        for e in self.v.tables["psa/time_entries"]:
            if e["project_id"] == row["id"]:
                e.update(client_id=other["id"], client_name=other["name"])
        return row, [
            (_PROJECTS, "field_mismatch", str(row["id"]), str(self._odoo_project(row)["id"]), "customer")
        ]

    def _project_billing_model_changed(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("project_billing_model_changed", self._tm_projects())
        row.update(is_fixed_fee=True, bill_by="none")
        return row, [(_PROJECTS, "field_mismatch", str(row["id"]), str(self._odoo_project(row)["id"]),
                      "billing_model")]  # fmt: skip

    def _project_status_changed(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("project_status_changed", self._tm_projects())
        row["is_active"] = not row["is_active"]
        return row, [
            (_PROJECTS, "field_mismatch", str(row["id"]), str(self._odoo_project(row)["id"]), "status")
        ]

    # --- time entries --------------------------------------------------------------------------

    def _copy_entry(self, original: Row, **changes: Any) -> Row:
        return self.v.add("psa/time_entries", {
            **original, "id": self.v.new_id("psa/time_entries"),
            "created_at": original["created_at"] + timedelta(hours=1), **changes,
        })  # fmt: skip

    def _time_not_in_erp(self, n: int) -> tuple[Row, list[Expected]]:
        template = self._draw("time_not_in_erp", self._entries(invoiced=False))
        row = self._copy_entry(template)  # logged in Harvest, never synced: no crosswalk line
        self.taken.add(id(template))
        return row, [(_TIME, "missing_in_target", str(row["id"]), None, None)]

    def _time_missing_in_psa(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("time_missing_in_psa", self._entries(invoiced=False))
        line = self._line(row)
        del self.v.time_lines[row["id"]]
        self.v.remove("psa/time_entries", row)
        return row, [(_TIME, "missing_in_source", None, line, None)]

    def _time_double_entered(self, n: int) -> tuple[Row, list[Expected]]:
        original = self._draw("time_double_entered", self._entries())
        row = self._copy_entry(original)
        self.v.time_lines[row["id"]] = self.v.time_lines[original["id"]]  # synced onto the same line
        self.taken.add(id(original))
        return row, [(_TIME, "duplicate", str(row["id"]), None, None)]

    def _time_hours_changed(self, n: int) -> tuple[Row, list[Expected]]:
        pool = [e for e in self._entries() if e["cost_rate"] and e["hours"] > 1 and self._costed(e)]
        row = self._draw("time_hours_changed", pool)
        row["hours"] += Decimal("0.50") if n % 2 else Decimal("-0.75")
        return row, [(_TIME, "field_mismatch", str(row["id"]), self._line(row), "hours"),
                     (_TIME, "field_mismatch", str(row["id"]), self._line(row), "amount")]  # fmt: skip

    def _time_cost_changed(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("time_cost_changed", [e for e in self._entries() if self._costed(e)])
        row["cost_rate"] += Decimal("5.00")
        return row, [(_TIME, "field_mismatch", str(row["id"]), self._line(row), "amount")]

    def _time_wrong_project(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("time_wrong_project", self._entries())
        others = [
            p for p in self._coded_projects() if p["code"] != row["project_code"] and id(p) not in self.taken
        ]
        other = self.rng.choice(others)
        row.update(project_id=other["id"], project_name=other["name"], project_code=other["code"],
                   client_id=other["client_id"], client_name=other["client_name"],
                   client_currency=other["client_currency"])  # fmt: skip
        return row, [(_TIME, "field_mismatch", str(row["id"]), self._line(row), "project_code")]

    def _time_wrong_period(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("time_wrong_period", self._entries())
        day: date = row["spent_date"]
        previous = month_end(add_months(day, -1))
        row["spent_date"] = previous.replace(day=min(day.day, previous.day))
        return row, [(_TIME, "field_mismatch", str(row["id"]), self._line(row), "billing_period")]

    def _time_date_shift_inside(self, n: int) -> tuple[Row, list[Expected]]:
        pool = [e for e in self._entries() if e["spent_date"].day > 2]
        row = self._draw("time_date_shift_inside", pool)
        row["spent_date"] = row["spent_date"] - timedelta(
            days=1 + self.rng.randrange(row["spent_date"].day - 2)
        )
        return row, []

    def _time_invoice_not_linked(self, n: int) -> tuple[Row, list[Expected]]:
        ended = self.as_of.replace(day=1)  # unbilled time is time of a billing period that has ended
        pool = [e for e in self._entries(invoiced=True) if e["billable"] and e["spent_date"] < ended]
        row = self._draw("time_invoice_not_linked", pool)
        row.update(invoice_id=None, invoice_number=None, is_billed=False, is_locked=False)
        return row, [("unbilled_time", "aged", str(row["id"]), None, None)]

    # --- invoices ------------------------------------------------------------------------------

    def _invoice_missing_in_psa(self, n: int) -> tuple[Row, list[Expected]]:
        row = self._draw("invoice_missing_in_psa", self.timeless_invoices)
        self.v.remove("psa/invoices", row)
        for item in [i for i in self.v.tables["psa/invoice_line_items"] if i["invoice_id"] == row["id"]]:
            self.v.remove("psa/invoice_line_items", item)
        return row, [(_INVOICES, "orphan", str(self.move_of[id(row)]), str(row["number"]), None)]

    def _copy_invoice(self, original: Row, **changes: Any) -> Row:
        row = self.v.add("psa/invoices", {**original, "id": self.v.new_id("psa/invoices"), **changes})
        for item in [i for i in self.v.tables["psa/invoice_line_items"] if i["invoice_id"] == original["id"]]:
            self.v.add("psa/invoice_line_items", {**item, "id": self.v.new_id("psa/invoice_line_items"),
                                                  "invoice_id": row["id"]})  # fmt: skip
        return row

    def _invoice_only_in_psa(self, n: int) -> tuple[Row, list[Expected]]:
        template = self._draw("invoice_only_in_psa", self.timeless_invoices)
        number = f"RS-P9{n:03d} {self.as_of:%Y-%m}"  # raised in Harvest, never posted to Odoo
        row = self._copy_invoice(template, number=number, subject=number, state="draft",
                                 created_at=self._stamp(2 + n), updated_at=self._stamp(2 + n))  # fmt: skip
        self.taken.add(id(template))
        return row, [(_INVOICES, "orphan", number, str(row["id"]), None)]

    def _invoice_duplicated_in_psa(self, n: int) -> tuple[Row, list[Expected]]:
        original = self._draw("invoice_duplicated_in_psa", self.timeless_invoices)
        row = self._copy_invoice(original, created_at=original["created_at"] + timedelta(days=1))
        self.taken.add(id(original))
        return row, [(_INVOICES, "duplicate", str(self.move_of[id(original)]), str(row["id"]), None)]

    def _harvest_invoice(self, kind: str, pool: list[Row] | None = None) -> tuple[Row, str]:
        row = self._draw(kind, pool if pool is not None else list(self.v.invoice_of.values()))
        return row, str(self.move_of[id(row)])

    def _invoice_amount_changed(self, n: int) -> tuple[Row, list[Expected]]:
        row, move = self._harvest_invoice("invoice_amount_changed")
        row["amount"] += Decimal("25.00")
        return row, [(_INVOICES, "field_mismatch", move, str(row["id"]), "amount")]

    def _invoice_tax_rounding_inside(self, n: int) -> tuple[Row, list[Expected]]:
        row, _ = self._harvest_invoice("invoice_tax_rounding_inside")
        row["amount"] += Decimal("0.01")
        row["tax_amount"] += Decimal("0.01")
        return row, []

    def _invoice_currency_changed(self, n: int) -> tuple[Row, list[Expected]]:
        row, move = self._harvest_invoice("invoice_currency_changed")
        row["currency"] = "EUR" if row["currency"] == "USD" else "USD"
        return row, [(_INVOICES, "field_mismatch", move, str(row["id"]), "currency")]

    def _invoice_status_not_fed_back(self, n: int) -> tuple[Row, list[Expected]]:
        paid = [r for r in self.v.invoice_of.values() if r["state"] == "paid"]
        row, move = self._harvest_invoice("invoice_status_not_fed_back", paid)
        row.update(state="open", due_amount=row["amount"])
        return row, [(_INVOICES, "field_mismatch", move, str(row["id"]), "status")]
