"""The pages' warehouse reads (``pages/_shared``): one read-only connection per page render.

Opening a connection costs more than most of the Overview's queries, so a render shares one,
opened at its first cache miss and closed when the page is done, even when it fails; a read
outside a render (the sidebar's) has a connection of its own.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from data import queries
from data.warehouse import connect
from pages import _shared as shared


def _snapshots(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """A query-layer function: snapshots of ``name`` (the argument makes each call a cache miss)."""
    return int(con.execute("SELECT count(*) FROM snapshots WHERE object = ?", [name]).fetchall()[0][0])


@pytest.fixture
def opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[duckdb.DuckDBPyConnection]:
    """The connections the pages open on an empty home, in order."""
    monkeypatch.setenv("TIEOUT_HOME", str(tmp_path))
    found: list[duckdb.DuckDBPyConnection] = []

    def counted(home: Path) -> duckdb.DuckDBPyConnection:
        found.append(connect(home))
        return found[-1]

    monkeypatch.setattr(shared, "connect", counted)
    return found


def _closed(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        con.execute("SELECT 1").fetchall()
    except duckdb.ConnectionException:
        return True
    return False


def test_a_render_reads_through_one_connection_closed_at_its_end(
    opened: list[duckdb.DuckDBPyConnection],
) -> None:
    def page() -> None:
        for name in ("render-a", "render-b", "render-c"):
            shared.cached(_snapshots)(name)

    shared.guarded(page)
    assert len(opened) == 1 and _closed(opened[0])
    assert shared.cached(queries.billing_periods)() == []  # outside a render: its own connection
    assert len(opened) == 2 and _closed(opened[1])


def test_a_failing_render_closes_its_connection(opened: list[duckdb.DuckDBPyConnection]) -> None:
    def page() -> None:
        shared.cached(_snapshots)("failing")
        raise RuntimeError("the page failed")

    shared.guarded(page)  # shows the error instead of raising it
    assert len(opened) == 1 and _closed(opened[0])
