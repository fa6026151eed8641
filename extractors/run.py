"""Extraction runs: fetch, stage, map and publish one snapshot per system and object.

:func:`extract` is the pipeline's extraction step, the same for the CLI and the scheduler. It holds
the pipeline lock for its whole duration, clears what a crashed run left (staging folders, orphan
snapshot folders, run-log rows still ``running``), then runs each selected object of each selected
system in turn. Each object is one extraction run with one ``extraction_runs`` row: a failure is
recorded (error class and message naming system, object and cause) and the next object still runs;
the failed object's previous snapshot stays current because nothing reaches the manifest.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from data.appstate import EXTRACTION_RUNS, SNAPSHOTS, state_engine
from data.canonical import canonical_table
from data.lake import Lake, SnapshotEntry
from data.lock import PipelineLock
from data.warehouse import ensure_warehouse
from extractors.base import Connector, ConnectorContext
from extractors.config import ConfigError, SourcesConfig, SystemConfig, load_sources
from extractors.connectors import build_connector
from extractors.http import Redactor
from extractors.mapping import ObjectMapping, sql_literal
from extractors.staging import RawSink
from extractors.statuses import value_maps
from extractors.transform import build_snapshot

__all__ = ["ProgressFn", "RunResult", "extract"]

#: Called as pages arrive: ``(system, object, pages, records received so far)``.
ProgressFn = Callable[[str, str, int, int], None]


@dataclass
class RunResult:
    """One extraction run, as recorded in ``extraction_runs`` (see :mod:`data.appstate`)."""

    run_id: str
    correlation_id: str
    system: str
    object: str
    mode: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    rows: int | None = None
    received: int | None = None
    quarantined: int | None = None
    pages: int = 0
    requests: int = 0
    retries: int = 0
    http_status_counts: dict[str, int] = field(default_factory=dict)
    error_class: str | None = None
    error_message: str | None = None
    snapshot_id: str | None = None

    @property
    def duration_s(self) -> float:
        """Seconds from start to finish (0 while running)."""
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else 0.0


def extract(
    home: Path,
    *,
    systems: Iterable[str] | None = None,
    objects: Iterable[str] | None = None,
    full: bool = False,
    on_progress: ProgressFn | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    transport: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    lock_wait_s: float = 0,
) -> list[RunResult]:
    """Extract the selected objects of the selected systems of ``HOME/sources.yaml``.

    Args:
        home: the home folder.
        systems: system slugs, or None for all.
        objects: canonical objects, or None for each system's configured objects.
        full: ignore incremental cursors and pull everything.
        on_progress: progress callback (:data:`ProgressFn`).
        on_result: called with each finished run.
        transport: httpx transport for HTTP sources (tests), or None for the network.
        sleep: sleep function for retries and throttling (tests).
        lock_wait_s: seconds to wait for a run in progress before giving up.

    Returns:
        One :class:`RunResult` per object, in order.

    Raises:
        ConfigError: sources.yaml is invalid, or names no such system or object.
        data.lock.PipelineBusy: another pipeline run holds the lock.
    """
    config = load_sources(home / "sources.yaml")
    selected = _select(config, systems, objects)
    ensure_warehouse(home)
    engine = state_engine(home)
    lake = Lake(home)
    ctx = ConnectorContext(home=home, correlation_id=uuid.uuid4().hex, transport=transport, sleep=sleep)
    results: list[RunResult] = []
    with PipelineLock(home, wait_s=lock_wait_s):
        lake.sweep()
        _recover(engine, lake)
        for slug, objs in selected:
            cfg = config.systems[slug]
            try:
                connector = build_connector(slug, cfg, ctx)
            except ConfigError as exc:
                for obj in objs:
                    results.append(_failed_before_start(engine, ctx, slug, obj, exc, on_result))
                continue
            try:
                for obj in objs:
                    run = _run_object(engine, lake, ctx, slug, cfg, connector, obj, full, on_progress)
                    results.append(run)
                    if on_result:
                        on_result(run)
            finally:
                connector.close()
    return results


def _select(
    config: SourcesConfig, systems: Iterable[str] | None, objects: Iterable[str] | None
) -> list[tuple[str, list[str]]]:
    slugs = list(systems) if systems is not None else list(config.systems)
    for slug in slugs:
        config.system(slug)
    wanted = set(objects) if objects is not None else None
    for obj in wanted or ():
        canonical_table(obj)
    selected = [
        (s, [str(o) for o in config.systems[s].objects if wanted is None or o in wanted]) for s in slugs
    ]
    selected = [(s, objs) for s, objs in selected if objs]
    if not selected:
        raise ConfigError(
            f"{config.path}: no system among {', '.join(slugs)} extracts {', '.join(sorted(wanted or ()))}"
        )
    return selected


def _run_object(
    engine: sa.Engine,
    lake: Lake,
    ctx: ConnectorContext,
    slug: str,
    cfg: SystemConfig,
    connector: Connector,
    obj: str,
    full: bool,
    on_progress: ProgressFn | None,
) -> RunResult:
    previous = lake.current(slug, obj)
    incremental = bool(not full and previous and previous.cursor and connector.incremental(obj))
    run = RunResult(
        run_id=uuid.uuid4().hex,
        correlation_id=ctx.correlation_id,
        system=slug,
        object=obj,
        mode="incremental" if incremental else "full",
        started_at=datetime.now(UTC),
    )
    snapshot_id = f"{run.started_at:%Y%m%dT%H%M%S%f}Z-{run.run_id[:8]}"
    with engine.begin() as con:
        con.execute(EXTRACTION_RUNS.insert().values(**_row(run)))
    staged = lake.staging_root / run.run_id
    before = _http_counts(connector)
    sink = RawSink(
        staged / "raw", on_page=(lambda p, n: on_progress(slug, obj, p, n)) if on_progress else None
    )
    try:
        since = (
            datetime.fromisoformat(previous.cursor) if incremental and previous and previous.cursor else None
        )
        connector.extract(obj, sink, since=since)
        raw, json_records = sink.relation()
        lineage = {
            "system": sql_literal(slug),
            "snapshot_id": sql_literal(snapshot_id),
            "run_id": sql_literal(run.run_id),
            "extracted_at": f"TIMESTAMPTZ {sql_literal(run.started_at.isoformat())}",
        }
        duck = duckdb.connect(config={"memory_limit": "1GB", "temp_directory": str(staged / "spill")})
        try:
            duck.execute("SET TimeZone = 'UTC'")
            counts = build_snapshot(
                duck,
                raw=raw,
                json_records=json_records,
                mapping=_mapping(connector, cfg, obj),
                table=canonical_table(obj),
                value_maps=value_maps(cfg.value_maps),
                lineage=lineage,
                staged=staged,
                previous=lake.snapshot_query(previous) if incremental and previous else None,
            )
        finally:
            duck.close()
        published_at = datetime.now(UTC)
        entry = SnapshotEntry(
            system=slug, object=obj, snapshot_id=snapshot_id, run_id=run.run_id, mode=run.mode,
            extracted_at=run.started_at.isoformat(), published_at=published_at.isoformat(),
            rows=counts.rows, quarantined=counts.quarantined, cursor=counts.cursor,
        )  # fmt: skip
        lake.publish(staged, entry)
        ensure_warehouse(lake.root.parent)
        run.status, run.snapshot_id = "succeeded", snapshot_id
        run.rows, run.received, run.quarantined = counts.rows, counts.received, counts.quarantined
        with engine.begin() as con:
            _catalogue(con, entry)
    except Exception as exc:
        run.status = "failed"
        run.error_class = type(exc).__name__
        run.error_message = _redact(f"{slug}/{obj}: {exc}", cfg)
        run.received = sink.received
    finally:
        sink.close()
        shutil.rmtree(staged, ignore_errors=True)
        run.finished_at = datetime.now(UTC)
        run.pages = sink.pages
        _add_http_counts(run, before, _http_counts(connector))
        with engine.begin() as con:
            con.execute(
                EXTRACTION_RUNS.update().where(EXTRACTION_RUNS.c.run_id == run.run_id).values(**_row(run))
            )
    return run


def _mapping(connector: Connector, cfg: SystemConfig, obj: str) -> ObjectMapping:
    base = connector.default_mapping(obj)
    override = cfg.mappings.get(obj)  # type: ignore[call-overload]
    return base if override is None else override.applied_to(base)


def _http_counts(connector: Connector) -> tuple[int, int, Counter[int]]:
    stats = connector.http_stats()
    if stats is None:
        return 0, 0, Counter()
    return stats.requests, stats.retries, Counter(stats.status_counts)


def _add_http_counts(
    run: RunResult, before: tuple[int, int, Counter[int]], after: tuple[int, int, Counter[int]]
) -> None:
    run.requests = after[0] - before[0]
    run.retries = after[1] - before[1]
    run.http_status_counts = {str(k): v for k, v in sorted((after[2] - before[2]).items())}


def _failed_before_start(
    engine: sa.Engine,
    ctx: ConnectorContext,
    slug: str,
    obj: str,
    exc: Exception,
    on_result: Callable[[RunResult], None] | None,
) -> RunResult:
    now = datetime.now(UTC)
    run = RunResult(
        run_id=uuid.uuid4().hex, correlation_id=ctx.correlation_id, system=slug, object=obj, mode="full",
        started_at=now, finished_at=now, status="failed", error_class=type(exc).__name__,
        error_message=f"{slug}/{obj}: {exc}",
    )  # fmt: skip
    with engine.begin() as con:
        con.execute(EXTRACTION_RUNS.insert().values(**_row(run)))
    if on_result:
        on_result(run)
    return run


def _recover(engine: sa.Engine, lake: Lake) -> None:
    """Close run-log rows left ``running`` by a process that died (we hold the lock: none runs)."""
    published = {e.run_id: e for e in lake.entries()}
    with engine.begin() as con:
        stale = con.execute(sa.select(EXTRACTION_RUNS.c.run_id).where(EXTRACTION_RUNS.c.status == "running"))
        for (run_id,) in stale.fetchall():
            entry = published.get(run_id)
            values: dict[str, Any] = {"finished_at": datetime.now(UTC)}
            if entry is not None:
                values.update(status="succeeded", rows=entry.rows, quarantined=entry.quarantined,
                              snapshot_id=entry.snapshot_id)  # fmt: skip
                _catalogue(con, entry)
            else:
                values.update(status="interrupted", error_class="Interrupted", error_message=(
                    "the process stopped before this run finished (killed or crashed); the previous "
                    "snapshot stayed current"))  # fmt: skip
            con.execute(EXTRACTION_RUNS.update().where(EXTRACTION_RUNS.c.run_id == run_id).values(**values))


def _catalogue(con: sa.Connection, entry: SnapshotEntry) -> None:
    """Record a published snapshot in the app-state catalogue."""
    con.execute(SNAPSHOTS.insert().values(
        snapshot_id=entry.snapshot_id, system=entry.system, object=entry.object, run_id=entry.run_id,
        published_at=datetime.fromisoformat(entry.published_at), rows=entry.rows,
        quarantined=entry.quarantined))  # fmt: skip


def _row(run: RunResult) -> dict[str, Any]:
    return {c.name: getattr(run, c.name) for c in EXTRACTION_RUNS.columns}


def _redact(message: str, cfg: SystemConfig) -> str:
    """Remove the value of every secret variable the system's config names (``*_env``) from ``message``."""
    names: list[str] = []
    stack: list[dict[str, Any]] = [cfg.model_dump()]
    while stack:
        for key, value in stack.pop().items():
            if isinstance(value, dict):
                stack.append(value)
            elif isinstance(value, str) and key.endswith("_env"):
                names.append(value)
    return Redactor(os.environ.get(name, "") for name in names).text(message)
