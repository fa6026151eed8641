"""The query layer of the app: pure functions named after the question they answer.

Each takes a DuckDB connection to ``HOME/warehouse.duckdb`` (read-only, short-lived: see the
app's ``pages/_shared.py``), never imports Streamlit, and returns pandas DataFrames whose columns
are documented. Money stays DECIMAL until it reaches the frame (``decimal.Decimal`` values).

The exception queue joins the workflow state of the breaks someone touched (status, assignee,
reason; :mod:`data.workflow`, kept in the app-state database) onto the ``breaks`` view: the
caller passes that state as a DataFrame, which is registered for the query. Filtering, sorting
and paging run in DuckDB, so a page of a million-break queue comes back without loading the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from data.breaks import BREAK_COLUMNS

__all__ = [
    "QUEUE_COLUMNS",
    "QUEUE_SORTS",
    "QueueFilter",
    "WORKFLOW_COLUMNS",
    "exception_queue",
    "queue_facets",
]

#: The workflow state columns (one row per touched break) the queue joins on ``break_id``.
WORKFLOW_COLUMNS = ("break_id", "status", "assignee", "reason_code", "updated_at", "updated_by")
#: Columns of a queue page, in order: the ``breaks`` view's, then the workflow's.
QUEUE_COLUMNS = (
    *(c for c, _, _ in BREAK_COLUMNS),
    "status",
    "assignee",
    "reason_code",
    "updated_at",
    "updated_by",
)
#: Sort keys the queue accepts -> ORDER BY (always ending in break_id, so pages are stable).
QUEUE_SORTS = {
    "amount_at_risk": "amount_at_risk DESC NULLS LAST, break_id",
    "age": "age_days DESC NULLS LAST, break_id",
    "severity": "CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, "
    "amount_at_risk DESC NULLS LAST, break_id",
    "first_seen": "first_seen, break_id",
    "rule": "rule_id, break_type, match_key, break_id",
}
_EMPTY_STATE = pd.DataFrame({c: pd.Series(dtype="object") for c in WORKFLOW_COLUMNS})


@dataclass(frozen=True)
class QueueFilter:
    """What the exception queue shows. Empty lists and None mean "no filter".

    Attributes:
        legal_entities: the legal entities shown (the user's scope intersected with the filter);
            None shows every entity, ``()`` shows none. Tuples keep the filter hashable (cache keys).
        billing_periods / projects / customers / rules / break_types / severities / categories:
            allowed values of ``invoice_cycle``, ``project_code``, ``customer``, ``rule_id``,
            ``break_type``, ``severity``, ``category``.
        system_pairs: ``source_system>target_system`` pairs (a data-quality break: ``system>``).
        statuses: workflow statuses; a break nobody touched is ``open``.
        assignees: assignees (``""`` for unassigned).
        min_age_days / max_age_days: bounds on ``age_days`` (inclusive).
        search: text searched in the match key (which holds the record ids) and the customer name,
            case-insensitive.
    """

    legal_entities: tuple[str, ...] | None = None
    billing_periods: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    break_types: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    system_pairs: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    min_age_days: int | None = None
    max_age_days: int | None = None
    search: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition over the queue relation ``q`` and its parameters."""
        parts: list[str] = []
        params: list[Any] = []

        def any_of(expr: str, values: tuple[str, ...]) -> None:
            if values:
                parts.append(f"{expr} IN ({', '.join('?' for _ in values)})")
                params.extend(values)

        if self.legal_entities is not None:
            parts.append(
                f"legal_entity_id IN ({', '.join('?' for _ in self.legal_entities)})"
                if self.legal_entities
                else "false"
            )
            params.extend(self.legal_entities)
        any_of("invoice_cycle", self.billing_periods)
        any_of("project_code", self.projects)
        any_of("customer", self.customers)
        any_of("rule_id", self.rules)
        any_of("break_type", self.break_types)
        any_of("severity", self.severities)
        any_of("category", self.categories)
        any_of("source_system || '>' || coalesce(target_system, '')", self.system_pairs)
        any_of("status", self.statuses)
        any_of("coalesce(assignee, '')", self.assignees)
        if self.min_age_days is not None:
            parts.append("age_days >= ?")
            params.append(self.min_age_days)
        if self.max_age_days is not None:
            parts.append("age_days <= ?")
            params.append(self.max_age_days)
        if self.search:
            # the match key holds the record ids; one ILIKE per column beats concatenating per row
            fields = ("match_key", "customer")
            parts.append("(" + " OR ".join(f"{f} ILIKE ?" for f in fields) + ")")
            params.extend([f"%{self.search}%"] * len(fields))
        return (" AND ".join(parts) or "true"), params


def _queue(con: duckdb.DuckDBPyConnection, state: pd.DataFrame | None) -> str:
    """Register the workflow ``state`` and return the SQL of the queue relation (breaks + state)."""
    frame = _EMPTY_STATE if state is None or state.empty else state[list(WORKFLOW_COLUMNS)]
    con.register("_workflow_state", frame)
    return (
        "SELECT b.*, coalesce(w.status, 'open') AS status, w.assignee, w.reason_code, "
        "CAST(w.updated_at AS TIMESTAMPTZ) AS updated_at, w.updated_by "
        "FROM breaks AS b LEFT JOIN _workflow_state AS w ON w.break_id = b.break_id"
    )


def exception_queue(
    con: duckdb.DuckDBPyConnection,
    flt: QueueFilter,
    *,
    state: pd.DataFrame | None = None,
    sort: str = "amount_at_risk",
    page: int = 0,
    page_size: int = 50,
) -> tuple[pd.DataFrame, int]:
    """One page of the exception queue (breaks and data-quality failures) and the total it pages.

    Args:
        con: a connection to the warehouse (views ``breaks``).
        flt: the filters (:class:`QueueFilter`); ``legal_entities`` carries the user's scope.
        state: the workflow state of touched breaks (columns :data:`WORKFLOW_COLUMNS`), or None.
        sort: a key of :data:`QUEUE_SORTS` (default: amount at risk, largest first).
        page: which page, 0-based.
        page_size: rows per page.

    Returns:
        The page, one row per break with :data:`QUEUE_COLUMNS` (``amount`` and ``amount_at_risk``
        are ``Decimal``; ``status`` is ``open`` for untouched breaks), and the number of breaks
        matching the filters. Empty frame, same columns, if none.

    Raises:
        ValueError: an unknown ``sort``, or a negative page or page size below 1.
    """
    if sort not in QUEUE_SORTS:
        raise ValueError(f"unknown sort {sort!r}; sorts: {', '.join(QUEUE_SORTS)}")
    if page < 0 or page_size < 1:
        raise ValueError(f"page must be >= 0 and page_size >= 1, not {page} and {page_size}")
    where, params = flt.where()
    relation = _queue(con, state)
    # fetchall: a result left half-read blocks the connection (DuckDB 2)
    total = int(con.execute(f"SELECT count(*) FROM ({relation}) AS q WHERE {where}", params).fetchall()[0][0])
    rows = con.execute(
        f"SELECT {', '.join(QUEUE_COLUMNS)} FROM ({relation}) AS q WHERE {where} "
        f"ORDER BY {QUEUE_SORTS[sort]} LIMIT ? OFFSET ?",
        [*params, page_size, page * page_size],
    ).fetchall()
    return pd.DataFrame(rows, columns=list(QUEUE_COLUMNS)), total


def queue_facets(
    con: duckdb.DuckDBPyConnection, flt: QueueFilter, *, state: pd.DataFrame | None = None
) -> dict[str, list[str]]:
    """The values each queue filter can take within the user's scope (for the filter widgets).

    Returns:
        Filter name -> sorted distinct values: ``billing_periods``, ``projects``, ``customers``,
        ``rules``, ``break_types``, ``severities``, ``categories``, ``system_pairs``, ``statuses``,
        ``assignees``, ``legal_entities``.
    """
    scope = QueueFilter(legal_entities=flt.legal_entities)
    where, params = scope.where()
    relation = _queue(con, state)
    columns = {
        "billing_periods": "invoice_cycle", "projects": "project_code", "customers": "customer",
        "rules": "rule_id", "break_types": "break_type", "severities": "severity", "categories": "category",
        "system_pairs": "source_system || '>' || coalesce(target_system, '')", "statuses": "status",
        "assignees": "assignee", "legal_entities": "legal_entity_id",
    }  # fmt: skip
    lists = ", ".join(f"list(DISTINCT {expr}) FILTER (WHERE {expr} IS NOT NULL)" for expr in columns.values())
    values = con.execute(f"SELECT {lists} FROM ({relation}) AS q WHERE {where}", params).fetchall()[0]
    return {name: sorted(str(v) for v in (vals or [])) for name, vals in zip(columns, values, strict=True)}


def break_entities(con: duckdb.DuckDBPyConnection, break_ids: list[str]) -> dict[str, str | None]:
    """The legal entity of each of ``break_ids`` in the ``breaks`` view (ids not there are left out).

    The workflow (:class:`data.workflow.Workflow`) checks a user's scope with it before any change.
    """
    rows = con.execute(
        "SELECT break_id, legal_entity_id FROM breaks WHERE break_id IN (SELECT unnest(?))", [break_ids]
    ).fetchall()
    return {str(b): e for b, e in rows}


def legal_entities(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every legal entity known to the warehouse (breaks, customers, projects), sorted."""
    rows = con.execute(
        "SELECT DISTINCT e FROM (SELECT legal_entity_id AS e FROM breaks UNION ALL "
        "SELECT legal_entity_id FROM customers UNION ALL SELECT legal_entity_id FROM projects) "
        "WHERE e IS NOT NULL ORDER BY e"
    ).fetchall()
    return [str(r[0]) for r in rows]


def billing_periods(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every billing period (``YYYY-MM``) of the breaks and the time entries, latest first."""
    rows = con.execute(
        "SELECT DISTINCT p FROM (SELECT invoice_cycle AS p FROM breaks UNION ALL "
        "SELECT billing_period FROM time_entries) WHERE p IS NOT NULL ORDER BY p DESC"
    ).fetchall()
    return [str(r[0]) for r in rows]
