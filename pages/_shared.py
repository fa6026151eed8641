"""What the pages share (never a page itself): the home, sign-in, the global filters, cached data.

- The home folder is ``TIEOUT_HOME`` (default ``data``), as for the ``tieout`` command.
- Sign-in checks ``HOME/users.yaml`` (:mod:`data.users`); the signed-in user's name is kept in the
  session, and every page and action works within their legal entities.
- The global filters (legal entity, billing period) live in the sidebar, rendered by ``app.py``;
  :func:`scope` gives a page the legal entities it may show.
- Warehouse reads go through :func:`cached`: results cached for five minutes per warehouse version,
  so a publish shows at the next rerun and a page never reads a half-built file (the warehouse
  file is replaced atomically). A page render (:func:`guarded`) reads through one read-only
  connection, opened at its first cache miss and closed when the page is done (opening one costs
  more than most queries; the pipeline renames its new file over the one held open, which the
  handle does not block); a read outside a page render (the sidebar) has a connection of its own.
- Pages contain no SQL and catch errors in one place (:func:`guarded`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import duckdb
import streamlit as st

from data import queries
from data.queries import break_entities
from data.users import User, Users, load_users
from data.warehouse import connect, warehouse_path
from data.workflow import Workflow

__all__ = [
    "ENTITY_KEY",
    "User",
    "billing_periods",
    "legal_entities",
    "PERIOD_KEY",
    "cached",
    "cached_run_log",
    "data_docs_download",
    "freshness_sla",
    "current_user",
    "guarded",
    "home",
    "period",
    "scope",
    "sign_in",
    "users",
    "warehouse_version",
    "workflow",
]

P = ParamSpec("P")
T = TypeVar("T")
#: Session keys of the global filters (set by the sidebar widgets of app.py).
ENTITY_KEY, PERIOD_KEY = "global_entities", "global_period"
_USER_KEY = "signed_in_user"


def home() -> Path:
    """The home folder: ``TIEOUT_HOME``, default ``./data``."""
    return Path(os.environ.get("TIEOUT_HOME", "data")).resolve()


@st.cache_resource
def users() -> Users:
    """The users of ``HOME/users.yaml``.

    Raises:
        data.users.UsersError: the file is missing or invalid (shown on the sign-in page).
    """
    return load_users(home() / "users.yaml")


def current_user() -> User | None:
    """The signed-in user, or None."""
    name = st.session_state.get(_USER_KEY)
    return users().get(name) if name else None


def sign_in() -> None:
    """The sign-in form; on success the session remembers the user and the app reruns."""
    st.title("Tieout")
    with st.form("sign_in"):
        name = st.text_input("User", key="sign_in_user")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        user = users().authenticate(name, password)
        if user is None:
            st.error("Unknown user or wrong password.")
        else:
            st.session_state[_USER_KEY] = user.name
            st.rerun()


def sign_out() -> None:
    """Forget the signed-in user."""
    st.session_state.pop(_USER_KEY, None)


def scope(user: User) -> tuple[str, ...] | None:
    """The legal entities a page shows: the sidebar's choice within the user's (None: every one)."""
    chosen = tuple(st.session_state.get(ENTITY_KEY) or ())
    allowed = user.entity_filter()
    if allowed is None:
        return chosen or None
    return tuple(e for e in chosen if e in allowed) if chosen else tuple(allowed)


def period() -> str | None:
    """The billing period (``YYYY-MM``) chosen in the sidebar, or None for all."""
    value = st.session_state.get(PERIOD_KEY)
    return None if value in (None, "All") else str(value)


def warehouse_version() -> float:
    """Changes whenever the pipeline publishes (the warehouse file is replaced): part of cache keys."""
    path = warehouse_path(home())
    return path.stat().st_mtime if path.exists() else 0.0


class _Render:
    """The warehouse of one page render: the version its reads are cached under, and its connection.

    The version is taken at the first read, the connection at the first cache miss, so never
    before the version: a publish in between files newer results under the older version (whose
    key no later render asks for), never older results under the newer one.
    """

    def __init__(self) -> None:
        self.version: float | None = None
        self.con: duckdb.DuckDBPyConnection | None = None

    def pinned_version(self) -> float:
        if self.version is None:
            self.version = warehouse_version()
        return self.version

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            self.con = connect(home())
        return self.con

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


#: The page being rendered by this script run's thread (set by :func:`guarded`), or None.
_RENDER: ContextVar[_Render | None] = ContextVar("tieout_render", default=None)


@contextmanager
def _warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
    """The page render's connection, or outside a render one for this read alone."""
    render = _RENDER.get()
    if render is not None:
        yield render.connection()
        return
    con = connect(home())
    try:
        yield con
    finally:
        con.close()


@st.cache_data(ttl=300, show_spinner=False)
def _cached_call(
    name: str, version: float, args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]
) -> Any:
    fn = _REGISTRY[name]
    with _warehouse() as con:
        return fn(con, *args, **dict(kwargs))


_REGISTRY: dict[str, Callable[..., Any]] = {}


def _register(fn: Callable[..., Any]) -> str:
    """Register ``fn`` for the cached calls (which take its name: cache keys must be hashable)."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    _REGISTRY[name] = fn
    return name


def cached(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap a query-layer function ``fn(con, *args, **kwargs)`` for pages.

    Results are cached for five minutes per warehouse version; a miss reads through the page
    render's connection (:func:`guarded`). Arguments must be hashable (tuples, not lists).
    """
    name = _register(fn)

    def call(*args: Any, **kwargs: Any) -> T:
        render = _RENDER.get()
        version = render.pinned_version() if render is not None else warehouse_version()
        return _cached_call(name, version, args, tuple(sorted(kwargs.items())))  # type: ignore[no-any-return]

    return call


@st.cache_data(ttl=60, show_spinner=False)
def _cached_run_log_call(name: str, args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]) -> Any:
    return _REGISTRY[name](_engine(), *args, **dict(kwargs))


def cached_run_log(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap a function ``fn(engine, *args, **kwargs)`` of the app state's run log for pages.

    Results are cached for a minute: the run log grows with every extraction, not with the
    warehouse, so the warehouse version does not say when it changed.
    """
    name = _register(fn)

    def call(*args: Any, **kwargs: Any) -> T:
        return _cached_run_log_call(name, args, tuple(sorted(kwargs.items())))  # type: ignore[no-any-return]

    return call


@st.cache_resource
def _engine() -> Any:
    from data.appstate import state_engine

    return state_engine(home())


def workflow() -> Workflow:
    """The exception workflow on the app state, resolving breaks' legal entities from the warehouse."""

    def entities(break_ids: Any) -> dict[str, str | None]:
        with _warehouse() as con:
            return break_entities(con, list(break_ids))

    return Workflow(_engine(), legal_entity_of=entities, users=users())


def guarded(page: Callable[[], None]) -> None:
    """Run a page, showing any error as one message (never a traceback or a secret).

    The page's warehouse reads share one connection (:func:`cached`), closed when it is done.
    """
    render = _Render()
    token = _RENDER.set(render)
    try:
        page()
    except Exception as exc:  # noqa: BLE001  (the one place the UI catches everything)
        st.error(f"{type(exc).__name__}: {exc}")
    finally:
        _RENDER.reset(token)
        render.close()


def legal_entities() -> list[str]:
    """Every legal entity in the warehouse (cached)."""
    return cached(queries.legal_entities)()


def billing_periods() -> list[str]:
    """Every billing period in the warehouse, latest first (cached)."""
    return cached(queries.billing_periods)()


def data_docs_download(key: str) -> bool:
    """A download button for the latest check run's GX Data Docs (zip); False when there are none yet."""
    from data import operations

    if not operations.data_docs_index(home()).exists():
        return False
    st.download_button(
        "Download the GX Data Docs (zip)",
        data=lambda: operations.data_docs_zip(home()),
        file_name="data_docs.zip",
        mime="application/zip",
        key=key,
        icon=":material/download:",
        on_click="ignore",
        help="Unzip and open data_docs/index.html in a browser.",
    )
    return True


@st.cache_data(ttl=300, show_spinner=False)
def freshness_sla() -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
    """Each system's freshness SLA (minutes) and its objects, from ``HOME/sources.yaml`` (cached)."""
    from extractors.config import load_sources

    systems = load_sources(home() / "sources.yaml").systems
    return {s: c.freshness_sla_minutes for s, c in systems.items()}, {
        s: tuple(c.objects) for s, c in systems.items()
    }
