"""Reconciliation rules as data: ``rules.yaml`` parsed and validated into frozen pydantic models.

A rule file has ``settings`` (valuation and aging) and ``rules``; ``reconcile/rules.yaml`` is the
starter catalogue for the demo's three systems. One rule, in short::

    - rule_id: time_entries_psa_erp
      kind: match                      # match | aggregate | aged
      source: {object: time_entries, system: psa, filter: "approved"}
      target: {object: time_entries, system: erp}
      system_of_record: psa
      match_key: {source: [time_entry_id], target: [psa_id]}
      compare:
        hours: {tolerance: {kind: numeric, abs_tol: "0.01"}, value: difference}
        amount: {source: cost_amount, target: cost_amount, tolerance: {kind: numeric, abs_tol: "0.01"}}
      context: {project_code: project_code, invoice_cycle: billing_period}
      value: {amount: cost_amount, currency: currency}

Expressions (filters, compared values, lookups, context) are DuckDB SQL over the side's canonical
columns (:mod:`data.canonical`) and its lookups; ``{as_of}`` stands for the reconciliation's
business date. Structure is checked here (:class:`RuleError` naming the rule, the key path and
the allowed values); :func:`reconcile.validate.validate_rules` then binds every expression
against the canonical tables, so an unknown column is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data.canonical import OBJECTS, ObjectName

__all__ = [
    "BREAK_TYPES",
    "Compare",
    "DateWindow",
    "Exact",
    "FuzzyText",
    "LookupSpec",
    "MatchKey",
    "NormalizedText",
    "Numeric",
    "ReconciliationRule",
    "RuleError",
    "RuleSet",
    "Settings",
    "Side",
    "Sides",
    "load_rules",
]

BREAK_TYPES = (
    "missing_in_target",
    "missing_in_source",
    "field_mismatch",
    "duplicate",
    "orphan",
    "aggregate_mismatch",
    "aged",
)
BreakType = Literal[
    "missing_in_target", "missing_in_source", "field_mismatch", "duplicate", "orphan",
    "aggregate_mismatch", "aged",
]  # fmt: skip
Severity = Literal["low", "medium", "high"]
_NAME = r"^[a-z][a-z0-9_]*$"


class RuleError(ValueError):
    """A rule file cannot be used; the message names the file, the rule, the key path and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sides(_Strict):
    """One SQL expression per side. In YAML a plain string means the same expression on both sides."""

    source: str | None = None
    target: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, data: Any) -> Any:
        return {"source": data, "target": data} if isinstance(data, str) else data


class Side(_Strict):
    """A rule's source or target: a canonical object of one system, optionally filtered (SQL)."""

    object: ObjectName
    system: Annotated[str, Field(pattern=_NAME)]
    filter: str | None = None


class LookupSpec(_Strict):
    """A value looked up in another object, usable by name in the side's expressions.

    ``by`` maps expressions of this side (which may use the side's earlier lookups) to columns of
    the looked-up object (not ``on``, which YAML reads as true); ``value`` is an expression over
    the looked-up object. When several looked-up rows match, the smallest value is taken, so a
    lookup never multiplies rows.
    """

    name: Annotated[str, Field(pattern=_NAME)]
    side: Literal["source", "target"]
    object: ObjectName
    system: Annotated[str, Field(pattern=_NAME)]
    by: Annotated[dict[str, str], Field(min_length=1)]
    value: str


class Crosswalk(_Strict):
    """A mapping table (CSV or Parquet, path relative to the rules file) from source to target keys."""

    path: str
    source_column: str
    target_column: str

    @field_validator("path")
    @classmethod
    def _suffix(cls, path: str) -> str:
        if Path(path).suffix.lower() not in (".csv", ".parquet"):
            raise ValueError(f"{path!r} must end in .csv or .parquet")
        return path


class MatchKey(_Strict):
    """Match key expressions, pairwise equal on both sides, optionally through a crosswalk."""

    source: Annotated[list[str], Field(min_length=1)]
    target: Annotated[list[str], Field(min_length=1)]
    crosswalk: Crosswalk | None = None

    @model_validator(mode="after")
    def _pairs(self) -> MatchKey:
        if len(self.source) != len(self.target):
            raise ValueError(f"source has {len(self.source)} key(s) and target {len(self.target)}")
        if self.crosswalk is not None and len(self.source) != 1:
            raise ValueError("a crosswalk maps a single key column")
        return self


class Exact(_Strict):
    """Values must be equal (NULL matches only NULL)."""

    kind: Literal["exact"] = "exact"


class Numeric(_Strict):
    """``|source - target| <= abs_tol + rel_tol * |target|``, in the field's unit (hours, currency)."""

    kind: Literal["numeric"]
    abs_tol: Annotated[Decimal, Field(ge=0)] = Decimal(0)
    rel_tol: Annotated[Decimal, Field(ge=0, lt=1)] = Decimal(0)


class DateWindow(_Strict):
    """Dates at most ``days`` apart."""

    kind: Literal["date_window"]
    days: Annotated[int, Field(ge=0)]


class NormalizedText(_Strict):
    """Equal after lower-casing and dropping everything but letters and digits."""

    kind: Literal["normalized_text"]


class FuzzyText(_Strict):
    """Similar enough: rapidfuzz ``token_sort_ratio`` (case, punctuation ignored) >= ``min_score`` (0–100)."""

    kind: Literal["fuzzy_text"]
    min_score: Annotated[float, Field(gt=0, le=100)]


_TOLERANCE_KINDS = ("exact", "numeric", "date_window", "normalized_text", "fuzzy_text")
Tolerance = Annotated[Exact | Numeric | DateWindow | NormalizedText | FuzzyText, Field(discriminator="kind")]


class Compare(_Strict):
    """One compared field: the expression on each side (default: the field name) and its tolerance.

    ``value: difference`` values a mismatch at ``|source amount - target amount|`` (amounts, hours);
    ``full`` (the default) at the record's whole amount (a wrong project puts all of it at risk).
    """

    source: str | None = None
    target: str | None = None
    tolerance: Tolerance = Exact()
    value: Literal["full", "difference"] = "full"


class Context(_Strict):
    """Where a break belongs, as expressions per side (source first, else target)."""

    legal_entity_id: Sides | None = None
    customer: Sides | None = None
    project_code: Sides | None = None
    invoice_cycle: Sides | None = None


class Valuation(_Strict):
    """How a break is valued: amount and ISO 4217 currency per side (aggregates in aggregate rules)."""

    amount: Sides
    currency: Sides


class Aging(_Strict):
    """``aged`` rules: every source row passing the filter and at least ``min_days`` old (from ``date``)."""

    date: str
    min_days: Annotated[int, Field(ge=0)] = 0


class Suggest(_Strict):
    """Fuzzy match suggestions for unmatched records (shown with the break, never auto-matched)."""

    field: str
    min_score: Annotated[float, Field(gt=0, le=100)] = 80
    limit: Annotated[int, Field(gt=0, le=10)] = 3


class ReconciliationRule(_Strict):
    """One declared rule (see the module docs); ``kind`` decides which keys it needs.

    ``object`` names what a break is about when it is not the source's object (an invoice whose
    billed time is summed from time entries).
    """

    rule_id: Annotated[str, Field(pattern=_NAME)]
    description: str = ""
    kind: Literal["match", "aggregate", "aged"]
    object: ObjectName | None = None
    source: Side
    target: Side | None = None
    system_of_record: Annotated[str, Field(pattern=_NAME)]
    match_key: MatchKey | None = None
    group_by: MatchKey | None = None
    missing_groups: Literal["zero", "ignore"] = "zero"
    duplicate_order: str = "created_at"
    compare: dict[Annotated[str, Field(pattern=_NAME)], Compare] = {}
    lookups: list[LookupSpec] = []
    context: Context = Context()
    value: Valuation | None = None
    record_id: Sides | None = None
    aging: Aging | None = None
    report: list[BreakType] | None = None
    suggest: Suggest | None = None
    severity: Severity | None = None

    @model_validator(mode="after")
    def _kind(self) -> ReconciliationRule:
        if self.kind == "aged":
            if self.aging is None:
                raise ValueError("an aged rule needs aging: {date: ..., min_days: ...}")
            if self.target is not None or self.match_key or self.group_by or self.compare:
                raise ValueError("an aged rule has only a source (no target, match_key, group_by or compare)")
            return self
        if self.target is None:
            raise ValueError(f"a {self.kind} rule needs a target")
        if self.kind == "match" and (self.match_key is None or self.group_by is not None):
            raise ValueError("a match rule needs match_key (and no group_by)")
        if self.kind == "aggregate":
            if self.group_by is None or self.match_key is not None or not self.compare:
                raise ValueError("an aggregate rule needs group_by and compare (and no match_key)")
            if self.group_by.crosswalk is not None:
                raise ValueError("group_by takes no crosswalk")
        if self.aging is not None:
            raise ValueError("aging is for aged rules")
        if self.system_of_record not in (self.source.system, self.target.system):
            raise ValueError(
                f"system_of_record {self.system_of_record!r} must be the source ({self.source.system!r}) "
                f"or the target ({self.target.system!r})"
            )
        return self

    @property
    def break_object(self) -> str:
        """What a break of this rule is about: ``object``, else the source's object."""
        return self.object or self.source.object

    @property
    def target_side(self) -> Side:
        """The target, or for an aged rule the source itself."""
        return self.target or self.source

    def breaks_reported(self) -> tuple[str, ...]:
        """The break types this rule reports (``report``, or every type its kind can find)."""
        if self.report is not None:
            return tuple(self.report)
        if self.kind == "aged":
            return ("aged",)
        if self.kind == "aggregate":
            return ("aggregate_mismatch",)
        return ("missing_in_target", "missing_in_source", "field_mismatch", "duplicate", "orphan")


class SeverityBand(_Strict):
    """A break reaches this severity when its amount at risk or its age reaches the threshold."""

    amount_at_risk: Annotated[Decimal, Field(ge=0)]
    age_days: Annotated[int, Field(ge=0)]


class Settings(_Strict):
    """Valuation and aging for every rule.

    Attributes:
        fx_rates: CSV or Parquet file(s) (glob; relative to the home folder) with ``currency``,
            ``month`` (``YYYY-MM``) and ``rate_to_reporting``: units of the reporting currency
            (``sources.yaml``) per unit of ``currency``.
        aging_buckets: upper bounds in days of the aging buckets before the last, open one.
        severity: ``high`` and ``medium`` thresholds; anything below is ``low``.
    """

    fx_rates: str | None = None
    aging_buckets: Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=1)] = [30, 60, 90]
    severity: dict[Literal["high", "medium"], SeverityBand] = {
        "high": SeverityBand(amount_at_risk=Decimal(10000), age_days=90),
        "medium": SeverityBand(amount_at_risk=Decimal(1000), age_days=30),
    }

    @field_validator("aging_buckets")
    @classmethod
    def _ascending(cls, bounds: list[int]) -> list[int]:
        if bounds != sorted(set(bounds)):
            raise ValueError(f"bounds must be strictly ascending, got {bounds}")
        return bounds

    def buckets(self) -> list[tuple[int, int | None, str]]:
        """The aging buckets as (first day, last day or None, label): 0-30, 31-60, 61-90, 90+."""
        out: list[tuple[int, int | None, str]] = []
        low = 0
        for high in self.aging_buckets:
            out.append((low, high, f"{low}-{high}"))
            low = high + 1
        out.append((low, None, f"{self.aging_buckets[-1]}+"))
        return out


class RuleSet(_Strict):
    """A whole rules file: settings and rules (rule ids unique)."""

    settings: Settings = Settings()
    rules: Annotated[list[ReconciliationRule], Field(min_length=1)]
    path: Path = Path("rules.yaml")

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[ReconciliationRule]) -> list[ReconciliationRule]:
        seen: set[str] = set()
        for r in rules:
            if r.rule_id in seen:
                raise ValueError(f"rule_id {r.rule_id!r} appears twice")
            seen.add(r.rule_id)
        return rules

    def rule(self, rule_id: str) -> ReconciliationRule:
        """Return rule ``rule_id``.

        Raises:
            RuleError: no such rule.
        """
        for r in self.rules:
            if r.rule_id == rule_id:
                return r
        raise RuleError(
            f"{self.path}: no rule {rule_id!r}; rules: {', '.join(r.rule_id for r in self.rules)}"
        )


def load_rules(path: Path, systems: Mapping[str, Any] | None = None) -> RuleSet:
    """Read and validate a rules file (structure and names; expressions: :mod:`reconcile.validate`).

    Args:
        path: the YAML file.
        systems: the configured systems (``sources.yaml``); a rule naming another system is refused.

    Raises:
        RuleError: the file is missing, not YAML, or invalid; one line per problem naming the rule,
            the key path and what is allowed.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuleError(f"{path}: not found") from None
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise RuleError(
            f"{path}: expected a mapping with 'settings' and 'rules', found {type(data).__name__}"
        )
    try:
        ruleset = RuleSet.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise RuleError(_explain(path, data, exc)) from None
    if systems is not None:
        _check_systems(ruleset, systems)
    return ruleset


def _check_systems(ruleset: RuleSet, systems: Mapping[str, Any]) -> None:
    problems = []
    for i, r in enumerate(ruleset.rules):
        named = [("source.system", r.source.system), ("system_of_record", r.system_of_record)]
        if r.target is not None:
            named.append(("target.system", r.target.system))
        named += [(f"lookups.{j}.system", lk.system) for j, lk in enumerate(r.lookups)]
        for key, system in named:
            if system not in systems:
                problems.append(
                    f"  rule {r.rule_id!r} (rules.{i}): {key}: unknown system {system!r}; "
                    f"allowed: {', '.join(systems)}"
                )
    if problems:
        raise RuleError(f"{ruleset.path}: {len(problems)} problem(s):\n" + "\n".join(problems))


def _explain(path: Path, data: Mapping[str, Any], exc: ValidationError) -> str:
    rules = data.get("rules")
    lines = [f"{path}: {exc.error_count()} problem(s):"]
    for err in exc.errors():
        loc = list(err["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            raw = rules[loc[1]] if isinstance(rules, list) and loc[1] < len(rules) else None
            rule_id = raw.get("rule_id") if isinstance(raw, Mapping) else None
            where = f"rule {rule_id!r} (rules.{loc[1]}): " if rule_id else f"rules.{loc[1]}: "
            loc = loc[2:]
        # pydantic adds the chosen tag of a discriminated union (e.g. 'numeric') to the path
        loc = [
            p for p in loc if p not in ("numeric", "exact", "date_window", "normalized_text", "fuzzy_text")
        ]
        key = ".".join(str(p) for p in loc) or "<rule>"
        msg = str(err["msg"])
        if err["type"] == "literal_error" and key.endswith("object"):
            msg += f" (allowed: {', '.join(OBJECTS)})"
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            msg += f" (allowed kinds: {', '.join(_TOLERANCE_KINDS)})"
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        lines.append(f"  {where}{key}: {msg}{shown}")
    return "\n".join(lines)
