"""The operations pages' query layer: pipeline health, data quality, and the trace of one record.

Pure functions, no Streamlit. Warehouse questions take a DuckDB connection to
``HOME/warehouse.duckdb`` first (views ``breaks``, ``check_results``, ``customers``, ``projects``,
``invoices``); run-log questions take the app-state engine (:func:`data.appstate.state_engine`).
Each returns a pandas DataFrame with the columns its docstring lists (timestamps as UTC
``datetime64``, money as ``decimal.Decimal``), an empty frame with the same columns when nothing
matches.

Legal-entity scope (``legal_entities``): None shows every entity, a tuple only those (``()``: none).
A row without a legal entity is shown only with None, as in the exception queue. Extraction runs,
freshness and check results belong to systems, not legal entities: they are firm-wide, except that
:func:`check_results` can leave out the failing record ids (``with_samples=False``) for users
limited to some entities.

Trace: one customer, project or invoice across the systems (``kind`` ``customer``, ``project`` or
``invoice``). Records of different systems are the same thing when they share a match key of
``reconcile/rules.yaml``:

- customers: the CRM company id (HubSpot id = Odoo partner ``ref``, both in ``crm_id``); a PSA
  client joins the CRM company whose ``psa_id`` (HubSpot ``harvest_client_id``) names it;
- projects: the project ``code``;
- invoices: the PSA invoice id (``psa_id``: Odoo ``x_harvest_id`` = the Harvest id).

A record no other system names is traced alone (key ``system:id``). A record's legal entity is its
own, or, when its system records none (Harvest), the one its linked records agree on: a user
limited to some entities sees a record of another system only when every entity its group knows is
theirs, and a group that knows none only when they see every entity.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import duckdb
import pandas as pd
import sqlalchemy as sa

from data.appstate import EXTRACTION_RUNS, as_utc
from data.canonical import CANONICAL
from data.lock import PipelineLock

__all__ = [
    "CANDIDATE_COLUMNS",
    "CHECK_COLUMNS",
    "KINDS",
    "PIPELINE_RUN_COLUMNS",
    "QUALITY_BREAK_COLUMNS",
    "RUN_COLUMNS",
    "TRACE_BREAK_COLUMNS",
    "Kind",
    "PipelineLaunch",
    "check_facets",
    "check_results",
    "check_summary",
    "data_docs_index",
    "data_docs_zip",
    "extraction_runs",
    "pipeline_holder",
    "pipeline_runs",
    "quality_breaks",
    "run_systems",
    "side_by_side",
    "start_pipeline",
    "trace_breaks",
    "trace_candidates",
    "trace_records",
]

Kind = Literal["customer", "project", "invoice"]
KINDS: tuple[Kind, ...] = get_args(Kind)

#: Columns of :func:`extraction_runs`, in order.
RUN_COLUMNS = (
    "started_at", "finished_at", "duration_s", "system", "object", "mode", "status", "rows", "received",
    "quarantined", "pages", "requests", "retries", "http_errors", "http_statuses", "error_class",
    "error_message", "run_id", "correlation_id", "snapshot_id",
)  # fmt: skip
#: Columns of :func:`pipeline_runs`, in order.
PIPELINE_RUN_COLUMNS = (
    "started_at", "finished_at", "duration_s", "status", "extractions", "failed", "running", "rows",
    "retries", "http_errors", "correlation_id",
)  # fmt: skip
#: Columns of :func:`check_results`, in order.
CHECK_COLUMNS = (
    "system", "object", "suite", "expectation", "check_type", "column_name", "success", "element_count",
    "unexpected_count", "unexpected_percent", "sample_ids", "observed", "expected", "error", "gx_type",
    "rule_id", "snapshot_id", "checked_at", "run_id",
)  # fmt: skip
#: Columns of :func:`quality_breaks`, in order.
QUALITY_BREAK_COLUMNS = (
    "break_id", "rule_id", "break_type", "source_system", "object", "source_id", "legal_entity_id",
    "field", "source_value", "target_value", "severity", "age_days", "first_seen", "last_seen",
)  # fmt: skip
#: Columns of :func:`trace_candidates`, in order.
CANDIDATE_COLUMNS = ("kind", "key", "label", "systems", "legal_entities", "records", "exact")
#: Columns of :func:`trace_breaks`, in order.
TRACE_BREAK_COLUMNS = (
    "via", "break_id", "rule_id", "category", "break_type", "object", "source_system", "source_id",
    "target_system", "target_id", "match_key", "legal_entity_id", "customer", "project_code",
    "invoice_cycle", "field", "source_value", "target_value", "amount", "currency", "amount_at_risk",
    "severity", "age_days", "first_seen",
)  # fmt: skip

_FAILED = ("failed", "interrupted")
_SEVERITY_ORDER = "CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 WHEN 'low' THEN 2 ELSE 3 END"
#: System slugs in the order a trace shows them (others follow, by name): the ``<slug>_id`` columns.
_ROLES = ("crm", "psa", "erp")


def _frame(rows: Sequence[Sequence[Any]], columns: Sequence[str], utc: Sequence[str] = ()) -> pd.DataFrame:
    """A frame of ``rows`` with ``columns``; the ``utc`` columns as UTC datetimes."""
    frame = pd.DataFrame([list(r) for r in rows], columns=list(columns))
    for name in utc:
        frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
    return frame


def _in(column: str, values: Sequence[str], params: list[Any]) -> str:
    """``column IN (?, ...)`` (``true`` for no values), appending the values to ``params``."""
    if not values:
        return "true"
    params.extend(values)
    return f"{column} IN ({', '.join('?' for _ in values)})"


def _scope(column: str, legal_entities: Sequence[str] | None, params: list[Any]) -> str:
    """The legal-entity condition: None is every row, a tuple only its entities (never NULL)."""
    if legal_entities is None:
        return "true"
    return _in(column, legal_entities, params) if legal_entities else "false"


# --- pipeline health -------------------------------------------------------------------------------


def _http_errors(counts: Any) -> tuple[int, str]:
    """(responses with status >= 400, ``"200×12, 429×1"``) from ``http_status_counts``."""
    if isinstance(counts, str):
        counts = json.loads(counts)
    if not isinstance(counts, dict) or not counts:
        return 0, ""
    items = sorted((str(k), int(v)) for k, v in counts.items())
    errors = sum(n for status, n in items if not status.isdigit() or int(status) >= 400)
    return errors, ", ".join(f"{status}×{n}" for status, n in items)


def extraction_runs(
    engine: sa.Engine,
    *,
    systems: Sequence[str] = (),
    statuses: Sequence[str] = (),
    limit: int = 200,
) -> pd.DataFrame:
    """The latest extraction runs (one system and object each), newest first.

    Args:
        engine: the app-state database (``extraction_runs``).
        systems: keep only runs of these systems (empty: all).
        statuses: keep only runs in these statuses (empty: all): ``running``, ``succeeded``,
            ``failed``, ``interrupted``.
        limit: at most this many runs.

    Returns:
        One row per run with :data:`RUN_COLUMNS`: ``started_at`` / ``finished_at`` (UTC; NaT while
        running), ``duration_s`` (float seconds, NaN while running), counts as Int64 (``rows``,
        ``received``, ``quarantined``, ``pages``, ``requests``, ``retries``, ``http_errors``: responses
        with a status of 400 or more), ``http_statuses`` (``"200×12, 429×1"``), the error, the ids.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the app-state database cannot be read.
    """
    runs = EXTRACTION_RUNS.c
    query = sa.select(EXTRACTION_RUNS).order_by(runs.started_at.desc(), runs.run_id).limit(limit)
    if systems:
        query = query.where(runs.system.in_(list(systems)))
    if statuses:
        query = query.where(runs.status.in_(list(statuses)))
    rows = []
    with engine.connect() as conn:
        for r in conn.execute(query).mappings():
            started, finished = as_utc(r["started_at"]), as_utc(r["finished_at"])
            errors, statuses_text = _http_errors(r["http_status_counts"])
            duration = (finished - started).total_seconds() if started and finished else None
            rows.append({**dict(r), "started_at": started, "finished_at": finished, "duration_s": duration,
                         "http_errors": errors, "http_statuses": statuses_text})  # fmt: skip
    frame = _frame(
        [[r[c] for c in RUN_COLUMNS] for r in rows], RUN_COLUMNS, utc=("started_at", "finished_at")
    )
    frame["duration_s"] = frame["duration_s"].astype("float64")
    for c in ("rows", "received", "quarantined", "pages", "requests", "retries", "http_errors"):
        frame[c] = frame[c].astype("Int64")
    return frame


def run_systems(engine: sa.Engine) -> list[str]:
    """Every system with an extraction run, sorted (for the run filter).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the app-state database cannot be read.
    """
    with engine.connect() as conn:
        return sorted(str(r[0]) for r in conn.execute(sa.select(EXTRACTION_RUNS.c.system).distinct()))


def pipeline_runs(engine: sa.Engine, *, limit: int = 10) -> pd.DataFrame:
    """The latest pipeline runs (the extraction runs of one ``tieout run`` or scheduled job), newest first.

    Runs are grouped by ``correlation_id``. ``status`` is ``running`` while any extraction runs,
    else ``failed`` when any failed or was interrupted, else ``succeeded``.

    Returns:
        One row per pipeline run with :data:`PIPELINE_RUN_COLUMNS`: ``started_at`` (first start,
        UTC), ``finished_at`` (last finish; NaT while running), ``duration_s`` (float), ``status``,
        ``extractions`` / ``failed`` / ``running`` (Int64 counts of extraction runs), ``rows``,
        ``retries``, ``http_errors`` (Int64 sums), ``correlation_id``.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the app-state database cannot be read.
    """
    runs = EXTRACTION_RUNS.c
    latest = (
        sa.select(runs.correlation_id)
        .group_by(runs.correlation_id)
        .order_by(sa.func.max(runs.started_at).desc(), runs.correlation_id)
        .limit(limit)
    )
    with engine.connect() as conn:
        ids = [str(r[0]) for r in conn.execute(latest)]
        found = list(conn.execute(sa.select(EXTRACTION_RUNS).where(runs.correlation_id.in_(ids))).mappings())
    groups: dict[str, list[Any]] = {i: [] for i in ids}
    for r in found:
        groups[str(r["correlation_id"])].append(r)
    out = []
    for cid, members in groups.items():
        starts = [as_utc(r["started_at"]) for r in members]
        ends = [as_utc(r["finished_at"]) for r in members]
        running = sum(r["status"] == "running" for r in members)
        failed = sum(r["status"] in _FAILED for r in members)
        first = min(s for s in starts if s is not None)
        last = None if running or None in ends else max(e for e in ends if e is not None)
        out.append([
            first, last, (last - first).total_seconds() if last else None,
            "running" if running else "failed" if failed else "succeeded", len(members), failed, running,
            sum(r["rows"] or 0 for r in members), sum(r["retries"] or 0 for r in members),
            sum(_http_errors(r["http_status_counts"])[0] for r in members), cid,
        ])  # fmt: skip
    frame = _frame(out, PIPELINE_RUN_COLUMNS, utc=("started_at", "finished_at"))
    frame["duration_s"] = frame["duration_s"].astype("float64")
    for c in ("extractions", "failed", "running", "rows", "retries", "http_errors"):
        frame[c] = frame[c].astype("Int64")
    return frame


def pipeline_holder(home: Path) -> str | None:
    """Who holds the pipeline lock now (``"pid 123 since ...: tieout run"``), or None when nobody does.

    Read from ``HOME/pipeline.lock.holder`` (:mod:`data.lock`) without touching the lock, so asking
    never gets in a run's way. A holder whose process is gone (killed) counts as nobody.
    """
    try:
        holder = json.loads((home / "pipeline.lock.holder").read_text())
        pid = int(holder["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return f"pid {pid} since {holder.get('since')}: {holder.get('command')}"


@dataclass
class PipelineLaunch:
    """A pipeline run started by :func:`start_pipeline` (a child process).

    Attributes:
        pid: the child's process id.
        started_at: when it was started (UTC).
        command: the command line.
        log: the file its output goes to.
    """

    pid: int
    started_at: datetime
    command: list[str]
    log: Path
    _process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def returncode(self) -> int | None:
        """The exit code, or None while it runs.

        ``tieout run`` exits 0 when done, 1 when an extraction or a rule failed, 2 on bad
        configuration, 3 when another run held the lock.
        """
        return self._process.poll()

    def describe(self) -> str:
        """One line for the page: running, or how it ended."""
        code = self.returncode
        since = self.started_at.strftime("%H:%M:%S UTC")
        if code is None:
            return f"Run started at {since} (pid {self.pid}) is running."
        meaning = {0: "finished", 1: "finished with failures", 2: "stopped: invalid configuration",
                   3: "did not start: another run was in progress"}.get(code, "failed")  # fmt: skip
        return f"Run started at {since} {meaning} (exit code {code}; log: {self.log})."


def start_pipeline(home: Path, *, command: Sequence[str] | None = None) -> PipelineLaunch:
    """Start one pipeline run (``tieout run``) for ``home`` in a child process, without waiting for it.

    The child runs ``python -m cli run --home HOME`` (with ``TIEOUT_HOME`` set), in its own session,
    its output in ``HOME/logs/app_run.log``; a thread reaps it when it ends. The lock is tried first,
    so a run in progress is reported at once rather than by the child's exit code 3.

    Args:
        home: the home folder.
        command: run this instead (tests).

    Raises:
        data.lock.PipelineBusy: another run holds the pipeline lock.
        OSError: the process cannot be started or the log file not written.
    """
    with PipelineLock(home, wait_s=0):
        pass  # raises PipelineBusy while a run holds it
    cmd = list(command) if command is not None else [sys.executable, "-m", "cli", "run", "--home", str(home)]
    log = home / "logs" / "app_run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TIEOUT_HOME": str(home)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    return PipelineLaunch(process.pid, datetime.now(UTC), cmd, log, process)


# --- data quality ----------------------------------------------------------------------------------


def data_docs_index(home: Path) -> Path:
    """The GX Data Docs entry page, ``HOME/data_docs/index.html`` (it may not exist yet)."""
    return home / "data_docs" / "index.html"


def data_docs_zip(home: Path) -> bytes:
    """The GX Data Docs folder as a zip (open ``data_docs/index.html`` from it in a browser).

    Raises:
        FileNotFoundError: no check run has built the Data Docs yet.
    """
    index = data_docs_index(home)
    if not index.exists():
        raise FileNotFoundError(f"{index} does not exist yet: run the checks (`tieout check`)")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(index.parent.rglob("*")):
            if path.is_file():
                zf.write(path, Path("data_docs") / path.relative_to(index.parent))
    return buffer.getvalue()


def check_facets(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The values the data-quality filters can take: ``systems``, ``objects``, ``check_types`` (sorted)."""
    row = con.execute(
        "SELECT list(DISTINCT system) FILTER (WHERE system IS NOT NULL), "
        "list(DISTINCT object) FILTER (WHERE object IS NOT NULL), "
        "list(DISTINCT check_type) FILTER (WHERE check_type IS NOT NULL) FROM check_results"
    ).fetchall()[0]
    return {
        k: sorted(str(v) for v in (vals or []))
        for k, vals in zip(("systems", "objects", "check_types"), row, strict=True)
    }


def check_results(
    con: duckdb.DuckDBPyConnection,
    *,
    systems: Sequence[str] = (),
    objects: Sequence[str] = (),
    check_types: Sequence[str] = (),
    failing_only: bool = False,
    with_samples: bool = True,
) -> pd.DataFrame:
    """The latest data-quality result of each check and snapshot, failing first.

    Args:
        con: a connection to the warehouse (view ``check_results``).
        systems: keep only these systems (empty: all).
        objects: keep only these objects (empty: all).
        check_types: keep only these check types (empty: all).
        failing_only: only checks that failed (or could not run).
        with_samples: include the failing record ids; False for a user limited to some legal
            entities (the ids may be other entities' records): ``sample_ids`` is then empty.

    Returns:
        One row per check and snapshot with :data:`CHECK_COLUMNS`, sorted failing first, then by
        system, object, rule: ``success`` (bool), ``element_count`` / ``unexpected_count`` (Int64),
        ``unexpected_percent`` (float percent), ``sample_ids`` (list of str, up to 20), ``checked_at``
        (UTC), the rest text.
    """
    params: list[Any] = []
    where = " AND ".join([
        _in("system", systems, params), _in("object", objects, params),
        _in("check_type", check_types, params),
        "NOT coalesce(success, false)" if failing_only else "true",
    ])  # fmt: skip
    rows = con.execute(
        f"SELECT {', '.join(CHECK_COLUMNS)} FROM check_results WHERE {where} "
        "ORDER BY coalesce(success, false), system, object, rule_id, snapshot_id",
        params,
    ).fetchall()
    frame = _frame(rows, CHECK_COLUMNS, utc=("checked_at",))
    frame["sample_ids"] = [
        [str(i) for i in json.loads(s)] if isinstance(s, str) and s and with_samples else []
        for s in frame["sample_ids"]
    ]
    frame["success"] = frame["success"].astype("bool")
    frame["unexpected_percent"] = frame["unexpected_percent"].astype("float64")
    for c in ("element_count", "unexpected_count"):
        frame[c] = frame[c].astype("Int64")
    return frame


def check_summary(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Checks per system and object of the latest check run, failing first.

    Returns:
        One row per system and object: ``system``, ``object`` (str), ``checks``, ``failed`` (did not
        pass), ``errors`` (could not run) (Int64), ``checked_at`` (latest, UTC).
    """
    rows = con.execute(
        "SELECT system, object, count(*), count(*) FILTER (WHERE NOT coalesce(success, false)), "
        "count(error), max(checked_at) FROM check_results GROUP BY system, object "
        "ORDER BY 4 DESC, system, object"
    ).fetchall()
    frame = _frame(
        rows, ("system", "object", "checks", "failed", "errors", "checked_at"), utc=("checked_at",)
    )
    for c in ("checks", "failed", "errors"):
        frame[c] = frame[c].astype("Int64")
    return frame


def quality_breaks(
    con: duckdb.DuckDBPyConnection,
    *,
    legal_entities: Sequence[str] | None = None,
    systems: Sequence[str] = (),
    objects: Sequence[str] = (),
) -> pd.DataFrame:
    """The open data-quality breaks (category ``data_quality``), most severe first.

    Args:
        con: a connection to the warehouse (view ``breaks``).
        legal_entities: the user's scope (None: all, including breaks without an entity, such as a
            stale snapshot's).
        systems: keep only breaks of these systems (empty: all).
        objects: keep only breaks of these objects (empty: all).

    Returns:
        One row per break with :data:`QUALITY_BREAK_COLUMNS` (``age_days`` Int64, ``first_seen`` /
        ``last_seen`` UTC), sorted by severity, rule, record id.
    """
    params: list[Any] = []
    where = " AND ".join([
        "category = 'data_quality'", _scope("legal_entity_id", legal_entities, params),
        _in("source_system", systems, params), _in("object", objects, params),
    ])  # fmt: skip
    rows = con.execute(
        f"SELECT {', '.join(QUALITY_BREAK_COLUMNS)} FROM breaks WHERE {where} "
        f"ORDER BY {_SEVERITY_ORDER}, rule_id, source_system, source_id NULLS FIRST, break_id",
        params,
    ).fetchall()
    frame = _frame(rows, QUALITY_BREAK_COLUMNS, utc=("first_seen", "last_seen"))
    frame["age_days"] = frame["age_days"].astype("Int64")
    return frame


# --- trace -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Trace:
    object: str
    key: str  # group key over ``r`` (and ``l``, the join of ``link``)
    label: str  # aggregate over a group's records
    search: tuple[str, ...]  # columns searched
    link: str = ""  # an extra LEFT JOIN

    @property
    def id(self) -> str:
        return CANONICAL[self.object].key


def _blank(column: str) -> str:
    return f"nullif(trim({column}), '')"


_TRACES: dict[str, _Trace] = {
    "customer": _Trace(
        "customers",
        key=f"coalesce({_blank('r.crm_id')}, l.crm_id, r.system || ':' || r.customer_id)",
        label="string_agg(DISTINCT name, ' / ' ORDER BY name)",
        search=("customer_id", "name", "tax_id", "crm_id", "psa_id", "erp_id"),
        link=(
            "LEFT JOIN (SELECT psa_id, min(crm_id) AS crm_id FROM customers "
            f"WHERE {_blank('psa_id')} IS NOT NULL AND {_blank('crm_id')} IS NOT NULL GROUP BY psa_id) AS l "
            f"ON {_blank('r.crm_id')} IS NULL AND l.psa_id = r.psa_id"
        ),
    ),
    "project": _Trace(
        "projects",
        key=f"coalesce({_blank('r.code')}, r.system || ':' || r.project_id)",
        label="coalesce(min(code) || ' ', '') || coalesce(arg_min(name, length(name)), '')",
        search=("project_id", "code", "name", "crm_id", "psa_id", "erp_id"),
    ),
    "invoice": _Trace(
        "invoices",
        key=f"coalesce({_blank('r.psa_id')}, r.system || ':' || r.invoice_id)",
        label="string_agg(DISTINCT number, ' / ' ORDER BY number)",
        search=("invoice_id", "number", "psa_id", "psa_number"),
    ),
}


def _trace(kind: str) -> _Trace:
    try:
        return _TRACES[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}") from None


def _members(t: _Trace, legal_entities: Sequence[str] | None, params: dict[str, Any]) -> str:
    """SQL of the object's records with ``_key`` (the group), ``_visible`` (in scope) and ``_role``."""
    names = CANONICAL[t.object].names
    roles = [f"WHEN system = '{s}' THEN {i}" for i, s in enumerate(_ROLES)]
    if legal_entities is None:
        visible = "true"
    else:
        params["scope"] = list(legal_entities)
        visible = (
            "coalesce(list_contains(CAST($scope AS VARCHAR[]), legal_entity_id) OR (legal_entity_id IS NULL "
            "AND len(_entities) > 0 AND list_has_all(CAST($scope AS VARCHAR[]), _entities)), false)"
        )
    columns = ", ".join(f"r.{c}" for c in ("system", "snapshot_id", "extracted_at", *names))
    keyed = f"SELECT {columns}, {t.key} AS _key FROM {t.object} AS r {t.link}"
    return (
        f"SELECT m.*, {visible} AS _visible, CASE {' '.join(roles)} ELSE {len(_ROLES)} END AS _role "
        f"FROM ({keyed}) AS m JOIN (SELECT _key, coalesce(list(DISTINCT legal_entity_id) FILTER "
        "(WHERE legal_entity_id IS NOT NULL), []) AS _entities "
        f"FROM ({keyed}) GROUP BY _key) AS g USING (_key)"
    )


def trace_candidates(
    con: duckdb.DuckDBPyConnection,
    text: str,
    *,
    legal_entities: Sequence[str] | None = None,
    kinds: Sequence[str] = KINDS,
    limit: int = 50,
) -> pd.DataFrame:
    """Customers, projects and invoices whose name, code, number or id (in any system) contains ``text``.

    Args:
        con: a connection to the warehouse (views ``customers``, ``projects``, ``invoices``).
        text: searched case-insensitively; blank finds nothing.
        legal_entities: the user's scope (see the module docs); only records in scope are searched.
        kinds: which of ``customer``, ``project``, ``invoice``.
        limit: at most this many candidates.

    Returns:
        One row per traced thing with :data:`CANDIDATE_COLUMNS`: ``kind``, ``key`` (pass both to
        :func:`trace_records` and :func:`trace_breaks`), ``label`` (names, code and name, or
        numbers), ``systems`` and ``legal_entities`` (comma-separated, of the records in scope),
        ``records`` (Int64), ``exact`` (bool: a searched column equals ``text``). Exact matches
        first, then by kind and label.

    Raises:
        ValueError: an unknown kind.
    """
    text = text.strip()
    traces = [(k, _trace(k)) for k in kinds]
    if not text or not traces:
        return _frame([], CANDIDATE_COLUMNS)
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    params: dict[str, Any] = {"pattern": f"%{escaped}%", "text": text.lower(), "limit": limit}
    parts = []
    for i, (kind, t) in enumerate(traces):
        hit = " OR ".join(f"{c} ILIKE $pattern ESCAPE '\\'" for c in t.search)
        exact = " OR ".join(f"lower({c}) = $text" for c in t.search)
        parts.append(
            f"SELECT {i} AS _order, '{kind}' AS kind, _key AS key, {t.label} AS label, "
            "string_agg(DISTINCT system, ', ' ORDER BY system) AS systems, "
            "string_agg(DISTINCT legal_entity_id, ', ' ORDER BY legal_entity_id) AS legal_entities, "
            f"count(*) AS records, coalesce(bool_or({exact}), false) AS exact "
            f"FROM ({_members(t, legal_entities, params)}) WHERE _visible GROUP BY _key HAVING bool_or({hit})"
        )
    rows = con.execute(
        f"SELECT {', '.join(CANDIDATE_COLUMNS)} FROM ({' UNION ALL '.join(parts)}) "
        "ORDER BY exact DESC, _order, label, key LIMIT $limit",
        params,
    ).fetchall()
    frame = _frame(rows, CANDIDATE_COLUMNS)
    frame["records"] = frame["records"].astype("Int64")
    frame["exact"] = frame["exact"].astype("bool")
    return frame


def trace_records(
    con: duckdb.DuckDBPyConnection, kind: str, key: str, *, legal_entities: Sequence[str] | None = None
) -> pd.DataFrame:
    """The records of one traced customer, project or invoice, one per system (more for duplicates).

    Args:
        con: a connection to the warehouse.
        kind: ``customer``, ``project`` or ``invoice`` (from :func:`trace_candidates`).
        key: the traced thing's key (from :func:`trace_candidates`).
        legal_entities: the user's scope (see the module docs).

    Returns:
        One row per record in scope: ``system``, the object's canonical columns (data/README.md),
        ``snapshot_id``, ``extracted_at`` (UTC), ordered CRM, PSA, ERP, then other systems, then by id.
        Timestamps are UTC, money ``Decimal``.

    Raises:
        ValueError: an unknown kind.
    """
    t = _trace(kind)
    params: dict[str, Any] = {"key": key}
    names = CANONICAL[t.object].names
    columns = ("system", *names, "snapshot_id", "extracted_at")
    rows = con.execute(
        f"SELECT {', '.join(columns)} FROM ({_members(t, legal_entities, params)}) "
        f"WHERE _key = $key AND _visible ORDER BY _role, system, {t.id}",
        params,
    ).fetchall()
    table = CANONICAL[t.object]
    utc = [c.name for c in table.columns if c.sql_type == "TIMESTAMPTZ"] + ["extracted_at"]
    return _frame(rows, columns, utc=utc)


def side_by_side(records: pd.DataFrame) -> pd.DataFrame:
    """``records`` of :func:`trace_records` turned sideways, for reading across systems.

    Returns:
        One row per field that some record fills: ``field``, then one text column per record
        (``"system id"``; values as text, None when empty), then ``differs`` (bool: the records hold
        more than one distinct value). No columns but ``field`` and ``differs`` without records.
    """
    if records.empty:
        return pd.DataFrame({"field": pd.Series(dtype="str"), "differs": pd.Series(dtype="bool")})
    key = records.columns[1]
    labels = [f"{s} {i}" for s, i in zip(records["system"], records[key], strict=True)]
    out: dict[str, list[Any]] = {"field": [], **{label: [] for label in labels}, "differs": []}
    for name in records.columns[1:]:
        values = [None if v is None or v is pd.NaT or (isinstance(v, float) and pd.isna(v)) else str(v)
                  for v in records[name]]  # fmt: skip
        filled = {v for v in values if v is not None}
        if not filled:
            continue
        out["field"].append(name)
        for label, value in zip(labels, values, strict=True):
            out[label].append(value)
        out["differs"].append(len(filled) > 1)
    return pd.DataFrame(out)


def trace_breaks(
    con: duckdb.DuckDBPyConnection, kind: str, key: str, *, legal_entities: Sequence[str] | None = None
) -> pd.DataFrame:
    """The open breaks touching one traced customer, project or invoice.

    A break touches it (``via``) as ``record`` when it is about one of its records (``source_id`` or
    ``target_id`` in that system, or a ``match_key`` equal to one of the record's ids, for the same
    object); as ``customer`` when its ``customer`` is one of a customer's names; as
    ``project_code`` when its ``project_code`` is the project's code, or for a customer the code of
    one of its projects (in any system) (time entries, unbilled time, invoices of it).

    Args:
        con: a connection to the warehouse (views ``breaks`` and the object's).
        kind: ``customer``, ``project`` or ``invoice`` (from :func:`trace_candidates`).
        key: the traced thing's key (from :func:`trace_candidates`).
        legal_entities: the user's scope: breaks of other entities (and, for a limited user,
            without one) are left out, and nothing is returned when no record of the group is in scope.

    Returns:
        One row per break with :data:`TRACE_BREAK_COLUMNS` (``amount`` and ``amount_at_risk``
        ``Decimal``, ``age_days`` Int64, ``first_seen`` UTC): ``record`` first, then by severity,
        amount at risk (largest first), break id.

    Raises:
        ValueError: an unknown kind.
    """
    t = _trace(kind)
    params: dict[str, Any] = {"key": key, "object": t.object}
    names = CANONICAL[t.object].names
    links = [c for c in (t.id, "crm_id", "psa_id", "erp_id") if c in names]
    record = (
        "(b.object = $object AND (EXISTS (SELECT 1 FROM _ids AS i WHERE i.system = b.source_system "
        "AND i.id = b.source_id) OR EXISTS (SELECT 1 FROM _ids AS i WHERE i.system = b.target_system "
        "AND i.id = b.target_id) OR b.match_key IN (SELECT v FROM _links)))"
    )
    related = {
        "customer": "WHEN b.customer IN (SELECT name FROM _group) THEN 'customer' "
        "WHEN b.project_code IN (SELECT p.code FROM projects AS p JOIN _ids AS i "
        "ON i.system = p.system AND i.id = p.customer_id) THEN 'project_code' ",
        "project": "WHEN b.project_code IN (SELECT code FROM _group) THEN 'project_code' ",
    }.get(kind, "")
    scope_params: list[Any] = []
    in_scope = _scope("b.legal_entity_id", legal_entities, scope_params)
    for i, value in enumerate(scope_params):
        params[f"e{i}"] = value
        in_scope = in_scope.replace("?", f"$e{i}", 1)
    rows = con.execute(
        f"WITH _group AS (SELECT * FROM ({_members(t, legal_entities, params)}) WHERE _key = $key), "
        f"_ids AS (SELECT system, {t.id} AS id FROM _group), "
        f"_links AS ({' UNION '.join(f'SELECT {c} AS v FROM _group WHERE {c} IS NOT NULL' for c in links)}) "
        f"SELECT {', '.join(TRACE_BREAK_COLUMNS)} FROM (SELECT CASE WHEN {record} THEN 'record' {related}END "
        f"AS via, b.* FROM breaks AS b WHERE {in_scope}) WHERE via IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM _group WHERE _visible) "
        f"ORDER BY via <> 'record', {_SEVERITY_ORDER}, amount_at_risk DESC NULLS LAST, break_id",
        params,
    ).fetchall()
    frame = _frame(rows, TRACE_BREAK_COLUMNS, utc=("first_seen",))
    frame["age_days"] = frame["age_days"].astype("Int64")
    return frame
