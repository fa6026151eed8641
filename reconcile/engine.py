"""Run compiled rules in DuckDB and collect their breaks and counts.

The engine is the only code that executes rules; what a rule means is in :mod:`reconcile.compile`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from reconcile.compile import FUZZY_FUNCTION, RAW_BREAK_COLUMNS, RAW_BREAKS, Relations, compile_rule
from reconcile.rules import ReconciliationRule
from reconcile.suggest import fuzzy_score

__all__ = ["RuleResult", "prepare_connection", "run_rule"]


@dataclass
class RuleResult:
    """What one rule did in one run (a row of ``reconciliation_runs``).

    Attributes:
        rule_id: the rule. status: ``ok``, ``skipped`` (an input has no snapshot) or ``failed``.
        error: why it was skipped or failed, else None.
        source_rows / target_rows: rows after the filters (groups for aggregate rules).
        compared: pairs or groups found on both sides. matched: compared without a break.
        breaks_by_type: break type -> count. duration_s: seconds.
    """

    rule_id: str
    status: str = "ok"
    error: str | None = None
    source_rows: int = 0
    target_rows: int = 0
    compared: int = 0
    matched: int = 0
    breaks_by_type: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def breaks(self) -> int:
        """Breaks found."""
        return sum(self.breaks_by_type.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain values (``breaks`` included), for JSON, the run summary and the app."""
        return {**asdict(self), "breaks": self.breaks}


def prepare_connection(con: duckdb.DuckDBPyConnection) -> None:
    """Set up ``con`` for rules: UTC, the fuzzy score function, the empty :data:`RAW_BREAKS` table."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # the CLI prints its own summary
    con.create_function(
        FUZZY_FUNCTION,
        fuzzy_score,
        ["VARCHAR", "VARCHAR"],
        "DOUBLE",
        null_handling="special",  # type: ignore[call-overload]
    )
    cols = ", ".join(f"{c} {t}" for c, t in RAW_BREAK_COLUMNS.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {RAW_BREAKS} (rule_id VARCHAR, {cols})")


def run_rule(rule: ReconciliationRule, con: duckdb.DuckDBPyConnection, rels: Relations) -> RuleResult:
    """Run ``rule`` on ``rels`` and append its breaks to :data:`RAW_BREAKS` (see :func:`prepare_connection`).

    A rule that fails (a runtime error such as a cast or a type clash the validation could not
    foresee) is reported as ``failed`` with the database's message; its breaks are not added.
    """
    started = time.perf_counter()
    result = RuleResult(rule.rule_id)
    compiled = compile_rule(rule, rels)
    try:
        for sql in compiled.prepare:
            con.execute(sql)
        counts = con.execute(compiled.counts).fetchone()
        # one statement, so a failing rule adds no breaks at all
        con.execute(f"INSERT INTO {RAW_BREAKS} SELECT '{rule.rule_id}', * FROM ({compiled.breaks})")
        by_type = con.execute(
            f"SELECT break_type, count(*) FROM {RAW_BREAKS} WHERE rule_id = ? GROUP BY ALL ORDER BY 1",
            [rule.rule_id],
        ).fetchall()
    except duckdb.Error as exc:
        result.status, result.error = "failed", str(exc).splitlines()[0]
    else:
        assert counts is not None
        result.source_rows, result.target_rows, result.compared, result.matched = (int(c) for c in counts)
        result.breaks_by_type = {str(k): int(v) for k, v in by_type}
    finally:
        for sql in compiled.cleanup:
            con.execute(sql)
    result.duration_s = round(time.perf_counter() - started, 3)
    return result
