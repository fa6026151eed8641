"""Raw records of one extraction run, written to its staging folder as they arrive.

A connector hands its records to a :class:`RawSink` in one of three forms, one form per run:

- ``records(page)``: a page of JSON records from an API. Stored as Parquet with one JSON text column
  ``record`` (and the ``page`` number), exactly as received, money included (parsed as Decimal,
  written back as the same digits).
- ``table(table)``: rows read by a SQL query or from a spreadsheet, as an Arrow table.
- ``file(path)``: a source file (CSV, Parquet) copied byte for byte.

:meth:`RawSink.relation` then gives the DuckDB relation the mapping reads. The pipeline moves the
folder into the lake when it publishes (:mod:`data.lake`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from extractors.mapping import sql_literal

__all__ = ["RawSink", "dumps_record"]

_JSON_SCHEMA = pa.schema([("page", pa.int32()), ("record", pa.string())])
Form = Literal["json", "table", "csv", "parquet"]


def dumps_record(value: Any) -> str:
    """Serialise a record parsed with ``parse_float=Decimal`` back to JSON, keeping every digit.

    Raises:
        TypeError: a value that JSON cannot hold.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_record(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                f"{json.dumps(str(k), ensure_ascii=False)}:{dumps_record(v)}" for k, v in value.items()
            )
            + "}"
        )
    raise TypeError(f"cannot store {type(value).__name__} in a raw JSON record")


class RawSink:
    """Collects one run's raw records under ``folder`` (created).

    Attributes:
        pages: pages or tables or files received. received: records received (files: counted by
            the pipeline). on_page: called with ``(pages, received)`` after each page.
    """

    def __init__(self, folder: Path, on_page: Callable[[int, int], None] | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.pages = 0
        self.received = 0
        self.on_page = on_page
        self._form: Form | None = None
        self._writer: pq.ParquetWriter | None = None
        self._files: list[Path] = []

    @property
    def form(self) -> Form | None:
        """The form of the raw records, or None before the first page."""
        return self._form

    def records(self, page: list[dict[str, Any]]) -> None:
        """Store one page of JSON records."""
        self._set_form("json")
        batch = pa.table({"page": pa.array([self.pages] * len(page), pa.int32()),
                          "record": pa.array([dumps_record(r) for r in page], pa.string())})  # fmt: skip
        self._write(batch)
        self._count(len(page))

    def table(self, table: pa.Table) -> None:
        """Store rows as an Arrow table (every call with the same schema)."""
        self._set_form("table")
        self._write(table)
        self._count(table.num_rows)

    def file(self, path: Path) -> None:
        """Copy a CSV or Parquet source file into the raw folder."""
        form: Form = "csv" if path.suffix.lower() == ".csv" else "parquet"
        self._set_form(form)
        target = self.folder / f"{len(self._files):05d}-{path.name}"
        shutil.copyfile(path, target)
        self._files.append(target)
        self.pages += 1
        if self.on_page:
            self.on_page(self.pages, self.received)

    def close(self) -> None:
        """Finish the Parquet file being written, if any."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def relation(self) -> tuple[str, bool]:
        """Return ``(SQL relation over the raw records, whether records are JSON)``.

        An empty extraction (no page at all) gives an empty JSON relation.
        """
        self.close()
        data = sql_literal(str(self.folder / "data.parquet"))
        if self._form in (None, "json"):
            if self._form is None:
                return (
                    "(SELECT CAST(NULL AS INTEGER) AS page, CAST(NULL AS VARCHAR) AS record WHERE false)",
                    True,
                )
            return f"read_parquet({data})", True
        if self._form == "table":
            return f"read_parquet({data})", False
        files = ", ".join(sql_literal(str(f)) for f in self._files)
        if self._form == "csv":
            # null_padding: a row shorter than the header is padded with NULLs instead of making the
            # sniffer fall back to one column.
            return (
                f"read_csv([{files}], header = true, all_varchar = true, union_by_name = true, "
                "null_padding = true)",
                False,
            )
        return f"read_parquet([{files}], union_by_name = true)", False

    def _set_form(self, form: Form) -> None:
        if self._form not in (None, form):
            raise ValueError(f"a run's raw records come in one form; got {form} after {self._form}")
        self._form = form

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.folder / "data.parquet", table.schema)
        self._writer.write_table(table)

    def _count(self, n: int) -> None:
        self.pages += 1
        self.received += n
        if self.on_page:
            self.on_page(self.pages, self.received)
