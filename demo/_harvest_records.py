"""Harvest v2 record shapes, rebuilt from the demo firm's flat ``psa`` rows.

Each function takes one row of a ``demo.tables`` ``HARVEST_*`` table (a dict as returned by
:meth:`demo.store.DemoStore.rows`) and returns the object Harvest's API v2 sends, with its
attributes in Harvest's order. Nested objects (``client``, ``project``, ...) are rebuilt from the
``<obj>_id`` / ``<obj>_name`` columns. Timestamps become ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), dates
``YYYY-MM-DD``; money and hours stay ``Decimal`` (sent as JSON numbers by
:func:`demo.simulator.json_response`).

Attributes Harvest has but the demo firm does not model get fixed, documented values (timers are
never running, no expenses, no second tax, no discount). Where the demo firm holds a fact Harvest
keeps elsewhere, it goes where Harvest keeps it: a project's manager is a user assignment with
``is_project_manager: true`` (``GET /v2/user_assignments``), and a user's legal entity is one of
the user's ``roles`` (Harvest's free-text role labels).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

Row = dict[str, Any]

_ZERO = Decimal("0.00")
_PAYMENT_TERMS = {0: "upon receipt", 15: "net 15", 30: "net 30", 45: "net 45", 60: "net 60"}


@dataclass(frozen=True)
class Lookups:
    """Facts a record needs from other tables (the demo firm is read-only, so loaded once).

    Attributes:
        user_name: user id → ``"First Last"`` (for a user assignment's ``user``).
    """

    user_name: dict[int, str] = field(default_factory=dict)


def ts(value: datetime | None) -> str | None:
    """Return ``value`` as Harvest's UTC datetime ``YYYY-MM-DDTHH:MM:SSZ`` (None stays None)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(value: date | None) -> str | None:
    """Return ``value`` as Harvest's date ``YYYY-MM-DD`` (None stays None)."""
    return None if value is None else value.isoformat()


def _ref(row: Row, prefix: str, *attrs: str) -> Row | None:
    """Rebuild the nested object ``prefix`` from ``<prefix>_id`` and ``<prefix>_<attr>`` columns."""
    if row[f"{prefix}_id"] is None:
        return None
    return {"id": row[f"{prefix}_id"], **{a: row[f"{prefix}_{a}"] for a in attrs}}


def _key(kind: str, record_id: int) -> str:
    """Return a stable 40-hex-digit key, like Harvest's ``statement_key`` and ``client_key``."""
    return hashlib.sha1(f"{kind}:{record_id}".encode()).hexdigest()


def client(row: Row, _: Lookups) -> Row:
    """Return a ``HARVEST_CLIENTS`` row as a Harvest client object."""
    return {
        "id": row["id"],
        "name": row["name"],
        "is_active": row["is_active"],
        "address": row["address"],
        "statement_key": _key("statement", row["id"]),
        "currency": row["currency"],
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
    }


def user(row: Row, _: Lookups) -> Row:
    """Return a ``HARVEST_USERS`` row as a Harvest user object.

    ``access_roles`` is ``["manager"]`` for project managers, else ``["member"]``; ``roles`` holds
    the user's legal entity (empty when unknown). ``weekly_capacity`` is in seconds (35 h).
    """
    return {
        "id": row["id"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "email": row["email"],
        "telephone": "",
        "timezone": "UTC",
        "has_access_to_all_future_projects": False,
        "is_contractor": False,
        "is_active": row["is_active"],
        "weekly_capacity": 126000,
        "default_hourly_rate": row["default_hourly_rate"],
        "cost_rate": row["cost_rate"],
        "roles": [row["legal_entity"]] if row["legal_entity"] else [],
        "access_roles": ["manager"] if row["is_project_manager"] else ["member"],
        "avatar_url": None,
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
    }


def project(row: Row, _: Lookups) -> Row:
    """Return a ``HARVEST_PROJECTS`` row as a Harvest project object.

    The demo firm's ``budget`` (hours) is budgeted ``by project``; ``project_manager_id`` is not a
    project attribute in Harvest and is served as a user assignment instead.
    """
    return {
        "id": row["id"],
        "name": row["name"],
        "code": row["code"],
        "is_active": row["is_active"],
        "is_billable": row["is_billable"],
        "is_fixed_fee": row["is_fixed_fee"],
        "bill_by": row["bill_by"],
        "budget": row["budget"],
        "budget_by": "project" if row["budget"] is not None else "none",
        "budget_is_monthly": False,
        "notify_when_over_budget": False,
        "over_budget_notification_percentage": Decimal("80.0"),
        "over_budget_notification_date": None,
        "show_budget_to_all": False,
        "cost_budget": None,
        "cost_budget_include_expenses": False,
        "hourly_rate": row["hourly_rate"],
        "fee": row["fee"],
        "notes": row["notes"],
        "starts_on": day(row["starts_on"]),
        "ends_on": day(row["ends_on"]),
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
        "client": _ref(row, "client", "name", "currency"),
    }


def _locked_reason(row: Row) -> str | None:
    if not row["is_locked"]:
        return None
    if row["is_billed"]:
        return "Item Invoiced and Locked for this Time Period"
    if row["is_closed"]:
        return "Item Approved and Locked for this Time Period"
    return "Locked for this Time Period"


def time_entry(row: Row, _: Lookups) -> Row:
    """Return a ``HARVEST_TIME_ENTRIES`` row as a Harvest time entry object.

    Timers never run in the demo firm (``hours`` = ``rounded_hours`` = ``hours_without_timer``,
    ``is_running`` false); ``invoice`` is ``{id, number}`` when the entry is billed, else null.
    User and task assignments are not modelled and are null. The ``client`` object's currency is
    the row's own ``client_currency`` (normally its client's), so that one entry can carry a bad
    currency (``demo.quality``); ``project`` is null when the row has no ``project_id``.
    """
    return {
        "id": row["id"],
        "spent_date": day(row["spent_date"]),
        "hours": row["hours"],
        "hours_without_timer": row["hours"],
        "rounded_hours": row["hours"],
        "notes": row["notes"],
        "is_locked": row["is_locked"],
        "locked_reason": _locked_reason(row),
        "is_closed": row["is_closed"],
        "is_billed": row["is_billed"],
        "timer_started_at": None,
        "started_time": None,
        "ended_time": None,
        "is_running": False,
        "billable": row["billable"],
        "budgeted": False,
        "billable_rate": row["billable_rate"],
        "cost_rate": row["cost_rate"],
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
        "user": _ref(row, "user", "name"),
        "client": _ref(row, "client", "name", "currency"),
        "project": _ref(row, "project", "name", "code"),
        "task": _ref(row, "task", "name"),
        "user_assignment": None,
        "task_assignment": None,
        "invoice": _ref(row, "invoice", "number"),
        "external_reference": None,
    }


def line_item(row: Row) -> Row:
    """Return a ``HARVEST_INVOICE_LINE_ITEMS`` row as a Harvest invoice line item."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "description": row["description"],
        "quantity": row["quantity"],
        "unit_price": row["unit_price"],
        "amount": row["amount"],
        "taxed": row["taxed"],
        "taxed2": False,
        "project": _ref(row, "project", "name", "code"),
    }


def _payment_term(issue: date | None, due: date | None) -> str | None:
    if issue is None or due is None:
        return None
    return _PAYMENT_TERMS.get((due - issue).days, "custom")


def _midnight(value: date | None) -> datetime | None:
    return None if value is None else datetime.combine(value, time(), tzinfo=UTC)


def invoice(row: Row, _: Lookups, line_items: list[Row]) -> Row:
    """Return a ``HARVEST_INVOICES`` row, with its line item rows, as a Harvest invoice object.

    ``sent_at`` is the creation time of every invoice past ``draft``; ``paid_at`` is midnight UTC
    of ``paid_date``; ``closed_at`` is ``updated_at`` of a ``closed`` invoice.
    """
    state = row["state"]
    return {
        "id": row["id"],
        "client_key": _key("invoice", row["id"]),
        "number": row["number"],
        "purchase_order": row["purchase_order"],
        "amount": row["amount"],
        "due_amount": row["due_amount"],
        "tax": row["tax"],
        "tax_amount": row["tax_amount"],
        "tax2": None,
        "tax2_amount": _ZERO,
        "discount": None,
        "discount_amount": _ZERO,
        "subject": row["subject"],
        "notes": None,
        "currency": row["currency"],
        "state": state,
        "period_start": day(row["period_start"]),
        "period_end": day(row["period_end"]),
        "issue_date": day(row["issue_date"]),
        "due_date": day(row["due_date"]),
        "payment_term": _payment_term(row["issue_date"], row["due_date"]),
        "sent_at": ts(row["created_at"]) if state != "draft" else None,
        "paid_at": ts(_midnight(row["paid_date"])),
        "paid_date": day(row["paid_date"]),
        "closed_at": ts(row["updated_at"]) if state == "closed" else None,
        "recurring_invoice_id": None,
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
        "client": _ref(row, "client", "name"),
        "estimate": None,
        "retainer": None,
        "creator": None,
        "line_items": [line_item(li) for li in line_items],
    }


def user_assignment(row: Row, lookups: Lookups) -> Row:
    """Return a ``HARVEST_PROJECTS`` row as the user assignment of its project manager.

    The demo firm models one assignment per managed project, so the assignment's id is the
    project's id. The row must have a ``project_manager_id``.
    """
    manager_id = row["project_manager_id"]
    return {
        "id": row["id"],
        "is_project_manager": True,
        "is_active": row["is_active"],
        "use_default_rates": True,
        "budget": None,
        "created_at": ts(row["created_at"]),
        "updated_at": ts(row["updated_at"]),
        "hourly_rate": row["hourly_rate"],
        "project": {"id": row["id"], "name": row["name"], "code": row["code"]},
        "user": {"id": manager_id, "name": lookups.user_name.get(manager_id)},
    }
