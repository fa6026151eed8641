"""Read access to the simulators' tables: the demo firm's Parquet files, or a replayed Odoo dump.

The simulators answer paged API calls straight from the Parquet files through DuckDB, so even the
``large`` firm is served without loading it into memory.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from demo.tables import Table, create_views, view_name


class TableStore:
    """Query tables on one DuckDB connection with SQL filters, ordering and paging.

    Each table is a relation named ``view_name(t)`` (``"<system>/<name>"``) on the connection; the
    demo firm's are views over its Parquet files (:class:`DemoStore`), a replayed Odoo dump's are
    in-memory tables (:mod:`demo.odoo_replay`).
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def rows(
        self,
        t: Table,
        *,
        where: str = "TRUE",
        params: Sequence[Any] = (),
        order_by: str = "id",
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Return rows of ``t`` as dicts (Decimal money, date and datetime values).

        Args:
            t: the table.
            where: a SQL predicate over the table's columns, with ``?`` placeholders.
            params: values for the placeholders.
            order_by: SQL ORDER BY clause body; must be total (end with a unique column) for
                paging to be stable.
            limit: page size, or None for all rows.
            offset: rows to skip.
        """
        sql = f"SELECT * FROM {view_name(t)} WHERE {where} ORDER BY {order_by}"
        args = list(params)
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        with self._lock:
            cur = self._conn.cursor()
        try:
            res = cur.execute(sql, args)
            names = [d[0] for d in res.description]
            return [dict(zip(names, row, strict=True)) for row in res.fetchall()]
        finally:
            cur.close()

    def count(self, t: Table, *, where: str = "TRUE", params: Sequence[Any] = ()) -> int:
        """Return the number of rows of ``t`` matching ``where``."""
        with self._lock:
            cur = self._conn.cursor()
        try:
            rows = cur.execute(f"SELECT count(*) FROM {view_name(t)} WHERE {where}", list(params)).fetchall()
            return int(rows[0][0])
        finally:
            cur.close()

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._conn.close()


class DemoStore(TableStore):
    """The demo firm's tables under ``HOME/demo``, one view per table (see :class:`TableStore`).

    Raises:
        FileNotFoundError: at construction, when ``demo_dir`` holds no generated firm.
    """

    def __init__(self, demo_dir: Path) -> None:
        self.demo_dir = demo_dir
        if not (demo_dir / "manifest.json").exists():
            raise FileNotFoundError(
                f"No demo firm in {demo_dir} (manifest.json missing): run `tieout demo generate`."
            )
        conn = duckdb.connect(":memory:")
        create_views(conn, demo_dir)
        super().__init__(conn)
