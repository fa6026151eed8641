"""Data-quality defects: Harvest time entries that fail the data-quality suites, one month at a time.

The kinds and the failed expectations each one causes are ``demo.ground_truth.QUALITY_KINDS``.
They only hit time entries still awaiting approval (``is_closed`` false): every reconciliation
rule reads approved entries, or entries on an invoice, which an unapproved entry never is, so the
reconciliation answer key is the same with or without them. They draw from their own random
stream for the same reason: turning them off changes nothing else in the firm.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from demo.ground_truth import QUALITY_KINDS, GroundTruth
from demo.parts import money_from_cents
from demo.timesheets import Catalog

#: Third seed word of the data-quality random stream (``[seed, month, RNG_STREAM]``).
RNG_STREAM = 1
#: Not an ISO 4217 code: ISO keeps the X.. codes for itself and has not assigned this one.
UNKNOWN_CURRENCY = "XYZ"
#: A ``future_date`` entry is dated this many days after the as-of date (inclusive).
FUTURE_DAYS = (20, 60)


def inject_quality(
    cat: Catalog, df: pd.DataFrame, te: pa.Table, *, as_of: date, rate: float, minimum: int,
    rng: np.random.Generator, gt: GroundTruth,
) -> pa.Table:  # fmt: skip
    """Return the month's Harvest time entries with data-quality defects, recording them in ``gt``.

    Each kind hits about ``rate`` of the month's unapproved entries, on disjoint entries; while
    ``gt`` holds fewer than ``minimum`` of a kind, the month makes up the difference (unapproved
    entries are only days old, so they fall in the last month or two). ``rate`` 0 injects none.

    Args:
        cat: the catalog.
        df: the month's entries (see :func:`demo.timesheets.draw_month`), with a RangeIndex.
        te: their Harvest rows, in the same order (:func:`demo.timesheets.psa_rows`).
        as_of: the firm's as-of date.
        rate: fraction of the unapproved entries per kind.
        minimum: entries of each kind wanted over the whole firm.
        rng: the month's data-quality stream.
        gt: the ground truth; holds the counts of earlier months.
    """
    if rate <= 0:
        return te
    pool = rng.permutation(np.flatnonzero(~df["is_closed"].to_numpy()))
    c, hours_c, billable = df["c"].to_numpy(), df["hours_c"].to_numpy(), df["billable"].to_numpy()
    at = 0
    for kind in QUALITY_KINDS:
        n = max(int(rng.binomial(len(pool), rate)), minimum - gt.injected.get(kind, 0))
        rows = np.sort(pool[at : at + n])
        at += len(rows)
        if not len(rows):
            continue
        if kind == "negative_hours":
            te = _replace(te, "hours", rows, money_from_cents(-hours_c[rows]))
        elif kind == "future_date":
            days = np.datetime64(as_of) + rng.integers(FUTURE_DAYS[0], FUTURE_DAYS[1] + 1, len(rows))
            # created_at and updated_at keep the day the entry was typed in: only its date is wrong
            te = _replace(te, "spent_date", rows, pa.array(days.astype("datetime64[D]"), pa.date32()))
        elif kind == "unknown_currency":
            te = _replace(te, "client_currency", rows, pa.array([UNKNOWN_CURRENCY] * len(rows), pa.string()))
        else:  # null_project: Harvest sends `"project": null`
            for name in ("project_id", "project_name", "project_code"):
                te = _replace(te, name, rows, pa.nulls(len(rows), te.schema.field(name).type))
        for row in rows:
            # a non-billable entry has no billable rate, hence no billable amount to go negative
            fields = None if kind != "negative_hours" or billable[row] else ("hours", "cost_amount")
            gt.add_quality(kind, source_id=int(df.at[row, "id"]), legal_entity_id=str(cat.c_entity[c[row]]),
                           fields=fields)  # fmt: skip
    return te


def _replace(te: pa.Table, name: str, rows: np.ndarray[Any, Any], values: pa.Array) -> pa.Table:
    """Return ``te`` with column ``name`` set to ``values`` at the (sorted) positions ``rows``."""
    mask = np.zeros(te.num_rows, dtype=bool)
    mask[rows] = True
    i = te.schema.get_field_index(name)
    column = pc.replace_with_mask(te.column(i).combine_chunks(), pa.array(mask), values)
    return te.set_column(i, te.schema.field(i), column)
