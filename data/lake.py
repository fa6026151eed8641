"""The lake: immutable snapshot files under ``HOME/lake`` and the manifest saying which are current.

Layout (one folder per snapshot, never changed once published)::

    lake/manifest.json                                   every published snapshot; ``current`` flags
    lake/raw/<object>/<system>/<snapshot_id>/...         records as received (JSON or source files)
    lake/canonical/<object>/<system>/<snapshot_id>/data.parquet    canonical rows
    lake/quarantine/<object>/<system>/<snapshot_id>/data.parquet   rows refused, with the reason
    lake/.staging/<run_id>/                              work in progress of a run

A run writes everything in its staging folder, then :meth:`Lake.publish` moves each folder into
place with one ``rename`` (atomic on one file system) and finally replaces the manifest (write a
temporary file, fsync, ``os.replace``). Readers (the views of :mod:`data.warehouse`) join files to
the manifest, so they see the old snapshot or the new one and never a partial one; a run that dies
before the manifest is replaced leaves only staging or orphan folders, which :meth:`Lake.sweep`
removes at the next run. Only the pipeline, holding :class:`data.lock.PipelineLock`, writes here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import duckdb

from data.canonical import CANONICAL, LINEAGE, CanonicalTable

__all__ = ["EMPTY", "MANIFEST_COLUMNS", "Lake", "SnapshotEntry"]

#: DuckDB column types of a manifest entry, for ``read_json(..., columns=...)``.
MANIFEST_COLUMNS = {
    "system": "VARCHAR",
    "object": "VARCHAR",
    "snapshot_id": "VARCHAR",
    "run_id": "VARCHAR",
    "mode": "VARCHAR",
    "extracted_at": "TIMESTAMPTZ",
    "published_at": "TIMESTAMPTZ",
    "rows": "BIGINT",
    "quarantined": "BIGINT",
    "cursor": "VARCHAR",
    "current": "BOOLEAN",
}
#: System and snapshot folder name of the empty files that give every view its columns.
EMPTY = "_empty"


@dataclass(frozen=True)
class SnapshotEntry:
    """One published snapshot in the manifest.

    Attributes:
        system: system slug. object: canonical object. snapshot_id: folder name of the snapshot.
        run_id: the extraction run that made it. mode: ``full`` or ``incremental``.
        extracted_at / published_at: ISO-8601 UTC. rows: canonical rows. quarantined: rows refused.
        cursor: the incremental cursor after this snapshot (ISO-8601 ``updated_at``), or None.
        current: whether it is the current snapshot of its system and object.
    """

    system: str
    object: str
    snapshot_id: str
    run_id: str
    mode: str
    extracted_at: str
    published_at: str
    rows: int
    quarantined: int
    cursor: str | None
    current: bool = True


class Lake:
    """The snapshot files of one home folder (see the module docs for the layout)."""

    def __init__(self, home: Path) -> None:
        self.root = home.resolve() / "lake"
        self.manifest_path = self.root / "manifest.json"
        self.staging_root = self.root / ".staging"

    # -- layout --

    def canonical_dir(self, obj: str, system: str, snapshot_id: str) -> Path:
        """Folder of a canonical snapshot."""
        return self.root / "canonical" / obj / system / snapshot_id

    def raw_dir(self, obj: str, system: str, snapshot_id: str) -> Path:
        """Folder of a snapshot's raw records."""
        return self.root / "raw" / obj / system / snapshot_id

    def quarantine_dir(self, obj: str, system: str, snapshot_id: str) -> Path:
        """Folder of a snapshot's quarantined records."""
        return self.root / "quarantine" / obj / system / snapshot_id

    def canonical_glob(self, obj: str) -> str:
        """Glob of every canonical file of ``obj`` (all systems and snapshots)."""
        return str(self.root / "canonical" / obj / "*" / "*" / "*.parquet")

    def quarantine_glob(self, obj: str) -> str:
        """Glob of every quarantine file of ``obj``."""
        return str(self.root / "quarantine" / obj / "*" / "*" / "*.parquet")

    def ensure_layout(self) -> None:
        """Create the folders, an empty manifest and one empty file per canonical and quarantine glob.

        The empty files (under ``_empty/_empty``, never in the manifest) give every view its
        columns before the first snapshot exists.
        """
        self.staging_root.mkdir(parents=True, exist_ok=True)
        if not self.manifest_path.exists():
            self._write_manifest([])
        con = duckdb.connect()
        try:
            for table in CANONICAL.values():
                seed = self.canonical_dir(table.name, EMPTY, EMPTY) / "data.parquet"
                if not seed.exists():
                    _atomic_copy(con, f"SELECT * FROM ({empty_select(table)})", seed)
                qseed = self.quarantine_dir(table.name, EMPTY, EMPTY) / "data.parquet"
                if not qseed.exists():
                    _atomic_copy(con, f"SELECT * FROM ({empty_quarantine_select()})", qseed)
        finally:
            con.close()

    # -- manifest --

    def entries(self) -> list[SnapshotEntry]:
        """Every published snapshot, oldest first."""
        if not self.manifest_path.exists():
            return []
        data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return [SnapshotEntry(**e) for e in data["snapshots"]]

    def current(self, system: str, obj: str) -> SnapshotEntry | None:
        """The current snapshot of ``system``/``obj``, or None before the first one."""
        for e in self.entries():
            if e.current and e.system == system and e.object == obj:
                return e
        return None

    def publish(self, staged: Path, entry: SnapshotEntry) -> None:
        """Move the staged folders of one snapshot into place, then make it current in the manifest.

        ``staged`` holds ``raw/``, ``canonical/`` and (when rows were refused) ``quarantine/``.
        The manifest is replaced last: until then, readers still see the previous snapshot.
        """
        moves = [
            (staged / "raw", self.raw_dir(entry.object, entry.system, entry.snapshot_id)),
            (staged / "quarantine", self.quarantine_dir(entry.object, entry.system, entry.snapshot_id)),
            (staged / "canonical", self.canonical_dir(entry.object, entry.system, entry.snapshot_id)),
        ]
        for src, dst in moves:
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                _fsync_tree(src)
                os.rename(src, dst)
                _fsync_dir(dst.parent)
        entries = [
            replace(e, current=False) if (e.system, e.object) == (entry.system, entry.object) else e
            for e in self.entries()
        ]
        self._write_manifest([*entries, replace(entry, current=True)])

    def sweep(self) -> list[Path]:
        """Delete staging folders and snapshot folders the manifest does not list; return them.

        Only safe while holding the pipeline lock: then no run is writing, so anything unlisted
        was left by a run that died.
        """
        listed = {(e.object, e.system, e.snapshot_id) for e in self.entries()}
        removed: list[Path] = []
        if self.staging_root.exists():
            for p in self.staging_root.iterdir():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        for layer in ("raw", "canonical", "quarantine"):
            for snap in self.root.glob(f"{layer}/*/*/*"):
                key = (snap.parent.parent.name, snap.parent.name, snap.name)
                if snap.is_dir() and snap.name != EMPTY and key not in listed:
                    shutil.rmtree(snap, ignore_errors=True)
                    removed.append(snap)
        return removed

    def _write_manifest(self, entries: Iterable[SnapshotEntry]) -> None:
        body = {"version": 1, "snapshots": [asdict(e) for e in entries]}
        _atomic_write(self.manifest_path, json.dumps(body, indent=1).encode())


def empty_select(table: CanonicalTable) -> str:
    """A query with ``table``'s snapshot columns (lineage + canonical) and no rows."""
    cols = [f"CAST(NULL AS {c.sql_type}) AS {c.name}" for c in (*LINEAGE, *table.columns)]
    return f"SELECT {', '.join(cols)} WHERE false"


def empty_quarantine_select() -> str:
    """A query with the quarantine file's columns and no rows (see :mod:`extractors.staging`)."""
    return (
        "SELECT CAST(NULL AS VARCHAR) AS system, CAST(NULL AS VARCHAR) AS snapshot_id, "
        "CAST(NULL AS VARCHAR) AS run_id, CAST(NULL AS TIMESTAMPTZ) AS extracted_at, "
        "CAST(NULL AS VARCHAR) AS record_key, CAST(NULL AS VARCHAR) AS reason, "
        "CAST(NULL AS VARCHAR) AS record WHERE false"
    )


def _atomic_copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    con.execute(f"COPY ({query}) TO '{tmp}' (FORMAT parquet)")
    os.replace(tmp, path)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_tree(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
