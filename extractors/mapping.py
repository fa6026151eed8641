"""Mappings from a vendor's records to a canonical table, compiled to one DuckDB query.

A mapping names, for each canonical column (:mod:`data.canonical`), a DuckDB SQL expression over
the raw records. Raw records from an API are one JSON text column ``record``; in an expression,
``$.path`` (``$.client.id``, ``$.partner_id[0]``, ``$.properties.name``) stands for that path of the
record as text (``json_extract_string``: JSON ``null`` is NULL, ``false`` is ``'false'``). Raw rows
from files and SQL sources are typed columns, named directly. A :class:`Lookup` translates vendor
values through a value map (statuses from :mod:`extractors.statuses`, or a map from sources.yaml).

The compiled query casts every column to its canonical type with ``TRY_CAST`` and builds a
``_reason`` per row: empty for a good row, else every problem found (a value that does not read
as its type, a required column missing, a value no lookup knows). The pipeline sends rows with a
reason to quarantine, with the raw record, instead of dropping them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from data.canonical import LINEAGE, CanonicalTable
from data.sql import sql_literal

__all__ = [
    "Expr",
    "Lookup",
    "ObjectMapping",
    "compile_mapping",
    "expand_paths",
    "required_paths",
    "sql_literal",
]

_PATH = re.compile(r"\$((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+)")


@dataclass(frozen=True)
class Lookup:
    """A canonical value found by looking up a vendor value in a value map.

    Attributes:
        value: SQL expression of the vendor value (compared as text).
        map: name of the value map (a status map or a ``value_maps`` entry of sources.yaml).
        strict: an unknown vendor value quarantines the row; when False it passes through as is.
    """

    value: str
    map: str
    strict: bool = True


Expr = str | Lookup


@dataclass(frozen=True)
class ObjectMapping:
    """How one object of one connector becomes canonical rows.

    Attributes:
        object: canonical object name (``customers``, ``projects``, ``time_entries``, ``invoices``).
        fields: canonical column -> expression; columns left out are NULL.
        where: SQL condition selecting the raw records that are this object (e.g. closed-won
            deals); others stay in the raw layer only.
    """

    object: str
    fields: Mapping[str, Expr]
    where: str | None = None

    def overridden(self, fields: Mapping[str, Expr] | None = None, where: str | None = None) -> ObjectMapping:
        """Return a copy with ``fields`` replacing (or adding) column expressions and ``where`` set."""
        return replace(self, fields={**self.fields, **(fields or {})}, where=where or self.where)


def expand_paths(expr: str) -> str:
    """Replace each ``$.path`` in ``expr`` by ``json_extract_string(record, '$.path')``."""
    return _PATH.sub(lambda m: f"json_extract_string(record, '${m.group(1)}')", expr)


def required_paths(mapping: ObjectMapping, table: CanonicalTable) -> list[tuple[str, str]]:
    """The ``(column, $.path)`` pairs that required canonical columns read from JSON records."""
    pairs: list[tuple[str, str]] = []
    for col in table.columns:
        spec = mapping.fields.get(col.name)
        if col.required and spec is not None:
            expr = spec.value if isinstance(spec, Lookup) else spec
            pairs.extend((col.name, "$" + m.group(1)) for m in _PATH.finditer(expr))
    return pairs


def compile_mapping(
    mapping: ObjectMapping,
    table: CanonicalTable,
    value_maps: Mapping[str, Mapping[str, str]],
    *,
    raw: str,
    lineage: Mapping[str, str],
    json_records: bool,
    positions: bool = True,
) -> str:
    """Return the SQL that maps the raw relation ``raw`` to ``table``'s columns.

    The result has the lineage columns (values from ``lineage``, already SQL literals), the canonical
    columns in table order, ``_reason`` (``''`` when the row is good), ``_record`` (the raw record
    as JSON text, only on rows with a reason) and ``_pos`` (the raw row's position, for "the last
    one wins" on duplicate keys; NULL unless ``positions``: numbering rows costs a window over all).

    Raises:
        KeyError: a field is not a canonical column, or a lookup names an unknown value map.
    """
    for name in mapping.fields:
        table.column(name)
    typed: list[str] = []
    checks: list[str] = []
    for i, col in enumerate(table.columns):
        spec = mapping.fields.get(col.name)
        if spec is None:
            typed.append(f"CAST(NULL AS {col.sql_type}) AS {col.name}")
            if col.required:
                checks.append(f"'{col.name}: not mapped'")
            continue
        source = _expr(spec.value if isinstance(spec, Lookup) else spec, json_records)
        value = (
            f"CAST(({source}) AS VARCHAR)"
            if isinstance(spec, Lookup) or col.sql_type == "VARCHAR"
            else source
        )
        if isinstance(spec, Lookup):
            value = _lookup(value, spec, value_maps)
            if spec.strict:
                checks.append(
                    f"CASE WHEN _v{i} IS NOT NULL AND _l{i} IS NULL THEN "
                    f"'{col.name}: unknown value ' || {_quoted(f'_v{i}')} || ' (map {spec.map})' END"
                )
                typed.append(f"CAST(({source}) AS VARCHAR) AS _v{i}")
            value_col = f"_l{i}"
        else:
            value_col = f"_v{i}"
        typed.append(f"({value}) AS {value_col}")
        typed.append(f"TRY_CAST(({value}) AS {col.sql_type}) AS {col.name}")
        checks.append(
            f"CASE WHEN {value_col} IS NOT NULL AND {col.name} IS NULL THEN '{col.name}: cannot read ' || "
            f"{_quoted(f'CAST({value_col} AS VARCHAR)')} || ' as {col.sql_type}' END"
        )
        if col.required:
            checks.append(f"CASE WHEN {value_col} IS NULL THEN '{col.name}: missing' END")
    reason = (
        f"array_to_string(list_filter([{', '.join(checks)}], lambda x: x IS NOT NULL), '; ')"
        if checks
        else "''"
    )
    record = "_raw" if json_records else "CAST(to_json(_raw) AS VARCHAR)"
    lineage_cols = ", ".join(f"{lineage[c.name]} AS {c.name}" for c in LINEAGE)
    where = f"WHERE {_expr(mapping.where, json_records)}" if mapping.where else ""
    raw_row = "src.record" if json_records else "src"
    return (
        f"SELECT {lineage_cols}, {', '.join(table.names)}, _reason, "
        f"CASE WHEN _reason <> '' THEN {record} END AS _record, _pos "
        f"FROM (SELECT *, {reason} AS _reason FROM ("
        f"SELECT src._pos, {raw_row} AS _raw, {', '.join(typed)} "
        f"FROM (SELECT *, {'row_number() OVER ()' if positions else 'CAST(NULL AS BIGINT)'} AS _pos "
        f"FROM {raw} {where}) AS src))"
    )


def _expr(expr: str, json_records: bool) -> str:
    return expand_paths(expr) if json_records else expr


def _quoted(text_expr: str) -> str:
    return f"'''' || left({text_expr}, 80) || ''''"


def _lookup(raw_text: str, spec: Lookup, value_maps: Mapping[str, Mapping[str, str]]) -> str:
    try:
        values = value_maps[spec.map]
    except KeyError:
        raise KeyError(f"unknown value map {spec.map!r}; maps: {', '.join(sorted(value_maps))}") from None
    arms = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in values.items())
    fallback = "NULL" if spec.strict else raw_text
    return f"CASE {raw_text} {arms} ELSE {fallback} END" if arms else fallback
