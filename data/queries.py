"""The query layer of the app: pure functions named after the question they answer.

Each takes a DuckDB connection to ``HOME/warehouse.duckdb`` (read-only; one per page render: see
the app's ``pages/_shared.py``), never imports Streamlit, and returns pandas DataFrames whose columns
are documented. Money stays DECIMAL until it reaches the frame (``decimal.Decimal`` values).

The exception queue joins the workflow state of the breaks someone touched (status, assignee,
reason; :mod:`data.workflow`, kept in the app-state database) onto the ``breaks`` view: the
caller passes that state as a DataFrame, which is registered for the query. Filtering, sorting
and paging run in DuckDB, so a page of a million-break queue comes back without loading the queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from data.breaks import BREAK_COLUMNS

__all__ = [
    "DETAIL_COLUMNS",
    "DETAIL_KEY_COLUMNS",
    "FACET_LABELS",
    "QUEUE_COLUMNS",
    "QUEUE_KEY_COLUMNS",
    "QUEUE_SORTS",
    "SUGGESTION_COLUMNS",
    "QueueFilter",
    "WORKFLOW_COLUMNS",
    "billing_periods",
    "break_detail",
    "break_entities",
    "break_suggestions",
    "exception_queue",
    "legal_entities",
    "queue_export",
    "queue_export_sql",
    "queue_facets",
    "queue_filter",
    "queue_relation",
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
#: Columns of :func:`break_detail`: the ``breaks`` view's, then the ledger's cleared_at and times_cleared.
DETAIL_COLUMNS = (*(c for c, _, _ in BREAK_COLUMNS), "cleared_at", "times_cleared")
#: The queue columns a reader needs first (a table of the queue shows these).
QUEUE_KEY_COLUMNS = (
    "severity", "rule_id", "break_type", "legal_entity_id", "project_code", "customer", "invoice_cycle",
    "field", "source_value", "target_value", "amount_at_risk", "age_days", "status", "assignee",
)  # fmt: skip
#: The facts of one break beside its source and target values (columns of :func:`break_detail`).
DETAIL_KEY_COLUMNS = (
    "match_key", "customer", "project_code", "amount", "currency", "amount_at_risk", "age_days",
    "first_seen", "last_seen", "cleared_at", "reopened_at", "times_cleared",
)  # fmt: skip
#: Filters a page offers beside the sidebar's legal entity and billing period: facet -> label.
FACET_LABELS = {
    "projects": "Project", "customers": "Customer", "billing_periods": "Invoice cycle", "rules": "Rule",
    "system_pairs": "System pair", "break_types": "Break type", "statuses": "Status",
    "assignees": "Assignee", "severities": "Severity",
}  # fmt: skip
#: Columns of :func:`break_suggestions` (a break's fuzzy match candidates).
SUGGESTION_COLUMNS = ("id", "name", "score")
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

    @property
    def needs_state(self) -> bool:
        """Whether :meth:`where` reads the workflow state's columns (else the breaks' alone)."""
        return bool(self.statuses or self.assignees)

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition over the queue relation ``q`` and its parameters (see :attr:`needs_state`)."""
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


def queue_filter(
    legal_entities: tuple[str, ...] | None,
    period: str | None,
    chosen: dict[str, tuple[str, ...]],
    *,
    min_age_days: float | None = None,
    max_age_days: float | None = None,
    search: str | None = None,
) -> QueueFilter:
    """The queue filter of a page: the sidebar's scope and billing period with the page's own choices.

    Args:
        legal_entities: the sidebar's legal entities within the user's (``pages._shared.scope``).
        period: the sidebar's billing period (``YYYY-MM``) or None; it bounds the invoice cycles.
        chosen: facet name (a :class:`QueueFilter` field, as :func:`queue_facets` names them) ->
            the values chosen, ``()`` for any. ``legal_entities`` here narrows the scope, never widens it.
        min_age_days: lowest ``age_days`` shown (whole days: a number input's value), or None.
        max_age_days: highest ``age_days`` shown, or None.
        search: text searched as in :class:`QueueFilter`; blank or None searches nothing.

    Raises:
        ValueError: ``chosen`` names something that is not a filter.
    """
    fields = {"billing_periods", "projects", "customers", "rules", "break_types", "severities",
              "categories", "system_pairs", "statuses", "assignees", "legal_entities"}  # fmt: skip
    unknown = sorted(set(chosen) - fields)
    if unknown:
        raise ValueError(f"not queue filters: {', '.join(unknown)}")
    picked = {k: tuple(v) for k, v in chosen.items() if k != "legal_entities"}
    periods = picked.get("billing_periods", ())
    if period is not None:  # the page may only narrow the sidebar's period; none left shows nothing
        periods = tuple(p for p in periods if p == period) if periods else (period,)
        picked["billing_periods"] = periods or ("",)
    scope = legal_entities
    if chosen.get("legal_entities"):
        narrowed = tuple(e for e in chosen["legal_entities"] if scope is None or e in scope)
        scope = narrowed
    return QueueFilter(
        legal_entities=scope, **picked,
        min_age_days=None if min_age_days is None else int(min_age_days),
        max_age_days=None if max_age_days is None else int(max_age_days),
        search=(search or "").strip() or None,
    )  # fmt: skip


def queue_relation(
    con: duckdb.DuckDBPyConnection, state: pd.DataFrame | None, *, source: str = "breaks"
) -> str:
    """Register the workflow ``state`` and return the SQL of the queue relation (breaks + state).

    Args:
        con: the connection the relation will be queried on (``state`` is registered on it as
            ``_workflow_state``).
        state: the workflow state of touched breaks (columns :data:`WORKFLOW_COLUMNS`), or None.
        source: the relation holding the breaks (columns of the ``breaks`` view): a view name or a
            parenthesised query.

    Returns:
        A ``SELECT`` of the source's columns, then ``status`` (``open`` for untouched breaks),
        ``assignee``, ``reason_code``, ``updated_at`` and ``updated_by``.
    """
    frame = _EMPTY_STATE if state is None or state.empty else state[list(WORKFLOW_COLUMNS)]
    con.register("_workflow_state", frame)
    return (
        "SELECT b.*, coalesce(w.status, 'open') AS status, w.assignee, w.reason_code, "
        "CAST(w.updated_at AS TIMESTAMPTZ) AS updated_at, w.updated_by "
        f"FROM {source} AS b LEFT JOIN _workflow_state AS w ON w.break_id = b.break_id"
    )


def _check_sort(sort: str) -> None:
    if sort not in QUEUE_SORTS:
        raise ValueError(f"unknown sort {sort!r}; sorts: {', '.join(QUEUE_SORTS)}")


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
        page: which page, 0-based; past the last page gives the last page (the filters narrowed the
            queue since the page was chosen).
        page_size: rows per page.

    Returns:
        The page, one row per break with :data:`QUEUE_COLUMNS` (``amount`` and ``amount_at_risk``
        are ``Decimal``; ``status`` is ``open`` for untouched breaks), and the number of breaks
        matching the filters (the page shown is ``min(page, max(ceil(total / page_size) - 1, 0))``).
        Empty frame, same columns, if none.

    Raises:
        ValueError: an unknown ``sort``, or a negative page or page size below 1.
    """
    _check_sort(sort)
    if page < 0 or page_size < 1:
        raise ValueError(f"page must be >= 0 and page_size >= 1, not {page} and {page_size}")
    where, params = flt.where()
    order = QUEUE_SORTS[sort]
    # Unless the filter reads the workflow state, the breaks alone decide which match:
    # the count and the page then skip the join with the state, so DuckDB sorts on the sort columns
    # and reads the other columns for the page's rows only (late materialization, which a join in
    # between defeats: it read every column of a million breaks), and the state joins the page.
    matching = queue_relation(con, state) if flt.needs_state else "SELECT * FROM breaks"
    # fetchall: a result left half-read blocks the connection (DuckDB 2)
    total = int(con.execute(f"SELECT count(*) FROM ({matching}) AS q WHERE {where}", params).fetchall()[0][0])
    shown = f"SELECT * FROM ({matching}) AS q WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
    with_state = shown if flt.needs_state else queue_relation(con, state, source=f"({shown})")
    offset = min(page, max(-(-total // page_size) - 1, 0)) * page_size
    page_sql = f"SELECT {', '.join(QUEUE_COLUMNS)} FROM ({with_state}) ORDER BY {order}"
    rows = con.execute(page_sql, [*params, page_size, offset]).fetchall()
    return pd.DataFrame(rows, columns=list(QUEUE_COLUMNS)), total


def queue_export(
    con: duckdb.DuckDBPyConnection,
    flt: QueueFilter,
    *,
    state: pd.DataFrame | None = None,
    sort: str = "amount_at_risk",
) -> pd.DataFrame:
    """The whole filtered exception queue (every page), for the CSV and XLSX exports.

    Args:
        con: a connection to the warehouse (views ``breaks``).
        flt: the filters; ``flt.legal_entities`` carries the user's scope, so an export never
            holds rows of other legal entities.
        state: the workflow state of touched breaks (columns :data:`WORKFLOW_COLUMNS`), or None.
        sort: a key of :data:`QUEUE_SORTS` (default: amount at risk, largest first).

    Returns:
        One row per matching break with :data:`QUEUE_COLUMNS`, in ``sort`` order (money as
        ``Decimal``). Empty frame, same columns, if none. A million-break queue is a million rows:
        the caller builds it only when asked (a download).

    Raises:
        ValueError: an unknown ``sort``.
    """
    query, params = queue_export_sql(con, flt, state=state, sort=sort)
    # through Arrow: a million rows in seconds (fetchall builds 34 million Python objects first)
    frame = con.sql(query, params=params).to_arrow_table().to_pandas()
    return frame.astype(object).where(frame.notna(), None)


def queue_export_sql(
    con: duckdb.DuckDBPyConnection,
    flt: QueueFilter,
    *,
    state: pd.DataFrame | None = None,
    sort: str = "amount_at_risk",
) -> tuple[str, list[Any]]:
    """The query of :func:`queue_export` and its parameters (e.g. for DuckDB's ``COPY ... TO``).

    Registers ``state`` on ``con``, so the query runs on that connection only.

    Raises:
        ValueError: an unknown ``sort``.
    """
    _check_sort(sort)
    where, params = flt.where()
    query = (
        f"SELECT {', '.join(QUEUE_COLUMNS)} FROM ({queue_relation(con, state)}) AS q WHERE {where} "
        f"ORDER BY {QUEUE_SORTS[sort]}"
    )
    return query, params


def break_detail(
    con: duckdb.DuckDBPyConnection, break_id: str, *, legal_entities: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """One break of the ``breaks`` view with its ledger entry (for the detail panel).

    Args:
        con: a connection to the warehouse (views ``breaks``, ``break_ledger``).
        break_id: the break.
        legal_entities: the user's scope (None: every entity, ``()``: none); a break of another
            legal entity, or without one for a limited user, is not returned.

    Returns:
        One row with :data:`DETAIL_COLUMNS`: the break (``first_seen``, ``last_seen``,
        ``reopened_at`` as in ``breaks``), ``cleared_at`` (when a run last found it gone, NULL
        while open; a break in the latest run that came back has ``reopened_at`` after it) and
        ``times_cleared`` (int, 0 for a break never cleared). Empty frame, same columns, when the
        break is not in the latest run or outside ``legal_entities``.
    """
    where, params = QueueFilter(legal_entities=legal_entities).where()
    detail = (
        f"SELECT {', '.join(f'b.{c}' for c, _, _ in BREAK_COLUMNS)}, l.cleared_at, "
        "coalesce(l.times_cleared, 0) AS times_cleared "
        "FROM breaks AS b LEFT JOIN break_ledger AS l ON l.break_id = b.break_id WHERE b.break_id = ?"
    )
    rows = con.execute(f"SELECT * FROM ({detail}) AS q WHERE {where} LIMIT 1", [break_id, *params]).fetchall()
    return pd.DataFrame(rows, columns=list(DETAIL_COLUMNS))


def break_suggestions(suggestions: str | None) -> pd.DataFrame:
    """A break's ``suggestions`` (JSON text of the ``breaks`` view) as a table, best first.

    Returns:
        One row per candidate: id (str, the record's id in the other system), name (str),
        score (float, 0-100). Empty frame, same columns, for None or an empty list.

    Raises:
        ValueError: the text is not a JSON list of objects.
    """
    items = json.loads(suggestions) if suggestions else []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(
            f"suggestions must be a JSON list of {{id, name, score}} objects, not {suggestions!r}"
        )
    rows = [(str(i.get("id")), i.get("name"), float(i.get("score") or 0)) for i in items]
    frame = pd.DataFrame(rows, columns=list(SUGGESTION_COLUMNS))
    return frame.sort_values("score", ascending=False, kind="stable", ignore_index=True)


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
    relation = queue_relation(con, state)
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
