"""Where each system's objects stand: current snapshot, its age against the SLA, the last runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from data.appstate import EXTRACTION_RUNS, row_dict, state_engine
from data.lake import Lake
from extractors.config import load_sources

__all__ = ["ObjectStatus", "object_status"]


@dataclass
class ObjectStatus:
    """One configured system and object.

    Attributes:
        system / object: as in sources.yaml.
        snapshot_id: the current snapshot, or None before the first.
        extracted_at: when the current snapshot's run started (UTC), or None.
        rows / quarantined: of the current snapshot.
        age_minutes: minutes since ``extracted_at`` (the data's age), or None.
        freshness_sla_minutes: the system's SLA from sources.yaml.
        fresh: ``age_minutes <= freshness_sla_minutes`` (False without a snapshot).
        last_runs: the latest runs, newest first: run_id, status, mode, started_at, duration_s,
            rows, quarantined, requests, retries, error_class, error_message.
    """

    system: str
    object: str
    snapshot_id: str | None
    extracted_at: datetime | None
    rows: int | None
    quarantined: int | None
    age_minutes: float | None
    freshness_sla_minutes: int
    fresh: bool
    last_runs: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps as ISO-8601)."""
        out: dict[str, Any] = _jsonable(asdict(self))
        return out


def object_status(home: Path, *, runs: int = 3, now: datetime | None = None) -> list[ObjectStatus]:
    """Return the status of every configured system and object of ``home``.

    Raises:
        extractors.config.ConfigError: sources.yaml is missing or invalid.
    """
    config = load_sources(home / "sources.yaml")
    lake = Lake(home)
    current = {(e.system, e.object): e for e in lake.entries() if e.current}
    engine = state_engine(home)
    now = now or datetime.now(UTC)
    out: list[ObjectStatus] = []
    with engine.connect() as con:
        for slug, cfg in config.systems.items():
            for obj in cfg.objects:
                entry = current.get((slug, obj))
                extracted = datetime.fromisoformat(entry.extracted_at) if entry else None
                age = (now - extracted).total_seconds() / 60 if extracted else None
                query = (
                    sa.select(EXTRACTION_RUNS)
                    .where(EXTRACTION_RUNS.c.system == slug, EXTRACTION_RUNS.c.object == obj)
                    .order_by(EXTRACTION_RUNS.c.started_at.desc())
                    .limit(runs)
                )
                last = [_run_summary(row_dict(r)) for r in con.execute(query).mappings()]
                out.append(ObjectStatus(
                    system=slug, object=obj, snapshot_id=entry.snapshot_id if entry else None,
                    extracted_at=extracted, rows=entry.rows if entry else None,
                    quarantined=entry.quarantined if entry else None, age_minutes=age,
                    freshness_sla_minutes=cfg.freshness_sla_minutes,
                    fresh=age is not None and age <= cfg.freshness_sla_minutes, last_runs=last,
                ))  # fmt: skip
    return out


def _run_summary(run: dict[str, Any]) -> dict[str, Any]:
    finished, started = run["finished_at"], run["started_at"]
    keys = ("run_id", "status", "mode", "started_at", "rows", "quarantined", "requests", "retries",
            "error_class", "error_message")  # fmt: skip
    summary = {k: run[k] for k in keys}
    summary["duration_s"] = (finished - started).total_seconds() if finished else None
    return summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
