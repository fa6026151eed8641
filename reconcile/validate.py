"""Check every expression of every rule against the canonical tables before anything runs.

Each expression is bound by DuckDB on empty tables with the canonical columns of its side (and
its lookups), so an unknown column, a misspelt function or a type clash is refused at load with
the rule id, the key path and DuckDB's reason (which lists the columns it knows). Tolerances are
checked against the types they need.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import duckdb

from data.canonical import CANONICAL
from data.lake import empty_select
from reconcile.compile import Relations, compile_rule, expand, side_relation
from reconcile.engine import prepare_connection
from reconcile.inputs import crosswalk_relation
from reconcile.rules import DateWindow, Numeric, ReconciliationRule, RuleError, RuleSet, Side

__all__ = ["validate_rules"]

_NUMERIC = ("DECIMAL", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT", "SMALLINT", "TINYINT", "UBIGINT")


def validate_rules(ruleset: RuleSet) -> None:
    """Bind every expression of ``ruleset`` and compile each rule once on empty tables.

    Raises:
        RuleError: one line per problem: rule id, key path, DuckDB's message or the expected type.
    """
    con = duckdb.connect()
    prepare_connection(con)
    rels = Relations(
        relation=lambda obj, _system: _empty(obj),
        crosswalk=lambda xw: crosswalk_relation(xw, ruleset.path),
        as_of=date.today(),
    )
    problems: list[str] = []
    try:
        for i, rule in enumerate(ruleset.rules):
            where = f"rule {rule.rule_id!r} (rules.{i})"
            found = [f"  {where}: {key}: {msg}" for key, msg in _rule_problems(con, rule, rels)]
            if not found:
                try:
                    compiled = compile_rule(rule, rels)
                    for sql in (*compiled.prepare, compiled.breaks, compiled.counts, *compiled.cleanup):
                        con.execute(sql)
                except duckdb.Error as exc:
                    found.append(f"  {where}: {_first_line(exc)}")
            problems += found
    finally:
        con.close()
    if problems:
        raise RuleError(f"{ruleset.path}: {len(problems)} problem(s):\n" + "\n".join(problems))


def _rule_problems(
    con: duckdb.DuckDBPyConnection, rule: ReconciliationRule, rels: Relations
) -> Iterator[tuple[str, str]]:
    unfiltered = rule.model_copy(
        update={
            "source": rule.source.model_copy(update={"filter": None}),
            "target": None if rule.target is None else rule.target.model_copy(update={"filter": None}),
        }
    )
    bases = {side: side_relation(unfiltered, side, rels) for side in ("source", "target")}
    for j, lk in enumerate(rule.lookups):
        # A lookup's `by` sees its side's columns and the side's lookups declared before it.
        earlier = [e for e in rule.lookups[:j] if e.side == lk.side]
        own = side_relation(unfiltered.model_copy(update={"lookups": earlier}), lk.side, rels)
        for expr, col in lk.by.items():
            yield from _bind(con, f"lookups.{j}.by.{expr}", expr, own, rels.as_of)
            yield from _bind(con, f"lookups.{j}.by.{expr}", col, _empty(lk.object), rels.as_of)
        yield from _bind(con, f"lookups.{j}.value", lk.value, _empty(lk.object), rels.as_of)
    for side in ("source", "target"):
        try:
            con.execute(f"DESCRIBE SELECT * FROM {bases[side]}")
        except duckdb.Error as exc:
            yield f"lookups ({side})", _first_line(exc)
            return
    yield from _expressions(con, rule, rels, bases)


def _expressions(
    con: duckdb.DuckDBPyConnection, rule: ReconciliationRule, rels: Relations, bases: dict[str, str]
) -> Iterator[tuple[str, str]]:
    sides: list[tuple[str, Side | None]] = [("source", rule.source), ("target", rule.target)]
    group = rule.group_by
    for side, spec in sides:
        if spec is None:
            continue
        base = bases[side]
        if spec.filter:
            yield from _bind(con, f"{side}.filter", spec.filter, base, rels.as_of, want="BOOLEAN")
        keys = (
            (rule.match_key.source if side == "source" else rule.match_key.target) if rule.match_key else []
        )
        for n, expr in enumerate(keys):
            if not (side == "source" and rule.match_key and rule.match_key.crosswalk):
                yield from _bind(con, f"match_key.{side}.{n}", expr, base, rels.as_of)
        grouped = None
        if group is not None:
            exprs = group.source if side == "source" else group.target
            for n, expr in enumerate(exprs):
                yield from _bind(con, f"group_by.{side}.{n}", expr, base, rels.as_of)
            grouped = ", ".join(expand(e, rels.as_of) for e in exprs)
        for name, cmp in rule.compare.items():
            expr = (cmp.source if side == "source" else cmp.target) or name
            want = "NUMERIC" if isinstance(cmp.tolerance, Numeric) else None
            want = "DATE" if isinstance(cmp.tolerance, DateWindow) else want
            yield from _bind(con, f"compare.{name}.{side}", expr, base, rels.as_of, want=want, group=grouped)
        for ctx_name in ("legal_entity_id", "customer", "project_code", "invoice_cycle"):
            sides_expr = getattr(rule.context, ctx_name)
            ctx = None if sides_expr is None else getattr(sides_expr, side)
            if ctx:
                yield from _bind(con, f"context.{ctx_name}.{side}", ctx, base, rels.as_of, group=grouped)
        if rule.value is not None:
            for part, want in (("amount", "NUMERIC"), ("currency", None)):
                expr = getattr(getattr(rule.value, part), side)
                if expr:
                    yield from _bind(
                        con, f"value.{part}.{side}", expr, base, rels.as_of, want=want, group=grouped
                    )
        if rule.record_id is not None and getattr(rule.record_id, side):
            yield from _bind(
                con, f"record_id.{side}", getattr(rule.record_id, side), base, rels.as_of, group=grouped
            )
        if rule.kind == "match":
            yield from _bind(con, "duplicate_order", rule.duplicate_order, base, rels.as_of)
        if rule.suggest is not None:
            yield from _bind(con, "suggest.field", rule.suggest.field, base, rels.as_of)
    if rule.aging is not None:
        yield from _bind(con, "aging.date", rule.aging.date, bases["source"], rels.as_of, want="DATE")


def _bind(
    con: duckdb.DuckDBPyConnection,
    key: str,
    expr: str,
    base: str,
    as_of: date,
    *,
    want: str | None = None,
    group: str | None = None,
) -> Iterator[tuple[str, str]]:
    group_by = f" GROUP BY {group}" if group else ""
    try:
        described = con.execute(
            f"DESCRIBE SELECT {expand(expr, as_of)} AS v FROM {base} AS x{group_by}"
        ).fetchall()
    except duckdb.Error as exc:
        yield key, f"{expr!r}: {_first_line(exc)}"
        return
    sql_type = str(described[0][1])
    if want == "NUMERIC" and not sql_type.startswith(_NUMERIC):
        yield key, f"{expr!r} is {sql_type}; a numeric tolerance needs a number"
    elif want == "DATE" and sql_type not in ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"):
        yield key, f"{expr!r} is {sql_type}; expected a date"
    elif want == "BOOLEAN" and sql_type != "BOOLEAN":
        yield key, f"{expr!r} is {sql_type}; a filter must be true or false"


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split("\n")[:2]).strip()


def _empty(obj: str) -> str:
    """A relation with the columns of a snapshot of ``obj`` and no rows."""
    return f"({empty_select(CANONICAL[obj])})"
