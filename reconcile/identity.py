"""Break identity across runs: ``break_id``, ``first_seen``, clearing and reopening (SQL).

``break_id`` hashes rule, break type, field and match key values, so the same break has the same
id on every run. The ledger (every break ever seen, :data:`data.breaks.LEDGER_COLUMNS`) carries
``first_seen`` from run to run; a break absent from a run that ran its rule is cleared
(``cleared_at``), and when it returns it reopens with its first ``first_seen`` and a
``reopened_at``. The engine's raw breaks are in :data:`reconcile.compile.RAW_BREAKS`, the rules'
metadata in ``_rules`` and the previous ledger in ``_prev_ledger`` (temporary tables).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from data.breaks import BREAK_COLUMNS, LEDGER_COLUMNS, PARQUET, empty_select
from data.sql import sql_literal
from reconcile.compile import RAW_BREAKS

__all__ = [
    "BREAK_ID_SQL",
    "found_table",
    "ledger_sql",
    "prev_ledger_sql",
    "ran_sql",
    "seen_sql",
    "write_breaks",
]

BREAK_ID_SQL = "substr(md5(concat_ws(chr(31), rule_id, break_type, coalesce(field, ''), match_key)), 1, 20)"


def found_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``_found``: the raw breaks with ``break_id``, ``category`` and the rule's object and systems.

    Raises:
        RuntimeError: two breaks share an id (a rule's match key does not identify its records).
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _found AS SELECT {BREAK_ID_SQL} AS break_id, "
        "'reconciliation' AS category, b.*, m.object, m.source_system, m.target_system, m.fixed_severity "
        f"FROM {RAW_BREAKS} AS b JOIN _rules AS m USING (rule_id)"
    )
    dupes = con.execute("SELECT break_id FROM _found GROUP BY ALL HAVING count(*) > 1 LIMIT 1").fetchone()
    if dupes is not None:
        raise RuntimeError(
            f"two breaks share break_id {dupes[0]}: a rule's match key does not identify its records"
        )


def seen_sql(now: str) -> str:
    """``_found`` with ``first_seen`` (from the ledger, else ``now``) and ``reopened_at``."""
    return (
        f"SELECT f.*, coalesce(l.first_seen, {now}) AS first_seen, "
        f"CASE WHEN l.cleared_at IS NOT NULL THEN {now} ELSE l.reopened_at END AS reopened_at "
        "FROM _found AS f LEFT JOIN _prev_ledger AS l USING (break_id)"
    )


def ran_sql(column: str, values: list[str]) -> str:
    """``column IN (values)``, or ``false`` for no values (``IN (NULL)`` would be NULL, and keep nothing)."""
    return f"{column} IN ({', '.join(sql_literal(v) for v in values)})" if values else "false"


def ledger_sql(now: str, ran: str) -> str:
    """The new ledger: the previous one (``_prev_ledger``), its rows matching ``ran`` updated by ``_found``.

    ``ran`` is a condition on ledger columns selecting the breaks the run could have found again
    (the rules it ran, the snapshots it checked); a break it selects that is not in ``_found`` clears.
    """
    both = [
        f"coalesce(f.{c}, l.{c}) AS {c}"
        for c in ("break_id", "rule_id", "break_type", "source_id", "target_id", "field", "legal_entity_id")
    ]
    gone, back = "f.break_id IS NULL", "f.break_id IS NOT NULL AND l.cleared_at IS NOT NULL"
    return (
        f"SELECT {', '.join(both)}, coalesce(l.first_seen, {now}) AS first_seen, "
        f"CASE WHEN {gone} THEN l.last_seen ELSE {now} END AS last_seen, "
        f"CASE WHEN {gone} THEN coalesce(l.cleared_at, {now}) END AS cleared_at, "
        f"CASE WHEN {back} THEN {now} ELSE l.reopened_at END AS reopened_at, "
        f"CAST(coalesce(l.times_cleared, 0) + CASE WHEN {gone} AND l.cleared_at IS NULL THEN 1 ELSE 0 END "
        "AS INTEGER) AS times_cleared, coalesce(f.object, l.object) AS object, "
        "coalesce(f.source_system, l.source_system) AS source_system "
        f"FROM _found AS f FULL JOIN (SELECT * FROM _prev_ledger WHERE {ran}) AS l "
        f"USING (break_id) UNION ALL SELECT * FROM _prev_ledger WHERE NOT ({ran})"
    )


def prev_ledger_sql(path: Path | None) -> str:
    """SELECT of the ledger file at ``path`` (None: no previous run) with :data:`LEDGER_COLUMNS`, in order.

    Ledgers written before a column existed read it as NULL.
    """
    empty = empty_select(LEDGER_COLUMNS)
    if path is None:
        return empty
    names = ", ".join(c for c, _, _ in LEDGER_COLUMNS)
    stored = f"SELECT * FROM read_parquet({sql_literal(str(path))})"
    return f"SELECT {names} FROM ({empty} UNION ALL BY NAME {stored})"


def write_breaks(
    con: duckdb.DuckDBPyConnection, *, prev_dir: Path | None, ran: str, carry: str, valued: str, fx: str,
    now: str, run_id: str, staged: Path,
) -> int:  # fmt: skip
    """Write ``breaks.parquet`` and ``ledger.parquet`` of a run into ``staged``; return its break count.

    The run's breaks stay in the temp table ``_breaks``. Reads ``_found`` (this run's breaks with
    ``break_id``, ``category``, object, systems and ``fixed_severity``), the previous run's files in
    ``prev_dir`` (None: first run), the SQL conditions ``ran`` (ledger rows the run could find
    again) and ``carry`` (previous breaks it keeps unchanged), the valuation SELECT list ``valued``
    and its FX join ``fx`` (:mod:`reconcile.valuation`), and ``now``, the run's moment as a SQL
    literal.
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _prev_ledger AS "
        + prev_ledger_sql(prev_dir / "ledger.parquet" if prev_dir else None)
    )
    prev_breaks = (
        f"read_parquet({sql_literal(str(prev_dir / 'breaks.parquet'))})" if prev_dir
        else f"({empty_select(BREAK_COLUMNS)})"
    )  # fmt: skip
    names = [c for c, _, _ in BREAK_COLUMNS]
    computed = {"amount_at_risk", "reporting_currency", "severity", "age_days", "aging_bucket"}
    plain = ", ".join(f"b.{c}" for c in names if c not in computed and c not in ("last_seen", "run_id"))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _breaks AS SELECT {', '.join(names)} FROM ("
        f"SELECT {plain}, {valued}, {now} AS last_seen, '{run_id}' AS run_id FROM ({seen_sql(now)}) AS b "
        f"{fx}) UNION ALL BY NAME SELECT * FROM {prev_breaks} WHERE {carry}"
    )
    con.execute(
        f"COPY (SELECT * FROM _breaks ORDER BY rule_id, break_type, match_key) "
        f"TO {sql_literal(str(staged / 'breaks.parquet'))} {PARQUET}"
    )
    con.execute(f"COPY ({ledger_sql(now, ran)}) TO {sql_literal(str(staged / 'ledger.parquet'))} {PARQUET}")
    return int(con.execute("SELECT count(*) FROM _breaks").fetchall()[0][0])
