"""Fuzzy text: the ``fuzzy_text`` tolerance's score and match suggestions for unmatched records (rapidfuzz).

Suggestions are shown with a break and never acted on: matching stays with the match key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
from rapidfuzz import fuzz, process, utils

from data.canonical import CANONICAL
from data.sql import sql_literal
from reconcile.compile import RAW_BREAKS, Relations, side_relation
from reconcile.rules import ReconciliationRule, RuleSet

__all__ = ["add_suggestions", "fuzzy_score", "suggestions"]


def fuzzy_score(a: str | None, b: str | None) -> float | None:
    """Rapidfuzz ``token_sort_ratio`` (0–100) of two processed texts; None if either is None."""
    if a is None or b is None:
        return None
    return float(fuzz.token_sort_ratio(a, b, processor=utils.default_process))


def suggestions(
    names: Sequence[str | None], candidates: Sequence[tuple[str, str | None]], *, min_score: float, limit: int
) -> list[str | None]:
    """For each name, the best candidates as a JSON list of ``{id, name, score}`` (None when none qualify).

    Args:
        names: texts to find candidates for (e.g. the names of customers missing in the target).
        candidates: (id, text) of the other system's records.
        min_score: lowest ``token_sort_ratio`` (0–100) a candidate needs.
        limit: most candidates per name, best first.
    """
    choices = {i: text for i, (_, text) in enumerate(candidates) if text}
    out: list[str | None] = []
    for name in names:
        if not name:
            out.append(None)
            continue
        found = process.extract(
            name, choices, scorer=fuzz.token_sort_ratio, processor=utils.default_process,
            score_cutoff=min_score, limit=limit,
        )  # fmt: skip
        rows = [{"id": candidates[i][0], "name": text, "score": round(score, 1)} for text, score, i in found]
        out.append(json.dumps(rows) if rows else None)
    return out


def add_suggestions(
    con: duckdb.DuckDBPyConnection, ruleset: RuleSet, rule_ids: list[str], rels: Relations
) -> None:
    """Fill the ``suggestions`` column of the unmatched records of rules that ask for them.

    Adds ``suggestions`` (JSON text, see :func:`suggestions`) to :data:`reconcile.compile.RAW_BREAKS`
    for the rules ``rule_ids``:
    a source record missing in the target gets candidates among the target's records, and a
    target record missing in the source (or orphaned) among the source's.
    """
    con.execute(f"ALTER TABLE {RAW_BREAKS} ADD COLUMN suggestions VARCHAR")
    for rule_id in rule_ids:
        rule = ruleset.rule(rule_id)
        if rule.suggest is None:
            continue
        for own, other, kinds in (
            ("source", "target", ("missing_in_target",)),
            ("target", "source", ("missing_in_source", "orphan")),
        ):
            id_col = "source_id" if own == "source" else "target_id"
            kinds_sql = ", ".join(sql_literal(k) for k in kinds)
            rows = con.execute(
                f"SELECT DISTINCT b.{id_col}, x.v FROM {RAW_BREAKS} AS b "
                f"JOIN ({_texts(rule, own, rels)}) AS x ON x.id = b.{id_col} "
                f"WHERE b.rule_id = ? AND b.break_type IN ({kinds_sql})",
                [rule.rule_id],
            ).fetchall()
            if not rows:
                continue
            candidates = con.execute(_texts(rule, other, rels)).fetchall()
            found = suggestions([r[1] for r in rows], candidates, min_score=rule.suggest.min_score,
                                limit=rule.suggest.limit)  # fmt: skip
            updates = [[s, rule.rule_id, r[0]] for r, s in zip(rows, found, strict=True) if s]
            if updates:
                con.executemany(
                    f"UPDATE {RAW_BREAKS} SET suggestions = ? WHERE rule_id = ? AND {id_col} = ? "
                    f"AND break_type IN ({kinds_sql})",
                    updates,
                )


def _texts(rule: ReconciliationRule, side: str, rels: Relations) -> str:
    """(id, suggest field) of every record of one side."""
    assert rule.suggest is not None
    obj = rule.source.object if side == "source" else rule.target_side.object
    return (
        f"SELECT CAST({CANONICAL[obj].key} AS VARCHAR) AS id, {rule.suggest.field} AS v "
        f"FROM {side_relation(rule, side, rels)}"
    )
