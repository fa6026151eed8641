"""The app-state database (SQLAlchemy): run log and snapshot catalogue, later workflow and users.

SQLite at ``HOME/state.db`` by default (WAL mode, so the app reads while the pipeline writes);
PostgreSQL or any SQLAlchemy URL through the ``TIEOUT_STATE_URL`` environment variable. The
APScheduler job store lives in the same database (:mod:`extractors.schedule`).

Tables:

``extraction_runs`` (one row per extraction of one object from one system)
    ``run_id``, ``correlation_id`` (shared by the runs of one ``tieout extract`` or scheduled job,
    and sent to the source as ``X-Correlation-Id``), ``system``, ``object``, ``mode`` (``full`` /
    ``incremental``), ``started_at``, ``finished_at`` (UTC), ``status`` (``running``,
    ``succeeded``, ``failed``, ``interrupted``), ``rows`` (canonical rows in the snapshot),
    ``received`` (records received), ``quarantined``, ``pages``, ``requests``, ``retries``,
    ``http_status_counts`` (JSON object, status -> count), ``error_class``, ``error_message``,
    ``snapshot_id`` (published snapshot, on success).
``snapshots`` (the catalogue: one row per published snapshot)
    ``snapshot_id``, ``system``, ``object``, ``run_id``, ``published_at``, ``rows``,
    ``quarantined``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

__all__ = ["EXTRACTION_RUNS", "METADATA", "SNAPSHOTS", "as_utc", "row_dict", "state_engine", "state_url"]

METADATA = sa.MetaData()
_TS = sa.DateTime(timezone=True)

EXTRACTION_RUNS = sa.Table(
    "extraction_runs", METADATA,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("correlation_id", sa.String(64), nullable=False, index=True),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("object", sa.String(32), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("started_at", _TS, nullable=False),
    sa.Column("finished_at", _TS),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows", sa.BigInteger),
    sa.Column("received", sa.BigInteger),
    sa.Column("quarantined", sa.BigInteger),
    sa.Column("pages", sa.Integer),
    sa.Column("requests", sa.Integer),
    sa.Column("retries", sa.Integer),
    sa.Column("http_status_counts", sa.JSON),
    sa.Column("error_class", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("snapshot_id", sa.String(128)),
    sa.Index("ix_extraction_runs_system_object_started", "system", "object", "started_at"),
    # covers the sync failure rate's scan of a period's runs (data.kpis)
    sa.Index("ix_extraction_runs_started_status", "started_at", "status", "system"),
)  # fmt: skip

SNAPSHOTS = sa.Table(
    "snapshots", METADATA,
    sa.Column("snapshot_id", sa.String(128), primary_key=True),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("object", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("published_at", _TS, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("quarantined", sa.BigInteger, nullable=False),
)  # fmt: skip


def state_url(home: Path) -> str:
    """The app-state URL: ``TIEOUT_STATE_URL`` if set, else SQLite at ``HOME/state.db``."""
    return os.environ.get("TIEOUT_STATE_URL") or f"sqlite:///{home.resolve() / 'state.db'}"


def state_engine(home: Path) -> sa.Engine:
    """Return an engine on the app-state database, with its tables created.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database cannot be reached or created.
    """
    url = state_url(home)
    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    METADATA.create_all(engine)
    for table in METADATA.sorted_tables:  # create_all adds no index to a table that exists
        for index in table.indexes:
            index.create(engine, checkfirst=True)
    return engine


def _sqlite_pragmas(dbapi_con: Any, _record: Any) -> None:
    cur = dbapi_con.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for UTC values stored aware; give them back their zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def row_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A result row as a dict with aware UTC datetimes."""
    return {str(k): as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}
