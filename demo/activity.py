"""The firm's months of work: time entries, their posting to Odoo, invoices, and their defects.

Streams month by month into Parquet parts, so memory stays bounded by one month of entries.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from demo.firm import Firm, add_months, month_end
from demo.ground_truth import GroundTruth, aging_bucket
from demo.invoicing import INVOICE_DEFECTS, Billing, bill_month
from demo.master import MasterViews
from demo.parts import PartWriter
from demo.quality import RNG_STREAM, inject_quality
from demo.tables import table
from demo.timesheets import FIRST_TIME_ENTRY_ID, Catalog, draw_month, erp_rows, psa_rows

# Defects on one posted time entry: the Odoo line is changed, moved, doubled or left out.
TIME_DEFECTS = ("time_not_posted", "time_double_posted", "time_hours_changed",
                "time_hours_on_tolerance_inside", "time_amount_changed",
                "time_amount_on_tolerance_inside", "time_wrong_project", "time_wrong_period",
                "time_date_shift_inside")  # fmt: skip
# Odoo lines with no (or an unknown) Harvest entry behind them.
EXTRA_LINE_DEFECTS = ("time_only_in_erp", "time_unknown_harvest_ref")
FIRST_UNKNOWN_HARVEST_ID = 1_900_000_000


def _count(rng: np.random.Generator, pool: int, rate: float, forced: int) -> int:
    return max(int(rng.binomial(pool, rate)) if pool else 0, min(forced, pool))


def generate_activity(firm: Firm, v: MasterViews, gt: GroundTruth, demo_dir: Path) -> dict[str, int]:
    """Generate and write time entries, Odoo timesheet lines and invoices of every month.

    Returns:
        Rows written per table (``psa/time_entries`` …).
    """
    cfg = firm.config
    rates = cfg.defects
    cat = Catalog.build(firm, v)
    part_rows = cfg.size.parquet_rows
    names = ("psa/time_entries", "erp/account.analytic.line", "psa/invoices",
             "psa/invoice_line_items", "erp/account.move", "erp/account.move.line")  # fmt: skip
    writers = {n: PartWriter(table(*n.split("/")), demo_dir, part_rows) for n in names}
    billing = Billing()
    next_te, next_line, next_unknown = FIRST_TIME_ENTRY_ID, 1, FIRST_UNKNOWN_HARVEST_ID
    closed_seen = 0
    for mi in range(cfg.size.months):
        first = add_months(firm.window_start, mi)
        last = min(month_end(first), cfg.as_of - timedelta(days=1))
        nrng = np.random.default_rng([cfg.seed, mi])
        prng = random.Random(cfg.seed * 1_000_003 + mi)
        df = draw_month(cat, first, last, cfg.as_of, nrng, next_te)
        if df.empty:
            continue
        next_te += len(df)
        closed = month_end(first) < cfg.as_of
        forced = 1 if closed and closed_seen < rates.minimum else 0
        closed_seen += closed
        plan = _plan_time_defects(df, nrng, rates.time_entry, forced)
        unbilled = _plan_unbilled(cat, df, plan, nrng, rates.unbilled, cfg.as_of, closed, rates.minimum)
        df["invoice_id"] = np.int64(-1)
        df["invoice_number"] = pd.Series([None] * len(df), dtype=object)
        df["move_id"] = np.int64(-1)
        df["move_name"] = pd.Series([None] * len(df), dtype=object)
        approved_on = np.minimum(df["spent_date"].to_numpy() + np.timedelta64(3, "D"),
                                 np.datetime64(cfg.as_of - timedelta(days=1)))  # fmt: skip
        df["updated"] = np.where(df["is_closed"], approved_on, df["spent_date"].to_numpy())
        for row in unbilled:
            age = (cfg.as_of - pd.Timestamp(df.at[row, "spent_date"]).date()).days
            le = cat.p_entity[df.at[row, "p"]]
            gt.add("time_unbilled", source_id=int(df.at[row, "id"]), target_id=None,
                   legal_entity_id=le, aging=aging_bucket(age))  # fmt: skip
        if closed:
            billed = (df["is_closed"] & df["billable"]).to_numpy() & ~cat.p_fixed[df["p"].to_numpy()]
            billed[unbilled] = False
            pool = len(np.unique(df["p"].to_numpy()[billed]))
            counts = {k: _count(nrng, pool, rates.invoice, forced) for k in INVOICE_DEFECTS}
            counts["invoice_only_in_erp"] = _count(nrng, pool, rates.invoice / 2, forced)
            bill_month(cat, billing, df, billed, first, cfg.as_of, prng, gt, counts)
            for name, rows in billing.take().items():
                writers[name].write_rows(rows)
        te = inject_quality(cat, df, psa_rows(cat, df, cfg.as_of), as_of=cfg.as_of, rate=rates.quality,
                            minimum=rates.minimum, rng=np.random.default_rng([cfg.seed, mi, RNG_STREAM]),
                            gt=gt)  # fmt: skip
        writers["psa/time_entries"].write(te)
        lines, next_line, next_unknown = _erp_lines(
            cat, df, plan, nrng, gt, next_line, next_unknown, rates.time_entry, forced, first, last
        )
        writers["erp/account.analytic.line"].write(erp_rows(cat, lines))
    for w in writers.values():
        w.close()
    return {n: w.rows for n, w in writers.items()}


def _plan_time_defects(
    df: pd.DataFrame, rng: np.random.Generator, rate: float, forced: int
) -> dict[str, np.ndarray[Any, Any]]:
    """Pick disjoint approved entries for each time defect kind: kind → row positions."""
    approved = rng.permutation(np.flatnonzero(df["is_closed"].to_numpy()))
    plan, at = {}, 0
    for kind in TIME_DEFECTS:
        n = _count(rng, len(approved), rate, forced)
        plan[kind] = np.sort(approved[at : at + n])
        at += n
    return plan


def _plan_unbilled(
    cat: Catalog, df: pd.DataFrame, plan: dict[str, np.ndarray[Any, Any]],
    rng: np.random.Generator, rate: float, as_of: date, closed: bool, minimum: int,
) -> np.ndarray[Any, Any]:  # fmt: skip
    """Pick approved billable T&M entries of a closed period to leave off every invoice.

    At least ``minimum`` per aging bucket the month reaches, so every bucket is represented.
    """
    if not closed:
        return np.array([], np.int64)
    ok = (df["is_closed"] & df["billable"]).to_numpy() & ~cat.p_fixed[df["p"].to_numpy()]
    for rows in plan.values():
        ok[rows] = False
    age = (np.datetime64(as_of) - df["spent_date"].to_numpy().astype("datetime64[D]")).astype(int)
    bucket = np.digitize(age, [31, 61, 91])
    chosen = []
    for b in np.unique(bucket[ok]):
        pool = np.flatnonzero(ok & (bucket == b))
        chosen.append(rng.choice(pool, size=_count(rng, len(pool), rate, minimum), replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], np.int64)


def _erp_lines(
    cat: Catalog, df: pd.DataFrame, plan: dict[str, np.ndarray[Any, Any]],
    rng: np.random.Generator, gt: GroundTruth, next_line: int, next_unknown: int, rate: float,
    forced: int, first: date, last: date,
) -> tuple[pd.DataFrame, int, int]:  # fmt: skip
    """Post the month's approved entries to Odoo, applying the planned defects.

    Returns:
        The Odoo lines (columns of :func:`demo.timesheets.erp_rows`), and the next line id and
        next unknown Harvest id.
    """
    posted = df["is_closed"].to_numpy().copy()
    posted[plan["time_not_posted"]] = False
    for row in plan["time_not_posted"]:
        gt.add("time_not_posted", source_id=int(df.at[row, "id"]), target_id=None,
               legal_entity_id=cat.p_entity[df.at[row, "p"]])  # fmt: skip
    src = df.loc[posted]
    e = pd.DataFrame({
        "erp_id": np.arange(next_line, next_line + len(src), dtype=np.int64),
        "harvest_id": src["id"].to_numpy(), "date": src["spent_date"].to_numpy(),
        "hours_c": src["hours_c"].to_numpy(), "c": src["c"].to_numpy(), "p": src["p"].to_numpy(),
        "billable": src["billable"].to_numpy(), "note": src["note"].to_numpy(),
        "move_id": src["move_id"].to_numpy(), "move_name": src["move_name"].to_numpy(),
        "created": src["updated"].to_numpy(),
    }, index=src.index)  # fmt: skip
    e["amount_c"] = e["hours_c"] * cat.c_cost[e["c"].to_numpy()]
    next_line += len(e)
    ids = df["id"]
    changed = [k for k in TIME_DEFECTS if k not in ("time_not_posted", "time_double_posted")]
    for kind in changed:
        for row in plan[kind]:
            target = int(e.at[row, "erp_id"])
            _change_line(cat, e, row, kind, rng, first, last)
            gt.add(kind, source_id=int(ids[row]), target_id=target,
                   legal_entity_id=cat.p_entity[df.at[row, "p"]])  # fmt: skip
    doubles = e.loc[plan["time_double_posted"]].copy()
    doubles["erp_id"] = np.arange(next_line, next_line + len(doubles), dtype=np.int64)
    doubles["created"] = doubles["created"] + np.timedelta64(1, "D")
    next_line += len(doubles)
    for row, extra in zip(plan["time_double_posted"], doubles["erp_id"], strict=True):
        gt.add("time_double_posted", source_id=int(ids[row]), target_id=int(extra),
               legal_entity_id=cat.p_entity[df.at[row, "p"]])  # fmt: skip
    extras = []
    for kind in EXTRA_LINE_DEFECTS:
        for _ in range(_count(rng, len(e), rate, forced)):
            base = e.iloc[int(rng.integers(len(e)))].copy()
            base["erp_id"], base["move_id"], base["move_name"] = next_line, -1, None
            unknown = next_unknown if kind == "time_unknown_harvest_ref" else None
            base["harvest_id"] = unknown if unknown is not None else -1
            next_unknown += unknown is not None
            gt.add(kind, source_id=unknown, target_id=next_line,
                   legal_entity_id=cat.p_entity[int(base["p"])])  # fmt: skip
            next_line += 1
            extras.append(base)
    out = pd.concat([e, doubles, pd.DataFrame(extras)], ignore_index=True)
    for col in ("erp_id", "harvest_id", "hours_c", "c", "p", "note", "move_id", "amount_c"):
        out[col] = out[col].astype(np.int64)
    out["billable"] = out["billable"].astype(bool)
    return out, next_line, next_unknown


def _change_line(
    cat: Catalog, e: pd.DataFrame, row: int, kind: str, rng: np.random.Generator,
    first: date, last: date,
) -> None:  # fmt: skip
    cost = int(cat.c_cost[e.at[row, "c"]])
    if kind == "time_hours_changed":
        delta = int(rng.integers(1, 9)) * 25
        hours = int(e.at[row, "hours_c"])
        e.at[row, "hours_c"] = hours + delta if hours <= delta or rng.random() < 0.5 else hours - delta
        e.at[row, "amount_c"] = e.at[row, "hours_c"] * cost
    elif kind == "time_hours_on_tolerance_inside":
        e.at[row, "hours_c"] += 1  # exactly the 0.01 h tolerance; amount left as posted
    elif kind == "time_amount_changed":
        e.at[row, "amount_c"] += int(rng.integers(5, 51)) * 100
    elif kind == "time_amount_on_tolerance_inside":
        e.at[row, "amount_c"] += 1  # exactly the 0.01 tolerance
    elif kind == "time_wrong_project":
        p = int(e.at[row, "p"])
        same = np.flatnonzero((cat.p_entity == cat.p_entity[p]) & (cat.p_erp_id >= 0)
                              & (cat.p_code != cat.p_code[p]))  # fmt: skip
        e.at[row, "p"] = int(rng.choice(same))
    elif kind == "time_wrong_period":
        day = pd.Timestamp(e.at[row, "date"]).date()
        e.at[row, "date"] = np.datetime64(first - timedelta(days=1 + day.day % 3))
    elif kind == "time_date_shift_inside":
        day = pd.Timestamp(e.at[row, "date"]).date()
        shifted = day + timedelta(days=1) if day < last else day - timedelta(days=1)
        e.at[row, "date"] = np.datetime64(max(shifted, first))
