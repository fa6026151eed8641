"""Validate one snapshot with its GX suite, reading it through DuckDB in bounded batches.

The snapshot is read as pandas DataFrames holding only the key, the checked columns and the
derived ``sum_equals`` differences. A snapshot over ``batch_rows`` rows is split into
``ceil(rows / batch_rows)`` batches by a hash of the object's key, so every row with the same key
is in the same batch (``unique`` stays exact) and memory stays bounded on the largest object.
DECIMAL columns arrive as float64: bounds are whole cents, and rounding to float64 keeps the order
of distinct cents, so range checks judge exactly; sums are compared as exact DECIMAL differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb

from checks.build import GxSuite, derived_column
from data.canonical import CANONICAL

__all__ = ["ExpectationOutcome", "frame_query", "validate_snapshot"]


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

    Columns: the key, each checked column (DECIMAL as DOUBLE) and each ``sum_equals`` difference
    ``total - (a + b ...)`` (exact DECIMAL, then DOUBLE) named by :func:`checks.build.derived_column`.
    """
    table = CANONICAL[gx_suite.suite.object]
    cols = [table.key]
    for spec in gx_suite.specs:
        cols += [c for c in spec.checked if c not in cols]
    select = [
        f"CAST({c} AS DOUBLE) AS {c}" if table.column(c).sql_type.startswith("DECIMAL") else c for c in cols
    ]
    for spec in gx_suite.specs:
        name = derived_column(spec)
        if name is not None and spec.sum_equals is not None:
            parts = " + ".join(f"coalesce({c}, 0)" for c in spec.sum_equals.columns)
            select.append(f"CAST({spec.sum_equals.total} - ({parts}) AS DOUBLE) AS {name}")
    where = f" WHERE hash({table.key}) % {batches} = {batch}" if batches > 1 else ""
    return f"SELECT {', '.join(select)} FROM ({snapshot}) AS snap{where}"


def validate_snapshot(
    con: duckdb.DuckDBPyConnection, snapshot: str, rows: int, gx_suite: GxSuite, *, batch_rows: int
) -> list[ExpectationOutcome]:
    """Validate ``snapshot`` (a SELECT over one snapshot's rows; ``rows`` of them) in batches.

    Returns:
        One :class:`ExpectationOutcome` per expectation of ``gx_suite``, in suite order.
    """
    batches = max(1, math.ceil(rows / batch_rows))
    obj = gx_suite.suite.object
    outcomes = [ExpectationOutcome(f"{obj}.{s.name}", s.name, "", s.field) for s in gx_suite.specs]
    for i in range(batches):
        frame = con.sql(frame_query(snapshot, gx_suite, batches=batches, batch=i)).to_arrow_table()
        for out, res in zip(outcomes, gx_suite.run(frame.to_pandas()), strict=True):
            out.gx_type = res["gx_type"]
            out.success = out.success and res["success"]
            out.element_count += res["element_count"]
            out.unexpected_count += res["unexpected_count"]
            out.ids += res["ids"][: gx_suite.max_ids - len(out.ids)]
            out.error = out.error or res["error"]
        del frame
    return outcomes
