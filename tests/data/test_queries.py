"""The exception queue's query layer: filters, entity scope, workflow join, sorting and paging."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from data.breaks import BREAK_COLUMNS
from data.queries import QUEUE_COLUMNS, QueueFilter, exception_queue, queue_facets

# break_id, rule, category, type, source, target, entity, project, period, amount at risk, severity, age
ROWS = [
    ("b1", "time_entries_psa_erp", "reconciliation", "field_mismatch", "psa", "erp", "US", "P1", "2026-10", "500.00", "medium", 3),
    ("b2", "time_entries_psa_erp", "reconciliation", "missing_in_target", "psa", "erp", "UK", "P2", "2026-10", "12000.00", "high", 40),
    ("b3", "invoices_erp_psa", "reconciliation", "field_mismatch", "erp", "psa", "DE", "P3", "2026-09", "900.00", "low", 70),
    ("b4", "time_entries.hours_in_range", "data_quality", "failed_expectation", "psa", None, "UK", "P2", "2026-11", None, "medium", 0),
    ("b5", "unbilled_time", "reconciliation", "aged", "psa", "erp", "US", "P1", "2026-08", "500.00", "high", 95),
]  # fmt: skip


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute(f"CREATE TABLE breaks ({', '.join(f'{n} {t}' for n, t, _ in BREAK_COLUMNS)})")
    for r in ROWS:
        values = {
            "break_id": r[0], "rule_id": r[1], "category": r[2], "break_type": r[3], "source_system": r[4],
            "target_system": r[5], "legal_entity_id": r[6], "project_code": r[7], "invoice_cycle": r[8],
            "amount_at_risk": r[9], "severity": r[10], "age_days": r[11], "match_key": f"key-{r[0]}",
            "customer": "Acme" if r[6] == "US" else "Globex",
        }  # fmt: skip
        names = list(values)
        c.execute(f"INSERT INTO breaks ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                  list(values.values()))  # fmt: skip
    return c


STATE = pd.DataFrame(
    {
        "break_id": ["b2", "b3"],
        "status": ["in_review", "resolved"],
        "assignee": ["ana", "ben"],
        "reason_code": [None, "timing_difference"],
        "updated_at": pd.to_datetime(["2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z"]),
        "updated_by": ["ana", "ben"],
    }
)


def ids(frame: pd.DataFrame) -> list[str]:
    return list(frame["break_id"])


def test_default_sort_is_amount_at_risk_and_untouched_breaks_are_open(con: duckdb.DuckDBPyConnection) -> None:
    page, total = exception_queue(con, QueueFilter(), state=STATE)
    assert total == 5 and list(page.columns) == list(QUEUE_COLUMNS)
    assert ids(page) == ["b2", "b3", "b1", "b5", "b4"]  # ties broken by break_id; NULL last
    assert dict(zip(page["break_id"], page["status"], strict=True))["b1"] == "open"
    assert page.loc[page["break_id"] == "b2", "assignee"].item() == "ana"
    assert page.loc[page["break_id"] == "b2", "amount_at_risk"].item() == Decimal("12000.00")


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (QueueFilter(legal_entities=("UK",)), ["b2", "b4"]),
        (QueueFilter(legal_entities=()), []),
        (QueueFilter(statuses=("open",)), ["b1", "b5", "b4"]),
        (QueueFilter(assignees=("",)), ["b1", "b5", "b4"]),
        (QueueFilter(categories=("data_quality",)), ["b4"]),
        (QueueFilter(system_pairs=("erp>psa",)), ["b3"]),
        (QueueFilter(system_pairs=("psa>",)), ["b4"]),
        (QueueFilter(min_age_days=40, max_age_days=70), ["b2", "b3"]),
        (QueueFilter(severities=("high",), billing_periods=("2026-08",)), ["b5"]),
        (QueueFilter(search="KEY-B3"), ["b3"]),
        (QueueFilter(legal_entities=("US", "UK"), rules=("time_entries_psa_erp",)), ["b2", "b1"]),
    ],
)
def test_filters(con: duckdb.DuckDBPyConnection, flt: QueueFilter, expected: list[str]) -> None:
    page, total = exception_queue(con, flt, state=STATE)
    assert ids(page) == expected and total == len(expected)


def test_paging_and_sorts(con: duckdb.DuckDBPyConnection) -> None:
    pages = [ids(exception_queue(con, QueueFilter(), sort="age", page=p, page_size=2)[0]) for p in range(3)]
    assert pages == [["b5", "b3"], ["b2", "b1"], ["b4"]]
    assert ids(exception_queue(con, QueueFilter(), sort="severity")[0]) == ["b2", "b5", "b1", "b4", "b3"]
    with pytest.raises(ValueError, match="unknown sort 'size'"):
        exception_queue(con, QueueFilter(), sort="size")
    with pytest.raises(ValueError, match="page must be"):
        exception_queue(con, QueueFilter(), page=-1)


def test_facets_stay_inside_the_users_scope(con: duckdb.DuckDBPyConnection) -> None:
    facets = queue_facets(con, QueueFilter(legal_entities=("UK",), rules=("x",)), state=STATE)
    assert facets["legal_entities"] == ["UK"]
    assert facets["rules"] == ["time_entries.hours_in_range", "time_entries_psa_erp"]
    assert facets["statuses"] == ["in_review", "open"] and facets["assignees"] == ["ana"]
    assert facets["system_pairs"] == ["psa>", "psa>erp"]
    unscoped = queue_facets(con, QueueFilter())
    assert unscoped["statuses"] == ["open"] and unscoped["legal_entities"] == ["DE", "UK", "US"]
