r"""SQL connector: any database SQLAlchemy reaches, one query or table per object.

The SQLAlchemy URL (``postgresql+psycopg://user:password@host/db``, ``sqlite:///path.db``, ...) is a
secret: sources.yaml names the environment variable holding it (``url_env``), and a message shows it
only with the password hidden. Each object is ``queries[obj]`` (run as written, through
:func:`sqlalchemy.text`: a literal ``:word`` must be written ``\:word``) or ``SELECT * FROM`` the
table ``tables[obj]`` (``schema.table`` for another schema; a lower-case name is case-insensitive,
as SQLAlchemy quotes it). Rows are streamed in chunks of :data:`extractors.tabular.CHUNK_ROWS` and
stored as text with every digit kept (:func:`extractors.tabular.cell_text`), under the result's
column names.

The default mapping is the identity by canonical column name (see :mod:`extractors.tabular`): alias
the columns in the query (``SELECT duration AS hours``) or map them in sources.yaml.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from extractors.base import ConnectorContext
from extractors.config import SqlSystem, secret
from extractors.errors import ExtractorError, SchemaDrift, SourceUnavailable
from extractors.staging import RawSink
from extractors.tabular import CHUNK_ROWS, TabularConnector, text_table

__all__ = ["SqlConnector"]


class SqlConnector(TabularConnector):
    """Runs each object's query and streams the rows into the raw sink (see the module docs)."""

    def __init__(self, system: str, config: SqlSystem, ctx: ConnectorContext) -> None:
        super().__init__(system)
        self.config = config
        self._url = secret(config.url_env, system=system, what="database URL")
        try:
            parsed = sa.make_url(self._url)
            self._shown: str | None = parsed.render_as_string(hide_password=True)
            self._password = parsed.password
        except ArgumentError:  # reported by extract, with the object being extracted
            self._shown, self._password = None, None
        self._queries: dict[str, str] = {obj: query for obj, query in config.queries.items()}
        self._tables: dict[str, str] = {obj: table for obj, table in config.tables.items()}
        self._engine: Engine | None = None

    def extract(self, obj: str, sink: RawSink, *, since: datetime | None) -> None:
        """Run ``obj``'s query and store every row in ``sink`` (``since`` is ignored: full reads).

        Raises:
            ExtractorError: the URL cannot be used (not a URL, unknown dialect, driver not installed).
            SourceUnavailable: the database cannot be reached, or the connection dropped.
            SchemaDrift: the query failed (a missing table or column, bad SQL), or returns a column
                name twice.
        """
        engine = self._engine_for(obj)
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise self._error(
                SourceUnavailable, obj, f"cannot connect to {self._safe_url()}: {_cause(exc)}"
            ) from exc
        with conn:
            try:
                self._columns[obj] = self._stream(obj, conn, self._query(obj, engine), sink)
            except DBAPIError as exc:
                kind = SourceUnavailable if exc.connection_invalidated else SchemaDrift
                raise self._error(kind, obj, f"query failed: {_cause(exc)}") from exc
            except SQLAlchemyError as exc:
                raise self._error(SchemaDrift, obj, f"query failed: {_cause(exc)}") from exc

    def close(self) -> None:
        """Close the connection pool, if one was opened."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _engine_for(self, obj: str) -> Engine:
        if self._engine is None:
            try:
                self._engine = sa.create_engine(self._url)
            except (SQLAlchemyError, ImportError) as exc:
                raise self._error(
                    ExtractorError, obj, f"cannot use the database URL {self._safe_url()}: {_cause(exc)}"
                ) from exc
        return self._engine

    def _query(self, obj: str, engine: Engine) -> str:
        if obj in self._queries:
            return self._queries[obj]
        quote = engine.dialect.identifier_preparer.quote
        return "SELECT * FROM " + ".".join(quote(part) for part in self._tables[obj].split("."))

    def _stream(self, obj: str, conn: Connection, query: str, sink: RawSink) -> list[str]:
        """Store the rows of ``query`` in ``sink`` chunk by chunk; return the result's columns."""
        result = conn.execution_options(yield_per=CHUNK_ROWS).execute(sa.text(query))
        columns = list(result.keys())
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise self._error(
                SchemaDrift, obj, f"the query returns {', '.join(twice)} more than once; alias them"
            )
        stored = 0
        for chunk in result.partitions():
            sink.table(text_table(columns, chunk))
            stored += 1
        if not stored:  # no row: an empty table still gives the mapping its columns
            sink.table(text_table(columns, []))
        return columns

    def _safe_url(self) -> str:
        """The URL with its password hidden, or where it comes from when it is not a URL."""
        return self._shown or f"in ${self.config.url_env} (not a SQLAlchemy URL)"

    def _error(self, kind: type[ExtractorError], obj: str, what: str) -> ExtractorError:
        message = f"SQL source {self.system!r}, {obj}: {what}"
        if self._password:
            message = message.replace(self._password, "***")
        return kind(message, source_system=self.system, entity=obj, url=self._shown)


def _cause(exc: BaseException) -> str:
    """The first line of the database's own message (SQLAlchemy's wrapper adds the SQL and a link)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__
