"""Vendor statuses and codes mapped to Tieout's canonical sets: the one place they are translated.

Each map is a value map for :class:`extractors.mapping.Lookup`: vendor value (as text) -> canonical
value. A vendor value missing from a strict map quarantines the record, so a new vendor status shows
up as a counted, explained quarantine instead of a wrong status.

Canonical sets: project and customer ``status`` is ``active`` or ``archived``; invoice ``status`` is
``draft``, ``posted`` (open, partly paid), ``paid`` or ``cancelled``; ``billing_model`` is
``time_and_materials``, ``fixed_fee`` or ``non_billable`` (a time entry's ``billing_type`` also
``milestones`` or ``manual``); invoice ``kind`` is ``invoice`` or ``credit_note``.
"""

from __future__ import annotations

from functools import cache

import pycountry

__all__ = ["STATUS_MAPS", "value_maps"]

_ACTIVE = {"true": "active", "false": "archived"}

STATUS_MAPS: dict[str, dict[str, str]] = {
    # `is_active` (Harvest) / `active` (Odoo), as text.
    "active_flag": _ACTIVE,
    # HubSpot `archived` (true means archived): inverted.
    "archived_flag": {"false": "active", "true": "archived"},
    # Harvest invoice `state`: `open` is sent and unpaid (also partly paid); `closed` is written off.
    "harvest_invoice_state": {"draft": "draft", "open": "posted", "paid": "paid", "closed": "cancelled"},
    # Odoo account.move: `state` for draft/cancel, `payment_state` once posted (see the mapping).
    "odoo_invoice_state": {
        "draft": "draft",
        "cancel": "cancelled",
        "not_paid": "posted",
        "partial": "posted",
        "in_payment": "paid",
        "paid": "paid",
        "reversed": "cancelled",
        "blocked": "posted",
        "invoicing_legacy": "paid",
    },
    "odoo_move_type": {"out_invoice": "invoice", "out_refund": "credit_note"},
    # Odoo timesheet line `timesheet_invoice_type`: how its sales order line bills it.
    "odoo_timesheet_billing": {
        "billable_time": "time_and_materials",
        "billable_fixed": "fixed_fee",
        "billable_milestones": "milestones",
        "billable_manual": "manual",
        "non_billable": "non_billable",
    },
    # Harvest project: `is_fixed_fee` / `is_billable`, as `fixed|billable` text (see the mapping).
    "harvest_billing_model": {
        "false|true": "time_and_materials",
        "true|true": "fixed_fee",
        "false|false": "non_billable",
        "true|false": "non_billable",
    },
    # Odoo project `x_billing_model` (Tieout's custom field), else the stock `pricing_type`, whose
    # three values all bill hours (task, project or employee rate): Odoo has no fixed-fee type.
    "odoo_billing_model": {
        "time_and_materials": "time_and_materials",
        "fixed_fee": "fixed_fee",
        "non_billable": "non_billable",
        "task_rate": "time_and_materials",
        "employee_rate": "time_and_materials",
        "project_rate": "time_and_materials",
        "fixed_rate": "time_and_materials",
    },
}


@cache
def _country_codes() -> dict[str, str]:
    # Names as HubSpot and Odoo display them ("United States", "Germany"), the official and common
    # names, and the codes themselves, all to ISO 3166-1 alpha-2.
    codes: dict[str, str] = {}
    for c in pycountry.countries:
        for name in (
            c.alpha_2,
            c.alpha_3,
            c.name,
            getattr(c, "common_name", None),
            getattr(c, "official_name", None),
        ):
            if name:
                codes[name] = c.alpha_2
    return codes


def value_maps(configured: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The value maps a mapping may look up, sources.yaml's ``value_maps`` of the system winning.

    Built in: the status maps, ``countries`` (name or code -> ISO 3166-1 alpha-2) and
    ``legal_entities`` (empty unless configured).
    """
    return {**STATUS_MAPS, "countries": _country_codes(), "legal_entities": {}, **configured}
