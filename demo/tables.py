"""The demo firm's files: one Parquet dataset per system table, and their columns.

Each system's view of the firm is stored under ``HOME/demo/<system>/<table>/part-*.parquet`` in the
vendor's own vocabulary, flattened: a nested vendor object (Harvest's ``client: {id, name}``, an
Odoo many2one ``[id, "name"]``) is stored as ``<field>_id`` / ``<field>_name`` (Harvest) or
``<field>`` / ``<field>__display`` (Odoo) and rebuilt into the vendor's JSON shape by the
simulators. A NULL stands for "empty" (Odoo renders it as ``false``, HubSpot omits it, Harvest
sends ``null``). Money and hours are ``DECIMAL(18,2)``; timestamps are UTC.

The simulators serve these tables; the ground truth (``HOME/demo/ground_truth.parquet``, see
``demo.ground_truth``) names records by the ids stored here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

MONEY = pa.decimal128(18, 2)
TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Table:
    """One system table of the demo firm.

    Attributes:
        system: ``crm`` (HubSpot), ``psa`` (Harvest) or ``erp`` (Odoo).
        name: table name, e.g. ``time_entries`` or ``account.analytic.line``.
        schema: Arrow schema of its Parquet files.
    """

    system: str
    name: str
    schema: pa.Schema

    def path(self, demo_dir: Path) -> Path:
        """Return the dataset folder of this table under ``HOME/demo``."""
        return demo_dir / self.system / self.name

    def glob(self, demo_dir: Path) -> str:
        """Return the glob of this table's Parquet parts, for DuckDB's ``read_parquet``."""
        return str(self.path(demo_dir) / "*.parquet")


def _t(system: str, name: str, *cols: tuple[str, pa.DataType]) -> Table:
    return Table(system, name, pa.schema(list(cols)))


S, I64, B, D = pa.string(), pa.int64(), pa.bool_(), pa.date32()

# HubSpot CRM v3: every property is a string on the wire; ids are numeric strings.
HUBSPOT_COMPANIES = _t(
    "crm", "companies",
    ("id", S), ("name", S), ("domain", S), ("country", S), ("city", S),
    ("lifecyclestage", S), ("vat_number", S), ("billing_currency", S), ("legal_entity", S),
    ("harvest_client_id", S), ("createdate", TS), ("hs_lastmodifieddate", TS), ("archived", B),
)  # fmt: skip
HUBSPOT_DEALS = _t(
    "crm", "deals",
    ("id", S), ("dealname", S), ("amount", MONEY), ("deal_currency_code", S), ("dealstage", S),
    ("pipeline", S), ("closedate", TS), ("project_code", S), ("company_id", S),
    ("createdate", TS), ("hs_lastmodifieddate", TS), ("archived", B),
)  # fmt: skip

# Harvest v2.
HARVEST_CLIENTS = _t(
    "psa", "clients",
    ("id", I64), ("name", S), ("is_active", B), ("address", S), ("currency", S),
    ("created_at", TS), ("updated_at", TS),
)  # fmt: skip
HARVEST_USERS = _t(
    "psa", "users",
    ("id", I64), ("first_name", S), ("last_name", S), ("email", S), ("is_active", B),
    ("is_project_manager", B), ("default_hourly_rate", MONEY), ("cost_rate", MONEY),
    ("legal_entity", S), ("created_at", TS), ("updated_at", TS),
)  # fmt: skip
HARVEST_PROJECTS = _t(
    "psa", "projects",
    ("id", I64), ("client_id", I64), ("client_name", S), ("client_currency", S), ("name", S),
    ("code", S), ("is_active", B), ("is_billable", B), ("is_fixed_fee", B), ("bill_by", S),
    ("hourly_rate", MONEY), ("fee", MONEY), ("budget", MONEY), ("starts_on", D), ("ends_on", D),
    ("notes", S), ("project_manager_id", I64), ("created_at", TS), ("updated_at", TS),
)  # fmt: skip
HARVEST_TIME_ENTRIES = _t(
    "psa", "time_entries",
    ("id", I64), ("spent_date", D), ("hours", MONEY), ("notes", S), ("is_locked", B),
    ("is_closed", B), ("is_billed", B), ("billable", B), ("billable_rate", MONEY),
    ("cost_rate", MONEY), ("user_id", I64), ("user_name", S), ("client_id", I64),
    ("client_name", S), ("client_currency", S), ("project_id", I64), ("project_name", S),
    ("project_code", S), ("task_id", I64), ("task_name", S), ("invoice_id", I64), ("invoice_number", S),
    ("created_at", TS), ("updated_at", TS),
)  # fmt: skip
HARVEST_INVOICES = _t(
    "psa", "invoices",
    ("id", I64), ("client_id", I64), ("client_name", S), ("number", S), ("purchase_order", S),
    ("amount", MONEY), ("due_amount", MONEY), ("tax", MONEY), ("tax_amount", MONEY),
    ("subject", S), ("state", S), ("period_start", D), ("period_end", D), ("issue_date", D),
    ("due_date", D), ("paid_date", D), ("currency", S), ("created_at", TS), ("updated_at", TS),
)  # fmt: skip
HARVEST_INVOICE_LINE_ITEMS = _t(
    "psa", "invoice_line_items",
    ("id", I64), ("invoice_id", I64), ("project_id", I64), ("project_name", S),
    ("project_code", S), ("kind", S), ("description", S), ("quantity", MONEY),
    ("unit_price", MONEY), ("amount", MONEY), ("taxed", B),
)  # fmt: skip

# Odoo: many2one `f` is stored as `f` (id) + `f__display` (display name).
ODOO_COMPANIES = _t("erp", "res.company", ("id", I64), ("name", S), ("currency_id", I64),
                    ("currency_id__display", S), ("country_id", I64), ("country_id__display", S),
                    ("vat", S))  # fmt: skip
ODOO_CURRENCIES = _t("erp", "res.currency", ("id", I64), ("name", S), ("symbol", S), ("active", B))
ODOO_PRICELISTS = _t("erp", "product.pricelist", ("id", I64), ("name", S), ("currency_id", I64),
                     ("currency_id__display", S), ("company_id", I64),
                     ("company_id__display", S))  # fmt: skip
ODOO_PARTNERS = _t(
    "erp", "res.partner",
    ("id", I64), ("name", S), ("display_name", S), ("ref", S), ("vat", S), ("is_company", B),
    ("customer_rank", I64), ("country_id", I64), ("country_id__display", S), ("city", S),
    ("email", S), ("company_id", I64), ("company_id__display", S),
    ("property_product_pricelist", I64), ("property_product_pricelist__display", S),
    ("active", B), ("create_date", TS), ("write_date", TS),
)  # fmt: skip
ODOO_EMPLOYEES = _t("erp", "hr.employee", ("id", I64), ("name", S), ("active", B),
                    ("company_id", I64), ("company_id__display", S),
                    ("hourly_cost", MONEY))  # fmt: skip
ODOO_ANALYTIC_ACCOUNTS = _t(
    "erp", "account.analytic.account",
    ("id", I64), ("name", S), ("code", S), ("active", B), ("company_id", I64),
    ("company_id__display", S), ("partner_id", I64), ("partner_id__display", S),
)  # fmt: skip
ODOO_PROJECTS = _t(
    "erp", "project.project",
    ("id", I64), ("name", S), ("active", B), ("account_id", I64), ("account_id__display", S),
    ("partner_id", I64), ("partner_id__display", S), ("company_id", I64),
    ("company_id__display", S), ("currency_id", I64), ("currency_id__display", S),
    ("allow_billable", B), ("pricing_type", S), ("x_billing_model", S), ("x_harvest_id", I64),
    ("date_start", D), ("date", D), ("user_id", I64), ("user_id__display", S), ("create_date", TS),
    ("write_date", TS),
)  # fmt: skip
ODOO_TIMESHEETS = _t(
    "erp", "account.analytic.line",
    ("id", I64), ("date", D), ("name", S), ("employee_id", I64), ("employee_id__display", S),
    ("project_id", I64), ("project_id__display", S), ("partner_id", I64),
    ("partner_id__display", S), ("unit_amount", MONEY), ("amount", MONEY), ("currency_id", I64),
    ("currency_id__display", S), ("company_id", I64), ("company_id__display", S),
    ("account_id", I64), ("account_id__display", S), ("timesheet_invoice_id", I64),
    ("timesheet_invoice_id__display", S), ("timesheet_invoice_type", S), ("x_harvest_id", I64),
    ("create_date", TS), ("write_date", TS),
)  # fmt: skip
ODOO_MOVES = _t(
    "erp", "account.move",
    ("id", I64), ("name", S), ("ref", S), ("move_type", S), ("state", S), ("payment_state", S),
    ("partner_id", I64), ("partner_id__display", S), ("commercial_partner_id", I64),
    ("commercial_partner_id__display", S), ("company_id", I64), ("company_id__display", S),
    ("currency_id", I64), ("currency_id__display", S), ("invoice_date", D),
    ("invoice_date_due", D), ("date", D), ("amount_untaxed", MONEY), ("amount_tax", MONEY),
    ("amount_total", MONEY), ("amount_residual", MONEY), ("amount_untaxed_signed", MONEY),
    ("amount_total_signed", MONEY), ("amount_residual_signed", MONEY),
    ("reversed_entry_id", I64), ("reversed_entry_id__display", S), ("invoice_origin", S),
    ("x_harvest_id", I64), ("create_date", TS), ("write_date", TS),
)  # fmt: skip
ODOO_MOVE_LINES = _t(
    "erp", "account.move.line",
    ("id", I64), ("move_id", I64), ("move_id__display", S), ("name", S), ("display_type", S),
    ("quantity", MONEY), ("price_unit", MONEY), ("price_subtotal", MONEY), ("price_total", MONEY),
    ("company_id", I64), ("company_id__display", S), ("currency_id", I64),
    ("currency_id__display", S),
)  # fmt: skip

# Reporting-currency FX rates shipped with the demo (one rate per currency and month).
FX_RATES = _t("ref", "fx_rates", ("currency", S), ("month", S), ("rate_to_reporting", pa.decimal128(18, 6)))

TABLES: tuple[Table, ...] = (
    HUBSPOT_COMPANIES, HUBSPOT_DEALS,
    HARVEST_CLIENTS, HARVEST_USERS, HARVEST_PROJECTS, HARVEST_TIME_ENTRIES, HARVEST_INVOICES,
    HARVEST_INVOICE_LINE_ITEMS,
    ODOO_COMPANIES, ODOO_CURRENCIES, ODOO_PRICELISTS, ODOO_PARTNERS, ODOO_EMPLOYEES,
    ODOO_ANALYTIC_ACCOUNTS, ODOO_PROJECTS, ODOO_TIMESHEETS, ODOO_MOVES, ODOO_MOVE_LINES,
    FX_RATES,
)  # fmt: skip


def view_name(t: Table) -> str:
    """Return the quoted SQL name of ``t``'s view: ``"psa/time_entries"``."""
    return f'"{t.system}/{t.name}"'


def create_views(con: duckdb.DuckDBPyConnection, demo_dir: Path) -> None:
    """Create one view per generated table of ``demo_dir`` on ``con`` (see :func:`view_name`)."""
    for t in TABLES:
        if t.path(demo_dir).exists():
            con.execute(f"CREATE VIEW {view_name(t)} AS SELECT * FROM read_parquet('{t.glob(demo_dir)}')")


def table(system: str, name: str) -> Table:
    """Return the table ``name`` of ``system``.

    Raises:
        KeyError: no such table in the demo firm.
    """
    for t in TABLES:
        if t.system == system and t.name == name:
            return t
    raise KeyError(f"demo firm has no table {system}/{name}")
