"""The answer key: every break the demo firm's injected defects must produce.

``HOME/demo/ground_truth.parquet`` has one row per expected break. Columns:

=================  ==========================================================================
``rule_id``        the reconciliation rule that must report it (catalogue below), or the
                   data-quality rule ``<object>.<expectation id>`` (see "Data quality")
``break_type``     ``missing_in_target``, ``missing_in_source``, ``field_mismatch``,
                   ``duplicate``, ``orphan``, ``aggregate_mismatch``, ``aged`` or (data
                   quality) ``failed_expectation``
``object``         canonical object: ``customers``, ``projects``, ``time_entries``, ``invoices``
``source_system``  ``crm``, ``psa`` or ``erp``: the rule's source (its system of record); for
                   data quality, the system whose snapshot fails
``target_system``  the rule's target system; NULL for data quality
``source_id``      the record's id in the source system (HubSpot/Harvest/Odoo id as text);
                   NULL when the record exists only in the target; for an orphan, the unknown
                   id the target refers to; for aggregates, the group key ``CODE|YYYY-MM``
``target_id``      the record's id in the target system; NULL when missing there; for a
                   duplicate, the id of the extra target record (the later one)
``field``          canonical field for ``field_mismatch``, ``aggregate_mismatch`` and
                   ``failed_expectation`` breaks, NULL otherwise
``defect``         the injected defect kind that causes it (``DEFECT_KINDS``, ``QUALITY_KINDS``)
``legal_entity_id`` legal entity of the record (``US``, ``UK``, ``DE``)
``aging_bucket``   for ``aged`` breaks: ``0-30``, ``31-60``, ``61-90`` or ``90+`` days
=================  ==========================================================================

Rules (source → target, match key):

- ``customers_crm_erp``: HubSpot companies with lifecycle stage ``customer`` → Odoo company
  partners with ``customer_rank > 0``, matched on ``res.partner.ref`` = HubSpot id. Compared:
  ``name`` (normalised: case, punctuation and spacing ignored), ``tax_id`` (spaces ignored),
  ``currency`` (partner's pricelist currency), ``legal_entity_id`` (partner's company),
  ``country``.
- ``customers_crm_psa``: the same companies → Harvest clients, matched on the company's
  ``harvest_client_id`` property. Compared: ``name`` (normalised), ``currency``.
- ``deals_without_project``: HubSpot closed-won deals closed more than ``deal_handoff_days``
  (14) days before as-of whose ``project_code`` matches no Harvest project code.
- ``projects_psa_erp``: Harvest projects → Odoo projects matched on ``x_harvest_id``. Compared:
  ``customer_id`` (HubSpot id of the customer on each side), ``billing_model``, ``status``
  (active/archived), ``currency``, ``legal_entity_id``.
- ``time_entries_psa_erp``: approved (``is_closed``) Harvest time entries → Odoo timesheet lines
  matched on ``x_harvest_id``. Compared: ``hours`` (abs tolerance 0.01 h), ``amount`` (cost:
  hours × cost rate vs ``-amount``, abs tolerance 0.01), ``project_code``, ``billing_period``
  (``YYYY-MM`` of the date). An Odoo line without ``x_harvest_id`` is missing in the source; one
  whose ``x_harvest_id`` is unknown is an orphan; a second line with the same id is a duplicate.
- ``time_totals_psa_erp``: approved Harvest hours vs all Odoo timesheet hours per project code
  and billing period, abs tolerance 0.10 h (``field`` = ``hours``).
- ``unbilled_time``: approved billable Harvest time on time-and-materials projects, in a billing
  period that ended before as-of, on no invoice; aged by ``as_of - spent_date``.
- ``invoices_erp_psa``: Odoo customer invoices → Harvest invoices matched on ``x_harvest_id``.
  Compared: ``amount`` (total, abs tolerance 0.01), ``currency``, ``status`` (canonical: draft,
  posted, paid, cancelled).
- ``invoice_vs_time``: per Harvest time-and-materials invoice present in Odoo, the billed time
  (sum of hours × billable rate of the time entries on it) vs the Odoo invoice's untaxed
  amount, abs tolerance 0.01 (``field`` = ``amount``).

Data quality: the data-quality suites (``checks/suites/*.yaml``) name their rules
``<object>.<expectation id>``; each failing record is one ``failed_expectation`` break with
``source_id`` the record's id in the failing system, ``field`` the column checked, and
``target_system``, ``target_id`` and ``aging_bucket`` NULL. The demo's defects of this kind
(``QUALITY_KINDS``, injected by ``demo.quality``) all sit in Harvest (``psa``) time entries still
awaiting approval (``is_closed`` false). No reconciliation rule reads those, so the rows of the
rules above are the same with and without them.

- ``negative_hours``: ``hours`` below zero: ``time_entries.hours_in_range`` (``hours``). The
  amounts are hours × rate, so ``time_entries.cost_amount_in_range`` (``cost_amount``) fails too,
  and for a billable entry ``time_entries.billable_amount_in_range`` (``billable_amount``).
- ``future_date``: ``spent_date`` 20 to 60 days after as-of (the business date):
  ``time_entries.spent_date_in_range`` (``spent_date``).
- ``unknown_currency``: the entry's ``client.currency`` is ``XYZ``, no ISO 4217 code:
  ``time_entries.currency_in_set`` (``currency``).
- ``null_project``: the entry's ``project`` is null: ``time_entries.project_id_not_null``
  (``project_id``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("rule_id", pa.string()),
        ("break_type", pa.string()),
        ("object", pa.string()),
        ("source_system", pa.string()),
        ("target_system", pa.string()),
        ("source_id", pa.string()),
        ("target_id", pa.string()),
        ("field", pa.string()),
        ("defect", pa.string()),
        ("legal_entity_id", pa.string()),
        ("aging_bucket", pa.string()),
    ]
)

RULES: dict[str, tuple[str, str, str]] = {
    # rule_id: (object, source_system, target_system)
    "customers_crm_erp": ("customers", "crm", "erp"),
    "customers_crm_psa": ("customers", "crm", "psa"),
    "deals_without_project": ("projects", "crm", "psa"),
    "projects_psa_erp": ("projects", "psa", "erp"),
    "time_entries_psa_erp": ("time_entries", "psa", "erp"),
    "time_totals_psa_erp": ("time_entries", "psa", "erp"),
    "unbilled_time": ("time_entries", "psa", "psa"),
    "invoices_erp_psa": ("invoices", "erp", "psa"),
    "invoice_vs_time": ("invoices", "psa", "erp"),
}

# defect kind: (rule_id, break_type, fields) — an empty rule_id marks a difference within
# tolerance that must cause no break. Kinds whose breaks are derived by aggregation
# (time_totals_psa_erp, invoice_vs_time) are computed from the finished tables instead.
DEFECT_KINDS: dict[str, tuple[str, str, tuple[str | None, ...]]] = {
    "customer_missing_in_erp": ("customers_crm_erp", "missing_in_target", (None,)),
    "customer_only_in_erp": ("customers_crm_erp", "missing_in_source", (None,)),
    "customer_unknown_crm_ref": ("customers_crm_erp", "orphan", (None,)),
    "customer_duplicated_in_erp": ("customers_crm_erp", "duplicate", (None,)),
    "customer_name_changed": ("customers_crm_erp", "field_mismatch", ("name",)),
    "customer_name_respelled_inside": ("", "", ()),
    "customer_tax_id_changed": ("customers_crm_erp", "field_mismatch", ("tax_id",)),
    "customer_tax_id_spaced_inside": ("", "", ()),
    "customer_currency_changed": ("customers_crm_erp", "field_mismatch", ("currency",)),
    "customer_entity_changed": ("customers_crm_erp", "field_mismatch", ("legal_entity_id",)),
    "customer_country_changed": ("customers_crm_erp", "field_mismatch", ("country",)),
    "client_missing_in_psa": ("customers_crm_psa", "missing_in_target", (None,)),
    "client_only_in_psa": ("customers_crm_psa", "missing_in_source", (None,)),
    "client_name_changed": ("customers_crm_psa", "field_mismatch", ("name",)),
    "client_name_respelled_inside": ("", "", ()),
    "client_currency_changed": ("customers_crm_psa", "field_mismatch", ("currency",)),
    "deal_without_project": ("deals_without_project", "missing_in_target", (None,)),
    "deal_in_handoff_inside": ("", "", ()),
    "project_missing_in_erp": ("projects_psa_erp", "missing_in_target", (None,)),
    "project_only_in_erp": ("projects_psa_erp", "missing_in_source", (None,)),
    "project_customer_changed": ("projects_psa_erp", "field_mismatch", ("customer_id",)),
    "project_billing_model_changed": ("projects_psa_erp", "field_mismatch", ("billing_model",)),
    "project_status_changed": ("projects_psa_erp", "field_mismatch", ("status",)),
    "project_currency_changed": ("projects_psa_erp", "field_mismatch", ("currency",)),
    "project_entity_changed": ("projects_psa_erp", "field_mismatch", ("legal_entity_id",)),
    "time_not_posted": ("time_entries_psa_erp", "missing_in_target", (None,)),
    "time_only_in_erp": ("time_entries_psa_erp", "missing_in_source", (None,)),
    "time_unknown_harvest_ref": ("time_entries_psa_erp", "orphan", (None,)),
    "time_double_posted": ("time_entries_psa_erp", "duplicate", (None,)),
    "time_hours_changed": ("time_entries_psa_erp", "field_mismatch", ("hours", "amount")),
    "time_hours_on_tolerance_inside": ("", "", ()),
    "time_amount_changed": ("time_entries_psa_erp", "field_mismatch", ("amount",)),
    "time_amount_on_tolerance_inside": ("", "", ()),
    "time_wrong_project": ("time_entries_psa_erp", "field_mismatch", ("project_code",)),
    "time_wrong_period": ("time_entries_psa_erp", "field_mismatch", ("billing_period",)),
    "time_date_shift_inside": ("", "", ()),
    "time_unbilled": ("unbilled_time", "aged", (None,)),
    "invoice_only_in_erp": ("invoices_erp_psa", "missing_in_target", (None,)),
    "invoice_missing_in_erp": ("invoices_erp_psa", "missing_in_source", (None,)),
    "invoice_amount_changed": ("invoices_erp_psa", "field_mismatch", ("amount",)),
    "invoice_tax_rounding_inside": ("", "", ()),
    "invoice_currency_changed": ("invoices_erp_psa", "field_mismatch", ("currency",)),
    "invoice_status_not_fed_back": ("invoices_erp_psa", "field_mismatch", ("status",)),
    "invoice_manual_adjustment": ("", "", ()),  # breaks only invoice_vs_time (derived)
}


# data-quality defect kind: (object, failing system, (expectation id, field) of each expectation
# it fails). The rule id is ``<object>.<expectation id>`` (``checks.spec``).
QUALITY_KINDS: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    "negative_hours": ("time_entries", "psa", (("hours_in_range", "hours"),
                                               ("cost_amount_in_range", "cost_amount"),
                                               ("billable_amount_in_range", "billable_amount"))),
    "future_date": ("time_entries", "psa", (("spent_date_in_range", "spent_date"),)),
    "unknown_currency": ("time_entries", "psa", (("currency_in_set", "currency"),)),
    "null_project": ("time_entries", "psa", (("project_id_not_null", "project_id"),)),
}  # fmt: skip


def aging_bucket(age_days: int) -> str:
    """Return the unbilled-time aging bucket of an age in days (0-30, 31-60, 61-90, 90+)."""
    if age_days <= 30:
        return "0-30"
    if age_days <= 60:
        return "31-60"
    return "61-90" if age_days <= 90 else "90+"


@dataclass
class GroundTruth:
    """Collects expected breaks and defect counts while the firm is generated."""

    rows: list[dict[str, str | None]] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        defect: str,
        *,
        source_id: object | None,
        target_id: object | None,
        legal_entity_id: str,
        aging: str | None = None,
    ) -> None:
        """Record one injected defect of kind ``defect`` and the breaks it must cause.

        Raises:
            KeyError: ``defect`` is not in ``DEFECT_KINDS``.
        """
        rule_id, break_type, fields = DEFECT_KINDS[defect]
        self.injected[defect] = self.injected.get(defect, 0) + 1
        if not rule_id:
            return
        for f in fields:
            self._append(rule_id, break_type, source_id, target_id, f, defect, legal_entity_id, aging)

    def add_quality(
        self,
        defect: str,
        *,
        source_id: object,
        legal_entity_id: str,
        fields: Collection[str] | None = None,
    ) -> None:
        """Record one injected data-quality defect of kind ``defect`` and the failed expectations it causes.

        Args:
            defect: a kind of ``QUALITY_KINDS``.
            source_id: the failing record's id in the failing system.
            legal_entity_id: legal entity of the record.
            fields: the fields of the kind that fail for this record (default: all); e.g. a
                non-billable entry has no billable amount to fail.

        Raises:
            KeyError: ``defect`` is not in ``QUALITY_KINDS``.
        """
        obj, system, expectations = QUALITY_KINDS[defect]
        self.injected[defect] = self.injected.get(defect, 0) + 1
        for expectation, f in expectations:
            if fields is None or f in fields:
                self.rows.append({
                    "rule_id": f"{obj}.{expectation}", "break_type": "failed_expectation", "object": obj,
                    "source_system": system, "target_system": None, "source_id": str(source_id),
                    "target_id": None, "field": f, "defect": defect, "legal_entity_id": legal_entity_id,
                    "aging_bucket": None,
                })  # fmt: skip

    def add_derived(self, rule_id: str, break_type: str, rows: list[tuple[Any, ...]]) -> None:
        """Record breaks derived by aggregating the finished tables.

        Args:
            rule_id: the rule that must report them.
            break_type: their break type.
            rows: one tuple per break: (source_id, target_id, field, legal_entity_id).
        """
        for source_id, target_id, field_name, legal_entity_id in rows:
            self._append(rule_id, break_type, source_id, target_id, field_name, "derived",
                         str(legal_entity_id), None)  # fmt: skip

    def _append(
        self, rule_id: str, break_type: str, source_id: object | None, target_id: object | None,
        field: str | None, defect: str, legal_entity_id: str, aging: str | None,
    ) -> None:  # fmt: skip
        obj, source_system, target_system = RULES[rule_id]
        self.rows.append({
            "rule_id": rule_id, "break_type": break_type, "object": obj,
            "source_system": source_system, "target_system": target_system,
            "source_id": None if source_id is None else str(source_id),
            "target_id": None if target_id is None else str(target_id),
            "field": field, "defect": defect, "legal_entity_id": legal_entity_id,
            "aging_bucket": aging,
        })  # fmt: skip

    def write(self, path: Path) -> int:
        """Write the rows sorted by rule, type and ids to ``path``; return the row count."""
        key = ("rule_id", "break_type", "source_id", "target_id", "field")
        rows = sorted(self.rows, key=lambda r: tuple(r[k] or "" for k in key))
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
        return len(rows)
