"""The lake: immutable snapshot files under ``HOME/lake`` and the manifest saying which are current.

Layout (one folder per snapshot, never changed once published)::

    lake/manifest.json                                   every published snapshot; ``current`` flags
    lake/raw/<object>/<system>/<snapshot_id>/...         records as received (JSON or source files)
    lake/canonical/<object>/<system>/<snapshot_id>/data.parquet    canonical rows
    lake/quarantine/<object>/<system>/<snapshot_id>/data.parquet   rows refused, with the reason
    lake/.staging/<run_id>/                              work in progress of a run

Canonical files do not repeat in every row what the snapshot's manifest entry already says: a full
snapshot's file holds the canonical columns only, an incremental snapshot's file ``run_id`` and
``extracted_at`` followed by the canonical columns (the rows it carries over from the previous
snapshot keep the run that fetched them). :meth:`Lake.snapshot_query` adds the rest of the lineage
columns (:data:`data.canonical.LINEAGE`) from the entry. Quarantine files hold their lineage.

A run writes everything in its staging folder, then :meth:`Lake.publish` moves each folder into
place with one ``rename`` (atomic on one file system) and finally replaces the manifest (write a
temporary file, fsync, ``os.replace``). Readers (the views of :mod:`data.warehouse`) read the
folders the manifest names, so they see the old snapshot or the new one and never a partial one; a
run that dies before the manifest is replaced leaves only staging or orphan folders, which
:meth:`Lake.sweep` removes at the next run. Only the pipeline, holding
:class:`data.lock.PipelineLock`, writes here.
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
from data.sql import sql_literal

__all__ = ["EMPTY", "atomic_write", "fsync_dir", "fsync_tree", "MANIFEST_COLUMNS", "Lake", "SnapshotEntry"]

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

    def snapshot_query(self, entry: SnapshotEntry) -> str:
        """SQL over the rows of snapshot ``entry``: the lineage columns, then the canonical columns.

        Columns are named rather than ``*``: files written before lineage left the rows also hold
        ``system`` and ``snapshot_id`` (and a full snapshot's ``run_id`` and ``extracted_at``), with
        the values the entry gives.
        """
        shared = {"system": sql_literal(entry.system), "snapshot_id": sql_literal(entry.snapshot_id)}
        if entry.mode != "incremental":
            shared["run_id"] = sql_literal(entry.run_id)
            shared["extracted_at"] = f"TIMESTAMPTZ {sql_literal(entry.extracted_at)}"
        lineage = [f"{shared[c.name]} AS {c.name}" if c.name in shared else c.name for c in LINEAGE]
        columns = ", ".join([*lineage, *CANONICAL[entry.object].names])
        return f"SELECT {columns} FROM {self.snapshot_files(entry.object, entry.system, entry.snapshot_id)}"

    def snapshot_files(self, obj: str, system: str, snapshot_id: str) -> str:
        """A relation (parenthesised) over one snapshot's canonical files with every current column.

        The files are read by name after an empty relation of the object's canonical columns, so a
        column added to the canonical table after the snapshot was written reads as NULL instead of
        failing every view and rule that reads the snapshot.
        """
        every = empty_select(CANONICAL[obj], lineage=False)
        files = sql_literal(str(self.canonical_dir(obj, system, snapshot_id) / "*.parquet"))
        return f"({every} UNION ALL BY NAME SELECT * FROM read_parquet({files}))"

    def ensure_layout(self) -> None:
        """Create the folders, an empty manifest and one empty canonical and quarantine file per object.

        The empty files (under ``_empty/_empty``, never in the manifest) hold every column of the
        views (lineage included) and give them their columns before the first snapshot exists.
        """
        self.staging_root.mkdir(parents=True, exist_ok=True)
        if not self.manifest_path.exists():
            self._write_manifest([])
        seeds = {
            self.canonical_dir(t.name, EMPTY, EMPTY) / "data.parquet": empty_select(t)
            for t in CANONICAL.values()
        }
        seeds |= {
            self.quarantine_dir(t, EMPTY, EMPTY) / "data.parquet": empty_quarantine_select()
            for t in CANONICAL
        }
        missing = {path: query for path, query in seeds.items() if not path.exists()}
        if not missing:
            return  # every connect() lands here: opening DuckDB would cost more than the rest of it
        con = duckdb.connect()
        try:
            for path, query in missing.items():
                _atomic_copy(con, f"SELECT * FROM ({query})", path)
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
                fsync_tree(src)
                os.rename(src, dst)
                fsync_dir(dst.parent)
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
        atomic_write(self.manifest_path, json.dumps(body, indent=1).encode())


def empty_select(table: CanonicalTable, *, lineage: bool = True) -> str:
    """A query with the columns of ``table`` (after the lineage ones, unless not wanted) and no rows."""
    columns = (*LINEAGE, *table.columns) if lineage else table.columns
    cols = [f"CAST(NULL AS {c.sql_type}) AS {c.name}" for c in columns]
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


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: temporary file, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` to disk (before a folder is renamed into place)."""
    for p in [root, *root.rglob("*")]:
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush folder ``path``'s entries (a rename in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
