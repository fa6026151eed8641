"""A real Odoo's dumped records, read exactly: numbers as Decimal, ``false`` kept as Odoo sends it.

The dump folder holds one ``<model>.json`` per model, ``{"model", "domain", "fields_meta",
"records"}`` (see :mod:`demo.odoo_replay`). Only the models the derived CRM and PSA and the ground
truth read are loaded (:data:`MODELS`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = [
    "LEGAL_ENTITY_CODES", "MODELS", "Dump", "Record", "account_code", "load_dump", "m2o", "m2o_name",
    "odoo_date", "odoo_datetime", "text",
]  # fmt: skip

Record = dict[str, Any]

MODELS = (
    "res.company", "res.currency", "res.currency.rate", "res.partner", "sale.order",
    "project.project", "hr.employee", "account.analytic.line", "account.move", "account.move.line",
)  # fmt: skip
#: Odoo company id -> legal entity code, as examples/odoo-firm names the two companies of the real
#: Odoo 19 records (YourCompany, My US Company); another company is ``CO<id>``.
LEGAL_ENTITY_CODES = {1: "YC", 2: "USC"}
# The project code is the analytic account's code, which its display name starts with: "[CODE] name".
_CODE = re.compile(r"^\[([^\]]+)\]")


def m2o(value: Any) -> int | None:
    """Return a many2one's id, or None for Odoo's ``false``."""
    return int(value[0]) if value else None


def m2o_name(value: Any) -> str | None:
    """Return a many2one's display name, or None for Odoo's ``false``."""
    return str(value[1]) if value else None


def account_code(value: Any) -> str | None:
    """Return the project code in an ``account_id`` many2one's display name (``[RS-P1001] ...``)."""
    name = m2o_name(value)
    found = _CODE.match(name) if name else None
    return found.group(1) if found else None


def text(value: Any) -> str | None:
    """Return a char field's value, or None for Odoo's ``false``."""
    return None if value is False else str(value)


def odoo_datetime(value: Any) -> datetime | None:
    """Return an Odoo datetime (``YYYY-MM-DD HH:MM:SS``, UTC) as an aware datetime, None for ``false``."""
    return None if value is False else datetime.fromisoformat(value).replace(tzinfo=UTC)


def odoo_date(value: Any) -> date | None:
    """Return an Odoo date (``YYYY-MM-DD``), None for ``false``."""
    return None if value is False else date.fromisoformat(value)


@dataclass(frozen=True)
class Dump:
    """The dumped records of :data:`MODELS`, model -> record id -> record (in id order)."""

    records: dict[str, dict[int, Record]]

    def __getitem__(self, model: str) -> dict[int, Record]:
        return self.records[model]

    def legal_entity(self, company_id: int | None) -> str | None:
        """Return the legal entity code of an Odoo company id (None for none)."""
        return None if company_id is None else LEGAL_ENTITY_CODES.get(company_id, f"CO{company_id}")

    def read_on(self) -> date:
        """Return the day the records were read: that of their latest change (``write_date``)."""
        stamps = [
            r["write_date"] for recs in self.records.values() for r in recs.values() if r.get("write_date")
        ]
        return datetime.fromisoformat(max(stamps)).date()


def load_dump(folder: Path) -> Dump:
    """Read :data:`MODELS` from the dump ``folder``, floats as exact Decimal.

    Raises:
        FileNotFoundError: a model's file is missing.
        ValueError: a file is not a dump (no ``records`` list).
    """
    records: dict[str, dict[int, Record]] = {}
    for model in MODELS:
        data = json.loads((folder / f"{model}.json").read_text(encoding="utf-8"), parse_float=Decimal)
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise ValueError(f"{folder / f'{model}.json'}: not a dump of {model} (no records list)")
        records[model] = {int(r["id"]): r for r in sorted(data["records"], key=lambda r: int(r["id"]))}
    return Dump(records)
