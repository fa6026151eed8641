"""The Odoo models Tieout reads, one per canonical object and role, and their default mappings.

Odoo's records: a many2one is ``[id, "display name"]`` or ``false`` (``$.partner_id[0]`` is NULL
when empty); an empty char, selection or date is ``false`` (hence the ``nullif(..., 'false')``);
an empty integer is ``0``. Amounts: ``amount_*`` are in the document's currency (``currency_id``),
``*_signed`` in the company's currency and negative for a credit note; canonical invoice amounts
are the document's, signed by the move type. Invoice numbers (``name``) restart per company and
journal, so only the move id identifies an invoice; rules matching numbers pair them with the
legal entity.

Invoice lines are the product lines of the invoices (``account.move.line``); a line invoicing
several sales order lines (``sale_line_ids``) keeps the first.

An object is read from one model; ``projects`` has a choice: ``project.project`` (Odoo as PSA or
ERP) or ``crm.lead`` (Odoo as CRM: opportunities, the canonical deals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from extractors.mapping import Lookup, ObjectMapping

__all__ = ["DEFAULT_MODELS", "MODELS", "OdooModel", "odoo_model"]


@dataclass(frozen=True)
class OdooModel:
    """One Odoo model read for a canonical object.

    Attributes:
        name: the model, e.g. ``account.analytic.line``.
        obj: the canonical object it fills.
        domain: the default search domain (Odoo's Polish-notation list, as JSON lists); the
            system's ``domains`` in sources.yaml replace it.
        fields: the fields to read.
        optional: those of ``fields`` a server may lack (custom ``x_`` fields, fields of modules a
            firm may not run): read as NULL then. Any other missing field is schema drift.
        mapping: the default mapping of the records to the canonical object.
        incremental: searched by ``write_date`` after the first pull; False: read whole every pull.
    """

    name: str
    obj: str
    domain: list[Any]
    fields: tuple[str, ...]
    optional: frozenset[str]
    mapping: ObjectMapping
    incremental: bool = True


_AUDIT = ("create_date", "write_date")
_CUSTOM = frozenset({"x_harvest_id", "x_billing_model"})  # the firm's own fields, absent in a stock Odoo
_TIMESTAMPS = {  # UTC without a zone on the wire
    "created_at": "nullif($.create_date, 'false') || '+00'",
    "updated_at": "nullif($.write_date, 'false') || '+00'",
}
_LEGAL_ENTITY = Lookup("$.company_id[0]", "legal_entities", strict=False)
_STATUS = Lookup("$.active", "active_flag")
# An empty integer custom field reads as 0 (a char one as false).
_HARVEST_ID = "nullif(nullif($.x_harvest_id, 'false'), '0')"
# The project code is the analytic account's code, which its display name starts with: "[CODE] name".
_ACCOUNT_CODE = r"nullif(regexp_extract($.account_id[1], '^\[([^\]]+)\]', 1), '')"
# Odoo keeps credit-note amounts positive; canonical amounts are negative for credit notes.
_SIGN = "CASE $.move_type WHEN 'out_refund' THEN -1 ELSE 1 END"


def _signed(path: str) -> str:
    return f"{_SIGN} * CAST({path} AS DECIMAL(18,2))"


_PARTNERS = OdooModel(
    "res.partner", "customers",
    # Companies and whoever is a customer (contacts of companies are neither).
    ["|", ["is_company", "=", True], ["customer_rank", ">", 0]],
    ("id", "name", "vat", "country_id", "property_product_pricelist", "company_id", "is_company",
     "customer_rank", "active", "ref", *_AUDIT),
    frozenset(),
    ObjectMapping("customers", {
        "customer_id": "$.id", "name": "$.name", "tax_id": "nullif($.vat, 'false')",
        "country": Lookup("$.country_id[1]", "countries", strict=False),
        # The pricelist's display name ends in its currency: "Default (USD)".
        "currency": r"nullif(regexp_extract($.property_product_pricelist[1], '\(([A-Z]{3})\)$', 1), '')",
        "legal_entity_id": _LEGAL_ENTITY, "is_customer": "CAST($.customer_rank AS INTEGER) > 0",
        "status": _STATUS, "crm_id": "nullif($.ref, 'false')", "erp_id": "$.id", **_TIMESTAMPS,
    }),
)  # fmt: skip

_PROJECTS = OdooModel(
    "project.project", "projects", [],
    ("id", "name", "account_id", "partner_id", "company_id", "currency_id", "allow_billable",
     "pricing_type", "x_billing_model", "active", "date_start", "date", "user_id", "x_harvest_id", *_AUDIT),
    _CUSTOM,
    ObjectMapping("projects", {
        "project_id": "$.id", "code": _ACCOUNT_CODE, "name": "$.name", "customer_id": "$.partner_id[0]",
        # The firm's x_billing_model, else the stock pricing type (false on a non-billable project).
        "billing_model": Lookup(
            "coalesce(nullif($.x_billing_model, 'false'), CASE WHEN $.allow_billable = 'false' "
            "THEN 'non_billable' ELSE nullif($.pricing_type, 'false') END)", "odoo_billing_model",
        ),
        "status": _STATUS, "currency": "$.currency_id[1]", "legal_entity_id": _LEGAL_ENTITY,
        "start_date": "nullif($.date_start, 'false')", "end_date": "nullif($.date, 'false')",
        "project_manager": "$.user_id[1]",
        "psa_id": _HARVEST_ID, "erp_id": "$.id", **_TIMESTAMPS,
    }),
)  # fmt: skip

_OPPORTUNITIES = OdooModel(
    "crm.lead", "projects", [["type", "=", "opportunity"]],
    ("id", "name", "partner_id", "company_id", "expected_revenue", "won_status", "date_closed", *_AUDIT),
    frozenset(),
    ObjectMapping("projects", {
        "project_id": "$.id", "name": "$.name", "customer_id": "$.partner_id[0]",
        "legal_entity_id": _LEGAL_ENTITY, "contract_amount": "CAST($.expected_revenue AS DECIMAL(18,2))",
        # A lost opportunity is closed; a won or pending one stays active, as a HubSpot deal does.
        "status": "CASE $.won_status WHEN 'lost' THEN 'archived' ELSE 'active' END",
        "won_at": "CASE WHEN $.won_status = 'won' THEN nullif($.date_closed, 'false') || '+00' END",
        "start_date": "CASE WHEN $.won_status = 'won' THEN left(nullif($.date_closed, 'false'), 10) END",
        "crm_id": "$.id", **_TIMESTAMPS,
    }),
)  # fmt: skip

_TIMESHEETS = OdooModel(
    # Timesheet lines are the analytic lines with a project.
    "account.analytic.line", "time_entries", [["project_id", "!=", False]],
    ("id", "date", "project_id", "account_id", "partner_id", "employee_id", "unit_amount", "amount",
     "currency_id", "company_id", "timesheet_invoice_id", "timesheet_invoice_type", "so_line", "x_harvest_id",
     *_AUDIT),
    _CUSTOM | {"so_line"},  # so_line comes with the Sales app's timesheet billing (sale_timesheet)
    ObjectMapping("time_entries", {
        "time_entry_id": "$.id", "project_id": "$.project_id[0]", "project_code": _ACCOUNT_CODE,
        "customer_id": "$.partner_id[0]", "person_id": "$.employee_id[0]",
        "person_name": "$.employee_id[1]", "spent_date": "$.date", "billing_period": "left($.date, 7)",
        "hours": "$.unit_amount", "billable": "$.timesheet_invoice_type LIKE 'billable%'",
        "approved": "true", "cost_amount": "-CAST($.amount AS DECIMAL(18,2))",
        # Billed at its sales order line's unit price, in that line's currency (the connector
        # adds the line to the record as _sale_line).
        "bill_rate": "CAST($._sale_line.price_unit AS DECIMAL(18,2))",
        "billable_amount": "round(CAST($.unit_amount AS DECIMAL(18,2)) * CAST($._sale_line.price_unit "
                           "AS DECIMAL(18,2)), 2)",
        "bill_currency": "$._sale_line.currency_id[1]",
        "currency": "$.currency_id[1]", "invoice_id": "$.timesheet_invoice_id[0]",
        "sale_line_id": "$.so_line[0]",
        # Odoo's other types (revenues, costs) are not timesheets' and stay NULL.
        "billing_type": Lookup("$.timesheet_invoice_type", "odoo_timesheet_billing", strict=False),
        "legal_entity_id": _LEGAL_ENTITY, "psa_id": _HARVEST_ID, **_TIMESTAMPS,
    }),
)  # fmt: skip

_MOVES = OdooModel(
    "account.move", "invoices", [["move_type", "in", ["out_invoice", "out_refund"]]],
    ("id", "name", "ref", "move_type", "state", "payment_state", "partner_id", "commercial_partner_id",
     "company_id", "currency_id", "invoice_date", "invoice_date_due", "amount_untaxed", "amount_tax",
     "amount_total", "amount_residual", "reversed_entry_id", "x_harvest_id", *_AUDIT),
    _CUSTOM,
    ObjectMapping("invoices", {
        "invoice_id": "$.id", "number": "nullif(nullif($.name, 'false'), '/')",  # drafts: '/' or false
        "kind": Lookup("$.move_type", "odoo_move_type"),
        "customer_id": "coalesce($.commercial_partner_id[0], $.partner_id[0])",
        "legal_entity_id": _LEGAL_ENTITY, "issue_date": "nullif($.invoice_date, 'false')",
        "due_date": "nullif($.invoice_date_due, 'false')", "currency": "$.currency_id[1]",
        "amount_untaxed": _signed("$.amount_untaxed"), "tax_amount": _signed("$.amount_tax"),
        "amount_total": _signed("$.amount_total"), "amount_due": _signed("$.amount_residual"),
        # Posted moves say paid or not in payment_state; drafts and cancelled ones in state.
        "status": Lookup("CASE WHEN $.state = 'posted' THEN $.payment_state ELSE $.state END",
                         "odoo_invoice_state"),
        "reversed_invoice_id": "$.reversed_entry_id[0]",
        "psa_id": _HARVEST_ID, "psa_number": "nullif($.ref, 'false')", **_TIMESTAMPS,
    }),
)  # fmt: skip

_MOVE_LINES = OdooModel(
    # The product lines of customer invoices and credit notes (not taxes, sections or notes).
    "account.move.line", "invoice_lines",
    [["move_id.move_type", "in", ["out_invoice", "out_refund"]], ["display_type", "=", "product"]],
    ("id", "move_id", "name", "product_id", "quantity", "price_subtotal", "currency_id", "company_id",
     "sale_line_ids", *_AUDIT),
    # sale_line_ids comes with the Sales app; a server may lack the audit dates of move lines
    frozenset({"sale_line_ids", *_AUDIT}),
    ObjectMapping("invoice_lines", {
        "invoice_line_id": "$.id", "invoice_id": "$.move_id[0]", "description": "nullif($.name, 'false')",
        "product": "$.product_id[1]", "sale_line_id": "$.sale_line_ids[0]",
        "quantity": "$.quantity", "amount": "$.price_subtotal", "currency": "$.currency_id[1]",
        "legal_entity_id": _LEGAL_ENTITY, **_TIMESTAMPS,
    }),
    incremental=False,  # their write_date may be missing: read whole on every pull
)  # fmt: skip

#: object -> model name -> model.
MODELS: dict[str, dict[str, OdooModel]] = {}
for _m in (_PARTNERS, _PROJECTS, _OPPORTUNITIES, _TIMESHEETS, _MOVES, _MOVE_LINES):
    MODELS.setdefault(_m.obj, {})[_m.name] = _m
#: object -> the model it is read from unless sources.yaml's ``models`` says otherwise.
DEFAULT_MODELS = {"customers": "res.partner", "projects": "project.project",
                  "time_entries": "account.analytic.line", "invoices": "account.move",
                  "invoice_lines": "account.move.line"}  # fmt: skip


def odoo_model(obj: str, name: str | None = None) -> OdooModel:
    """Return the model ``obj`` is read from: ``name``, or the object's default.

    Raises:
        KeyError: ``obj`` is not read from Odoo, or ``name`` is not one of its models; the message
            names the choices.
    """
    choices = MODELS.get(obj)
    if choices is None:
        raise KeyError(f"no Odoo model for object {obj!r}; objects: {', '.join(MODELS)}")
    chosen = name or DEFAULT_MODELS[obj]
    if chosen not in choices:
        raise KeyError(f"{obj} cannot be read from Odoo model {chosen!r}; choices: {', '.join(choices)}")
    return choices[chosen]
