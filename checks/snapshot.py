"""Checks beyond GX, per snapshot: schema drift, volume change, freshness against the SLA, quarantine.

Each returns :class:`Finding` rows; :mod:`checks.run` turns failed ones into ``data_quality``
breaks and every one into a ``check_results`` row.

- Schema drift compares the fields of a snapshot's raw records (``lake/raw``: a JSON API record's
  top-level keys and JSON value types, or a file or SQL source's columns and types) with the
  previous snapshot's. JSON records are sampled (the first :data:`DRIFT_SAMPLE` of the snapshot);
  number types (integer or decimal) count as one, and null values say nothing about a type.
- Volume compares the snapshot's row count with the previous snapshot's, against the suite's band.
- Freshness compares the age of each configured system/object's current snapshot (its extraction
  run's start) with the system's ``freshness_sla_minutes`` in sources.yaml.
- Quarantine reports each record the extraction refused (``lake/quarantine``), with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from data.lake import Lake, SnapshotEntry
from data.sql import sql_literal
from extractors.config import SourcesConfig

__all__ = [
    "DRIFT_SAMPLE",
    "Finding",
    "freshness",
    "previous_snapshot",
    "quarantined",
    "schema_drift",
    "volume",
]

#: JSON records read per snapshot to find its fields.
DRIFT_SAMPLE = 20_000


@dataclass(frozen=True)
class Finding:
    """One snapshot-level check (or one quarantined record).

    Attributes:
        rule_id: ``<object>.<check>`` (``schema_drift``, ``volume``, ``freshness``, ``quarantined``).
        check_type: the same check name. system / object: what was checked. success: it passed.
        field: the column concerned (schema drift), else None.
        record_id: the refused record's key (quarantine; None when it had none), else None.
        record_hash: md5 of the refused raw record (quarantine), which names a record without a key.
        observed: what was found (text). expected: what was expected (text).
    """

    rule_id: str
    check_type: str
    system: str
    object: str
    success: bool
    observed: str
    expected: str
    field: str | None = None
    record_id: str | None = None
    record_hash: str | None = None


def previous_snapshot(lake: Lake, entry: SnapshotEntry) -> SnapshotEntry | None:
    """The snapshot of ``entry``'s system and object published just before it, or None."""
    same = [e for e in lake.entries() if (e.system, e.object) == (entry.system, entry.object)]
    ids = [e.snapshot_id for e in same]
    at = ids.index(entry.snapshot_id) if entry.snapshot_id in ids else len(same)
    return same[at - 1] if at > 0 else None


def _raw_fields(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, str] | None:
    """Field -> type(s) of the raw records in ``folder``; None when it holds no records.

    The raw forms are those of :class:`extractors.staging.RawSink`: JSON records (``page``,
    ``record``), typed tables and Parquet source files (their columns), CSV source files (their
    header; every value is text).
    """
    csvs = sorted(folder.glob("*.csv"))
    if csvs:
        files = ", ".join(sql_literal(str(f)) for f in csvs)
        src = (
            f"read_csv([{files}], header = true, all_varchar = true, union_by_name = true, "
            "null_padding = true)"
        )
    elif any(folder.glob("*.parquet")):
        src = f"read_parquet({sql_literal(str(folder / '*.parquet'))}, union_by_name = true)"
    else:
        return None
    columns = {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    if set(columns) != {"page", "record"}:
        return columns
    rows = con.execute(
        "SELECT k, list_sort(list(DISTINCT t) FILTER (WHERE t IS NOT NULL)) FROM ("
        "SELECT k, CASE WHEN t IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT') THEN 'NUMBER' "
        "WHEN t = 'NULL' THEN NULL ELSE t END AS t FROM ("
        "SELECT k, json_type(record, '$.\"' || k || '\"') AS t FROM ("
        "SELECT record, unnest(json_keys(record)) AS k FROM "
        f"(SELECT record FROM {src} LIMIT {DRIFT_SAMPLE})))) "
        "GROUP BY k"
    ).fetchall()
    if not rows:
        return None
    return {str(k): "|".join(ts or []) for k, ts in rows}


def schema_drift(
    con: duckdb.DuckDBPyConnection, lake: Lake, entry: SnapshotEntry, previous: SnapshotEntry | None
) -> list[Finding]:
    """Fields added, removed or changing type between ``previous``'s raw records and ``entry``'s.

    Returns one passing finding when nothing drifted (or there is nothing to compare: no previous
    snapshot, or an incremental pull that received no records), else one failing finding per field.
    """
    rule = f"{entry.object}.schema_drift"
    now = _raw_fields(con, lake.raw_dir(entry.object, entry.system, entry.snapshot_id))
    before = (
        _raw_fields(con, lake.raw_dir(previous.object, previous.system, previous.snapshot_id))
        if previous
        else None
    )
    if now is None or before is None:
        seen = "no previous snapshot" if previous is None else "no records to compare"
        return [
            Finding(rule, "schema_drift", entry.system, entry.object, True, seen, "same fields as before")
        ]
    found = []
    for name in sorted(set(now) | set(before)):
        was, is_ = before.get(name), now.get(name)
        if was == is_ or (was == "" or is_ == ""):  # only nulls seen on one side: no evidence of a type
            continue
        observed = "removed" if is_ is None else "added" if was is None else f"type {was} -> {is_}"
        found.append(Finding(rule, "schema_drift", entry.system, entry.object, False, observed,
                             f"{name}: {was or 'absent'}", field=name))  # fmt: skip
    return found or [
        Finding(rule, "schema_drift", entry.system, entry.object, True, f"{len(now)} fields unchanged",
                "same fields as before")
    ]  # fmt: skip


def volume(entry: SnapshotEntry, previous: SnapshotEntry | None, max_change_pct: Decimal) -> Finding:
    """The row count of ``entry`` against ``previous``'s, within ``max_change_pct`` percent either way."""
    rule = f"{entry.object}.volume"
    expected = f"within {max_change_pct}% of the previous snapshot"
    if previous is None or previous.rows == 0:
        seen = f"{entry.rows} rows (no previous count to compare)"
        return Finding(rule, "volume", entry.system, entry.object, True, seen, expected)
    change = Decimal(100) * (entry.rows - previous.rows) / previous.rows
    ok = abs(change) <= max_change_pct
    seen = f"{entry.rows} rows, was {previous.rows} ({change:+.1f}%)"
    return Finding(rule, "volume", entry.system, entry.object, ok, seen, expected)


def freshness(lake: Lake, sources: SourcesConfig, now: datetime) -> list[Finding]:
    """One finding per configured system and object: is its current snapshot within the SLA?"""
    current = {(e.system, e.object): e for e in lake.entries() if e.current}
    out = []
    for system, cfg in sources.systems.items():
        sla = cfg.freshness_sla_minutes
        for obj in cfg.objects:
            entry = current.get((system, obj))
            expected = f"extracted within {sla} minutes"
            if entry is None:
                out.append(
                    Finding(f"{obj}.freshness", "freshness", system, obj, False, "never extracted", expected)
                )
                continue
            age = (now - datetime.fromisoformat(entry.extracted_at)).total_seconds() / 60
            seen = f"extracted {age:.0f} minutes ago ({entry.extracted_at})"
            out.append(Finding(f"{obj}.freshness", "freshness", system, obj, age <= sla, seen, expected))
    return out


def quarantined(con: duckdb.DuckDBPyConnection, lake: Lake, entry: SnapshotEntry) -> list[Finding]:
    """One failing finding per record of ``entry`` that the extraction quarantined (none: one passing)."""
    rule = f"{entry.object}.quarantined"
    folder = lake.quarantine_dir(entry.object, entry.system, entry.snapshot_id)
    rows = []
    if entry.quarantined and any(folder.glob("*.parquet")):
        src = f"read_parquet({sql_literal(str(folder / '*.parquet'))})"
        rows = con.execute(
            f"SELECT record_key, reason, md5(coalesce(record, '')) FROM {src} ORDER BY ALL"
        ).fetchall()
    if not rows:
        return [Finding(rule, "quarantined", entry.system, entry.object, True, "no record refused",
                        "every record maps")]  # fmt: skip
    return [
        Finding(rule, "quarantined", entry.system, entry.object, False, str(reason), "every record maps",
                record_id=key, record_hash=digest)
        for key, reason, digest in rows
    ]  # fmt: skip
