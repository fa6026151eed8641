"""Sources of rows rather than JSON records (files, SQL): exact text cells and the identity mapping.

A tabular connector stores rows as text with every digit kept (:func:`cell_text`) and maps them by
name: a source column named like a canonical column (case-insensitively) fills it
(:func:`identity_mapping`). Since the columns are only known once the source was read, the
pipeline asks for :meth:`TabularConnector.default_mapping` after ``extract``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, time
from decimal import Decimal
from typing import Any

import pyarrow as pa

from data.canonical import CANONICAL
from extractors.http import RequestStats
from extractors.mapping import ObjectMapping

__all__ = [
    "CHUNK_ROWS",
    "TabularConnector",
    "cell_text",
    "identity_mapping",
    "quote_identifier",
    "text_table",
]

#: Rows per table handed to the sink (XLSX sheets, query results).
CHUNK_ROWS = 50_000


def cell_text(value: object) -> str | None:
    """Return a cell or database value as text, exactly.

    Floats become their shortest exact decimal (``1234.56``, never ``1234.5599999``), Decimals
    their digits, booleans ``true``/``false``, dates and times ISO 8601 (naive ones as they are),
    bytes hex; None stays None and anything else is ``str(value)``.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Return ``rows`` (one value per column, in ``columns`` order) as an Arrow table of strings."""
    arrays = [pa.array([cell_text(row[i]) for row in rows], pa.string()) for i in range(len(columns))]
    return pa.Table.from_arrays(arrays, names=list(columns))


def quote_identifier(name: str) -> str:
    """Return ``name`` as a quoted DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def identity_mapping(obj: str, columns: Iterable[str]) -> ObjectMapping:
    """Map each canonical column of ``obj`` to the source column of the same name, if any.

    Names match case-insensitively (as DuckDB resolves them); the first source column wins.
    """
    by_name: dict[str, str] = {}
    for name in columns:
        by_name.setdefault(name.lower(), name)
    names = CANONICAL[obj].names
    return ObjectMapping(obj, {c: quote_identifier(by_name[c]) for c in names if c in by_name})


class TabularConnector:
    """What files and SQL connectors share: full reads, no HTTP, the identity mapping of the columns read.

    Subclasses record the columns of each object they extract in ``self._columns[obj]``.
    """

    def __init__(self, system: str) -> None:
        self.system = system
        self._columns: dict[str, list[str]] = {}

    def default_mapping(self, obj: str) -> ObjectMapping:
        """The identity mapping over the columns the last ``extract(obj)`` found.

        Raises:
            RuntimeError: ``obj`` has not been extracted yet.
        """
        if obj not in self._columns:
            raise RuntimeError(f"{self.system}: default_mapping({obj!r}) needs extract({obj!r}) first")
        return identity_mapping(obj, self._columns[obj])

    def incremental(self, obj: str) -> bool:
        """Never: files and queries are read whole."""
        return False

    def http_stats(self) -> RequestStats | None:
        """Not HTTP: no request counters."""
        return None

    def close(self) -> None:
        """Nothing to release by default."""
