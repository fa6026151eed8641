"""Files connector: CSV, XLSX or Parquet files, one path or glob per object (sources.yaml ``paths``).

Paths resolve against the home folder (absolute paths and ``~`` work too); a glob (``*``, ``?``,
``[...]``, ``**``) takes every matching file, in sorted order. CSV and Parquet files are copied into
the run's raw folder byte for byte (:meth:`extractors.staging.RawSink.file`): CSV is read back as
text, Parquet with its own types, several files by column name (a column missing from a file is
NULL there). XLSX files are read cell by cell (first sheet only; the first row is the header) and
stored as text with every digit kept (:func:`extractors.tabular.cell_text`).

The default mapping is the identity by canonical column name: a source column named like a
canonical column (case-insensitively) fills it. Other columns are mapped in sources.yaml, e.g.
``mappings: {time_entries: {fields: {hours: "duration_h"}}}``. The helpers for tabular rows
live in :mod:`extractors.tabular`, shared with :mod:`extractors.sql`.
"""

from __future__ import annotations

import glob
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from extractors.base import ConnectorContext
from extractors.config import FilesSystem
from extractors.errors import ExtractorError, MalformedResponse, SchemaDrift, SourceUnavailable
from extractors.staging import RawSink
from extractors.tabular import CHUNK_ROWS, TabularConnector, cell_text, text_table

__all__ = ["FilesConnector"]


class FilesConnector(TabularConnector):
    """Reads each object's files into the raw sink (see the module docs)."""

    def __init__(self, system: str, config: FilesSystem, ctx: ConnectorContext) -> None:
        super().__init__(system)
        self.config = config
        self.home = ctx.home
        self._paths: dict[str, str] = {obj: path for obj, path in config.paths.items()}

    def extract(self, obj: str, sink: RawSink, *, since: datetime | None) -> None:
        """Read every file matching ``paths[obj]`` into ``sink`` (``since`` is ignored: full reads).

        Raises:
            SourceUnavailable: no file matches, or a file cannot be read.
            MalformedResponse: a file is not valid CSV, XLSX or Parquet.
            SchemaDrift: an XLSX sheet has no header row, or a header names a column twice.
        """
        pattern = self._paths[obj]
        paths = self._resolve(obj, pattern)
        if Path(pattern).suffix.lower() == ".xlsx":
            self._columns[obj] = self._read_xlsx(obj, paths, sink)
            return
        for path in paths:
            try:
                sink.file(path)
            except OSError as exc:
                raise self._error(SourceUnavailable, obj, f"cannot read {path}: {exc}") from exc
        relation, _ = sink.relation()
        try:
            with duckdb.connect() as con:
                described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        except duckdb.Error as exc:
            raise self._error(MalformedResponse, obj, f"cannot read {pattern}: {exc}") from exc
        self._columns[obj] = [str(row[0]) for row in described]

    def _resolve(self, obj: str, pattern: str) -> list[Path]:
        expanded = str(Path(pattern).expanduser())
        matches = sorted(self.home / p for p in glob.glob(expanded, root_dir=self.home, recursive=True))
        files = [p for p in matches if p.is_file()]
        if not files:
            raise self._error(
                SourceUnavailable, obj, f"no file matches {pattern!r} (relative paths start at {self.home})"
            )
        return files

    def _read_xlsx(self, obj: str, paths: list[Path], sink: RawSink) -> list[str]:
        """Store the first sheet of each workbook, by header name; return the columns."""
        with ExitStack() as stack:
            sheets = [self._open_sheet(obj, path, stack) for path in paths]
            columns = list(dict.fromkeys(name for header, _ in sheets for name in header if name))
            stored = 0
            for header, rows in sheets:
                at = {name: i for i, name in enumerate(header) if name}
                positions = [at.get(name) for name in columns]
                data = (
                    [row[p] if p is not None and p < len(row) else None for p in positions]
                    for row in rows
                    if any(v is not None for v in row)
                )
                while chunk := list(islice(data, CHUNK_ROWS)):
                    sink.table(text_table(columns, chunk))
                    stored += 1
            if not stored:  # no data row: an empty table still gives the mapping its columns
                sink.table(text_table(columns, []))
        return columns

    def _open_sheet(
        self, obj: str, path: Path, stack: ExitStack
    ) -> tuple[list[str | None], Iterator[tuple[Any, ...]]]:
        """Open ``path``'s first sheet: its header (stripped; blank is None) and its other rows."""
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except OSError as exc:
            raise self._error(SourceUnavailable, obj, f"cannot read {path}: {exc}") from exc
        except (InvalidFileException, zipfile.BadZipFile, KeyError) as exc:
            raise self._error(MalformedResponse, obj, f"{path} is not an XLSX workbook: {exc}") from exc
        stack.callback(book.close)
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = [(cell_text(v) or "").strip() or None for v in next(rows, ())]
        names = [n for n in header if n]
        if not names:
            raise self._error(SchemaDrift, obj, f"{path}: the first sheet has no header row (column names)")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise self._error(SchemaDrift, obj, f"{path}: the header names {', '.join(twice)} more than once")
        return header, rows

    def _error(self, kind: type[ExtractorError], obj: str, what: str) -> ExtractorError:
        return kind(f"files source {self.system!r}, {obj}: {what}", source_system=self.system, entity=obj)
