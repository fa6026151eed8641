"""Raw records to a staged snapshot: map, quarantine, de-duplicate, merge an incremental pull.

Runs in an in-memory DuckDB connection of the pipeline (spilling to the staging folder) and writes:

- ``<staged>/canonical/data.parquet``: the snapshot's rows, one per key, in the layout of
  :mod:`data.lake` (the canonical columns; an incremental snapshot's also ``run_id`` and
  ``extracted_at`` ahead of them). An incremental pull's rows replace the previous snapshot's rows
  with the same key, and the previous rows not received again are carried over (keeping the run
  that fetched them), so every snapshot is the object's complete current state.
- ``<staged>/quarantine/data.parquet`` (only when rows were refused): ``system``, ``snapshot_id``,
  ``run_id``, ``extracted_at``, ``record_key``, ``reason``, ``record`` (raw JSON). A record whose key
  appears again later in the same pull is kept once (the later one wins) and the earlier copy is
  quarantined as superseded, so nothing received goes uncounted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from data.canonical import CanonicalTable
from extractors.errors import SchemaDrift
from extractors.mapping import ObjectMapping, compile_mapping, required_paths, sql_literal

__all__ = ["SnapshotCounts", "build_snapshot"]

# zstd level 1 rather than the default 3: a large snapshot's COPY takes about a tenth less CPU for
# files about 8% larger.
_PARQUET = "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"


@dataclass(frozen=True)
class SnapshotCounts:
    """What a staged snapshot holds.

    Attributes:
        received: raw records received by this run. selected: those the mapping's ``where`` kept.
        rows: canonical rows of the snapshot (carried-over rows included). quarantined: rows refused.
        carried: rows carried over from the previous snapshot. cursor: max ``updated_at`` (ISO), or None.
    """

    received: int
    selected: int
    rows: int
    quarantined: int
    carried: int
    cursor: str | None


def build_snapshot(
    con: duckdb.DuckDBPyConnection,
    *,
    raw: str,
    json_records: bool,
    mapping: ObjectMapping,
    table: CanonicalTable,
    value_maps: Mapping[str, Mapping[str, str]],
    lineage: Mapping[str, str],
    staged: Path,
    previous: str | None,
) -> SnapshotCounts:
    """Map the raw relation ``raw`` and write the staged snapshot files under ``staged``.

    Args:
        con: a DuckDB connection (TimeZone UTC).
        raw: SQL relation of the raw records (:meth:`extractors.staging.RawSink.relation`).
        json_records: whether ``raw`` holds JSON ``record`` text.
        mapping: the object's mapping (defaults plus sources.yaml overrides).
        table: the canonical table it maps to.
        value_maps: the maps its lookups use (:func:`extractors.statuses.value_maps`).
        lineage: SQL literals for ``system``, ``snapshot_id``, ``run_id``, ``extracted_at``.
        staged: the run's staging folder.
        previous: SQL over the previous snapshot's rows with their lineage
            (:meth:`data.lake.Lake.snapshot_query`) to merge into (incremental pulls), or None
            for a full pull.

    Raises:
        SchemaDrift: JSON records all lack a field a required column reads, or every record was refused.
        duckdb.Error: a mapping expression is not valid SQL for these records (the message names it).
    """
    if json_records:
        _check_drift(con, raw, mapping, table)
    key = table.key

    def query(positions: bool) -> str:
        return compile_mapping(mapping, table, value_maps, raw=raw, lineage=lineage,
                               json_records=json_records, positions=positions)  # fmt: skip

    # The lineage every row shares is in the manifest; carried-over rows keep their own run.
    columns = ", ".join([*(["run_id", "extracted_at"] if previous is not None else []), *table.names])
    canonical = staged / "canonical" / "data.parquet"
    canonical.parent.mkdir(parents=True, exist_ok=True)
    target = sql_literal(str(canonical))
    # Row order inside a snapshot carries no meaning; letting DuckDB write in any order halves the
    # time of a large COPY.
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"CREATE OR REPLACE TEMP VIEW mapped AS {query(positions=previous is not None)}")
    dedup = previous is not None
    if not dedup:
        # The common case, fast: write the good rows once, then check the file for repeated keys.
        con.execute(f"COPY (SELECT {columns} FROM mapped WHERE _reason = '') TO {target} {_PARQUET}")
        rows, keys = con.execute(
            f"SELECT count(*), count(DISTINCT {key}) FROM read_parquet({target})"
        ).fetchone()  # type: ignore[misc]
        dedup = rows != keys
    if dedup:
        con.execute(f"CREATE OR REPLACE TEMP VIEW mapped AS {query(positions=True)}")
        _write_deduplicated(con, key, columns, target, previous)
    superseded = (
        f"SELECT system, snapshot_id, run_id, extracted_at, CAST({key} AS VARCHAR) AS record_key, "
        f"'superseded: a later record in the same pull has the same {key}' AS reason, "
        f"CAST(to_json(struct_pack({', '.join(table.names)})) AS VARCHAR) AS record FROM mapped "
        f"JOIN repeated USING ({key}) WHERE _reason = '' AND _pos <> _keep"
    )
    bad = (
        f"SELECT system, snapshot_id, run_id, extracted_at, CAST({key} AS VARCHAR) AS record_key, "
        "_reason AS reason, _record AS record FROM mapped WHERE _reason <> ''"
    )
    if dedup:
        bad += f" UNION ALL {superseded}"
    selected = _count(con, "SELECT count(*) FROM mapped")
    fetched = "count(*)" if previous is None else f"count(*) FILTER (WHERE run_id = {lineage['run_id']})"
    stats = con.execute(
        f"SELECT count(*), {fetched}, CAST(max(updated_at) AS VARCHAR) FROM read_parquet({target})"
    ).fetchone()
    assert stats is not None
    quarantined = selected - int(stats[1])
    if quarantined:
        bad_file = staged / "quarantine" / "data.parquet"
        bad_file.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY ({bad}) TO {sql_literal(str(bad_file))} (FORMAT parquet)")
    if selected and quarantined == selected:
        first = con.execute("SELECT _reason FROM mapped WHERE _reason <> '' LIMIT 1").fetchone()
        raise SchemaDrift(
            f"every one of the {selected} records was refused (first reason: {first[0] if first else '?'}); "
            "the previous snapshot stays current. Check the mapping in sources.yaml against the source."
        )
    return SnapshotCounts(
        received=_count(con, f"SELECT count(*) FROM {raw}"),
        selected=selected,
        rows=int(stats[0]),
        quarantined=quarantined,
        carried=int(stats[0]) - int(stats[1]),
        cursor=stats[2],
    )


def _write_deduplicated(
    con: duckdb.DuckDBPyConnection,
    key: str,
    columns: str,
    target: str,
    previous: str | None,
) -> None:
    """Write one row per key (the last received wins), merged onto ``previous`` if given.

    Materialises the mapping once (it is read three times) and finds repeated keys with a hash
    aggregate, which is much cheaper than a window over every row.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE mapped_rows AS SELECT * FROM mapped")
    con.execute("CREATE OR REPLACE TEMP VIEW mapped AS SELECT * FROM mapped_rows")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE repeated AS SELECT {key}, max(_pos) AS _keep FROM mapped "
        f"WHERE _reason = '' GROUP BY {key} HAVING count(*) > 1"
    )
    latest = (
        f"SELECT {columns} FROM mapped LEFT JOIN repeated USING ({key}) "
        "WHERE _reason = '' AND (_keep IS NULL OR _pos = _keep)"
    )
    if previous is not None:
        latest += (
            f" UNION ALL SELECT {columns} FROM ({previous}) "
            f"WHERE {key} NOT IN (SELECT {key} FROM mapped WHERE _reason = '')"
        )
    con.execute(f"COPY ({latest}) TO {target} {_PARQUET}")


def _check_drift(
    con: duckdb.DuckDBPyConnection, raw: str, mapping: ObjectMapping, table: CanonicalTable
) -> None:
    """Refuse a pull whose records all lack a field that a required column reads (renamed upstream?)."""
    pairs = required_paths(mapping, table)
    if not pairs:
        return
    counts = ", ".join(f"count(*) FILTER (WHERE json_exists(record, {sql_literal(p)}))" for _, p in pairs)
    row = con.execute(f"SELECT count(*), {counts} FROM {raw}").fetchone()
    assert row is not None
    if not row[0]:
        return
    missing = [f"{path} (for {col})" for (col, path), n in zip(pairs, row[1:], strict=True) if n == 0]
    if missing:
        raise SchemaDrift(
            f"schema drift: {', '.join(missing)} missing from all {row[0]} records received; the source "
            "renamed or removed the field. Fix the mapping in sources.yaml (mappings.<object>.fields) "
            "or the source; the previous snapshot stays current."
        )


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0
