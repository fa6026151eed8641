"""Writing the demo firm's tables as Parquet parts, and exact money columns from integer cents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from demo.tables import MONEY, Table


def money_from_cents(cents: np.ndarray[Any, Any], null: np.ndarray[Any, Any] | None = None) -> pa.Array:
    """Return a ``DECIMAL(18,2)`` Arrow array from int64 hundredths (cents, or hours × 100).

    Built straight from the 128-bit unscaled values, so no float ever touches the amounts.
    """
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension into the high word
    validity = None
    if null is not None and null.any():
        validity = pa.array(~null).buffers()[1]
    return pa.Array.from_buffers(MONEY, len(cents), [validity, pa.py_buffer(words.tobytes())])


class PartWriter:
    """Append batches to one table's dataset folder, cutting a new part every ``rows_per_part``.

    Parts are named ``part-00000.parquet``, ``part-00001.parquet``, … in write order.
    """

    def __init__(self, table: Table, demo_dir: Path, rows_per_part: int) -> None:
        self.table = table
        self.folder = table.path(demo_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows_per_part = rows_per_part
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._parts = 0
        self.rows = 0

    def write(self, batch: pa.Table) -> None:
        """Queue ``batch`` (cast to the table's schema) and flush full parts."""
        self._pending.append(batch.select(self.table.schema.names).cast(self.table.schema))
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= self.rows_per_part:
            self._flush()

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """Queue a list of row dicts (columns of the table's schema)."""
        self.write(pa.Table.from_pylist(rows, schema=self.table.schema))

    def _flush(self) -> None:
        if not self._pending and self._parts:
            return
        data = pa.concat_tables(self._pending) if self._pending else self.table.schema.empty_table()
        pq.write_table(data, self.folder / f"part-{self._parts:05d}.parquet", compression="zstd")
        self._parts += 1
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        """Write what is queued (an empty part if the table has no rows at all)."""
        if self._pending or not self._parts:
            self._flush()
