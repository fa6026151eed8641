"""The canonical tables: one shape per object, whatever system a row came from.

Every extractor maps its vendor's records onto these columns (see :mod:`extractors.mapping`), and
every snapshot of an object is stored with this schema. Analysts query them through the views of
``HOME/warehouse.duckdb`` (:mod:`data.warehouse`). A column a system does not hold is NULL.

Conventions: ids are text (the id in the row's own ``system``); ``crm_id``/``psa_id``/``erp_id`` are
the ids of the same thing in the CRM (HubSpot), PSA (Harvest) and ERP (Odoo) as far as the row's
system records them (these are the match keys reconciliation uses); money and hours are
``DECIMAL(18,2)`` next to an ISO 4217 ``currency``; dates are ``DATE``; timestamps are UTC
``TIMESTAMPTZ``; statuses are mapped to the canonical sets below (:mod:`extractors.statuses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CANONICAL", "LINEAGE", "OBJECTS", "Column", "CanonicalTable", "ObjectName", "canonical_table"]


@dataclass(frozen=True)
class Column:
    """One canonical column: its name, DuckDB type, and what it holds (the warehouse docs)."""

    name: str
    sql_type: str
    doc: str
    required: bool = False


@dataclass(frozen=True)
class CanonicalTable:
    """One canonical object: its key column and its mapped columns (lineage columns excluded)."""

    name: str
    key: str
    columns: tuple[Column, ...]
    doc: str

    @property
    def names(self) -> tuple[str, ...]:
        """Mapped column names, in table order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """Return column ``name``.

        Raises:
            KeyError: ``name`` is not a canonical column of this object.
        """
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no canonical column {name!r}; columns: {', '.join(self.names)}")


def _c(name: str, sql_type: str, doc: str, *, required: bool = False) -> Column:
    return Column(name, sql_type, doc, required)


TEXT, MONEY, DATE, TS, BOOL = "VARCHAR", "DECIMAL(18,2)", "DATE", "TIMESTAMPTZ", "BOOLEAN"

#: Columns every snapshot row carries ahead of the mapped ones, filled by the pipeline.
LINEAGE: tuple[Column, ...] = (
    _c("system", TEXT, "system slug from sources.yaml: `crm`, `psa`, `erp`, ..."),
    _c("snapshot_id", TEXT, "the snapshot the row belongs to (sortable: UTC time first)"),
    _c("run_id", TEXT, "the extraction run that produced the snapshot (`extraction_runs.run_id`)"),
    _c("extracted_at", TS, "when the extraction run started (UTC)"),
)

_STATUS = "canonical status: `active` or `archived`"
_CREATED, _UPDATED = "created in the system (UTC)", "last changed in the system (UTC)"

CUSTOMERS = CanonicalTable("customers", "customer_id", (
    _c("customer_id", TEXT, "the customer's id in its system (HubSpot company, Harvest client, Odoo "
       "partner)", required=True),
    _c("name", TEXT, "legal or display name as the system spells it"),
    _c("tax_id", TEXT, "VAT / tax number as entered"),
    _c("country", TEXT, "ISO 3166-1 alpha-2 country code"),
    _c("currency", TEXT, "ISO 4217 billing currency (Odoo: the partner's pricelist currency)"),
    _c("legal_entity_id", TEXT, "legal entity that bills the customer"),
    _c("is_customer", BOOL, "a paying customer (HubSpot lifecycle stage `customer`, Odoo "
       "`customer_rank > 0`, every Harvest client)"),
    _c("status", TEXT, _STATUS),
    _c("crm_id", TEXT, "HubSpot company id of the customer (Odoo: `res.partner.ref`)"),
    _c("psa_id", TEXT, "Harvest client id (HubSpot: the `harvest_client_id` property)"),
    _c("erp_id", TEXT, "Odoo partner id"),
    _c("created_at", TS, _CREATED),
    _c("updated_at", TS, _UPDATED),
), "Customers: HubSpot companies, Harvest clients, Odoo partners (companies and customers).")  # fmt: skip

PROJECTS = CanonicalTable("projects", "project_id", (
    _c("project_id", TEXT, "the project's id in its system (HubSpot deal, Harvest project, Odoo "
       "project)", required=True),
    _c("code", TEXT, "project code shared across systems (Odoo: the analytic account's code)"),
    _c("name", TEXT, "project or deal name"),
    _c("customer_id", TEXT, "the customer's id in the same system"),
    _c("billing_model", TEXT, "`time_and_materials`, `fixed_fee` or `non_billable`"),
    _c("status", TEXT, "canonical status: `active` or `archived` (closed-won deals: `active` "
       "unless archived)"),
    _c("currency", TEXT, "ISO 4217 currency of the project or deal"),
    _c("legal_entity_id", TEXT, "legal entity delivering the project"),
    _c("contract_amount", MONEY, "deal amount or fixed fee, in `currency`"),
    _c("start_date", DATE, "first day of the project (deals: the close date)"),
    _c("end_date", DATE, "planned last day"),
    _c("won_at", TS, "when the deal was won (HubSpot `closedate`); NULL elsewhere"),
    _c("project_manager", TEXT, "who manages the project (Harvest: the users assigned as project "
       "manager, names joined by `, `; Odoo: `user_id`)"),
    _c("crm_id", TEXT, "HubSpot deal id"),
    _c("psa_id", TEXT, "Harvest project id (Odoo: `x_harvest_id`)"),
    _c("erp_id", TEXT, "Odoo project id"),
    _c("created_at", TS, _CREATED),
    _c("updated_at", TS, _UPDATED),
), "Projects: closed-won HubSpot deals (the CRM's view), Harvest projects, Odoo projects.")  # fmt: skip

TIME_ENTRIES = CanonicalTable("time_entries", "time_entry_id", (
    _c("time_entry_id", TEXT, "the entry's id in its system (Harvest time entry, Odoo analytic "
       "line)", required=True),
    _c("project_id", TEXT, "project id in the same system"),
    _c("project_code", TEXT, "project code (Odoo: from the analytic account)"),
    _c("customer_id", TEXT, "customer id in the same system"),
    _c("person_id", TEXT, "who worked (Harvest user, Odoo employee)"),
    _c("person_name", TEXT, "their name"),
    _c("spent_date", DATE, "day the time was worked", required=True),
    _c("billing_period", TEXT, "`YYYY-MM` of `spent_date`"),
    _c("hours", MONEY, "hours worked (2 decimals)", required=True),
    _c("billable", BOOL, "billable to the customer"),
    _c("approved", BOOL, "approved (Harvest: `is_closed`; a posted Odoo line is approved)"),
    _c("bill_rate", MONEY, "billable rate per hour, in the project currency"),
    _c("cost_rate", MONEY, "cost rate per hour"),
    _c("billable_amount", MONEY, "hours × bill rate, rounded to cents"),
    _c("bill_currency", TEXT, "ISO 4217 currency of the bill rate and billable amount (Harvest: the "
       "client's; Odoo: the sales order line's)"),
    _c("cost_amount", MONEY, "cost of the time (Harvest: hours × cost rate; Odoo: `-amount`)"),
    _c("currency", TEXT, "ISO 4217 currency of the amounts, when the system says"),
    _c("invoice_id", TEXT, "invoice the time was billed on, in the same system"),
    _c("sale_line_id", TEXT, "sales order line the time is billed through (Odoo: `so_line`)"),
    _c("billing_type", TEXT, "how the time is billed: `time_and_materials` (by the hour), `fixed_fee`, "
       "`milestones`, `manual` or `non_billable` (Odoo: `timesheet_invoice_type`); NULL where the "
       "system keeps it on the project (Harvest)"),
    _c("legal_entity_id", TEXT, "legal entity that booked the time"),
    _c("psa_id", TEXT, "Harvest time entry id (Odoo: `x_harvest_id`)"),
    _c("created_at", TS, _CREATED),
    _c("updated_at", TS, _UPDATED),
), "Time entries: Harvest time entries and Odoo timesheet lines (`account.analytic.line`).")  # fmt: skip

INVOICES = CanonicalTable("invoices", "invoice_id", (
    _c("invoice_id", TEXT, "the invoice's id in its system (Harvest invoice, Odoo move)",
       required=True),
    _c("number", TEXT, "invoice number as printed"),
    _c("kind", TEXT, "`invoice` or `credit_note`"),
    _c("reversed_invoice_id", TEXT, "for a credit note: the invoice it reverses, in the same system "
       "(Odoo: `reversed_entry_id`)"),
    _c("customer_id", TEXT, "customer id in the same system"),
    _c("legal_entity_id", TEXT, "legal entity that issued it (Odoo: `company_id`)"),
    _c("issue_date", DATE, "invoice date"),
    _c("due_date", DATE, "payment due date"),
    _c("period_start", DATE, "first day invoiced (Harvest)"),
    _c("period_end", DATE, "last day invoiced (Harvest)"),
    _c("billing_period", TEXT, "`YYYY-MM` invoiced (the month of `period_start`)"),
    _c("currency", TEXT, "ISO 4217 invoice currency", required=True),
    _c("amount_untaxed", MONEY, "net amount; negative for a credit note"),
    _c("tax_amount", MONEY, "tax; negative for a credit note"),
    _c("amount_total", MONEY, "gross amount; negative for a credit note", required=True),
    _c("amount_due", MONEY, "still to be paid"),
    _c("status", TEXT, "canonical status: `draft`, `posted`, `paid` or `cancelled`", required=True),
    _c("psa_id", TEXT, "Harvest invoice id (Odoo: `x_harvest_id`)"),
    _c("psa_number", TEXT, "Harvest invoice number (Odoo: `ref`)"),
    _c("created_at", TS, _CREATED),
    _c("updated_at", TS, _UPDATED),
), "Invoices: Harvest invoices and Odoo customer invoices and credit notes.")  # fmt: skip

INVOICE_LINES = CanonicalTable("invoice_lines", "invoice_line_id", (
    _c("invoice_line_id", TEXT, "the line's id in its system (Odoo journal item)", required=True),
    _c("invoice_id", TEXT, "the invoice or credit note it is on, in the same system", required=True),
    _c("description", TEXT, "the line's text as printed"),
    _c("product", TEXT, "product or service billed, as the system names it"),
    _c("sale_line_id", TEXT, "sales order line it invoices (Odoo: the first of `sale_line_ids`)"),
    _c("quantity", MONEY, "quantity billed, hours for a line billing time; positive on a credit "
       "note too, as printed"),
    _c("amount", MONEY, "net amount of the line in `currency` (Odoo: `price_subtotal`); positive on "
       "a credit note too, as printed"),
    _c("currency", TEXT, "ISO 4217 currency of the invoice"),
    _c("legal_entity_id", TEXT, "legal entity that issued the invoice"),
    _c("created_at", TS, _CREATED),
    _c("updated_at", TS, _UPDATED),
), "Invoice lines: the product lines of Odoo customer invoices and credit notes "
   "(`account.move.line`).")  # fmt: skip

CANONICAL: dict[str, CanonicalTable] = {
    t.name: t for t in (CUSTOMERS, PROJECTS, TIME_ENTRIES, INVOICES, INVOICE_LINES)
}
OBJECTS: tuple[str, ...] = tuple(CANONICAL)
#: :data:`OBJECTS` as a type, for the configs' pydantic models (their messages list the names).
ObjectName = Literal["customers", "projects", "time_entries", "invoices", "invoice_lines"]


def canonical_table(name: str) -> CanonicalTable:
    """Return the canonical object ``name``.

    Raises:
        KeyError: not one of :data:`OBJECTS`.
    """
    try:
        return CANONICAL[name]
    except KeyError:
        raise KeyError(f"unknown object {name!r}; objects are {', '.join(OBJECTS)}") from None
