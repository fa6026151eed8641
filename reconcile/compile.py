"""Rules to SQL: the one place that knows what a rule means.

:func:`compile_rule` turns a :class:`~reconcile.rules.ReconciliationRule` into DuckDB SQL: a few
``CREATE TEMP TABLE`` statements preparing each side, a query returning the rule's breaks with the
columns of :data:`RAW_BREAK_COLUMNS`, and a query returning its counts. Inputs are named through
:class:`Relations`, so the same SQL runs on current snapshots, on past ones (``--as-of``) or on
empty tables (validation). Another engine can run the rules by reimplementing this module.

Semantics, kind by kind:

- ``match``: a first pass aggregates both sides' keys with a hash of their compared values and
  keeps the keys that are not exactly one pair of equal values; only their rows go through a
  full outer join on the match key. Rows of one side sharing a key are
  ``duplicate`` except the first by ``duplicate_order`` (then id). An unmatched row is
  ``missing_in_target`` / ``missing_in_source``, or ``orphan`` when its key is a reference
  to the other system (not the row's own id) that points at nothing. Matched pairs are compared
  field by field within tolerance (one ``field_mismatch`` per field).
- ``aggregate``: both sides grouped by ``group_by``; compared values are aggregates; a group
  missing on one side counts as zero (``missing_groups: zero``) or is skipped (``ignore``).
- ``aged``: every source row passing the filter, at least ``aging.min_days`` old.

Tolerance (written here once): ``|s - t| <= abs_tol + rel_tol * |t|``; NULL matches only NULL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from data.canonical import CANONICAL
from reconcile.rules import (
    Compare,
    Crosswalk,
    DateWindow,
    Exact,
    FuzzyText,
    NormalizedText,
    Numeric,
    ReconciliationRule,
    Sides,
)

__all__ = [
    "FUZZY_FUNCTION",
    "RAW_BREAKS",
    "RAW_BREAK_COLUMNS",
    "CompiledRule",
    "Relations",
    "compile_rule",
    "normalized",
    "within_tolerance",
]

#: Columns of a compiled rule's breaks query, in order, with their DuckDB types.
RAW_BREAK_COLUMNS = {
    "break_type": "VARCHAR",
    "source_id": "VARCHAR",
    "target_id": "VARCHAR",
    "match_key": "VARCHAR",
    "field": "VARCHAR",
    "source_value": "VARCHAR",
    "target_value": "VARCHAR",
    "legal_entity_id": "VARCHAR",
    "customer": "VARCHAR",
    "project_code": "VARCHAR",
    "invoice_cycle": "VARCHAR",
    "amount": "DECIMAL(18,2)",
    "currency": "VARCHAR",
    "age_date": "DATE",
}
#: Temporary table the engine collects raw breaks in: ``rule_id`` then :data:`RAW_BREAK_COLUMNS`.
RAW_BREAKS = "_raw_breaks"
#: Scalar function the engine registers (rapidfuzz token_sort_ratio, 0-100) for ``fuzzy_text``.
FUZZY_FUNCTION = "tieout_fuzzy_score"
_CONTEXT = ("legal_entity_id", "customer", "project_code", "invoice_cycle")


@dataclass(frozen=True)
class Relations:
    """What the compiled SQL reads.

    Attributes:
        relation: (object, system) -> a SQL relation with that object's canonical columns.
        crosswalk: a crosswalk spec -> a SQL relation with its two columns.
        as_of: the business date that ``{as_of}`` in expressions and break ages refer to.
    """

    relation: Callable[[str, str], str]
    crosswalk: Callable[[Crosswalk], str]
    as_of: date


@dataclass(frozen=True)
class CompiledRule:
    """A rule as SQL: ``prepare`` statements, then ``breaks`` (RAW_BREAK_COLUMNS) and ``counts``.

    ``counts`` returns one row: source_rows, target_rows, compared (pairs or groups), matched
    (compared without a break). ``cleanup`` drops the temporary tables.
    """

    prepare: tuple[str, ...]
    breaks: str
    counts: str
    cleanup: tuple[str, ...]


def within_tolerance(spec: Compare, s: str, t: str) -> str:
    """SQL that is true when the values ``s`` and ``t`` agree under ``spec``'s tolerance (never NULL)."""
    tol = spec.tolerance
    both_null = f"({s} IS NULL AND {t} IS NULL)"
    if isinstance(tol, Exact):
        return f"({s} IS NOT DISTINCT FROM {t})"
    if isinstance(tol, Numeric):
        return f"coalesce(abs({s} - {t}) <= {tol.abs_tol} + {tol.rel_tol} * abs({t}), {both_null})"
    if isinstance(tol, DateWindow):
        return f"coalesce(abs(date_diff('day', {s}, {t})) <= {tol.days}, {both_null})"
    if isinstance(tol, NormalizedText):
        return f"({normalized(s)} IS NOT DISTINCT FROM {normalized(t)})"
    if isinstance(tol, FuzzyText):
        # rapidfuzz lower-cases and drops punctuation itself, and token_sort_ratio needs the spaces
        score = f"{FUZZY_FUNCTION}(CAST({s} AS VARCHAR), CAST({t} AS VARCHAR))"
        return f"coalesce({score} >= {tol.min_score}, {both_null})"
    raise TypeError(f"unknown tolerance {tol!r}")


def normalized(expr: str) -> str:
    """SQL for text compared loosely: lower case, letters and digits only (any script)."""
    return f"lower(regexp_replace(CAST({expr} AS VARCHAR), '[^\\p{{L}}\\p{{N}}]', '', 'g'))"


def expand(expr: str, as_of: date) -> str:
    """Replace ``{as_of}`` in a rule expression by the business date literal."""
    return expr.replace("{as_of}", f"DATE '{as_of.isoformat()}'")


def side_relation(rule: ReconciliationRule, side: str, rels: Relations) -> str:
    """SQL relation of one side: its canonical rows, lookups as extra columns, filter applied."""
    spec = rule.source if side == "source" else rule.target_side
    sql = f"SELECT * FROM {rels.relation(spec.object, spec.system)}"
    # One join per lookup, each over the previous ones: a lookup's `by` may use an earlier lookup.
    for lk in (lk for lk in rule.lookups if lk.side == side):
        keys = ", ".join(f"{col} AS j{n}" for n, col in enumerate(lk.by.values()))
        on = " AND ".join(f"({expand(e, rels.as_of)}) = l.j{n}" for n, e in enumerate(lk.by))
        sql = (
            f"SELECT r.*, l.v AS {lk.name} FROM ({sql}) AS r "
            f"LEFT JOIN (SELECT {keys}, min({expand(lk.value, rels.as_of)}) AS v "
            f"FROM {rels.relation(lk.object, lk.system)} GROUP BY ALL) AS l ON {on}"
        )
    where = f" WHERE {expand(spec.filter, rels.as_of)}" if spec.filter else ""
    return f"(SELECT * FROM ({sql}) AS b{where})"


def compile_rule(rule: ReconciliationRule, rels: Relations) -> CompiledRule:
    """Compile ``rule`` over ``rels`` (see the module docs for the semantics)."""
    if rule.kind == "aged":
        return _aged(rule, rels)
    if rule.kind == "aggregate":
        return _aggregate(rule, rels)
    return _match(rule, rels)


def _side_expr(sides: Sides | None, side: str, as_of: date, default: str = "NULL") -> str:
    expr = None if sides is None else (sides.source if side == "source" else sides.target)
    return expand(expr, as_of) if expr else default


def _field_expr(name: str, spec: Compare, side: str, as_of: date) -> str:
    return expand((spec.source if side == "source" else spec.target) or name, as_of)


def _payload(rule: ReconciliationRule, side: str, p: str, as_of: date) -> list[str]:
    """Context, valuation and compared columns of one side, prefixed ``p`` (s or t)."""
    cols = [
        f"CAST({_side_expr(getattr(rule.context, c), side, as_of)} AS VARCHAR) AS {p}_{c}" for c in _CONTEXT
    ]
    value = rule.value
    cols.append(
        f"CAST({_side_expr(value.amount if value else None, side, as_of)} AS DECIMAL(18,2)) AS {p}_amount"
    )
    cols.append(
        f"CAST({_side_expr(value.currency if value else None, side, as_of)} AS VARCHAR) AS {p}_currency"
    )
    cols += [f"{_field_expr(n, c, side, as_of)} AS {p}_f{i}" for i, (n, c) in enumerate(rule.compare.items())]
    return cols


def _hash(rule: ReconciliationRule, p: str) -> str:
    fields = ", ".join(f"{p}_f{i}" for i in range(len(rule.compare)))
    return f"hash({fields})" if fields else "0::UBIGINT"


def _ctx(a: str, b: str) -> str:
    return ", ".join(f"coalesce({a}_{c}, {b}_{c}) AS {c}" for c in _CONTEXT)


def _zeroed(col: str) -> str:
    """A group missing on one side counts as zero (``missing_groups: zero``)."""
    return f"coalesce({col}, 0)"


def _mismatches(rule: ReconciliationRule, table: str, where: str, ids: str, zero: bool) -> list[str]:
    """One SELECT per compared field, returning the pairs of ``table`` that disagree on it."""
    out = []
    for i, (name, spec) in enumerate(rule.compare.items()):
        s, t = f"s_f{i}", f"t_f{i}"
        if zero:
            s, t = _zeroed(s), _zeroed(t)
        amount = (
            "abs(coalesce(s_amount, 0) - coalesce(t_amount, 0))"
            if spec.value == "difference"
            else "coalesce(s_amount, t_amount)"
        )
        kind = "aggregate_mismatch" if rule.kind == "aggregate" else "field_mismatch"
        out.append(
            f"SELECT '{kind}', {ids}, '{name}', CAST({s} AS VARCHAR), CAST({t} AS VARCHAR), "
            f"{_ctx('s', 't')}, {amount}, coalesce(s_currency, t_currency), NULL::DATE "
            f"FROM {table} WHERE {where} AND NOT {within_tolerance(spec, s, t)}"
        )
    return out


def _names(rule: ReconciliationRule) -> tuple[str, str, str, str, str, str]:
    tag = rule.rule_id
    return (f"_s_{tag}", f"_t_{tag}", f"_sd_{tag}", f"_td_{tag}", f"_j_{tag}", tag)


def _key_expr(exprs: list[str], p: str, as_of: date) -> list[str]:
    return [f"{expand(e, as_of)} AS {p}_k{i}" for i, e in enumerate(exprs)]


def _match(rule: ReconciliationRule, rels: Relations) -> CompiledRule:
    assert rule.match_key is not None and rule.target is not None
    mk, as_of = rule.match_key, rels.as_of
    s_tab, t_tab, sd, td, j, _ = _names(rule)
    n = len(mk.source)
    own = {
        "s": CANONICAL[rule.source.object].key,
        "t": CANONICAL[rule.target.object].key,
    }
    s_keys = _key_expr(mk.source, "s", as_of)
    if mk.crosswalk is not None:
        # the crosswalk turns the source key into the target's key space
        s_keys = ["xw.xw_to AS s_k0"]
    order = expand(rule.duplicate_order, as_of)

    agg = f"_a_{rule.rule_id}"

    def keyed(p: str) -> str:
        return " AND ".join(f"{p}_k{i} IS NOT NULL" for i in range(n))

    def body(side: str, p: str, keys: list[str]) -> str:
        rel = side_relation(rule, side, rels)
        key_col = own[p]
        body = (
            f"SELECT {', '.join(keys)}, CAST({key_col} AS VARCHAR) AS {p}_id, {order} AS {p}_ord, "
            f"{', '.join(_payload(rule, side, p, as_of))} FROM {rel} AS x"
        )
        if p == "s" and mk.crosswalk is not None:
            xw = mk.crosswalk
            body += (
                f" LEFT JOIN (SELECT {xw.source_column} AS xw_from, min({xw.target_column}) AS xw_to "
                f"FROM {rels.crosswalk(xw)} GROUP BY ALL) AS xw "
                f"ON xw.xw_from = ({expand(mk.source[0], as_of)})"
            )
        return body

    bodies = {"s": body("source", "s", s_keys), "t": body("target", "t", _key_expr(mk.target, "t", as_of))}
    k = [f"k{i}" for i in range(n)]
    # Hash first: one aggregation over both sides' keys and compared values finds the keys that
    # are not a single pair of equal values; only their rows go through the join below. The low
    # bit of the value hash tags the side, so a key is a clean pair exactly when it has two rows
    # whose tagged hashes XOR to 1 (one of each side, equal values): two aggregate states, not four.
    tag = {"s": "& ~1::UBIGINT", "t": "| 1::UBIGINT"}
    sides = " UNION ALL ".join(
        f"SELECT {', '.join(f'{p}_k{i} AS k{i}' for i in range(n))}, {_hash(rule, p)} {tag[p]} AS h "
        f"FROM ({bodies[p]}) AS b WHERE {keyed(p)}"
        for p in ("s", "t")
    )
    # Only the odd keys are kept (a few, where a table of every key would be millions of rows), and
    # one total row (the empty grouping set) counting the source's keyed rows, from which the clean
    # keys follow: each has one source row, and every other keyed source row goes to _s.
    pre = (
        f"CREATE OR REPLACE TEMP TABLE {agg} AS SELECT {', '.join(k)}, grouping(k0) = 1 AS total, "
        f"count(*) FILTER (WHERE h & 1::UBIGINT = 0) AS source_keyed FROM ({sides}) "
        f"GROUP BY GROUPING SETS (({', '.join(k)}), ()) "
        f"HAVING grouping(k0) = 1 OR NOT (count(*) = 2 AND bit_xor(h) = 1)"
    )

    def prepared(p: str) -> str:
        on_odd = " AND ".join(f"b.{p}_k{i} = o.k{i}" for i in range(n))
        odd = f"(SELECT {', '.join(k)}, true AS hit FROM {agg} WHERE NOT total)"
        return (
            f"CREATE OR REPLACE TEMP TABLE {s_tab if p == 's' else t_tab} AS SELECT b.* "
            f"FROM ({bodies[p]}) AS b LEFT JOIN {odd} AS o ON {on_odd} WHERE o.hit OR NOT ({keyed(p)})"
        )

    def key_text(p: str) -> str:
        return f"concat_ws('|', {', '.join(f'CAST({p}_k{i} AS VARCHAR)' for i in range(n))})"

    def dups(p: str) -> str:
        tab, out = (s_tab, sd) if p == "s" else (t_tab, td)
        keys = ", ".join(f"{p}_k{i}" for i in range(n))
        # only keys seen twice are ranked: a window over every row would cost a sort of the side
        return (
            f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT * FROM (SELECT *, row_number() OVER "
            f"(PARTITION BY {keys} ORDER BY {p}_ord, {p}_id) AS {p}_n FROM {tab} SEMI JOIN "
            f"(SELECT {keys} FROM {tab} WHERE {keyed(p)} GROUP BY ALL HAVING count(*) > 1) USING ({keys})) "
            f"WHERE {p}_n > 1"
        )

    on = " AND ".join(f"s_k{i} = t_k{i}" for i in range(n))
    firsts = {
        p: f"(SELECT * FROM {tab} ANTI JOIN {d} USING ({p}_id) WHERE {keyed(p)})"
        for p, tab, d in (("s", s_tab, sd), ("t", t_tab, td))
    }
    join = (
        f"CREATE OR REPLACE TEMP TABLE {j} AS SELECT * FROM {firsts['s']} AS s FULL JOIN {firsts['t']} AS t "
        f"ON {on} WHERE s_id IS NULL OR t_id IS NULL OR {_hash(rule, 's')} <> {_hash(rule, 't')}"
    )
    # a key that is a reference to the other system (not the row's own id) and finds nothing is an orphan
    s_ref = mk.crosswalk is None and (n > 1 or mk.source[0] != own["s"])
    t_ref = n > 1 or mk.target[0] != own["t"]
    reported = rule.breaks_reported()
    nul = "NULL, NULL, NULL"
    selects: list[str] = []

    def add(kind: str, sql: str) -> None:
        if kind in reported:
            selects.append(sql)

    s_only = f"{_ctx('s', 's')}, s_amount, s_currency, NULL::DATE"
    t_only = f"{_ctx('t', 't')}, t_amount, t_currency, NULL::DATE"
    add("missing_in_target", f"SELECT 'missing_in_target', s_id, NULL, s_id, {nul}, {s_only} "
                             f"FROM {s_tab} WHERE NOT ({keyed('s')})")  # fmt: skip
    add("missing_in_source", f"SELECT 'missing_in_source', NULL, t_id, t_id, {nul}, {t_only} "
                             f"FROM {t_tab} WHERE NOT ({keyed('t')})")  # fmt: skip
    kind = "orphan" if s_ref else "missing_in_target"
    target = key_text("s") if s_ref else "NULL"
    add(
        kind, f"SELECT '{kind}', s_id, {target}, {key_text('s')}, {nul}, {s_only} FROM {j} WHERE t_id IS NULL"
    )
    kind = "orphan" if t_ref else "missing_in_source"
    source = key_text("t") if t_ref else "NULL"
    add(
        kind, f"SELECT '{kind}', {source}, t_id, {key_text('t')}, {nul}, {t_only} FROM {j} WHERE s_id IS NULL"
    )
    add(
        "duplicate",
        f"SELECT 'duplicate', s_id, NULL, {key_text('s')} || '|' || s_id, {nul}, {s_only} FROM {sd}",
    )
    add(
        "duplicate",
        f"SELECT 'duplicate', f.s_id, d.t_id, {key_text('d.t')} || '|' || d.t_id, {nul}, "
        f"{_ctx('d.t', 'd.t')}, d.t_amount, d.t_currency, NULL::DATE FROM {td} AS d "
        f"LEFT JOIN {firsts['s']} AS f ON {' AND '.join(f'f.s_k{i} = d.t_k{i}' for i in range(n))}",
    )
    if "field_mismatch" in reported:
        ids = f"s_id, t_id, {key_text('s')}"
        selects += _mismatches(rule, j, "s_id IS NOT NULL AND t_id IS NOT NULL", ids, zero=False)
    clean = (
        f"coalesce((SELECT source_keyed FROM {agg} WHERE total), 0) "
        f"- (SELECT count(*) FROM {s_tab} WHERE {keyed('s')})"
    )
    compared = f"clean + (SELECT count(*) FROM {firsts['s']}) - (SELECT count(*) FROM {j} WHERE t_id IS NULL)"
    # a clean key has one row a side; every other keyed row, and every keyless one, is in _s/_t
    rows = {p: f"clean + (SELECT count(*) FROM {tab})" for p, tab in (("s", s_tab), ("t", t_tab))}
    counts = (
        f"SELECT {rows['s']}, {rows['t']}, compared, compared - "
        f"(SELECT count(*) FROM {j} WHERE s_id IS NOT NULL AND t_id IS NOT NULL AND "
        f"NOT ({' AND '.join(_all_within(rule))})) "
        f"FROM (SELECT clean, {compared} AS compared FROM (SELECT {clean} AS clean))"
    )
    return CompiledRule(
        prepare=(pre, prepared("s"), prepared("t"), dups("s"), dups("t"), join),
        breaks=_union(selects),
        counts=counts,
        cleanup=tuple(f"DROP TABLE IF EXISTS {x}" for x in (agg, s_tab, t_tab, sd, td, j)),
    )  # fmt: skip


def _all_within(rule: ReconciliationRule, zero: bool = False) -> list[str]:
    """One tolerance check per compared field (groups missing on one side as zero when ``zero``)."""
    side = _zeroed if zero else str
    checks = [
        within_tolerance(c, side(f"s_f{i}"), side(f"t_f{i}")) for i, c in enumerate(rule.compare.values())
    ]
    return checks or ["true"]


def _aggregate(rule: ReconciliationRule, rels: Relations) -> CompiledRule:
    assert rule.group_by is not None
    gb, as_of = rule.group_by, rels.as_of
    s_tab, t_tab, _, _, j, _ = _names(rule)
    n = len(gb.source)

    def prepared(side: str, p: str, exprs: list[str]) -> str:
        keys = [expand(e, as_of) for e in exprs]
        key_text = f"concat_ws('|', {', '.join(f'CAST({k} AS VARCHAR)' for k in keys)})"
        record = _side_expr(rule.record_id, side, as_of, default=key_text)
        return (
            f"CREATE OR REPLACE TEMP TABLE {s_tab if p == 's' else t_tab} AS SELECT "
            f"{', '.join(f'{k} AS {p}_k{i}' for i, k in enumerate(keys))}, {key_text} AS {p}_key, "
            f"CAST({record} AS VARCHAR) AS {p}_id, {', '.join(_payload(rule, side, p, as_of))} "
            f"FROM {side_relation(rule, side, rels)} AS x GROUP BY {', '.join(keys)}"
        )

    zero = rule.missing_groups == "zero"
    how = "FULL JOIN" if zero else "JOIN"
    on = " AND ".join(f"s_k{i} IS NOT DISTINCT FROM t_k{i}" for i in range(n))
    join = f"CREATE OR REPLACE TEMP TABLE {j} AS SELECT * FROM {s_tab} AS s {how} {t_tab} AS t ON {on}"
    ids = "coalesce(s_id, t_key), coalesce(t_id, s_key), coalesce(s_key, t_key)"
    selects = (
        _mismatches(rule, j, "true", ids, zero=zero) if "aggregate_mismatch" in rule.breaks_reported() else []
    )
    within = " AND ".join(_all_within(rule, zero))
    counts = (
        f"SELECT (SELECT count(*) FROM {s_tab}), (SELECT count(*) FROM {t_tab}), "
        f"(SELECT count(*) FROM {j}), (SELECT count(*) FROM {j} WHERE {within})"
    )
    return CompiledRule(
        prepare=(prepared("source", "s", gb.source), prepared("target", "t", gb.target), join),
        breaks=_union(selects),
        counts=counts,
        cleanup=tuple(f"DROP TABLE IF EXISTS {x}" for x in (s_tab, t_tab, j)),
    )


def _aged(rule: ReconciliationRule, rels: Relations) -> CompiledRule:
    assert rule.aging is not None
    as_of = rels.as_of
    s_tab = _names(rule)[0]
    age_date = f"CAST({expand(rule.aging.date, as_of)} AS DATE)"
    key = CANONICAL[rule.source.object].key
    prepare = (
        f"CREATE OR REPLACE TEMP TABLE {s_tab} AS SELECT CAST({key} AS VARCHAR) AS s_id, "
        f"{age_date} AS s_age_date, "
        f"{', '.join(_payload(rule, 'source', 's', as_of))} FROM {side_relation(rule, 'source', rels)} AS x"
    )
    aged = f"date_diff('day', s_age_date, DATE '{as_of.isoformat()}') >= {rule.aging.min_days}"
    select = (
        f"SELECT 'aged', s_id, NULL, s_id, NULL, CAST(s_age_date AS VARCHAR), NULL, {_ctx('s', 's')}, "
        f"s_amount, s_currency, s_age_date FROM {s_tab} WHERE {aged}"
    )
    counts = f"SELECT (SELECT count(*) FROM {s_tab}), 0, (SELECT count(*) FROM {s_tab}), " \
             f"(SELECT count(*) FROM {s_tab} WHERE NOT {aged})"  # fmt: skip
    return CompiledRule(
        prepare=(prepare,),
        breaks=_union([select] if "aged" in rule.breaks_reported() else []),
        counts=counts,
        cleanup=(f"DROP TABLE IF EXISTS {s_tab}",),
    )


def _union(selects: list[str]) -> str:
    cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in RAW_BREAK_COLUMNS.items())
    empty = f"SELECT {cols} WHERE false"
    return " UNION ALL ".join([empty, *selects])
