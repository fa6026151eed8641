"""Odoo search domains and ``order`` specs as DuckDB SQL for :class:`demo.store.DemoStore`.

A domain is Odoo's list in Polish notation: conditions ``[field, operator, value]`` and the prefix
operators ``"&"``, ``"|"`` (two operands) and ``"!"`` (one), with an implicit AND between what is
left. The translation follows Odoo 19's ``odoo/orm/domains.py`` and ``Field._condition_to_sql``:

- ``=``/``!=`` are ``in``/``not in`` of one value; ``False`` (JSON ``false``) stands for NULL, and
  numeric fields also treat NULL as 0 (``("amount", "<", 5)`` matches NULL amounts).
- ``not in``, ``!=``, ``not like`` and ``not ilike`` also match NULL; ``!`` is ``IS NOT TRUE``.
- ``like``/``ilike`` wrap the value in ``%``; ``=like``/``=ilike`` take it as the pattern; an empty
  pattern matches everything (``like``) or tests emptiness (``=like``, and on many2one fields).
- ``=?`` is TRUE when the value is falsy, else ``=``.
- many2one fields compare ids; a string value compares the display name (Odoo's name search).
- one2many and many2many fields (a list of ids) take ``=``, ``!=``, ``in`` and ``not in`` with ids
  or ``False`` (no records): ``in`` matches records linked to any of the ids.
- json fields only test emptiness (``= False``, ``!= False``).
- dates and datetimes take ISO strings; a day compared to a datetime covers the whole UTC day.
- a dotted path through a many2one (``move_id.move_type``) is ``any`` on it, as in Odoo 19; ``any``
  and ``not any`` take a domain on the comodel, searched with archived records included. Both need
  the comodel to be served (see :class:`Comodel`).

Not simulated (refused with a ``Not supported`` error): paths and ``any`` through x2many fields,
date granularities (``date.month_number``), ``child_of`` and ``parent_of``.
Values only ever travel as ``?`` parameters; field names are checked against the model first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

NUMERIC = frozenset({"integer", "float", "monetary"})
TEXT = frozenset({"char", "text", "selection", "html"})
#: Relational types stored as a list of ids.
X2MANY = frozenset({"one2many", "many2many"})
_NEGATIVE = frozenset({"!=", "not in", "not like", "not ilike"})
_LIKE_SQL = {
    "like": "LIKE",
    "not like": "NOT LIKE",
    "ilike": "ILIKE",
    "not ilike": "NOT ILIKE",
    "=like": "LIKE",
    "=ilike": "ILIKE",
}
_COMPARE = frozenset({"<", ">", "<=", ">="})
# any! and not any! only bypass access rules, which the demo Odoo does not have.
_ANY = {"any": True, "any!": True, "not any": False, "not any!": False}
_SIMULATED = frozenset({"=", "!=", "=?", "in", "not in"}) | _COMPARE | frozenset(_LIKE_SQL) | frozenset(_ANY)
# Valid in Odoo 19 but not simulated here.
_ODOO_ONLY = frozenset({"child_of", "parent_of"})
_DEPRECATED = {"<>": "!=", "==": "="}  # still accepted by Odoo 19
_ORDER_RE = re.compile(r"^(\s*\w+(\s+(desc|asc))?(\s+nulls\s+(first|last))?\s*(,|$))+(?<!,)$", re.IGNORECASE)


class OdooError(ValueError):
    """A call Odoo refuses, in Odoo's words.

    Attributes:
        name: the fully qualified Python exception Odoo raises, e.g. ``builtins.ValueError``.
        status: the HTTP status Odoo's JSON-2 API answers with (500 for server-side exceptions).
        arguments: the exception's arguments (``[message]`` unless given).
    """

    def __init__(
        self,
        message: str,
        *,
        name: str = "builtins.ValueError",
        status: int = 500,
        arguments: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.status = status
        self.arguments = list(arguments) if arguments is not None else [message]


@dataclass(frozen=True)
class Comodel:
    """A model a many2one points to, as paths and ``any`` need it.

    Attributes:
        name: the model (``account.move``), for error messages.
        relation: the quoted SQL name of its table (``demo.tables.view_name``).
        fields: its searchable fields, name → Odoo type.
    """

    name: str
    relation: str
    fields: Mapping[str, str]


#: ``(model, field) -> Comodel`` of a many2one field, or None when its model is not served.
Comodels = Callable[[str, str], Comodel | None]


@dataclass(frozen=True)
class _Scope:
    """Where a condition is translated: the model's fields, and the parameters collected so far."""

    fields: Mapping[str, str]
    model: str
    comodels: Comodels | None
    params: list[Any]

    def on(self, comodel: Comodel) -> _Scope:
        """Return the scope of a condition on ``comodel`` (a path's next step), sharing the parameters."""
        return _Scope(comodel.fields, comodel.name, self.comodels, self.params)


def _condition_error(message: str, leaf: Sequence[Any], name: str = "builtins.ValueError") -> OdooError:
    field, operator, value = leaf
    return OdooError(f"{message} in condition ({field!r}, {operator!r}, {value!r})", name=name)


def _parse(domain: Any) -> Any:
    """Return the domain as a tree: ("leaf", f, op, v) | ("and"|"or", [..]) | ("not", x) | bool."""
    if domain is None or domain is False:
        return domain is None
    if not isinstance(domain, list | tuple):
        raise OdooError(f"Domain() invalid argument type for domain: {domain!r}", name="builtins.TypeError")
    stack: list[Any] = []
    try:
        for item in reversed(domain):
            if isinstance(item, list | tuple) and len(item) == 3:
                stack.append(_leaf_node(item))
            elif item == "&":
                stack.append(("and", [stack.pop(), stack.pop()]))
            elif item == "|":
                stack.append(("or", [stack.pop(), stack.pop()]))
            elif item == "!":
                stack.append(("not", stack.pop()))
            else:
                raise OdooError(f"Domain() invalid item in domain: {item!r}")
    except IndexError:
        raise OdooError(f"Domain() malformed domain {domain!r}") from None
    return ("and", list(reversed(stack))) if len(stack) != 1 else stack[0]


def _leaf_node(item: Sequence[Any]) -> Any:
    field, operator, value = item
    if not isinstance(field, str):
        if list(item) in ([1, "=", 1], [0, "=", 1]):
            return field == 1
        raise OdooError(f"Domain() invalid arguments: {tuple(item)!r}", name="builtins.TypeError")
    if not field:
        raise _condition_error("Empty field name", item, "builtins.TypeError")
    if not isinstance(operator, str):
        raise _condition_error("Invalid operator", item)
    return ("leaf", field, operator.lower(), False if value is None else value)


def mentions(domain: Any, field: str) -> bool:
    """Return True when a condition of ``domain`` is on ``field`` (or a path starting with it)."""
    if not isinstance(domain, list | tuple):
        return False
    return any(
        isinstance(item, list | tuple)
        and len(item) == 3
        and isinstance(item[0], str)
        and item[0].split(".", 1)[0] == field
        for item in domain
    )


def normalize(domain: Sequence[Any]) -> list[Any]:
    """Return ``domain`` with its implicit ANDs made explicit (Odoo's ``normalize_domain``)."""
    arity = {"&": 2, "|": 2, "!": 1}
    result: list[Any] = []
    expected = 1  # operands still needed to complete the expression read so far
    for item in domain:
        if expected == 0:
            result.insert(0, "&")
            expected = 1
        if isinstance(item, list | tuple):
            expected -= 1
            result.append(list(item))
        else:
            expected += arity.get(item, 0) - 1
            result.append(item)
    return result


def domain_to_sql(
    domain: Any, fields: Mapping[str, str], *, model: str, comodels: Comodels | None = None
) -> tuple[str, list[Any]]:
    """Translate an Odoo domain to a SQL predicate with ``?`` placeholders.

    Args:
        domain: the domain as decoded from JSON (lists; ``false`` as False); None or ``[]`` is TRUE.
        fields: the model's fields, name → Odoo type (``char``, ``many2one``, ``date``, ...). A
            many2one field ``f`` is the column ``f`` (id) plus ``f__display`` (display name); an
            x2many field is a list of ids; a json field its JSON text.
        model: the model name, for error messages (``res.partner``).
        comodels: the models many2one fields point to, for paths and ``any``; None refuses both.

    Returns:
        ``(predicate, params)``: a SQL boolean expression over the table's columns and its values.

    Raises:
        OdooError: a malformed domain, an unknown field or operator, or a value of the wrong type,
            with Odoo 19's message (``Invalid field res.partner.foo in condition ('foo', '=', 1)``).
    """
    scope = _Scope(fields, model, comodels, [])
    return _render(_parse(domain), scope), scope.params


def _render(node: Any, scope: _Scope) -> str:
    if isinstance(node, bool):
        return "TRUE" if node else "FALSE"
    kind = node[0]
    if kind == "leaf":
        return _condition(node[1], node[2], node[3], scope)
    if kind == "not":
        return f"(({_render(node[1], scope)}) IS NOT TRUE)"
    if not node[1]:
        return "TRUE"
    parts = [_render(child, scope) for child in node[1]]
    return parts[0] if len(parts) == 1 else "(" + f" {kind.upper()} ".join(parts) + ")"


def _condition(field: str, op: str, value: Any, scope: _Scope) -> str:
    leaf = (field, op, value)
    params = scope.params
    op = _DEPRECATED.get(op, op)
    if op not in _SIMULATED and op not in _ODOO_ONLY:
        raise _condition_error("Invalid operator", leaf)
    name, _, path = field.partition(".")
    if name not in scope.fields:
        raise _condition_error(f"Invalid field {scope.model}.{name}", leaf)
    ftype = scope.fields[name]
    if path or op in _ANY:
        return _through(name, ftype, path, op, value, scope, leaf)
    if op in _ODOO_ONLY:
        raise _condition_error("Not supported by the demo Odoo (child_of, parent_of)", leaf)
    if op == "=?":
        if not value:
            return "TRUE"
        op = "="
    if ftype in X2MANY or ftype == "json":
        return _listed(field, ftype, op, value, params, leaf)
    if op.endswith("like"):
        return _like(field, ftype, op, value, scope)
    if op in _COMPARE:
        return _compare(field, ftype, op, value, params)
    values = _as_list(value, op)
    if not values:
        return "FALSE" if op in ("=", "in") else "TRUE"
    positive = op in ("=", "in")
    if ftype == "many2one" and any(isinstance(v, str) for v in values):
        names = [v for v in values if isinstance(v, str)]
        params.extend(names)
        sql = f'"{field}__display" IN ({", ".join("?" * len(names))})'
        ids = [v for v in values if not isinstance(v, str)]
        if ids:
            sql = f"({sql} OR {_in(field, 'many2one', True, ids, params, leaf)})"
        return sql if positive else f"(({sql}) IS NOT TRUE)"
    if ftype == "boolean":
        return _boolean(field, positive, values)
    return _in(field, "id" if field == "id" else ftype, positive, values, params, leaf)


def _through(
    name: str, ftype: str, path: str, op: str, value: Any, scope: _Scope, leaf: Sequence[Any]
) -> str:
    """Return ``name.path op value`` or ``name any value`` on a many2one, as Odoo 19's ``any``.

    Odoo searches the comodel with archived records included (``active_test=False``), and a path
    is ``any`` whatever its operator: ``('move_id.state', '!=', 'draft')`` is "the move is not a
    draft", which a line without a move does not satisfy.
    """
    comodel = scope.comodels(scope.model, name) if scope.comodels and ftype == "many2one" else None
    if comodel is None:
        why = "whose model is not served" if ftype == "many2one" else f"a {ftype}"
        raise _condition_error(
            f"Not supported by the demo Odoo (a path or 'any' through {name!r}, {why})", leaf
        )
    sub = [[path, op, value]] if path else value
    inner = _render(_parse(sub), scope.on(comodel))
    sql = f'"{name}" IN (SELECT "id" FROM {comodel.relation} WHERE {inner})'
    return sql if path or _ANY[op] else f"(({sql}) IS NOT TRUE)"


def _listed(field: str, ftype: str, op: str, value: Any, params: list[Any], leaf: Sequence[Any]) -> str:
    """Return a condition on an x2many field (list of ids) or a json field (emptiness only)."""
    if op not in ("=", "!=", "in", "not in") or (ftype == "json" and value is not False):
        raise _condition_error(f"Not supported by the demo Odoo (this operator on a {ftype})", leaf)
    values = _as_list(value, op)
    if not values:
        return "FALSE" if op in ("=", "in") else "TRUE"
    if any(isinstance(v, str) for v in values):
        raise _condition_error(f"Not supported by the demo Odoo (a name search on a {ftype})", leaf)
    ids = [_coerce("integer", v, leaf) for v in values if v is not False]
    parts = []
    if len(ids) < len(values):  # False among the values: no linked record, no JSON
        parts.append(f'"{field}" IS NULL' if ftype == "json" else f'len("{field}") = 0')
    if ids:
        params.append(ids)
        parts.append(f'list_has_any("{field}", ?)')
    sql = parts[0] if len(parts) == 1 else f"({' OR '.join(parts)})"
    return sql if op in ("=", "in") else f"(({sql}) IS NOT TRUE)"


def _as_list(value: Any, op: str) -> list[Any]:
    if op in ("=", "!="):
        if isinstance(value, list | tuple):
            return list(value) or [False]  # Odoo: ('x', '!=', []) means "x is set"
        return [value]
    return list(value) if isinstance(value, list | tuple) else [value]


def _boolean(field: str, positive: bool, values: list[Any]) -> str:
    wanted = {_truthy(v) for v in values}
    possible = wanted if positive else {True, False} - wanted
    if len(possible) != 1:
        return "TRUE" if possible else "FALSE"
    return f'"{field}" IS TRUE' if True in possible else f'"{field}" IS NOT TRUE'


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "f", "n", "no", "off")
    return bool(value)


def _in(
    field: str,
    ftype: str,
    positive: bool,
    values: list[Any],
    params: list[Any],
    leaf: Sequence[Any] = ("", "", ""),
) -> str:
    col = f'"{field}"'
    kept = [_coerce(ftype, v, leaf) for v in values if v is not False and v is not None]
    null_in = len(kept) < len(values)
    if ftype in NUMERIC:  # Odoo's falsy_value: NULL and 0 are the same number
        if 0 in kept:
            null_in = True
        elif null_in:
            kept.append(0)
    sql = ""
    if kept:
        params.extend(kept)
        sql = f"{col} {'IN' if positive else 'NOT IN'} ({', '.join('?' * len(kept))})"
    if positive == null_in:
        return f"({sql} OR {col} IS NULL)" if sql else f"{col} IS NULL"
    if not positive and null_in and not sql:
        return f"{col} IS NOT NULL"
    return sql


def _like(field: str, ftype: str, op: str, value: Any, scope: _Scope) -> str:
    leaf = (field, op, value)
    params = scope.params
    if not value:
        matches = (op in _NEGATIVE) == ("=" in op)
        if ftype == "many2one" or "=" in op:
            return _condition(field, "!=" if matches else "=", False, scope)
        return "TRUE" if matches else "FALSE"
    if not isinstance(value, str):
        if "=" in op:
            raise _condition_error("The pattern to match must be a string", leaf, "builtins.TypeError")
        value = str(value)
    column = f'"{field}__display"' if ftype == "many2one" else f'"{field}"'
    left = column if ftype in TEXT or ftype == "many2one" else f"CAST({column} AS VARCHAR)"
    params.append(value if "=" in op else f"%{value}%")
    sql = f"{left} {_LIKE_SQL[op]} ? ESCAPE '\\'"
    if op in _NEGATIVE:
        return f'({sql} OR "{field}" IS NULL)'
    return sql


def _compare(field: str, ftype: str, op: str, value: Any, params: list[Any]) -> str:
    leaf = (field, op, value)
    col = f'"{field}"'
    if ftype == "many2one" and isinstance(value, str):
        raise _condition_error(
            "Inequality not supported for relational field using a string",
            leaf,
            "builtins.TypeError",
        )
    if ftype in NUMERIC and field != "id":
        value = _coerce(ftype, value or 0, leaf)
        # NULL counts as 0: include it when 0 satisfies the comparison
        accept_null = {"<": value > 0, ">": value < 0, "<=": value >= 0, ">=": value <= 0}[op]
        params.append(value)
        return f"({col} {op} ? OR {col} IS NULL)" if accept_null else f"{col} {op} ?"
    if value is False:
        return "FALSE"
    if ftype == "datetime" and isinstance(value, str) and len(value) == 10 and op in (">", "<="):
        value = _coerce(ftype, value, leaf) + timedelta(days=1)
        op = ">=" if op == ">" else "<"
    params.append(_coerce(ftype, value, leaf))
    return f"{col} {op} ?"


def _coerce(ftype: str, value: Any, leaf: Sequence[Any]) -> Any:
    """Return ``value`` as the column's Python type, as Odoo's ``convert_to_column`` would."""
    if isinstance(value, list | dict):
        raise _condition_error(f"Invalid value {value!r}", leaf, "builtins.TypeError")
    try:
        if ftype == "date" and isinstance(value, str):
            return date.fromisoformat(value[:10])
        if ftype == "datetime" and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    except ValueError:
        raise _condition_error(f"Invalid isoformat string {value!r}", leaf) from None
    try:
        if ftype in ("integer", "id", "many2one"):
            return int(value)
        if ftype in ("float", "monetary"):
            return float(value)
    except ValueError as exc:
        raise OdooError(str(exc)) from None
    if ftype in TEXT:
        return str(value)
    return value


def order_to_sql(order: Any, fields: Mapping[str, str], *, model: str) -> str:
    """Translate an Odoo ``order`` spec to a total SQL ORDER BY body.

    Args:
        order: ``"id"``, ``"write_date desc, id"``, ``"name asc nulls first"``; falsy is ``"id"``.
        fields: the model's fields, name → Odoo type; many2one fields sort by display name.
        model: the model name, for error messages.

    Returns:
        e.g. ``'"write_date" DESC NULLS FIRST, "id" ASC NULLS LAST'``: PostgreSQL's default NULL
        placement (NULLs count as largest), always ending with ``id`` so paging is stable.

    Raises:
        OdooError: a spec Odoo rejects (``odoo.exceptions.UserError``) or an unknown field.
    """
    if not order:
        order = "id"
    if not isinstance(order, str) or not _ORDER_RE.match(order):
        message = (
            f'Invalid "order" specified ({order}). A valid "order" specification is a '
            "comma-separated list of valid field names (optionally followed by asc/desc for "
            "the direction)"
        )
        raise OdooError(message, name="odoo.exceptions.UserError", status=422)
    terms: list[str] = []
    for part in order.split(","):
        name, *rest = part.split()
        if name not in fields:
            raise OdooError(f"Invalid field {name!r} on model {model!r}")
        if fields[name] in X2MANY or fields[name] == "json":
            raise OdooError(f"Ordering by {name!r} (a {fields[name]}) is not simulated by the demo Odoo")
        words = [w.lower() for w in rest]
        desc = bool(words) and words[0] == "desc"
        nulls = words[-1] if "nulls" in words else ("first" if desc else "last")
        column = f"{name}__display" if fields[name] == "many2one" else name
        terms.append(f'"{column}" {"DESC" if desc else "ASC"} NULLS {nulls.upper()}')
        if name == "id":
            break
    else:
        terms.append('"id" ASC NULLS LAST')
    return ", ".join(terms)
