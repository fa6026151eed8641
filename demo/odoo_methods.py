"""The ORM methods the demo Odoo answers, over one model of an :class:`demo.odoo_fields.OdooSource`.

The same code serves the generated demo firm and a replayed real Odoo (:mod:`demo.odoo_replay`).

Signatures are Odoo 19's, so calls bind (and fail) the way Odoo's do: ``search_read(domain=None,
fields=None, offset=0, limit=None, order=None, load=...)``, ``search(domain, offset=0, limit=None,
order=None)``, ``search_count(domain, limit=None)``, ``read(fields=None, load=...)`` on ``ids``,
``fields_get(allfields=None, attributes=None)`` and ``read_group(domain, fields, groupby,
offset=0, limit=None, orderby=False, lazy=True)``.

Every method raises :class:`demo.odoo_domain.OdooError` (Odoo's exception name and message) for an
invalid domain, order, field, limit or offset.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from demo.odoo_domain import (
    NUMERIC,
    X2MANY,
    Comodel,
    OdooError,
    domain_to_sql,
    mentions,
    normalize,
    order_to_sql,
)
from demo.odoo_fields import OdooModel, OdooSource, render_value
from demo.simulator import SimulatorState
from demo.tables import view_name

_AGGREGATES = frozenset({"sum", "min", "max", "avg", "count", "count_distinct"})


def _int(value: Any, name: str) -> int | None:
    """Return ``value`` as an int, or None for Odoo's "no value" (None, False, 0)."""
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise OdooError(f"{name} must be an integer, got {value!r}", name="builtins.TypeError")
    return value or None


class Methods:
    """One call's view of a model: its context, the record ids (for ``read``) and the page.

    Attributes:
        PUBLIC: the methods clients may call.
        API_MODEL: those of them that take no ids (``@api.model`` in Odoo).
        ids: the records a record method (``read``) works on.
        page: the 1-based listing page of a ``search_read``/``search`` (for page faults), or None.
    """

    API_MODEL = frozenset({"search_read", "search", "search_count", "fields_get", "read_group"})
    PUBLIC = API_MODEL | {"read"}

    def __init__(self, source: OdooSource, state: SimulatorState, model: OdooModel, context: Any) -> None:
        self._source = source
        self._store = source.store
        self._state = state
        self._model = model
        self._context = context if isinstance(context, dict) else {}
        self.ids: Any = []
        self.page: int | None = None

    # -- helpers ---------------------------------------------------------------------------

    def _where(self, domain: Any) -> tuple[str, list[Any]]:
        model = self._model
        sql, params = domain_to_sql(domain, model.types, model=model.name, comodels=self._comodel)
        active_test = self._context.get("active_test", True)
        if "active" in model.types and active_test and not mentions(domain, "active"):
            sql = f'({sql}) AND "active" IS TRUE'
        return sql, params

    def _comodel(self, model: str, field: str) -> Comodel | None:
        """Return the served model that many2one ``field`` of ``model`` points to (for paths)."""
        models = self._source.models
        owner = models[model].fields.get(field) if model in models else None
        target = models.get(owner.relation) if owner is not None and owner.relation else None
        return Comodel(target.name, view_name(target.table), target.types) if target else None

    def _names(self, fields: Any) -> list[str]:
        if not fields:
            return list(self._model.fields)
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            message = f"fields must be a list of field names, got {fields!r}"
            raise OdooError(message, name="builtins.TypeError")
        for name in fields:
            if name not in self._model.fields:
                raise OdooError(f"Invalid field {name!r} on model {self._model.name!r}")
        return list(dict.fromkeys(fields))

    def _search(self, domain: Any, offset: Any, limit: Any, order: Any) -> list[dict[str, Any]]:
        where, params = self._where(domain)
        order_by = order_to_sql(order, self._model.types, model=self._model.name)
        skip, size = _int(offset, "offset") or 0, _int(limit, "limit")
        self.page = skip // size + 1 if size else 1
        return self._store.rows(
            self._model.table,
            where=where,
            params=params,
            order_by=order_by,
            limit=size,
            offset=skip,
        )

    def _records(self, rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
        reshape = self._state.faults.reshape
        return [reshape(self._model.name, self._model.render(row, names)) for row in rows]

    # -- public methods --------------------------------------------------------------------

    def search_read(
        self,
        domain: Any = None,
        fields: Any = None,
        offset: Any = 0,
        limit: Any = None,
        order: Any = None,
        load: Any = "_classic_read",
    ) -> list[dict[str, Any]]:
        """Return the matching records (``id`` plus ``fields``), ordered and paged."""
        names = self._names(fields)
        return self._records(self._search(domain, offset, limit, order), names)

    def search(self, domain: Any, offset: Any = 0, limit: Any = None, order: Any = None) -> list[int]:
        """Return the ids of the matching records, ordered and paged."""
        return [row["id"] for row in self._search(domain, offset, limit, order)]

    def search_count(self, domain: Any, limit: Any = None) -> int:
        """Return the number of matching records (at most ``limit``)."""
        where, params = self._where(domain)
        count = self._store.count(self._model.table, where=where, params=params)
        cap = _int(limit, "limit")
        return min(count, cap) if cap else count

    def read(self, fields: Any = None, load: Any = "_classic_read") -> list[dict[str, Any]]:
        """Return the records ``ids`` in that order (missing ids skipped, archived included)."""
        names = self._names(fields)
        ids = self.ids if isinstance(self.ids, list) else [self.ids]
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise OdooError(f"ids must be integers, got {ids!r}", name="builtins.TypeError")
        if not ids:
            return []
        where = f'"id" IN ({", ".join("?" * len(ids))})'
        rows = {r["id"]: r for r in self._store.rows(self._model.table, where=where, params=ids)}
        return self._records([rows[i] for i in ids if i in rows], names)

    def fields_get(self, allfields: Any = None, attributes: Any = None) -> dict[str, Any]:
        """Return field name → description (``string``, ``type``, ``relation``, ``selection``)."""
        wanted = set(allfields) if allfields else None
        attrs = list(attributes) if attributes else None
        return {
            name: field.describe(attrs)
            for name, field in self._model.fields.items()
            if wanted is None or name in wanted
        }

    def read_group(
        self,
        domain: Any,
        fields: Any,
        groupby: Any,
        offset: Any = 0,
        limit: Any = None,
        orderby: Any = False,
        lazy: Any = True,
    ) -> list[dict[str, Any]]:
        """Return one dict per group: group values, count, aggregates and the group's domain.

        Groups are ``{<groupby>: value, "__count" (or "<groupby>_count" when lazy): n, <aggregate>:
        number, "__domain": [...]}``, many2one groups sorted by display name, empty group last.
        Aggregates are ``"field:sum"`` (also min, max, avg, count, count_distinct), ``"alias:
        sum(field)"`` or a bare numeric field (summed). Grouping by a date is not simulated.
        """
        model = self._model
        groupbys = [groupby] if isinstance(groupby, str) else list(groupby or [])
        later = groupbys[1:] if lazy else []  # lazy: group by the first, hand on the rest
        groupbys = groupbys[:1] if lazy else groupbys
        for name in groupbys:
            if not isinstance(name, str) or name not in model.fields:
                raise OdooError(f"Invalid field {name!r} on model {model.name!r}")
            ftype = model.fields[name].type
            if ftype in ("date", "datetime", "json") or ftype in X2MANY:
                raise OdooError(f"Grouping by {name!r} (a {ftype}) is not simulated by the demo Odoo")
        aggregates = self._aggregates(fields, groupbys)
        where, params = self._where(domain)
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for row in self._store.rows(model.table, where=where, params=params):
            groups[tuple(row.get(name) for name in groupbys)].append(row)
        count_key = f"{groupbys[0]}_count" if lazy and groupbys else "__count"
        base = normalize(domain or [])
        result = []
        for key, rows in sorted(groups.items(), key=lambda item: self._group_order(item[1][0], groupbys)):
            group: dict[str, Any] = {
                name: render_value(model.fields[name].type, rows[0], name) for name in groupbys
            }
            group[count_key] = len(rows)
            for alias, fname, func in aggregates:
                group[alias] = _aggregate(func, model.fields[fname].type, [r[fname] for r in rows])
            conditions = [[n, "=", v if v is not None else False] for n, v in zip(groupbys, key, strict=True)]
            group["__domain"] = ["&"] * (len(conditions) - (0 if base else 1)) + base + conditions
            if later:
                group["__context"] = {"group_by": later}
            result.append(group)
        for term in reversed(str(orderby).split(",") if orderby else []):
            name, _, direction = term.strip().partition(" ")
            result.sort(key=_by(name), reverse=direction.strip().lower() == "desc")
        skip, size = _int(offset, "offset") or 0, _int(limit, "limit")
        return result[skip : skip + size if size else None]

    def _aggregates(self, fields: Any, groupbys: list[str]) -> list[tuple[str, str, str]]:
        """Parse ``["amount:sum", "total:sum(amount)", "hours"]`` into (key, field, function)."""
        out: list[tuple[str, str, str]] = []
        for spec in fields or []:
            if not isinstance(spec, str) or spec == "__count":
                continue
            alias, _, func = spec.partition(":")
            fname = alias
            if "(" in func and func.endswith(")"):
                func, _, fname = func[:-1].partition("(")
            if fname not in self._model.fields:
                raise OdooError(f"Invalid field {fname!r} on model {self._model.name!r}")
            ftype = self._model.fields[fname].type
            if not func:
                if fname in groupbys or ftype not in NUMERIC or fname == "id":
                    continue
                func = "sum"
            if func not in _AGGREGATES:
                raise OdooError(f"Invalid aggregate method {func!r} for {spec!r}.")
            if (ftype in X2MANY or ftype == "json") and func != "count":
                raise OdooError(
                    f"Aggregating {fname!r} (a {ftype}) by {func!r} is not simulated by the demo Odoo"
                )
            out.append((alias, fname, func))
        return out

    def _group_order(self, row: dict[str, Any], groupbys: list[str]) -> tuple[Any, ...]:
        """Sort groups like Odoo: many2one by display name, others by value; empty last."""
        key: list[Any] = []
        for name in groupbys:
            ftype = self._model.fields[name].type
            value = row.get(f"{name}__display") if ftype == "many2one" else row.get(name)
            key.append(_sort_key(value if row.get(name) is not None else None))
        return tuple(key)


def _by(name: str) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
    return lambda group: _sort_key(group.get(name))


def _sort_key(value: Any) -> tuple[bool, Any]:
    if isinstance(value, list):  # a rendered many2one
        value = value[1]
    return (value is None or value is False, value if value not in (None, False) else 0)


def _aggregate(func: str, ftype: str, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if func == "count":
        return len(present)
    if func == "count_distinct":
        return len(set(present))
    if not present:
        return render_value(ftype, {"v": None}, "v")
    if func in ("sum", "avg"):
        # fsum: a replayed dump's amounts are floats, whose naive sum drifts in the last digits.
        total = math.fsum(present) if all(isinstance(v, float) for v in present) else sum(present)
        if func == "avg":
            total = total / len(present)
    else:
        total = min(present) if func == "min" else max(present)
    return render_value(ftype if ftype != "many2one" else "integer", {"v": total}, "v")
