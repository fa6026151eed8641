"""Time entries, one month at a time: drawn vectorised, then shaped as Harvest and Odoo rows.

A month of the ``large`` firm is about 850 thousand entries; nothing here holds more than one
month, which is what keeps ``large`` generation within its memory budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from demo.firm import ENTITY, Firm
from demo.master import CURRENCY_IDS, MasterViews
from demo.parts import money_from_cents

BILLABLE_TASKS = ("Development", "Design", "Project Management", "Testing & QA")
NON_BILLABLE_TASKS = ("Internal Meeting", "Pre-sales")
TASKS = BILLABLE_TASKS + NON_BILLABLE_TASKS
TASK_IDS = np.arange(len(TASKS), dtype=np.int64) + 19_000_000
NOTES = np.array(["Code review", "Workshop", "Bug fixing", "Status call", "Documentation",
                  "Data mapping", "Testing", "Design review", "Planning", "Go-live support"])  # fmt: skip
FIRST_TIME_ENTRY_ID = 2_400_000_000
APPROVAL_LAG_DAYS = 7  # entries newer than this may still await approval


@dataclass
class Catalog:
    """Column arrays of consultants and projects, indexed by position, for vectorised lookups."""

    c_id: np.ndarray[Any, Any]
    c_emp: np.ndarray[Any, Any]
    c_name: np.ndarray[Any, Any]
    c_entity: np.ndarray[Any, Any]
    c_bill: np.ndarray[Any, Any]  # whole currency units per hour
    c_cost: np.ndarray[Any, Any]
    p_id: np.ndarray[Any, Any]
    p_code: np.ndarray[Any, Any]
    p_name: np.ndarray[Any, Any]
    p_entity: np.ndarray[Any, Any]
    p_fixed: np.ndarray[Any, Any]
    p_start: np.ndarray[Any, Any]
    p_end: np.ndarray[Any, Any]
    p_client_id: np.ndarray[Any, Any]
    p_client_name: np.ndarray[Any, Any]
    p_currency: np.ndarray[Any, Any]  # the Harvest client's currency
    p_fee: np.ndarray[Any, Any]  # fixed-fee monthly installment (Decimal), 0 for T&M
    # Odoo side of each project (-1 / "" where the project is not in Odoo)
    p_erp_id: np.ndarray[Any, Any]
    p_erp_name: np.ndarray[Any, Any]
    p_erp_partner: np.ndarray[Any, Any]
    p_erp_partner_name: np.ndarray[Any, Any]
    p_erp_company: np.ndarray[Any, Any]
    p_erp_account: np.ndarray[Any, Any]
    p_erp_account_name: np.ndarray[Any, Any]

    @classmethod
    def build(cls, firm: Firm, v: MasterViews) -> Catalog:
        """Return the catalog of ``firm`` with the Odoo ids of ``v``."""
        cs, ps = firm.consultants, firm.projects
        client = {r["id"]: r for r in v.tables["psa/clients"]}
        erp = [v.erp_project.get(p.id) for p in ps]
        arr = np.array
        return cls(
            c_id=arr([c.id for c in cs], np.int64),
            c_emp=arr([c.odoo_employee_id for c in cs], np.int64),
            c_name=arr([c.name for c in cs], object),
            c_entity=arr([c.legal_entity for c in cs], object),
            c_bill=arr([int(c.bill_rate) for c in cs], np.int64),
            c_cost=arr([int(c.cost_rate) for c in cs], np.int64),
            p_id=arr([p.id for p in ps], np.int64),
            p_code=arr([p.code for p in ps], object),
            p_name=arr([p.name for p in ps], object),
            p_entity=arr([p.legal_entity for p in ps], object),
            p_fixed=arr([p.fixed_fee for p in ps], bool),
            p_start=arr([p.starts_on for p in ps], "datetime64[D]"),
            p_end=arr([p.ends_on for p in ps], "datetime64[D]"),
            p_client_id=arr([v.psa_client[p.customer.crm_id]["id"] for p in ps], np.int64),
            p_client_name=arr(
                [client[v.psa_client[p.customer.crm_id]["id"]]["name"] for p in ps], object
            ),  # fmt: skip
            p_currency=arr(
                [client[v.psa_client[p.customer.crm_id]["id"]]["currency"] for p in ps], object
            ),  # fmt: skip
            p_fee=arr([p.monthly_fee for p in ps], object),
            p_erp_id=arr([e["id"] if e else -1 for e in erp], np.int64),
            p_erp_name=arr([e["name"] if e else "" for e in erp], object),
            p_erp_partner=arr([e["partner_id"] if e else -1 for e in erp], np.int64),
            p_erp_partner_name=arr([e["partner_id__display"] if e else "" for e in erp], object),
            p_erp_company=arr([e["company_id"] if e else -1 for e in erp], np.int64),
            p_erp_account=arr([e["account_id"] if e else -1 for e in erp], np.int64),
            p_erp_account_name=arr([e["account_id__display"] if e else "" for e in erp], object),
        )


def draw_month(
    cat: Catalog, first: date, last: date, as_of: date, rng: np.random.Generator, first_id: int
) -> pd.DataFrame:
    """Draw the time entries of the days ``first``..``last`` (weekdays only).

    Each consultant works on 1–3 of their legal entity's projects running that month and logs
    1–3 entries per working day, in quarter hours (3% carry timer minutes: two decimals).

    Returns:
        One row per entry: ``id`` (Harvest id, from ``first_id``), ``spent_date``
        (datetime64[D]), ``hours_c`` (int64 hundredths of an hour), ``c`` and ``p`` (consultant
        and project positions in ``cat``), ``billable`` (bool), ``task`` (position in
        ``TASKS``), ``note`` (position in ``NOTES``), ``is_closed`` (approved, bool).
    """
    days = np.arange(np.datetime64(first), np.datetime64(last) + 1, dtype="datetime64[D]")
    days = days[np.is_busday(days)]
    n_c = len(cat.c_id)
    if not len(days):
        return pd.DataFrame()
    running = (cat.p_start <= np.datetime64(last)) & (cat.p_end >= np.datetime64(first))
    running &= cat.p_start < np.datetime64(as_of)
    by_entity = {e: np.flatnonzero(running & (cat.p_entity == e)) for e in ENTITY}
    assign = np.full((n_c, 3), -1, dtype=np.int64)
    n_assign = np.zeros(n_c, dtype=np.int64)
    wanted = rng.integers(1, 4, size=n_c)
    for ci in range(n_c):
        pool = by_entity[cat.c_entity[ci]]
        if len(pool):
            k = min(int(wanted[ci]), len(pool))
            assign[ci, :k] = rng.choice(pool, size=k, replace=False)
            n_assign[ci] = k
    workers = np.flatnonzero(n_assign)
    if not len(workers):
        return pd.DataFrame()
    c_day = np.repeat(workers, len(days))
    d_day = np.tile(days, len(workers))
    per_day = rng.choice(np.array([1, 2, 3]), size=len(c_day), p=[0.3, 0.45, 0.25])
    c = np.repeat(c_day, per_day)
    d = np.repeat(d_day, per_day)
    n_rows = len(c)
    slot = (rng.random(n_rows) * n_assign[c]).astype(np.int64)
    p = assign[c, slot]
    hours_c = rng.integers(2, 17, size=n_rows) * 25  # 0.50 .. 4.00 h
    timer = rng.random(n_rows) < 0.03
    hours_c[timer] += rng.integers(-12, 13, size=int(timer.sum()))
    billable = rng.random(n_rows) < 0.88
    task = np.where(billable, rng.integers(0, len(BILLABLE_TASKS), n_rows),
                    len(BILLABLE_TASKS) + rng.integers(0, len(NON_BILLABLE_TASKS), n_rows))  # fmt: skip
    recent = d >= np.datetime64(as_of - timedelta(days=APPROVAL_LAG_DAYS))
    is_closed = ~recent | (rng.random(n_rows) < 0.4)
    return pd.DataFrame({
        "id": np.arange(first_id, first_id + n_rows, dtype=np.int64), "spent_date": d,
        "hours_c": hours_c.astype(np.int64), "c": c, "p": p, "billable": billable, "task": task,
        "note": rng.integers(0, len(NOTES), n_rows), "is_closed": is_closed,
    })  # fmt: skip


def _ts(days: np.ndarray[Any, Any], hour: int) -> pa.Array:
    stamps = days.astype("datetime64[us]") + np.timedelta64(hour, "h")
    return pa.array(stamps, pa.timestamp("us", tz="UTC"))


def _opt_int(values: np.ndarray[Any, Any]) -> pa.Array:
    return pa.array(values, pa.int64(), mask=values < 0)


def _opt_str(values: pd.Series) -> pa.Array:
    return pa.array([None if pd.isna(x) else x for x in values.to_numpy(object)], pa.string())


def psa_rows(cat: Catalog, df: pd.DataFrame, as_of: date) -> pa.Table:
    """Return Harvest ``time_entries`` rows for the entries ``df`` (see :func:`draw_month`).

    ``df`` also carries ``invoice_id`` (int64, -1 when unbilled), ``invoice_number`` (object) and
    ``updated`` (datetime64[D]: approval or invoicing day).
    """
    c, p = df["c"].to_numpy(), df["p"].to_numpy()
    day = df["spent_date"].to_numpy().astype("datetime64[D]")
    inv = df["invoice_id"].to_numpy()
    return pa.table({
        "id": df["id"].to_numpy(), "spent_date": pa.array(day, pa.date32()),
        "hours": money_from_cents(df["hours_c"].to_numpy()),
        "notes": NOTES[df["note"].to_numpy()], "is_locked": df["is_closed"].to_numpy() | (inv >= 0),
        "is_closed": df["is_closed"].to_numpy(), "is_billed": inv >= 0,
        "billable": df["billable"].to_numpy(),
        "billable_rate": money_from_cents(cat.c_bill[c] * 100, ~df["billable"].to_numpy()),
        "cost_rate": money_from_cents(cat.c_cost[c] * 100), "user_id": cat.c_id[c],
        "user_name": cat.c_name[c], "client_id": cat.p_client_id[p],
        "client_name": cat.p_client_name[p], "client_currency": cat.p_currency[p],
        "project_id": cat.p_id[p],
        "project_name": cat.p_name[p], "project_code": cat.p_code[p],
        "task_id": TASK_IDS[df["task"].to_numpy()], "task_name": np.array(TASKS)[df["task"].to_numpy()],
        "invoice_id": _opt_int(inv),
        "invoice_number": _opt_str(df["invoice_number"]),
        "created_at": _ts(day, 18),
        "updated_at": _ts(df["updated"].to_numpy().astype("datetime64[D]"), 19),
    })  # fmt: skip


def erp_rows(cat: Catalog, e: pd.DataFrame) -> pa.Table:
    """Return Odoo ``account.analytic.line`` rows.

    Args:
        cat: the catalog.
        e: one row per Odoo line: ``erp_id``, ``harvest_id`` (-1 for none), ``date``
            (datetime64[D]), ``hours_c``, ``amount_c`` (cost in cents, positive), ``c``, ``p``
            (the Odoo line's project position), ``billable``, ``note``, ``move_id`` (-1 for
            none), ``move_name``, ``created`` (datetime64[D]).
    """
    c, p = e["c"].to_numpy(), e["p"].to_numpy()
    company = cat.p_erp_company[p]
    currency = np.array([ENTITY[k].currency for k in ("US", "UK", "DE")], object)[company - 1]
    move = e["move_id"].to_numpy()
    fixed = cat.p_fixed[p]
    kind = np.where(~e["billable"].to_numpy(), "non_billable",
                    np.where(fixed, "billable_fixed", "billable_time"))  # fmt: skip
    day = e["date"].to_numpy().astype("datetime64[D]")
    return pa.table({
        "id": e["erp_id"].to_numpy(), "date": pa.array(day, pa.date32()),
        "name": NOTES[e["note"].to_numpy()], "employee_id": cat.c_emp[c],
        "employee_id__display": cat.c_name[c], "project_id": cat.p_erp_id[p],
        "project_id__display": cat.p_erp_name[p], "partner_id": cat.p_erp_partner[p],
        "partner_id__display": cat.p_erp_partner_name[p],
        "unit_amount": money_from_cents(e["hours_c"].to_numpy()),
        "amount": money_from_cents(-e["amount_c"].to_numpy()),
        "currency_id": np.array([CURRENCY_IDS[x] for x in currency], np.int64),
        "currency_id__display": currency, "company_id": company,
        "company_id__display": np.array([ENTITY[k].name for k in ("US", "UK", "DE")], object)[company - 1],
        "account_id": cat.p_erp_account[p], "account_id__display": cat.p_erp_account_name[p],
        "timesheet_invoice_id": _opt_int(move),
        "timesheet_invoice_id__display": _opt_str(e["move_name"]),
        "timesheet_invoice_type": kind, "x_harvest_id": _opt_int(e["harvest_id"].to_numpy()),
        "create_date": _ts(e["created"].to_numpy().astype("datetime64[D]"), 20),
        "write_date": _ts(e["created"].to_numpy().astype("datetime64[D]"), 20),
    })  # fmt: skip
