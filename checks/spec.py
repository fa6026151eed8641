"""Data-quality suites as data: ``checks/suites/<object>.yaml`` parsed and validated into pydantic models.

One suite per canonical object; it runs on every system's snapshot of that object, and a system
whose fields differ gets its own additions and omissions under ``systems``::

    object: time_entries
    volume: {max_change_pct: 50}          # row count change against the previous snapshot
    expect:
      - {column: time_entry_id, not_null: true}
      - {column: time_entry_id, unique: true}
      - {column: hours, between: [0, 24]}
      - {column: currency, in_set: iso4217}
      - {column: spent_date, date_between: [founded, today]}
    systems:
      erp:
        expect:
          - {id: harvest_reference_present, column: psa_id, not_null: true}
        skip: [project_id_not_null]

Each expectation has exactly one check key (:data:`CHECK_KEYS`; :mod:`checks.build` turns each
into one Great Expectations expectation) and an ``id``, by default ``<column>_<check>``
(``hours_in_range``, ``currency_in_set``); the rule id
of its breaks is ``<object>.<id>``. Columns are canonical columns (:mod:`data.canonical`);
bounds are checked against the column's type. Bad files are refused with :class:`SuiteError`
naming the file, the suite and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from data.canonical import CANONICAL, OBJECTS

__all__ = ["CHECK_KEYS", "DEFAULT_SUITES", "ExpectationSpec", "Suite", "SuiteError", "load_suites"]

#: The project's suites folder.
DEFAULT_SUITES = Path(__file__).resolve().parent / "suites"
#: Check keys an expectation may use (exactly one each).
CHECK_KEYS = ("not_null", "unique", "between", "in_set", "matches", "date_between", "sum_equals")
#: Symbolic date bounds of ``date_between``: the firm's founding (``founded`` in sources.yaml) and
#: the business date (``business_date`` in sources.yaml, else the day the check runs).
DATE_WORDS = ("founded", "today")
#: Date bounds must lie strictly inside this range (pandas' datetime64[ns], which GX compares fast).
DATE_RANGE = (date(1678, 1, 1), date(2262, 4, 11))
_NUMERIC = ("DECIMAL(18,2)",)
_SUFFIX = {"not_null": "not_null", "unique": "unique", "between": "in_range", "in_set": "in_set",
           "matches": "format", "date_between": "in_range", "sum_equals": "sum"}  # fmt: skip


class SuiteError(ValueError):
    """A suite file cannot be used; the message names the file, the suite and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SumEquals(_Strict):
    """``total`` must equal the sum of ``columns`` exactly (DECIMAL arithmetic in DuckDB)."""

    columns: list[str] = Field(min_length=1)
    total: str


class ExpectationSpec(_Strict):
    """One expectation of a suite: a column (or columns), one check key, and its argument.

    Attributes:
        id: the expectation's id in its suite (default ``<column>_<check>``, e.g. ``hours_in_range``).
        column / columns: the canonical column checked (``columns`` for a compound ``unique``).
        not_null / unique: ``true``.
        between: ``[min, max]`` for a DECIMAL column (either may be null: unbounded).
        in_set: a list of allowed values, or ``iso4217`` (every ISO 4217 currency code).
        matches: a regular expression every value must match.
        date_between: ``[from, to]`` for a DATE column: ISO dates, ``founded`` or ``today``.
        sum_equals: the row's ``total`` column equals the sum of ``columns``.
        mostly: the share of rows that must pass (1 = all).
    """

    id: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$")
    column: str | None = None
    columns: list[str] | None = None
    not_null: bool | None = None
    unique: bool | None = None
    between: tuple[Decimal | None, Decimal | None] | None = None
    in_set: list[str] | str | None = None
    matches: str | None = None
    date_between: tuple[str, str] | None = None
    sum_equals: SumEquals | None = None
    mostly: float = Field(1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _one_check(self) -> ExpectationSpec:
        keys = [k for k in CHECK_KEYS if getattr(self, k) is not None]
        if len(keys) != 1:
            found = ", ".join(keys) or "none"
            raise ValueError(f"needs exactly one check key of {', '.join(CHECK_KEYS)}; found {found}")
        if (self.column is None) == (self.columns is None) and self.sum_equals is None:
            raise ValueError("needs 'column' (or 'columns' for a compound unique)")
        if self.columns is not None and self.key != "unique":
            raise ValueError("'columns' is only for 'unique'; use 'column'")
        if self.not_null is False or self.unique is False:
            raise ValueError(f"{self.key}: only 'true' is meaningful; remove the expectation instead")
        if self.between is not None and None not in self.between and self.between[0] > self.between[1]:  # type: ignore[operator]
            raise ValueError(f"between: min {self.between[0]} is above max {self.between[1]}")
        if isinstance(self.in_set, str) and self.in_set != "iso4217":
            raise ValueError(f"in_set: a list of values or 'iso4217', not {self.in_set!r}")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"matches: not a regular expression: {exc}") from None
        if self.date_between is not None:
            for bound in self.date_between:
                if bound not in DATE_WORDS:
                    try:
                        day = date.fromisoformat(bound)
                    except ValueError:
                        raise ValueError(
                            f"date_between: {bound!r} is not an ISO date, 'founded' or 'today'"
                        ) from None
                    if not DATE_RANGE[0] < day < DATE_RANGE[1]:
                        raise ValueError(f"date_between: {bound} is outside {DATE_RANGE[0]}..{DATE_RANGE[1]}")
        return self

    @property
    def key(self) -> str:
        """The check key (one of :data:`CHECK_KEYS`)."""
        return next(k for k in CHECK_KEYS if getattr(self, k) is not None)

    @property
    def checked(self) -> list[str]:
        """The columns the expectation reads."""
        if self.sum_equals is not None:
            return [*self.sum_equals.columns, self.sum_equals.total]
        return list(self.columns) if self.columns is not None else [str(self.column)]

    @property
    def field(self) -> str:
        """The column a failure is reported on (``total`` for ``sum_equals``)."""
        return self.sum_equals.total if self.sum_equals is not None else "|".join(self.checked)

    @property
    def name(self) -> str:
        """The expectation id (explicit, or ``<column>_<check>``)."""
        cols = self.checked if self.sum_equals is None else [self.field]
        return self.id or f"{'_'.join(cols)}_{_SUFFIX[self.key]}"


class SystemOverride(_Strict):
    """A system's differences: expectations added, and ids of the suite's expectations skipped."""

    expect: list[ExpectationSpec] = Field(default_factory=list)
    skip: list[str] = Field(default_factory=list)


class Volume(_Strict):
    """The band for the row count against the previous snapshot, in percent either way."""

    max_change_pct: Decimal = Field(Decimal(50), gt=0)


class Suite(_Strict):
    """One suite file: the object, its expectations, per-system overrides and the volume band.

    Attributes:
        object: the canonical object (one of :data:`data.canonical.OBJECTS`).
        expect: expectations for every system's snapshot of the object.
        systems: per-system overrides (system slug -> :class:`SystemOverride`).
        volume: the row-count band against the previous snapshot.
        path: the file it came from.
    """

    object: str
    expect: list[ExpectationSpec] = Field(min_length=1)
    systems: dict[str, SystemOverride] = Field(default_factory=dict)
    volume: Volume = Field(default_factory=Volume)
    path: Path

    @model_validator(mode="after")
    def _names(self) -> Suite:
        if self.object not in OBJECTS:
            raise ValueError(f"object: unknown object {self.object!r}; objects: {', '.join(OBJECTS)}")
        table = CANONICAL[self.object]
        groups = [("expect", self.expect)] + [
            (f"systems.{s}.expect", o.expect) for s, o in self.systems.items()
        ]
        ids = [e.name for e in self.expect]
        for where, specs in groups:
            for i, spec in enumerate(specs):
                _check_columns(f"{where}.{i}", spec, table.name)
        dupes = sorted({n for n in ids if ids.count(n) > 1})
        if dupes:
            raise ValueError(f"expect: ids used twice: {', '.join(dupes)} (give one an explicit 'id')")
        for system, override in self.systems.items():
            unknown = [s for s in override.skip if s not in ids]
            if unknown:
                raise ValueError(
                    f"systems.{system}.skip: {', '.join(unknown)} not an expectation id of the suite; "
                    f"ids: {', '.join(ids)}"
                )
            added = [e.name for e in override.expect]
            clash = sorted(set(added) & set(ids) - set(override.skip))
            if clash:
                raise ValueError(f"systems.{system}.expect: ids already in the suite: {', '.join(clash)}")
        return self

    def expectations(self, system: str) -> list[ExpectationSpec]:
        """The expectations that apply to ``system``'s snapshot (suite's, minus skipped, plus added)."""
        override = self.systems.get(system)
        if override is None:
            return list(self.expect)
        return [e for e in self.expect if e.name not in override.skip] + list(override.expect)


def _check_columns(where: str, spec: ExpectationSpec, obj: str) -> None:
    table = CANONICAL[obj]
    for col in spec.checked:
        if col not in table.names:
            raise ValueError(f"{where}: unknown column {col!r} of {obj}; columns: {', '.join(table.names)}")
    types = {table.column(c).sql_type for c in spec.checked}
    need = {
        "between": set(_NUMERIC),
        "sum_equals": set(_NUMERIC),
        "date_between": {"DATE"},
        "in_set": {"VARCHAR"},
        "matches": {"VARCHAR"},
    }.get(spec.key)
    if need is not None and not types <= need:
        raise ValueError(
            f"{where}: {spec.key} needs a {' or '.join(sorted(need))} column; "
            f"{', '.join(spec.checked)} is {', '.join(sorted(types))}"
        )
    if spec.key == "unique" and table.key not in spec.checked:
        # large snapshots are validated in batches split by the key, so only sets holding it stay whole
        raise ValueError(f"{where}: unique columns must include the object's key {table.key!r}")


def load_suites(folder: Path = DEFAULT_SUITES, systems: Mapping[str, Any] | None = None) -> dict[str, Suite]:
    """Read and validate every ``*.yaml`` suite in ``folder``; return them by object.

    Args:
        folder: the suites folder.
        systems: the configured systems (``sources.yaml``); an override for another system is refused.

    Raises:
        SuiteError: a file is unreadable, not YAML or invalid (names the file, the suite and the key),
            or two files cover the same object.
    """
    suites: dict[str, Suite] = {}
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise SuiteError(f"{folder}: no suite files (*.yaml)")
    for path in files:
        suite = _load(path)
        if suite.object in suites:
            raise SuiteError(f"{path}: suite {suite.object!r} is also defined in {suites[suite.object].path}")
        for system in suite.systems:
            if systems is not None and system not in systems:
                raise SuiteError(
                    f"{path}: suite {suite.object!r}: systems.{system}: unknown system; "
                    f"systems: {', '.join(systems)}"
                )
        suites[suite.object] = suite
    return suites


def _load(path: Path) -> Suite:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise SuiteError(f"{path}: expected a mapping with 'object' and 'expect'")
    name = str(data.get("object", path.stem))
    try:
        return Suite.model_validate({**data, "path": path})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = (
                    f"unknown key; expectation keys are id, column, columns, {', '.join(CHECK_KEYS)}, mostly"
                )
            lines.append(f"  {loc or '(suite)'}: {msg}")
        raise SuiteError(f"{path}: suite {name!r}:\n" + "\n".join(lines)) from None
