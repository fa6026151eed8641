"""A real Odoo's records, replayed by the Odoo simulator (:mod:`demo.odoo`) instead of the demo firm's.

The source is a dump folder (e.g. ``../shared/real/odoo19``) holding one ``<model>.json`` per model::

    {"model": "res.partner", "domain": [...],
     "fields_meta": {"name": {"string": "Name", "type": "char"}, ...},   # fields_get
     "records": [{"id": 1, "name": "...", ...}, ...]}   # search_read of domain, by id, archived too

Other files (``summary.json``, ``samples/``) are ignored. :func:`load_replay` loads every model into
an in-memory DuckDB table named like the demo firm's (``"erp/<model>"``, see
:func:`demo.tables.view_name`) and laid out like them, so that the simulator's one code path (its
methods, domains, ordering, paging and faults) serves both:

- many2one ``f``: the id column ``f`` (BIGINT) plus the display name ``f__display``;
- one2many and many2many: a list of ids (BIGINT[]); json: the JSON text;
- float and monetary: DOUBLE, so the JSON numbers come back unchanged;
- date: DATE and datetime: TIMESTAMPTZ (UTC), rendered back to the same ``YYYY-MM-DD`` and
  ``YYYY-MM-DD HH:MM:SS`` strings; char, text, html and selection: as given;
- ``false`` is NULL, except for booleans.

The models' fields are the dump's: ``fields_get`` answers its ``fields_meta`` entries, ``read``
and ``search_read`` its fields only. A field the dump's own domain pins to one value without reading
it (``res.currency``'s ``active = True``, ``crm.lead``'s ``type = 'opportunity'``) holds that value
on every dumped record: it is kept as a filter-only column, which domains may use but ``read`` and
``fields_get`` do not show. Any other field, and any model, outside the dump does not exist here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from demo.odoo_fields import OdooField, OdooModel
from demo.store import TableStore
from demo.tables import TS, Table, view_name

_IDS = pa.list_(pa.int64())
_STORAGE: dict[str, pa.DataType] = {
    "integer": pa.int64(), "float": pa.float64(), "monetary": pa.float64(),
    "char": pa.string(), "text": pa.string(), "html": pa.string(), "selection": pa.string(),
    "boolean": pa.bool_(), "date": pa.date32(), "datetime": TS,
    "many2one": pa.int64(), "one2many": _IDS, "many2many": _IDS, "json": pa.string(),
}  # fmt: skip
# Names become quoted SQL identifiers: keep them to what Odoo allows (and "__" for our display columns).
_MODEL_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")
_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_PINNED_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "float", str: "char"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


class ReplayError(ValueError):
    """The folder cannot be replayed; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ReplaySource:
    """A dump folder loaded for the Odoo simulator (an :class:`demo.odoo_fields.OdooSource`).

    Attributes:
        store: the in-memory tables, one per model (``"erp/<model>"``).
        models: the models by name, with the dump's fields (and filter-only columns).
        counts: records loaded, by model.
    """

    store: TableStore
    models: Mapping[str, OdooModel]
    counts: Mapping[str, int]

    def close(self) -> None:
        """Release the in-memory tables."""
        self.store.close()


def load_replay(folder: Path) -> ReplaySource:
    """Load every ``<model>.json`` dump of ``folder`` (see the module docs).

    Raises:
        ReplayError: no dump in the folder, a file that is not JSON, two dumps of one model, or a
            field type, name or value the simulator cannot store and render back unchanged.
    """
    if not folder.is_dir():
        raise ReplayError(f"{folder}: not a folder of Odoo dumps (<model>.json)")
    conn = duckdb.connect(":memory:")
    models: dict[str, OdooModel] = {}
    counts: dict[str, int] = {}
    try:
        for path in sorted(folder.glob("*.json")):
            dump = _read(path)
            if dump is None:
                continue
            model, data = _model(path, dump)
            if model.name in models:
                raise ReplayError(f"{path}: a second dump of {model.name}")
            conn.register("replay_load", data)
            conn.execute(f"CREATE TABLE {view_name(model.table)} AS SELECT * FROM replay_load")
            conn.unregister("replay_load")
            models[model.name] = model
            counts[model.name] = data.num_rows
    except BaseException:
        conn.close()
        raise
    if not models:
        conn.close()
        raise ReplayError(f"{folder}: no Odoo dump (<model>.json with model, fields_meta and records)")
    return ReplaySource(TableStore(conn), models, counts)


def _read(path: Path) -> dict[str, Any] | None:
    """Return the dump in ``path``, or None when the file is not a model dump (``summary.json``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReplayError(f"{path}: not readable as JSON: {exc}") from None
    if not isinstance(data, dict) or not {"model", "fields_meta", "records"} <= set(data):
        return None
    return data


def _model(path: Path, dump: dict[str, Any]) -> tuple[OdooModel, pa.Table]:
    """Return the model a dump describes and its records as an Arrow table (demo firm layout)."""
    name, meta, records = dump["model"], dump["fields_meta"], dump["records"]
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise ReplayError(f"{path}: invalid model name {name!r}")
    if not isinstance(meta, dict) or not isinstance(records, list):
        raise ReplayError(f"{path}: fields_meta must be an object and records a list")
    fields = {fname: _field(path, fname, entry) for fname, entry in meta.items()}
    if fields.get("id") is None or fields["id"].type != "integer":
        raise ReplayError(f"{path}: fields_meta has no integer 'id'")
    _check_records(path, records, fields)
    columns: dict[str, tuple[pa.DataType, list[Any]]] = {}
    for fname, field in fields.items():
        convert = _converter(path, field)
        values = [convert(r["id"], r[fname]) for r in records]
        if field.type == "many2one":
            columns[fname] = (pa.int64(), [v[0] if v else None for v in values])
            columns[f"{fname}__display"] = (pa.string(), [v[1] if v else None for v in values])
        else:
            columns[fname] = (_STORAGE[field.type], values)
    filters: dict[str, str] = {}
    for fname, value in _pinned(dump.get("domain"), meta).items():
        filters[fname] = _PINNED_TYPES[type(value)]
        columns[fname] = (_STORAGE[filters[fname]], [value] * len(records))
    schema = pa.schema([(c, t) for c, (t, _) in columns.items()])
    data = pa.Table.from_arrays([pa.array(v, type=t) for t, v in columns.values()], schema=schema)
    return OdooModel(name, Table("erp", name, schema), fields, filters), data


def _field(path: Path, name: Any, entry: Any) -> OdooField:
    """Return the field a ``fields_get`` entry describes, keeping the entry as its description."""
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name) or "__" in name:
        raise ReplayError(f"{path}: invalid field name {name!r}")
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise ReplayError(f"{path}: fields_meta[{name!r}] has no type")
    ftype = entry["type"]
    if ftype not in _STORAGE:
        raise ReplayError(f"{path}: field {name!r} is a {ftype}, which the demo Odoo cannot replay")
    return OdooField(
        name=name,
        type=ftype,
        string=str(entry.get("string", name)),
        relation=entry.get("relation"),
        selection=entry.get("selection"),
        meta=entry,
    )


def _check_records(path: Path, records: list[Any], fields: dict[str, OdooField]) -> None:
    """Check every record is an object with exactly the dump's fields and a unique integer id."""
    seen: set[int] = set()
    for record in records:
        if not isinstance(record, dict) or set(record) != set(fields):
            got = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise ReplayError(f"{path}: a record does not have exactly the fields of fields_meta: {got}")
        rid = record["id"]
        if not isinstance(rid, int) or isinstance(rid, bool) or rid in seen:
            raise ReplayError(f"{path}: record id {rid!r} is not a unique integer")
        seen.add(rid)


def _converter(path: Path, field: OdooField) -> Callable[[int, Any], Any]:
    """Return ``(record id, JSON value) -> stored value`` for ``field`` (see the module docs)."""
    as_stored, nullable = _STORED[field.type]

    def convert(rid: int, value: Any) -> Any:
        if nullable and value is False:
            return None
        try:
            return as_stored(value)
        except (TypeError, ValueError):
            message = f"{path}: record {rid}, field {field.name!r} ({field.type}): cannot replay {value!r}"
            raise ReplayError(message) from None

    return convert


# Each raises ValueError for a value that is not one Odoo renders for the type, or that would not
# render back the same. (JSON gives exact types: ``type(v) is int`` also rules out booleans.)


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError(value)
    return value


def _integer(value: Any) -> int:
    if type(value) is not int:
        raise ValueError(value)
    return value


def _number(value: Any) -> float:
    if type(value) not in (int, float):
        raise ValueError(value)
    return float(value)


def _text(value: Any) -> str:
    if type(value) is not str:
        raise ValueError(value)
    return value


def _date(value: Any) -> date:
    if type(value) is not str or not _DATE.fullmatch(value):
        raise ValueError(value)
    return date.fromisoformat(value)


def _datetime(value: Any) -> datetime:
    if type(value) is not str or not _DATETIME.fullmatch(value):
        raise ValueError(value)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _many2one(value: Any) -> list[Any]:
    if type(value) is not list or len(value) != 2 or type(value[0]) is not int or type(value[1]) is not str:
        raise ValueError(value)
    return value


def _ids(value: Any) -> list[int]:
    if type(value) is not list or any(type(v) is not int for v in value):
        raise ValueError(value)
    return value


# type -> (JSON value -> stored value, whether ``false`` means empty (NULL))
_STORED: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "boolean": (_boolean, False), "one2many": (_ids, False), "many2many": (_ids, False),
    "integer": (_integer, True), "float": (_number, True), "monetary": (_number, True),
    "char": (_text, True), "text": (_text, True), "html": (_text, True), "selection": (_text, True),
    "date": (_date, True), "datetime": (_datetime, True), "many2one": (_many2one, True),
    "json": (json.dumps, True),
}  # fmt: skip


def _pinned(domain: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Return field → value that ``domain`` requires of every record, for fields it does not read.

    Only a plain conjunction of ``[field, "=", value]`` (or ``"in"`` one value) on a field outside
    ``meta`` pins its field; anything else tells nothing certain about the dumped records.
    """
    if not isinstance(domain, list) or any(isinstance(item, str) and item != "&" for item in domain):
        return {}
    pinned: dict[str, Any] = {}
    for leaf in domain:
        if not isinstance(leaf, list) or len(leaf) != 3:
            continue
        name, op, value = leaf
        if op == "in" and isinstance(value, list) and len(value) == 1:
            op, value = "=", value[0]
        if (
            isinstance(name, str)
            and _FIELD_NAME.fullmatch(name)
            and "__" not in name
            and name not in meta
            and op == "="
            and type(value) in _PINNED_TYPES
        ):
            pinned[name] = value
    return pinned
