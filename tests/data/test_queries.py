"""The exception queue's query layer: filters, entity scope, workflow join, sorting, paging, export, detail."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from data.breaks import BREAK_COLUMNS, LEDGER_COLUMNS
from data.queries import (
    DETAIL_COLUMNS,
    DETAIL_KEY_COLUMNS,
    FACET_LABELS,
    QUEUE_COLUMNS,
    QUEUE_KEY_COLUMNS,
    QUEUE_SORTS,
    QueueFilter,
    break_detail,
    break_suggestions,
    exception_queue,
    queue_export,
    queue_facets,
    queue_filter,
)

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
    c.execute("UPDATE breaks SET first_seen = TIMESTAMPTZ '2026-10-01 00:00:00+00', "
              "last_seen = TIMESTAMPTZ '2026-11-15 00:00:00+00'")  # fmt: skip
    c.execute("UPDATE breaks SET source_value = '7.50', target_value = '8.00', field = 'hours', "
              "suggestions = '[{\"id\": \"c9\", \"name\": \"Acme Inc\", \"score\": 91.5}]' "
              "WHERE break_id = 'b1'")  # fmt: skip
    c.execute(f"CREATE TABLE break_ledger ({', '.join(f'{n} {t}' for n, t, _ in LEDGER_COLUMNS)})")
    # b1 cleared twice and came back; b9 cleared and gone (not in the latest breaks)
    c.execute("INSERT INTO break_ledger (break_id, legal_entity_id, cleared_at, reopened_at, times_cleared) VALUES "
              "('b1', 'US', NULL, TIMESTAMPTZ '2026-11-10 00:00:00+00', 2), "
              "('b9', 'UK', TIMESTAMPTZ '2026-11-01 00:00:00+00', NULL, 1)")  # fmt: skip
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


@pytest.mark.parametrize("sort", list(QUEUE_SORTS))
@pytest.mark.parametrize(
    "flt",
    [QueueFilter(), QueueFilter(legal_entities=("UK", "US")), QueueFilter(search="key"),
     QueueFilter(statuses=("open", "in_review")), QueueFilter(assignees=("", "ana"), legal_entities=("UK",))],
)  # fmt: skip
def test_each_page_is_the_joined_queue_sorted_and_cut(
    con: duckdb.DuckDBPyConnection, flt: QueueFilter, sort: str
) -> None:
    """Paged without the state join (no status or assignee filter) or with it: the same rows, state and all."""
    where, _ = flt.where()
    assert flt.needs_state == ("status" in where or "assignee" in where)
    whole = queue_export(con, flt, state=STATE, sort=sort)  # the joined queue, sorted, in one query
    assert not whole.empty
    for number in range(-(-len(whole) // 2)):
        page, total = exception_queue(con, flt, state=STATE, sort=sort, page=number, page_size=2)
        assert total == len(whole)
        shown = page.astype(object).where(page.notna(), None)  # as the export gives its values
        pd.testing.assert_frame_equal(shown, whole.iloc[number * 2 : number * 2 + 2].reset_index(drop=True))


def test_facets_stay_inside_the_users_scope(con: duckdb.DuckDBPyConnection) -> None:
    facets = queue_facets(con, QueueFilter(legal_entities=("UK",), rules=("x",)), state=STATE)
    assert facets["legal_entities"] == ["UK"]
    assert facets["rules"] == ["time_entries.hours_in_range", "time_entries_psa_erp"]
    assert facets["statuses"] == ["in_review", "open"] and facets["assignees"] == ["ana"]
    assert facets["system_pairs"] == ["psa>", "psa>erp"]
    unscoped = queue_facets(con, QueueFilter())
    assert unscoped["statuses"] == ["open"] and unscoped["legal_entities"] == ["DE", "UK", "US"]


def test_a_page_past_the_end_is_the_last_page(con: duckdb.DuckDBPyConnection) -> None:
    page, total = exception_queue(con, QueueFilter(), sort="age", page=9, page_size=2)
    assert ids(page) == ["b4"] and total == 5
    empty, none = exception_queue(con, QueueFilter(legal_entities=()), page=3)
    assert empty.empty and none == 0 and list(empty.columns) == list(QUEUE_COLUMNS)


def test_export_is_the_whole_filtered_queue_within_the_scope(con: duckdb.DuckDBPyConnection) -> None:
    everything = queue_export(con, QueueFilter(), state=STATE)
    assert list(everything.columns) == list(QUEUE_COLUMNS)
    assert ids(everything) == ids(exception_queue(con, QueueFilter(), state=STATE, page_size=100)[0])
    b1 = everything.set_index("break_id").loc["b1"]  # the page's value types: Decimal, int, None for NULL
    assert b1["amount_at_risk"] == Decimal("500.00") and isinstance(b1["amount_at_risk"], Decimal)
    assert b1["age_days"] == 3 and b1["assignee"] is None and b1["amount"] is None
    uk = queue_export(con, QueueFilter(legal_entities=("UK",)), state=STATE, sort="age")
    assert ids(uk) == ["b2", "b4"] and set(uk["legal_entity_id"]) == {"UK"}
    assert uk.loc[uk["break_id"] == "b2", "status"].item() == "in_review"
    assert queue_export(con, QueueFilter(legal_entities=())).empty
    assert ids(queue_export(con, QueueFilter(legal_entities=("UK",), statuses=("open",)), state=STATE)) == [
        "b4"
    ]
    with pytest.raises(ValueError, match="unknown sort"):
        queue_export(con, QueueFilter(), sort="size")


def test_break_detail_joins_the_ledger_and_respects_the_scope(con: duckdb.DuckDBPyConnection) -> None:
    detail = break_detail(con, "b1")
    assert list(detail.columns) == list(DETAIL_COLUMNS) and len(detail) == 1
    row = detail.iloc[0]
    assert (row["source_value"], row["target_value"], row["field"]) == ("7.50", "8.00", "hours")
    assert row["times_cleared"] == 2 and row["cleared_at"] is None
    assert row["reopened_at"] is None  # the breaks view's own reopened_at (the fixture leaves it NULL)
    assert str(row["first_seen"].date()) == "2026-10-01"
    assert break_detail(con, "b2").iloc[0]["times_cleared"] == 0  # not in the ledger: never cleared
    assert len(break_detail(con, "b1", legal_entities=("US", "DE"))) == 1
    assert break_detail(con, "b1", legal_entities=("UK",)).empty  # a UK user never sees a US break
    assert break_detail(con, "b1", legal_entities=()).empty
    assert break_detail(con, "b9").empty  # cleared: not in the latest run
    assert set(DETAIL_KEY_COLUMNS) <= set(DETAIL_COLUMNS) and set(QUEUE_KEY_COLUMNS) <= set(QUEUE_COLUMNS)


def test_break_suggestions() -> None:
    frame = break_suggestions(
        '[{"id": 1, "name": "Acme", "score": 80}, {"id": "2", "name": "Acme Inc", "score": 95.5}]'
    )
    assert frame.to_dict("records") == [
        {"id": "2", "name": "Acme Inc", "score": 95.5},
        {"id": "1", "name": "Acme", "score": 80.0},
    ]
    assert break_suggestions(None).empty and list(break_suggestions("[]").columns) == ["id", "name", "score"]
    with pytest.raises(ValueError, match="JSON list"):
        break_suggestions('{"id": 1}')
    with pytest.raises(ValueError):
        break_suggestions("not json")


def test_queue_filter_combines_the_sidebar_with_the_page(con: duckdb.DuckDBPyConnection) -> None:
    none: dict[str, tuple[str, ...]] = {}
    assert queue_filter(None, None, none) == QueueFilter()
    flt = queue_filter(
        ("UK",), "2026-10", {"rules": ("time_entries_psa_erp",)}, min_age_days=1.0, search="  "
    )
    assert flt == QueueFilter(legal_entities=("UK",), billing_periods=("2026-10",), rules=("time_entries_psa_erp",),
                              min_age_days=1)  # fmt: skip
    assert ids(exception_queue(con, flt)[0]) == ["b2"]
    # the page narrows the sidebar's period and legal entities, never widens them
    assert queue_filter(None, "2026-10", {"billing_periods": ("2026-09",)}).billing_periods == ("",)
    assert exception_queue(con, queue_filter(None, "2026-10", {"billing_periods": ("2026-09",)}))[1] == 0
    assert queue_filter(None, None, {"billing_periods": ("2026-09",)}).billing_periods == ("2026-09",)
    assert queue_filter(("UK",), None, {"legal_entities": ("US", "UK")}).legal_entities == ("UK",)
    assert queue_filter(("UK",), None, {"legal_entities": ("US",)}).legal_entities == ()
    assert queue_filter(None, None, {"legal_entities": ("US",)}).legal_entities == ("US",)
    assert queue_filter(None, None, {}, search=" key-b3 ").search == "key-b3"
    assert set(FACET_LABELS) <= set(queue_facets(con, QueueFilter()))
    with pytest.raises(ValueError, match="not queue filters: colour"):
        queue_filter(None, None, {"colour": ("red",)})
