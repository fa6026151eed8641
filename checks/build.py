"""Suite specs to Great Expectations (GX Core 1.x): one registry, spec key -> expectation.

GX has no released DuckDB data source, so a snapshot is validated as pandas DataFrames
(:mod:`checks.validate` reads them through DuckDB): one ephemeral context per check run
(:class:`GxContext`), a pandas data source per system, a dataframe asset and whole-dataframe batch
definition per object, and one :class:`GxSuite` per suite and system whose ``validate(frame)``
validates one batch. A snapshot's batches are merged into one result, which is kept for the run's
Data Docs (:meth:`GxContext.keep`, :meth:`GxContext.build_docs`).
This is the only module that imports ``great_expectations``,
lazily: its import takes seconds.

Every expectation reports the failing rows' record ids (``unexpected_index_column_names``: the
object's key), at most ``max_ids`` of them per batch (GX's ``SUMMARY`` result with
``partial_unexpected_count``), so memory stays bounded however many rows fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pycountry

from checks.spec import ExpectationSpec, Suite

__all__ = ["Bounds", "GxContext", "GxSuite", "ISO_4217", "REGISTRY", "derived_column"]

#: Every ISO 4217 currency code (pycountry).
ISO_4217: tuple[str, ...] = tuple(sorted(c.alpha_3 for c in pycountry.currencies))


@dataclass(frozen=True)
class Bounds:
    """What the symbolic date bounds mean: ``founded`` (None: unbounded) and ``today``."""

    founded: date | None
    today: date


def derived_column(spec: ExpectationSpec) -> str | None:
    """The column a ``sum_equals`` check reads: ``total - (a + b ...)``, exact in DuckDB, else None."""
    if spec.sum_equals is None:
        return None
    return f"_{spec.name}"


def _num(value: Decimal | None) -> float | None:
    # Money and hours arrive as float64 (see checks.validate): a bound that is a whole number of
    # cents compares exactly, because rounding to float64 keeps the order of distinct cents.
    return None if value is None else float(value)


def _date(word: str, bounds: Bounds) -> date | None:
    if word == "founded":
        return bounds.founded
    return bounds.today if word == "today" else date.fromisoformat(word)


def _not_null(gxe: Any, s: ExpectationSpec, b: Bounds) -> Any:
    return gxe.ExpectColumnValuesToNotBeNull(column=s.column, mostly=s.mostly)


def _unique(gxe: Any, s: ExpectationSpec, b: Bounds) -> Any:
    if s.columns is not None:
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=s.columns, mostly=s.mostly)
    return gxe.ExpectColumnValuesToBeUnique(column=s.column, mostly=s.mostly)


def _between(gxe: Any, s: ExpectationSpec, b: Bounds) -> Any:
    assert s.between is not None
    lo, hi = s.between
    return gxe.ExpectColumnValuesToBeBetween(column=s.column, min_value=_num(lo), max_value=_num(hi),
                                             mostly=s.mostly)  # fmt: skip


def _in_set(gxe: Any, s: ExpectationSpec, b: Bounds) -> Any:
    values = list(ISO_4217) if s.in_set == "iso4217" else list(s.in_set or [])
    return gxe.ExpectColumnValuesToBeInSet(column=s.column, value_set=values, mostly=s.mostly)


def _matches(gxe: Any, s: ExpectationSpec, b: Bounds) -> Any:
    return gxe.ExpectColumnValuesToMatchRegex(column=s.column, regex=s.matches, mostly=s.mostly)


def _date_between(gxe: Any, s: ExpectationSpec, b: Bounds) -> Any:
    import pandas as pd

    assert s.date_between is not None
    # DATE columns arrive as datetime64[ns] (checks.validate): GX compares those vectorised,
    # other date types one Python value at a time
    lo, hi = (None if d is None else pd.Timestamp(d) for d in (_date(w, b) for w in s.date_between))
    return gxe.ExpectColumnValuesToBeBetween(column=s.column, min_value=lo, max_value=hi, mostly=s.mostly)


def _sum_equals(gxe: Any, s: ExpectationSpec, b: Bounds) -> Any:
    # the difference is computed exactly (DECIMAL) in DuckDB; zero stays exactly zero as a float
    return gxe.ExpectColumnValuesToBeBetween(column=derived_column(s), min_value=0, max_value=0,
                                             mostly=s.mostly)  # fmt: skip


#: Spec key -> builder of its GX expectation (``gxe`` is ``great_expectations.expectations``).
REGISTRY: dict[str, Callable[[Any, ExpectationSpec, Bounds], Any]] = {
    "not_null": _not_null,
    "unique": _unique,
    "between": _between,
    "in_set": _in_set,
    "matches": _matches,
    "date_between": _date_between,
    "sum_equals": _sum_equals,
}


class GxContext:
    """One ephemeral GX context for a check run: its suites, and the Data Docs site of the run.

    Args:
        docs_dir: where the Data Docs site is built by :meth:`build_docs` (None: no docs).
    """

    def __init__(self, docs_dir: Path | None = None) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.docs_dir = docs_dir
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        if docs_dir is not None:
            self.context.add_data_docs_site(site_name="tieout", site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(docs_dir)},
            })  # fmt: skip
        self._sources: dict[str, Any] = {}
        self._stored = 0

    def suite(self, suite: Suite, system: str, *, key: str, bounds: Bounds, max_ids: int) -> GxSuite:
        """Compile ``suite`` for ``system``'s snapshots (see :class:`GxSuite`)."""
        import great_expectations.expectations as gxe

        gx = self.gx
        if system not in self._sources:
            self._sources[system] = self.context.data_sources.add_pandas(system)
        asset = self._sources[system].add_dataframe_asset(suite.object)
        definition = asset.add_batch_definition_whole_dataframe("snapshot")
        specs = suite.expectations(system)
        gx_suite = self.context.suites.add(gx.ExpectationSuite(name=f"{suite.object}.{system}"))
        for i, spec in enumerate(specs):
            expectation = REGISTRY[spec.key](gxe, spec, bounds)
            expectation.meta = {"tieout_index": i, "rule_id": f"{suite.object}.{spec.name}"}
            gx_suite.add_expectation(expectation)
        return GxSuite(suite, specs, key, max_ids, definition, gx_suite)

    def keep(self, result: Any, gx_suite: GxSuite, snapshot_id: str) -> None:
        """Store one snapshot's (merged) validation result for :meth:`build_docs`."""
        if self.docs_dir is None:
            return
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        suite_id = ExpectationSuiteIdentifier(name=gx_suite.gx_suite.name)
        run = RunIdentifier(run_name=snapshot_id, run_time=result.meta.get("validation_time"))
        key = ValidationResultIdentifier(expectation_suite_identifier=suite_id, run_id=run,
                                         batch_identifier=snapshot_id)  # fmt: skip
        self.context.validation_results_store.set(key, result)
        self._stored += 1

    def build_docs(self) -> Path | None:
        """Build the Data Docs of the results kept so far; return ``index.html`` (None: no docs)."""
        if self.docs_dir is None or not self._stored:
            return None
        self.context.build_data_docs(site_names=["tieout"])
        return self.docs_dir / "index.html"


@dataclass(frozen=True)
class GxSuite:
    """A suite compiled to GX for one system (:meth:`GxContext.suite`).

    Attributes:
        suite: the suite spec. specs: its expectations for the system, in order.
        key: the object's key column (record ids of failures). max_ids: most ids kept per batch.
        definition: the GX batch definition (a whole pandas DataFrame). gx_suite: the GX suite.
    """

    suite: Suite
    specs: list[ExpectationSpec]
    key: str
    max_ids: int
    definition: Any
    gx_suite: Any

    def validate(self, frame: Any) -> Any:
        """Validate one batch (a pandas DataFrame with the checked and derived columns and the key).

        Returns:
            GX's ``ExpectationSuiteValidationResult``, not stored (results are merged per snapshot
            first, see :func:`checks.validate.validate_snapshot`).
        """
        batch = self.definition.get_batch(batch_parameters={"dataframe": frame})
        result_format = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": self.max_ids,
            "unexpected_index_column_names": [self.key],
        }
        return batch.validate(self.gx_suite, result_format=result_format)

    def outcomes(self, result: Any) -> list[dict[str, Any]]:
        """One dict per expectation of ``result``, in :attr:`specs` order.

        Keys: ``success`` (bool), ``element_count``, ``unexpected_count`` (rows), ``ids`` (failing
        record ids, None for a row without one; at most ``max_ids``), ``gx_type`` (the GX
        expectation type), ``error`` (GX's exception message, or None).
        """
        out: list[dict[str, Any]] = [{} for _ in self.specs]
        for r in result.results:
            i = int(r.expectation_config.meta["tieout_index"])
            info = r.exception_info or {}
            raised = bool(info.get("raised_exception")) if isinstance(info, dict) else False
            res = r.result or {}
            ids = [_record_id(row[self.key]) for row in res.get("partial_unexpected_index_list") or []]
            out[i] = {
                "success": bool(r.success) and not raised,
                "element_count": int(res.get("element_count") or 0),
                "unexpected_count": int(res.get("unexpected_count") or 0),
                "ids": ids,
                "gx_type": r.expectation_config.type,
                "error": info.get("exception_message") if raised else None,
            }
        return out


def _record_id(value: Any) -> str | None:
    # pandas hands a missing key back as NaN or None
    return None if value is None or value != value else str(value)
