"""Settings of the demo firm generator: scale presets and defect rates.

A :class:`FirmConfig` fully determines a generated firm: the same config (seed, scale, as-of date)
gives byte-identical tables.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scale = Literal["small", "default", "large"]


class ScaleSpec(BaseModel):
    """Size of the firm.

    Attributes:
        customers: CRM companies that are customers (lifecycle stage ``customer``).
        prospects: CRM companies that are not customers (never expected downstream).
        consultants: people logging time; about 2 time entries per consultant and working day.
        projects_per_customer: mean projects per customer with projects.
        months: months of time history, ending with the as-of month.
        parquet_rows: rows per Parquet part of the time-entry tables.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    customers: int = Field(gt=0)
    prospects: int = Field(ge=0)
    consultants: int = Field(gt=0)
    projects_per_customer: float = Field(gt=0)
    months: int = Field(12, ge=4)
    parquet_rows: int = Field(1_000_000, gt=0)


SCALES: dict[Scale, ScaleSpec] = {
    # about 6 thousand time entries
    "small": ScaleSpec(customers=48, prospects=10, consultants=12, projects_per_customer=1.6),
    # about 150 thousand time entries
    "default": ScaleSpec(customers=320, prospects=60, consultants=290, projects_per_customer=1.8),
    # about 10.1 million time entries, streamed month by month in parts of 500 thousand rows
    "large": ScaleSpec(
        customers=4000, prospects=500, consultants=20800, projects_per_customer=2.0, parquet_rows=500_000
    ),
}


class DefectRates(BaseModel):
    """How often each kind of defect is injected, as a fraction of the records it can hit.

    Every kind is injected at least ``minimum`` times, so the ``small`` firm exercises every rule.
    Kinds are named ``<object>_<what>``; ``demo.ground_truth`` documents the break each one causes
    (kinds ending in ``_inside`` are differences within tolerance: they must cause no break).

    ``quality`` is the rate of each data-quality kind (``demo.quality``) among the time entries
    still awaiting approval; unlike the others, 0 turns those kinds off, minimum included.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum: int = Field(2, ge=1)
    customer: float = Field(0.02, ge=0, le=0.2)
    project: float = Field(0.02, ge=0, le=0.2)
    deal: float = Field(0.03, ge=0, le=0.2)
    time_entry: float = Field(0.001, ge=0, le=0.05)
    unbilled: float = Field(0.002, ge=0, le=0.05)
    invoice: float = Field(0.02, ge=0, le=0.2)
    quality: float = Field(0.005, ge=0, le=0.05)


class FirmConfig(BaseModel):
    """Everything the generator needs.

    Attributes:
        seed: random seed; the same config always generates the same firm.
        scale: size preset name.
        as_of: the firm's "today": time runs up to the day before; billing periods that ended
            before it are invoiced (on the 1st of the next month).
        reporting_currency: ISO 4217 code the FX table converts to.
        deal_handoff_days: days after close-won within which a deal may still lack a project.
        defects: defect rates.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 7
    scale: Scale = "default"
    as_of: date
    reporting_currency: str = "USD"
    deal_handoff_days: int = Field(14, gt=0)
    defects: DefectRates = DefectRates()

    @property
    def size(self) -> ScaleSpec:
        """Return the scale preset."""
        return SCALES[self.scale]
