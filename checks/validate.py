"""Validate one snapshot with its GX suite, reading it through DuckDB in bounded batches.

The snapshot is read as pandas DataFrames holding only the key, the checked columns and the
derived ``sum_equals`` differences. A snapshot over ``batch_rows`` rows is split into
``ceil(rows / batch_rows)`` batches by a hash of the object's key, so every row with the same key
is in the same batch (``unique`` stays exact) and memory stays bounded on the largest object;
batches run in a few processes at once (GX's pandas work is single-threaded).
DATE columns arrive as datetime64[ns] (GX compares those vectorised), text columns other than the
key as categoricals. DECIMAL columns arrive as
float64: bounds are whole cents, and rounding to float64 keeps the order
of distinct cents, so range checks judge exactly; sums are compared as exact DECIMAL differences.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb

from checks.build import GxSuite, derived_column
from data.canonical import CANONICAL

__all__ = ["ExpectationOutcome", "frame_query", "validate_snapshot"]

#: The snapshot being validated (SQL, compiled suite, batch count), for the forked workers.
_JOB: tuple[str, GxSuite, int] | None = None


@dataclass
class ExpectationOutcome:
    """One expectation's result over a whole snapshot (all batches).

    Attributes:
        rule_id: ``<object>.<expectation id>``. expectation: the id. gx_type: GX expectation type.
        column: the column reported. success: every batch passed (within ``mostly``).
        element_count / unexpected_count: rows checked and rows failing.
        ids: failing record ids (the object's key; None for a row without one), at most ``max_ids``.
        error: GX's exception message when the expectation could not run, else None.
    """

    rule_id: str
    expectation: str
    gx_type: str
    column: str
    success: bool = True
    element_count: int = 0
    unexpected_count: int = 0
    ids: list[str | None] = field(default_factory=list)
    error: str | None = None

    @property
    def unexpected_percent(self) -> float:
        """Failing rows in percent of rows checked (0 when none were)."""
        return 100.0 * self.unexpected_count / self.element_count if self.element_count else 0.0


def frame_query(snapshot: str, gx_suite: GxSuite, *, batches: int = 1, batch: int = 0) -> str:
    """The SELECT that reads batch ``batch`` of ``batches`` of ``snapshot`` for ``gx_suite``.

    Columns: the key, each checked column (DECIMAL as DOUBLE, DATE clamped to what pandas holds)
    and each ``sum_equals`` difference
    ``total - (a + b ...)`` (exact DECIMAL, then DOUBLE) named by :func:`checks.build.derived_column`.
    """
    table = CANONICAL[gx_suite.suite.object]
    cols = [table.key]
    for spec in gx_suite.specs:
        cols += [c for c in spec.checked if c not in cols]
    select = [_read(c, table.column(c).sql_type) for c in cols]
    for spec in gx_suite.specs:
        name = derived_column(spec)
        if name is not None and spec.sum_equals is not None:
            parts = " + ".join(f"coalesce({c}, 0)" for c in spec.sum_equals.columns)
            select.append(f"CAST({spec.sum_equals.total} - ({parts}) AS DOUBLE) AS {name}")
    where = f" WHERE hash({table.key}) % {batches} = {batch}" if batches > 1 else ""
    return f"SELECT {', '.join(select)} FROM ({snapshot}) AS snap{where}"


#: The dates pandas' datetime64[ns] holds; a DATE outside is clamped to them (see checks.spec.DATE_RANGE).
_DATE_MIN, _DATE_MAX = "DATE '1678-01-01'", "DATE '2262-04-11'"


def _read(col: str, sql_type: str) -> str:
    if sql_type.startswith("DECIMAL"):
        return f"CAST({col} AS DOUBLE) AS {col}"
    if sql_type == "DATE":
        # clamped dates keep their side of every allowed bound; the break shows the real value
        # as TIMESTAMP: pandas gets datetime64 directly, not a Python date object per row
        return (
            f"CAST(CASE WHEN {col} < {_DATE_MIN} THEN {_DATE_MIN} WHEN {col} > {_DATE_MAX} THEN {_DATE_MAX} "
            f"ELSE {col} END AS TIMESTAMP) AS {col}"
        )
    return col


def validate_snapshot(
    snapshot: str, rows: int, gx_suite: GxSuite, *, batch_rows: int, workers: int = 1
) -> tuple[list[ExpectationOutcome], Any]:
    """Validate ``snapshot`` (a SELECT over one snapshot's rows; ``rows`` of them) in batches.

    Batches run in ``workers`` processes at once (forked, so GX is imported once; each reads its
    own batch through its own DuckDB connection); a snapshot of one batch runs in this process.

    Returns:
        One :class:`ExpectationOutcome` per expectation of ``gx_suite``, in suite order, and GX's
        result of the whole snapshot (the first batch's, with every batch's counts and successes)
        for the Data Docs.
    """
    global _JOB
    batches = max(1, math.ceil(rows / batch_rows))
    _JOB = (snapshot, gx_suite, batches)
    try:
        if batches == 1 or workers <= 1:
            results = [_validate_batch(i) for i in range(batches)]
        else:
            # fork: the children inherit GX, already imported, and the compiled suite (in _JOB),
            # which cannot be pickled; only batch numbers and results cross
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(min(workers, batches), mp_context=context) as pool:
                results = list(pool.map(_validate_batch, range(batches)))
    finally:
        _JOB = None
    obj = gx_suite.suite.object
    outcomes = [ExpectationOutcome(f"{obj}.{s.name}", s.name, "", s.field) for s in gx_suite.specs]
    for result in results:
        for out, res in zip(outcomes, gx_suite.outcomes(result), strict=True):
            out.gx_type = res["gx_type"]
            out.success = out.success and res["success"]
            out.element_count += res["element_count"]
            out.unexpected_count += res["unexpected_count"]
            out.ids += res["ids"][: gx_suite.max_ids - len(out.ids)]
            out.error = out.error or res["error"]
    return outcomes, _merged(results[0], outcomes)


def _validate_batch(batch: int) -> Any:
    assert _JOB is not None
    snapshot, gx_suite, batches = _JOB
    con = duckdb.connect()
    try:
        frame = (
            con.sql(frame_query(snapshot, gx_suite, batches=batches, batch=batch))
            .to_arrow_table()
            .to_pandas()
        )
    finally:
        con.close()
    table = CANONICAL[gx_suite.suite.object]
    for col in frame.columns:
        kind = table.column(col).sql_type if col in table.names else None
        if kind == "DATE":
            frame[col] = frame[col].astype("datetime64[ns]")
        elif kind == "VARCHAR" and col != table.key:
            # GX filters the whole frame once per expectation; categorical columns filter as
            # integer codes, arrow strings by copying text (a quarter of GX's time at 1M rows)
            frame[col] = frame[col].astype("category")
    return gx_suite.validate(frame)


def _merged(result: Any, outcomes: list[ExpectationOutcome]) -> Any:
    """``result`` (one batch's) carrying the snapshot's counts and successes, for the Data Docs."""
    for r in result.results:
        out = outcomes[int(r.expectation_config.meta["tieout_index"])]
        r.success = out.success
        if r.result:
            r.result.update(element_count=out.element_count, unexpected_count=out.unexpected_count,
                            unexpected_percent=out.unexpected_percent)  # fmt: skip
    passed = sum(o.success for o in outcomes)
    result.success = passed == len(outcomes)
    share = 100.0 * passed / len(outcomes) if outcomes else None
    result.statistics.update(
        evaluated_expectations=len(outcomes), successful_expectations=passed,
        unsuccessful_expectations=len(outcomes) - passed, success_percent=share,
    )  # fmt: skip
    return result
