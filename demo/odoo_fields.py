"""The demo Odoo's models: their fields (as ``fields_get`` describes them) and record rendering.

The simulator (:mod:`demo.odoo`) serves an :class:`OdooSource`: models over a
:class:`demo.store.TableStore`. Two sources exist: the generated demo firm (:func:`firm_source`,
below) and a replayed dump of a real Odoo (:mod:`demo.odoo_replay`), whose fields come from the
dump's own ``fields_get``.

In the demo firm, each model is one ``erp`` table of :mod:`demo.tables`. A column ``f`` with a
sibling ``f__display`` is a many2one field; the other types follow the Arrow type, refined by the
per-model tables below (labels, relations, selections, float vs monetary), which copy what a real
Odoo 19.0 answers to ``fields_get`` (``x_harvest_id`` and ``x_billing_model`` are the firm's
custom fields).

Rendering follows Odoo's ``read``: many2one ``[id, "display name"]`` or ``false``; empty char,
selection, date and datetime ``false``; empty numbers ``0``; dates ``"YYYY-MM-DD"``; datetimes
``"YYYY-MM-DD HH:MM:SS"`` in UTC without a zone; money and hours as JSON numbers; one2many and
many2many a list of ids; json fields the stored JSON text, parsed (``false`` when empty).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import pyarrow as pa

from demo.odoo_domain import X2MANY
from demo.store import DemoStore, TableStore
from demo.tables import TABLES, Table

_DISPLAY = "__display"
_FLOATS = frozenset({"unit_amount", "quantity", "price_unit"})  # hours and quantities, not money
_RELATIONS = {
    "company_id": "res.company", "currency_id": "res.currency", "country_id": "res.country",
    "partner_id": "res.partner", "commercial_partner_id": "res.partner",
    "property_product_pricelist": "product.pricelist", "employee_id": "hr.employee",
    "project_id": "project.project", "account_id": "account.analytic.account",
    "move_id": "account.move", "timesheet_invoice_id": "account.move",
    "reversed_entry_id": "account.move", "user_id": "res.users",
}  # fmt: skip
_COMMON = {
    "id": "ID", "name": "Name", "active": "Active", "company_id": "Company",
    "currency_id": "Currency", "country_id": "Country", "partner_id": "Partner", "vat": "Tax ID",
    "date": "Date",
    "create_date": "Created on", "write_date": "Last Updated on", "x_harvest_id": "Harvest ID",
    "x_billing_model": "Billing model", "display_name": "Display Name", "ref": "Reference",
    "amount_total": "Total", "account_id": "Project Account",
}  # fmt: skip
_LABELS: dict[str, dict[str, str]] = {
    "res.company": {"name": "Company Name"},
    "res.currency": {"name": "Currency", "symbol": "Symbol"},
    "product.pricelist": {"name": "Pricelist Name"},
    "res.partner": {
        "is_company": "Is a Company", "customer_rank": "Customer Rank", "city": "City",
        "email": "Email", "property_product_pricelist": "Pricelist",
    },
    "hr.employee": {"name": "Employee Name", "hourly_cost": "Hourly Cost"},
    "account.analytic.account": {
        "name": "Analytic Account", "code": "Reference", "partner_id": "Customer",
    },
    "project.project": {
        "partner_id": "Customer", "allow_billable": "Billable", "pricing_type": "Pricing",
        "date_start": "Start Date", "date": "Expiration Date", "user_id": "Project Manager",
    },
    "account.analytic.line": {
        "name": "Description", "employee_id": "Employee", "project_id": "Project",
        "unit_amount": "Quantity", "amount": "Amount", "timesheet_invoice_id": "Invoice",
        "timesheet_invoice_type": "Billable Type",
    },
    "account.move": {
        "name": "Number", "move_type": "Type", "state": "Status", "payment_state": "Payment Status",
        "commercial_partner_id": "Commercial Entity", "invoice_date": "Invoice/Bill Date",
        "invoice_date_due": "Due Date", "amount_untaxed": "Untaxed Amount", "amount_tax": "Tax",
        "amount_residual": "Amount Due", "amount_untaxed_signed": "Untaxed Amount Signed",
        "amount_total_signed": "Total Signed", "amount_residual_signed": "Amount Due Signed",
        "reversed_entry_id": "Reversal of", "invoice_origin": "Origin",
    },
    "account.move.line": {
        "move_id": "Journal Entry", "name": "Label", "display_type": "Display Type",
        "quantity": "Quantity", "price_unit": "Unit Price", "price_subtotal": "Subtotal",
        "price_total": "Total",
    },
}  # fmt: skip
_SELECTIONS: dict[tuple[str, str], list[list[str]]] = {
    ("project.project", "pricing_type"): [
        ["task_rate", "Task rate"], ["fixed_rate", "Project rate"],
        ["employee_rate", "Employee rate"],
    ],
    ("project.project", "x_billing_model"): [
        ["time_and_materials", "Time and materials"], ["fixed_fee", "Fixed fee"],
    ],
    ("account.analytic.line", "timesheet_invoice_type"): [
        ["billable_time", "Billed on Timesheets"], ["billable_fixed", "Billed at a Fixed price"],
        ["billable_milestones", "Billed on Milestones"], ["billable_manual", "Billed Manually"],
        ["non_billable", "Non-Billable"], ["timesheet_revenues", "Timesheet Revenues"],
        ["service_revenues", "Service Revenues"], ["other_revenues", "Other revenues"],
        ["other_costs", "Other costs"],
    ],
    ("account.move", "move_type"): [
        ["entry", "Journal Entry"], ["out_invoice", "Customer Invoice"],
        ["out_refund", "Customer Credit Note"], ["in_invoice", "Vendor Bill"],
        ["in_refund", "Vendor Credit Note"], ["out_receipt", "Sales Receipt"],
        ["in_receipt", "Purchase Receipt"],
    ],
    ("account.move", "state"): [["draft", "Draft"], ["posted", "Posted"], ["cancel", "Cancelled"]],
    ("account.move", "payment_state"): [
        ["not_paid", "Not Paid"], ["in_payment", "In Payment"], ["paid", "Paid"],
        ["partial", "Partially Paid"], ["reversed", "Reversed"], ["blocked", "Blocked"],
        ["invoicing_legacy", "Invoicing App Legacy"],
    ],
    ("account.move.line", "display_type"): [
        ["product", "Product"], ["cogs", "Cost of Goods Sold"], ["tax", "Tax"],
        ["discount", "Discount"], ["rounding", "Rounding"], ["payment_term", "Payment Term"],
        ["line_section", "Section"], ["line_subsection", "Subsection"], ["line_note", "Note"],
        ["epd", "Early Payment Discount"],
        ["non_deductible_product_total", "Non Deductible Products Total"],
        ["non_deductible_product", "Non Deductible Products"],
        ["non_deductible_tax", "Non Deductible Tax"],
    ],
}  # fmt: skip


@dataclass(frozen=True)
class OdooField:
    """One field of a model, as ``fields_get`` describes it.

    Attributes:
        name: technical name (``partner_id``).
        type: Odoo type: ``integer``, ``float``, ``monetary``, ``char``, ``selection``,
            ``boolean``, ``date``, ``datetime`` or ``many2one`` (a replayed dump adds ``text``,
            ``one2many``, ``many2many``, ``json``, ...).
        string: the label.
        relation: the comodel of a relational field, else None.
        selection: ``[[key, label], ...]`` of a selection, else None.
        meta: the exact ``fields_get`` entry a real Odoo answered (a replayed dump), or None to
            build it from the attributes above.
    """

    name: str
    type: str
    string: str
    relation: str | None = None
    selection: list[list[str]] | None = None
    meta: Mapping[str, Any] | None = field(default=None, compare=False)

    def describe(self, attributes: list[str] | None) -> dict[str, Any]:
        """Return the ``fields_get`` entry, restricted to ``attributes`` when given."""
        entry: dict[str, Any] = copy.deepcopy(dict(self.meta)) if self.meta is not None else self._built()
        if attributes:
            return {k: v for k, v in entry.items() if k in attributes}
        return entry

    def _built(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": self.type,
            "string": self.string,
            "help": "",
            "store": True,
            "readonly": self.name in ("id", "create_date", "write_date", "display_name"),
            "required": self.name in ("id", "name"),
            "searchable": True,
            "sortable": True,
        }
        if self.relation:
            entry["relation"] = self.relation
        if self.selection is not None:
            entry["selection"] = [list(pair) for pair in self.selection]
        return entry


@dataclass(frozen=True)
class OdooModel:
    """One model served by the demo Odoo: its table and fields (in column order).

    Attributes:
        name: the model (``account.analytic.line``); also the drift-fault resource name.
        table: its ``erp`` table.
        fields: field name → :class:`OdooField`: what ``read`` and ``fields_get`` show.
        filters: columns that domains may use but ``read`` and ``fields_get`` do not show, name →
            Odoo type (a replayed dump's: what its own domain selected on without reading it).
    """

    name: str
    table: Table
    fields: dict[str, OdooField]
    filters: Mapping[str, str] = field(default_factory=dict)

    @property
    def types(self) -> dict[str, str]:
        """Return field name → Odoo type of every searchable column (what :mod:`demo.odoo_domain` needs)."""
        return {**{name: f.type for name, f in self.fields.items()}, **self.filters}

    def render(self, row: dict[str, Any], names: list[str]) -> dict[str, Any]:
        """Return the ``read`` value of one stored row: ``id`` first, then ``names`` in order."""
        record: dict[str, Any] = {"id": row["id"]}
        for name in names:
            if name != "id":
                record[name] = render_value(self.fields[name].type, row, name)
        return record


def render_value(ftype: str, row: dict[str, Any], name: str) -> Any:
    """Return the ``read`` value of field ``name`` (of Odoo type ``ftype``) of a stored row."""
    value = row.get(name)
    if ftype == "many2one":
        return False if value is None else [value, row.get(name + _DISPLAY) or ""]
    if ftype in X2MANY:
        return list(value or [])
    if ftype == "json" and value is not None:
        return json.loads(value)
    if value is None:
        return {"integer": 0, "float": 0.0, "monetary": 0.0}.get(ftype, False)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _type(model: str, column: pa.Field, columns: set[str]) -> str:
    name, arrow = column.name, column.type
    if name + _DISPLAY in columns:
        return "many2one"
    if pa.types.is_integer(arrow):
        return "integer"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_timestamp(arrow):
        return "datetime"
    if pa.types.is_decimal(arrow) or pa.types.is_floating(arrow):
        return "float" if name in _FLOATS else "monetary"
    return "selection" if (model, name) in _SELECTIONS else "char"


def _model(table: Table) -> OdooModel:
    columns = set(table.schema.names)
    labels = {**_COMMON, **_LABELS.get(table.name, {})}
    fields: dict[str, OdooField] = {}
    for column in table.schema:
        name = column.name
        if name.endswith(_DISPLAY):
            continue
        ftype = _type(table.name, column, columns)
        fields[name] = OdooField(
            name=name,
            type=ftype,
            string=labels.get(name, name.replace("_", " ").capitalize()),
            relation=_RELATIONS.get(name) if ftype == "many2one" else None,
            selection=_SELECTIONS.get((table.name, name)),
        )
    return OdooModel(table.name, table, fields)


MODELS: dict[str, OdooModel] = {t.name: _model(t) for t in TABLES if t.system == "erp"}
"""Every model of the demo Odoo, by name."""


class OdooSource(Protocol):
    """What the Odoo simulator serves: models by name, over the store holding their tables.

    Implemented by :func:`firm_source` (the generated demo firm) and
    :class:`demo.odoo_replay.ReplaySource` (a real Odoo's records).
    """

    @property
    def store(self) -> TableStore:
        """The tables (``view_name(model.table)`` for each model)."""
        ...

    @property
    def models(self) -> Mapping[str, OdooModel]:
        """The models served, by name (``res.partner``); any other is "doesn't exist"."""
        ...


@dataclass(frozen=True)
class FirmSource:
    """The demo firm's Odoo: its ``erp`` tables under ``HOME/demo`` (see :func:`firm_source`)."""

    store: DemoStore
    models: Mapping[str, OdooModel]


def firm_source(store: DemoStore) -> FirmSource:
    """Return the demo firm's Odoo: the models of :data:`MODELS` whose tables were generated."""
    return FirmSource(store, {name: m for name, m in MODELS.items() if m.table.path(store.demo_dir).exists()})
