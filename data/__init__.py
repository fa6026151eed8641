"""The warehouse and the app state: snapshot files (lake), DuckDB views, run log, pipeline lock.

:mod:`data.lake` lays out and publishes snapshots; :mod:`data.warehouse` builds and opens the views
of ``HOME/warehouse.duckdb``; :mod:`data.appstate` is the SQLAlchemy app-state database;
:mod:`data.lock` keeps the pipeline to one writer; :mod:`data.canonical` defines the canonical tables.
"""

from __future__ import annotations

from data.appstate import EXTRACTION_RUNS, SNAPSHOTS, state_engine, state_url
from data.canonical import CANONICAL, OBJECTS, canonical_table
from data.lake import Lake, SnapshotEntry
from data.lock import PipelineBusy, PipelineLock
from data.warehouse import connect, ensure_warehouse, warehouse_path

__all__ = [
    "CANONICAL",
    "EXTRACTION_RUNS",
    "OBJECTS",
    "SNAPSHOTS",
    "Lake",
    "PipelineBusy",
    "PipelineLock",
    "SnapshotEntry",
    "canonical_table",
    "connect",
    "ensure_warehouse",
    "state_engine",
    "state_url",
    "warehouse_path",
]
