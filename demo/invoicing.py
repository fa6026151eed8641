"""Invoices of one closed billing period in Harvest and Odoo, with the invoice defects.

Time-and-materials projects are invoiced on the 1st of the next month for their approved billable
time (one line per consultant: hours × bill rate); fixed-fee projects get their monthly
installment. Odoo receives each invoice with ``ref`` = Harvest number and ``x_harvest_id``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from demo.firm import ENTITY, add_months, month_start
from demo.ground_truth import GroundTruth
from demo.master import CURRENCY_IDS, company_m2o, ts
from demo.timesheets import Catalog

CENT = Decimal("0.01")
Row = dict[str, Any]
# canonical status -> (Harvest state, Odoo state, Odoo payment_state)
STATES = {"draft": ("draft", "draft", "not_paid"), "posted": ("open", "posted", "not_paid"),
          "partial": ("open", "posted", "partial"), "paid": ("paid", "posted", "paid"),
          "cancelled": ("closed", "cancel", "not_paid")}  # fmt: skip
INVOICE_DEFECTS = ("invoice_missing_in_erp", "invoice_amount_changed",
                   "invoice_tax_rounding_inside", "invoice_currency_changed",
                   "invoice_status_not_fed_back", "invoice_manual_adjustment")  # fmt: skip


def q2(x: Decimal) -> Decimal:
    """Round to cents, half up (as invoices do)."""
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def fx_rate(currency: str, month: str) -> Decimal:
    """Return the demo's rate of ``currency`` to USD for ``YYYY-MM`` (6 decimals)."""
    m = int(month[:4]) * 12 + int(month[5:7])
    drift = Decimal(((m * 37) % 11) - 5) / Decimal(1000)
    base = {"USD": Decimal(1), "GBP": Decimal("1.27"), "EUR": Decimal("1.08")}[currency]
    return base if currency == "USD" else (base + drift).quantize(Decimal("0.000001"))


@dataclass
class Billing:
    """Id sequences and the rows of the four invoice tables for the current month."""

    next_invoice: int = 61_000_000
    next_line: int = 72_000_000
    next_move: int = 1
    next_move_line: int = 1
    numbers: dict[tuple[str, int], int] = field(default_factory=dict)
    rows: dict[str, list[Row]] = field(default_factory=dict)

    def seq(self, key: tuple[str, int]) -> int:
        """Return the next number of sequence ``key`` (per entity/company and year)."""
        self.numbers[key] = self.numbers.get(key, 0) + 1
        return self.numbers[key]

    def add(self, table: str, row: Row) -> Row:
        """Append a row to ``table`` (``psa/invoices``, ``erp/account.move``, …)."""
        self.rows.setdefault(table, []).append(row)
        return row

    def take(self) -> dict[str, list[Row]]:
        """Return and forget the month's rows."""
        rows, self.rows = self.rows, {}
        return rows


def _status(rng: random.Random, issue: date, due: date, as_of: date, fixed: bool) -> tuple[str, date | None]:
    if month_start(issue) == month_start(as_of):
        return ("draft" if rng.random() < 0.15 else "posted"), None
    if fixed and rng.random() < 0.02:
        return "cancelled", None
    paid_on = due + timedelta(days=rng.randint(-25, 30))
    if paid_on < as_of and rng.random() < 0.9:
        return ("partial" if rng.random() < 0.05 else "paid"), paid_on
    return "posted", None


def bill_month(
    cat: Catalog, b: Billing, df: pd.DataFrame, billed: np.ndarray[Any, Any],
    first: date, as_of: date, rng: random.Random, gt: GroundTruth, defects: dict[str, int],
) -> None:  # fmt: skip
    """Invoice the billing period starting ``first`` and mark billed entries in ``df``.

    Args:
        cat: consultants and projects.
        b: id sequences; receives the invoice rows.
        df: the month's entries (:func:`demo.timesheets.draw_month`); its ``invoice_id``,
            ``invoice_number``, ``move_id``, ``move_name`` and ``updated`` columns are set for
            billed entries.
        billed: boolean mask of ``df`` rows to bill (approved, billable, T&M, not left unbilled).
        first: first day of the billing period.
        as_of: the firm's today.
        rng: this month's random source.
        gt: ground truth.
        defects: invoice defect kind → how many to inject this month.
    """
    issue = add_months(first, 1)
    month = first.strftime("%Y-%m")
    groups: list[tuple[int, list[tuple[str, Decimal, Decimal]], np.ndarray[Any, Any]]] = []
    rows_of = pd.Series(np.flatnonzero(billed)).groupby(df["p"].to_numpy()[billed]).indices
    hours = df.loc[billed].groupby(["p", "c"], sort=True)["hours_c"].sum()
    per_project: dict[int, list[tuple[str, Decimal, Decimal]]] = {}
    for (p, c), h in hours.items():
        per_project.setdefault(int(p), []).append(
            (f"{cat.c_name[c]} – {cat.p_code[p]} time {month}", Decimal(int(h)) / 100,
             Decimal(int(cat.c_bill[c]))))  # fmt: skip
    for p, lines in per_project.items():
        groups.append((p, lines, np.flatnonzero(billed)[rows_of[p]]))
    last = np.datetime64(add_months(first, 1) - timedelta(days=1))
    running = (cat.p_start <= last) & (cat.p_end >= np.datetime64(first)) & cat.p_fixed
    running &= cat.p_start < np.datetime64(as_of)
    for p in np.flatnonzero(running):
        fee = cat.p_fee[p]
        groups.append(
            (
                int(p),
                [(f"{cat.p_code[p]} fixed fee {month}", Decimal(1), fee)],
                np.array([], np.int64),
            )
        )
    order = list(range(len(groups)))
    rng.shuffle(order)
    plan: dict[int, str] = {}
    for kind in INVOICE_DEFECTS:
        for _ in range(defects.get(kind, 0)):
            for i in order:
                fixed = bool(cat.p_fixed[groups[i][0]])
                if i not in plan and not (kind == "invoice_manual_adjustment" and fixed):
                    plan[i] = kind
                    break
    cols = {k: df[k].to_numpy().copy() for k in ("invoice_id", "invoice_number", "move_id",
                                                   "move_name", "updated")}  # fmt: skip
    for i, (p, lines, rows) in enumerate(groups):
        inv_id, number, move_id, move_name = _invoice(cat, b, p, lines, issue, as_of, rng, gt,
                                                      plan.get(i))  # fmt: skip
        cols["invoice_id"][rows], cols["invoice_number"][rows] = inv_id, number
        cols["move_id"][rows], cols["move_name"][rows] = move_id, move_name
        cols["updated"][rows] = np.datetime64(issue)
    for k, values in cols.items():
        df[k] = values
    for _ in range(defects.get("invoice_only_in_erp", 0)):
        p = groups[rng.randrange(len(groups))][0] if groups else None
        if p is not None:
            _erp_only_invoice(cat, b, p, issue, gt)


def _invoice(
    cat: Catalog, b: Billing, p: int, lines: list[tuple[str, Decimal, Decimal]], issue: date,
    as_of: date, rng: random.Random, gt: GroundTruth, defect: str | None,
) -> tuple[int, str, int, str | None]:  # fmt: skip
    """Write one invoice to Harvest (and Odoo unless the defect keeps it out).

    Returns:
        Harvest invoice id and number, Odoo move id (-1 if none) and name.
    """
    entity = ENTITY[cat.p_entity[p]]
    currency = cat.p_currency[p]
    fixed = bool(cat.p_fixed[p])
    if defect == "invoice_manual_adjustment":
        lines = [*lines, ("Goodwill discount", Decimal(1), Decimal("-50.00"))]
    status, paid_on = _status(rng, issue, issue + timedelta(days=30), as_of, fixed)
    inv_id = b.next_invoice
    b.next_invoice += 7
    number = f"{entity.id}-{issue.year}-{b.seq(('psa-' + entity.id, issue.year)):05d}"
    untaxed = sum((q2(q * u) for _, q, u in lines), Decimal(0))
    tax = q2(untaxed * entity.tax_rate)
    total = untaxed + tax
    psa_state = STATES[status][0]
    if defect == "invoice_status_not_fed_back" and status == "paid":
        psa_state = "open"
    elif defect == "invoice_status_not_fed_back":
        defect = None  # only a paid invoice can fail to report its payment
    due_amount = {"paid": Decimal(0), "partial": q2(total / 2)}.get(status, total)
    b.add("psa/invoices", {
        "id": inv_id, "client_id": int(cat.p_client_id[p]), "client_name": cat.p_client_name[p],
        "number": number, "purchase_order": None, "amount": total,
        "due_amount": total if psa_state == "open" and status == "paid" else due_amount,
        "tax": entity.tax_rate * 100 if entity.tax_rate else None, "tax_amount": tax,
        "subject": f"{cat.p_name[p]} – {issue.strftime('%B %Y')}", "state": psa_state,
        "period_start": add_months(issue, -1), "period_end": issue - timedelta(days=1),
        "issue_date": issue, "due_date": issue + timedelta(days=30),
        "paid_date": paid_on if psa_state == "paid" else None, "currency": currency,
        "created_at": ts(issue, 8), "updated_at": ts(paid_on or issue, 12)})  # fmt: skip
    for desc, qty, unit in lines:
        b.add("psa/invoice_line_items", {
            "id": b.next_line, "invoice_id": inv_id, "project_id": int(cat.p_id[p]),
            "project_name": cat.p_name[p], "project_code": cat.p_code[p], "kind": "Service",
            "description": desc, "quantity": qty, "unit_price": unit, "amount": q2(qty * unit),
            "taxed": bool(entity.tax_rate)})  # fmt: skip
        b.next_line += 1
    le = entity.id
    if defect == "invoice_missing_in_erp":
        gt.add(defect, source_id=None, target_id=inv_id, legal_entity_id=le)
        return inv_id, number, -1, None
    if defect == "invoice_amount_changed":
        desc, qty, unit = lines[0]
        lines = [(desc, qty, unit + 5), *lines[1:]]
        untaxed = sum((q2(q * u) for _, q, u in lines), Decimal(0))
        tax = q2(untaxed * entity.tax_rate)
        total = untaxed + tax
    elif defect == "invoice_tax_rounding_inside":
        tax += CENT
        total += CENT
    if defect == "invoice_currency_changed":
        currency = "USD" if currency != "USD" else "EUR"
    move_id = b.next_move
    b.next_move += 1
    name = "/" if status == "draft" else f"INV/{issue.year}/{b.seq(('erp-' + le, issue.year)):05d}"
    _move(
        b,
        move_id,
        name,
        number,
        inv_id,
        p,
        cat,
        currency,
        status,
        issue,
        untaxed,
        tax,
        total,
        lines,
    )
    if defect:
        gt.add(defect, source_id=move_id, target_id=inv_id, legal_entity_id=le)
    return inv_id, number, move_id, name


def _move(
    b: Billing, move_id: int, name: str, ref: str | None, harvest_id: int | None, p: int,
    cat: Catalog, currency: str, status: str, issue: date, untaxed: Decimal, tax: Decimal,
    total: Decimal, lines: list[tuple[str, Decimal, Decimal]],
) -> None:  # fmt: skip
    entity = ENTITY[cat.p_entity[p]]
    cid, cname = company_m2o(entity.id)
    month = issue.strftime("%Y-%m")
    rate = fx_rate(currency, month) / fx_rate(entity.currency, month)
    residual = {"paid": Decimal(0), "partial": q2(total / 2), "cancelled": Decimal(0)}.get(status, total)
    _, state, payment_state = STATES[status]
    b.add("erp/account.move", {
        "id": move_id, "name": name, "ref": ref, "move_type": "out_invoice", "state": state,
        "payment_state": payment_state, "partner_id": int(cat.p_erp_partner[p]),
        "partner_id__display": cat.p_erp_partner_name[p],
        "commercial_partner_id": int(cat.p_erp_partner[p]),
        "commercial_partner_id__display": cat.p_erp_partner_name[p], "company_id": cid,
        "company_id__display": cname, "currency_id": CURRENCY_IDS[currency],
        "currency_id__display": currency, "invoice_date": None if status == "draft" else issue,
        "invoice_date_due": issue + timedelta(days=30), "date": issue, "amount_untaxed": untaxed,
        "amount_tax": tax, "amount_total": total, "amount_residual": residual,
        "amount_untaxed_signed": q2(untaxed * rate), "amount_total_signed": q2(total * rate),
        "amount_residual_signed": q2(residual * rate), "reversed_entry_id": None,
        "reversed_entry_id__display": None, "invoice_origin": cat.p_code[p],
        "x_harvest_id": harvest_id, "create_date": ts(issue, 10), "write_date": ts(issue, 11)})  # fmt: skip
    for desc, qty, unit in lines:
        sub = q2(qty * unit)
        b.add("erp/account.move.line", {
            "id": b.next_move_line, "move_id": move_id,
            "move_id__display": f"{name} ({ref})" if ref else name, "name": desc,
            "display_type": "product", "quantity": qty, "price_unit": unit, "price_subtotal": sub,
            "price_total": q2(sub * (1 + entity.tax_rate)), "company_id": cid,
            "company_id__display": cname, "currency_id": CURRENCY_IDS[currency],
            "currency_id__display": currency})  # fmt: skip
        b.next_move_line += 1


def _erp_only_invoice(cat: Catalog, b: Billing, p: int, issue: date, gt: GroundTruth) -> None:
    entity = ENTITY[cat.p_entity[p]]
    untaxed = Decimal("480.00")
    tax = q2(untaxed * entity.tax_rate)
    move_id = b.next_move
    b.next_move += 1
    name = f"INV/{issue.year}/{b.seq(('erp-' + entity.id, issue.year)):05d}"
    _move(b, move_id, name, None, None, p, cat, entity.currency, "posted", issue, untaxed, tax,
          untaxed + tax, [("Travel expenses rebilled", Decimal(1), untaxed)])  # fmt: skip
    gt.add("invoice_only_in_erp", source_id=move_id, target_id=None, legal_entity_id=entity.id)
