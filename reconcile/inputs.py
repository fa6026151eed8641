"""Which snapshots a reconciliation reads: the current ones, or those current at a past moment.

``--as-of`` takes a date (``2026-10-31``: the end of that day, UTC), an ISO-8601 timestamp, or a
snapshot id (the moment it was published). For every system and object, the input is the latest
snapshot published at or before that moment, so a month-end close can be reproduced exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from data.lake import Lake, SnapshotEntry
from data.sql import sql_literal
from reconcile.rules import Crosswalk, ReconciliationRule, RuleError

__all__ = ["AsOfError", "Inputs", "crosswalk_relation", "parse_as_of", "select_inputs"]


class AsOfError(ValueError):
    """``--as-of`` names no date, timestamp or known snapshot."""


@dataclass(frozen=True)
class Inputs:
    """The snapshots a run reads: (object, system) -> manifest entry, as of ``moment`` (UTC)."""

    lake: Lake
    moment: datetime
    entries: dict[tuple[str, str], SnapshotEntry]

    def relation(self, obj: str, system: str) -> str:
        """The rows of the snapshot of ``obj`` from ``system`` (:meth:`data.lake.Lake.snapshot_files`).

        Raises:
            KeyError: no snapshot of it (check :meth:`missing` first).
        """
        e = self.entries[(obj, system)]
        return self.lake.snapshot_files(obj, system, e.snapshot_id)

    def missing(self, rule: ReconciliationRule) -> list[str]:
        """``system/object`` pairs ``rule`` reads that have no snapshot."""
        reads = [(rule.source.object, rule.source.system), (rule.target_side.object, rule.target_side.system)]
        reads += [(lk.object, lk.system) for lk in rule.lookups]
        return sorted({f"{system}/{obj}" for obj, system in reads if (obj, system) not in self.entries})

    def snapshot_ids(self) -> dict[str, str]:
        """``system/object`` -> snapshot id, for the run record."""
        return {f"{s}/{o}": e.snapshot_id for (o, s), e in sorted(self.entries.items())}


def parse_as_of(value: str, lake: Lake) -> datetime:
    """The moment (UTC) that ``--as-of`` names: a date, a timestamp or a snapshot id.

    Raises:
        AsOfError: none of these, or an unknown snapshot id.
    """
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        day = date.fromisoformat(value)
        return (
            datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) - timedelta(microseconds=1)
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        for e in lake.entries():
            if e.snapshot_id == value:
                return datetime.fromisoformat(e.published_at)
        raise AsOfError(
            f"--as-of {value!r}: not a date (YYYY-MM-DD), an ISO-8601 timestamp or a known snapshot id"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def select_inputs(home: Path, as_of: str | None) -> Inputs:
    """The current snapshots (``as_of`` None) or those current at the moment ``as_of`` names.

    Raises:
        AsOfError: ``as_of`` cannot be read (see :func:`parse_as_of`).
    """
    lake = Lake(home)
    entries = lake.entries()
    if as_of is None:
        chosen = {(e.object, e.system): e for e in entries if e.current}
        return Inputs(lake, datetime.now(UTC), chosen)
    moment = parse_as_of(as_of, lake)
    chosen = {}
    for e in sorted(entries, key=lambda e: e.published_at):
        if datetime.fromisoformat(e.published_at) <= moment:
            chosen[(e.object, e.system)] = e
    return Inputs(lake, moment, chosen)


def crosswalk_relation(xw: Crosswalk, rules_path: Path) -> str:
    """The crosswalk file (relative to the rules file) as a relation of text columns.

    Raises:
        RuleError: the file does not exist.
    """
    path = (rules_path.parent / xw.path).resolve()
    if not path.is_file():
        raise RuleError(f"{rules_path}: crosswalk file {xw.path!r} not found (looked at {path})")
    if path.suffix.lower() == ".csv":
        return f"read_csv({sql_literal(str(path))}, all_varchar = true)"
    return f"read_parquet({sql_literal(str(path))})"
