"""The benchmarks' million breaks: one seeded SQL formula per column of the ``breaks`` view.

Row ``i`` of ``range(rows)`` is break ``'b' || lpad(i, 8, '0')``; every other column is a formula of
``i`` (DuckDB's ``hash``, so the same rows on every machine): five rules in turn (the fifth a
data-quality check), three legal entities, 200 projects, 400 customers, 24 billing periods,
severities, ages of 0-199 days, amounts of up to 50,000 and a ``first_seen`` in 2026. Columns
without a formula are NULL. A benchmark needing other values overrides single formulas.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["FORMULAS", "ROWS", "breaks_select", "write_breaks"]

ROWS = 1_000_000

#: Column -> SQL expression of the row number ``i``.
FORMULAS: dict[str, str] = {
    "break_id": "'b' || lpad(CAST(i AS VARCHAR), 8, '0')",
    "rule_id": "['time_entries_psa_erp', 'invoices_erp_psa', 'unbilled_time', 'customers_crm_erp', "
    "'time_entries.hours_in_range'][i % 5 + 1]",
    "category": "CASE WHEN i % 5 = 4 THEN 'data_quality' ELSE 'reconciliation' END",
    "break_type": "['field_mismatch', 'missing_in_target', 'aged', 'orphan', 'failed_expectation']"
    "[i % 5 + 1]",
    "object": "'time_entries'",
    "source_system": "'psa'",
    "target_system": "CASE WHEN i % 5 = 4 THEN NULL ELSE 'erp' END",
    "source_id": "CAST(i AS VARCHAR)",
    "match_key": "'k' || CAST(i AS VARCHAR)",
    "legal_entity_id": "['US', 'UK', 'DE'][i % 3 + 1]",
    "customer": "'Customer ' || CAST(hash(i) % 400 AS VARCHAR)",
    "project_code": "'P' || CAST(hash(i + 1) % 200 AS VARCHAR)",
    "invoice_cycle": "strftime(DATE '2025-01-01' + INTERVAL (CAST(hash(i + 2) % 24 AS INTEGER)) MONTH, "
    "'%Y-%m')",
    "field": "CASE WHEN i % 5 = 0 THEN 'hours' END",
    "amount": "CAST((hash(i + 3) % 5000000) / 100 AS DECIMAL(18,2))",
    "currency": "['USD', 'GBP', 'EUR'][i % 3 + 1]",
    "amount_at_risk": "CAST((hash(i + 3) % 5000000) / 100 AS DECIMAL(18,2))",
    "reporting_currency": "'USD'",
    "severity": "['low', 'medium', 'high'][CAST(hash(i + 4) % 3 AS INTEGER) + 1]",
    "age_days": "CAST(hash(i + 5) % 200 AS INTEGER)",
    "first_seen": "TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (CAST(hash(i + 6) % 300 AS INTEGER)) DAY",
    "last_seen": "TIMESTAMPTZ '2026-11-15 00:00:00+00'",
    "run_id": "'run-1'",
}


def breaks_select(rows: int = ROWS, overrides: Mapping[str, str] | None = None) -> str:
    """A query of ``rows`` breaks with the ``breaks`` view's columns, in order and with their types.

    Args:
        rows: how many breaks (row numbers ``i`` = 0 .. rows - 1).
        overrides: column -> SQL expression of ``i`` replacing :data:`FORMULAS`' (or NULL's).
    """
    from data.breaks import BREAK_COLUMNS

    formulas = FORMULAS | dict(overrides or {})
    cols = [f"CAST({formulas.get(n, 'NULL')} AS {t}) AS {n}" for n, t, _ in BREAK_COLUMNS]
    return f"SELECT {', '.join(cols)} FROM range({rows}) AS r(i)"


def write_breaks(path: Path, rows: int = ROWS) -> Path:
    """Write :func:`breaks_select` (no overrides) to the Parquet file ``path``; return it.

    An existing file is kept while it was written from the same query: ``path`` + ``.sql`` holds
    the query it was written from, so a changed formula writes the file again.
    """
    import duckdb

    select = breaks_select(rows)
    written_from = path.with_name(path.name + ".sql")
    if path.exists() and written_from.is_file() and written_from.read_text() == select:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    con.close()
    written_from.write_text(select)
    return path
