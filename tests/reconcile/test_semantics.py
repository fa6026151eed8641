"""Rule semantics as tables of cases: each case is a tiny source and target, and the breaks expected.

The rules run through the real compiler and engine in DuckDB, on in-memory tables with the
canonical columns (so values are DECIMAL exactly as in snapshots).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from data.canonical import CANONICAL
from reconcile.compile import RAW_BREAKS, Relations
from reconcile.engine import RuleResult, prepare_connection, run_rule
from reconcile.rules import ReconciliationRule

AS_OF = date(2026, 11, 15)


def _table(con: duckdb.DuckDBPyConnection, name: str, obj: str, rows: list[dict[str, Any]]) -> None:
    cols = CANONICAL[obj].columns
    con.execute(f"CREATE OR REPLACE TABLE {name} ({', '.join(f'{c.name} {c.sql_type}' for c in cols)})")
    for row in rows:
        unknown = set(row) - {c.name for c in cols}
        assert not unknown, unknown
        con.execute(
            f"INSERT INTO {name} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )


def _run(
    rule: dict[str, Any],
    source: list[dict[str, Any]],
    target: list[dict[str, Any]],
    lookup: list[dict[str, Any]] | None = None,
) -> tuple[RuleResult, set[tuple[Any, ...]]]:
    """Run ``rule`` with its source system read from ``source``, its target from ``target`` and system
    ``ref`` (projects) from ``lookup``; return the result and the (type, source id, target id, field) set."""
    parsed = ReconciliationRule.model_validate(rule)
    con = duckdb.connect()
    prepare_connection(con)
    _table(con, "src", parsed.source.object, source)
    _table(con, "tgt", parsed.target_side.object, target)
    _table(con, "ref", "projects", lookup or [])
    tables = {
        parsed.target_side.system: "tgt",
        parsed.source.system: "src",
        "ref": "ref",
    }  # aged: source only
    rels = Relations(
        relation=lambda obj, system: tables[system],
        crosswalk=lambda xw: "xw",
        as_of=AS_OF,
    )
    result = run_rule(parsed, con, rels)
    assert result.status == "ok", result.error
    breaks = set(con.execute(f"SELECT break_type, source_id, target_id, field FROM {RAW_BREAKS}").fetchall())
    return result, breaks


def _time_rule(**tolerance: str) -> dict[str, Any]:
    return {
        "rule_id": "t", "kind": "match", "system_of_record": "psa",
        "source": {"object": "time_entries", "system": "psa"},
        "target": {"object": "time_entries", "system": "erp"},
        "match_key": {"source": ["time_entry_id"], "target": ["psa_id"]},
        "compare": {"hours": {"tolerance": {"kind": "numeric", **tolerance}}},
    }  # fmt: skip


def _entry(i: str, hours: str | None, **kw: Any) -> dict[str, Any]:
    return {
        "time_entry_id": i,
        "spent_date": date(2026, 10, 1),
        "hours": None if hours is None else Decimal(hours),
        **kw,
    }


@pytest.mark.parametrize(
    ("source_hours", "target_hours", "tolerance", "mismatch"),
    [
        ("7.50", "7.50", {"abs_tol": "0.01"}, False),  # equal
        ("7.50", "7.51", {"abs_tol": "0.01"}, False),  # on the boundary: |d| = abs_tol is inside
        ("0.10", "0.11", {"abs_tol": "0.01"}, False),  # boundary where float64 says 0.010000000000000009
        ("0.29", "0.30", {"abs_tol": "0.01"}, False),
        ("7.50", "7.52", {"abs_tol": "0.01"}, True),  # just outside
        ("7.50", "7.49", {"abs_tol": "0.01"}, False),
        ("7.50", "7.48", {"abs_tol": "0.01"}, True),
        ("100.00", "101.00", {"rel_tol": "0.01"}, False),  # 1 <= 0.01 * |101|
        ("100.00", "102.10", {"rel_tol": "0.02"}, True),  # 2.10 > 0.02 * 102.10 = 2.042
        ("100.00", "102.00", {"abs_tol": "0.04", "rel_tol": "0.0196"}, False),  # 2 <= 0.04 + 1.9992
        ("100.00", "102.00", {"abs_tol": "0.0007", "rel_tol": "0.0196"}, True),  # 2 > 0.0007 + 1.9992
        (None, "7.50", {"abs_tol": "0.01"}, True),  # NULL vs value
        ("7.50", None, {"abs_tol": "100"}, True),
        (None, None, {"abs_tol": "0.01"}, False),  # NULL matches only NULL
    ],
)
def test_numeric_tolerance(
    source_hours: str | None, target_hours: str | None, tolerance: dict[str, str], mismatch: bool
) -> None:
    _, breaks = _run(_time_rule(**tolerance), [_entry("1", source_hours)],
                     [_entry("a", target_hours, psa_id="1")])  # fmt: skip
    assert breaks == ({("field_mismatch", "1", "a", "hours")} if mismatch else set())


def test_every_two_decimal_boundary_is_exact() -> None:
    """All 2-decimal hour values 0.00–23.99 against value + 0.01 (inside) and + 0.02 (outside)."""
    source, target = [], []
    for cents in range(0, 2400):
        h = Decimal(cents) / 100
        source += [_entry(f"in{cents}", str(h)), _entry(f"out{cents}", str(h))]
        target += [_entry(f"tin{cents}", str(h + Decimal("0.01")), psa_id=f"in{cents}"),
                   _entry(f"tout{cents}", str(h + Decimal("0.02")), psa_id=f"out{cents}")]  # fmt: skip
    result, breaks = _run(_time_rule(abs_tol="0.01"), source, target)
    assert {b[1] for b in breaks} == {f"out{c}" for c in range(0, 2400)}
    assert result.compared == 4800 and result.matched == 2400


@pytest.mark.parametrize(
    ("kind", "source", "target", "mismatch"),
    [
        ({"kind": "exact"}, "Acme Ltd", "Acme Ltd", False),
        ({"kind": "exact"}, "Acme Ltd", "ACME Ltd", True),
        ({"kind": "normalized_text"}, "Acme Ltd.", "ACME  ltd", False),
        ({"kind": "normalized_text"}, "Müller GmbH", "MÜLLER-GmbH", False),
        ({"kind": "normalized_text"}, "Acme Ltd", "Acme Inc", True),
        ({"kind": "normalized_text"}, None, "Acme", True),
        ({"kind": "fuzzy_text", "min_score": 90}, "Granite Telecom Inc", "Granite Telecom Inc.", False),
        ({"kind": "fuzzy_text", "min_score": 90}, "Telecom Granite Inc", "Granite Telecom Inc", False),
        ({"kind": "fuzzy_text", "min_score": 90}, "Granite Telecom", "Falcon Energy", True),
        ({"kind": "fuzzy_text", "min_score": 90}, None, None, False),
    ],
)
def test_text_tolerances(
    kind: dict[str, Any], source: str | None, target: str | None, mismatch: bool
) -> None:
    rule = {
        "rule_id": "c", "kind": "match", "system_of_record": "crm",
        "source": {"object": "customers", "system": "crm"}, "target": {"object": "customers", "system": "erp"},
        "match_key": {"source": ["customer_id"], "target": ["crm_id"]},
        "compare": {"name": {"tolerance": kind}},
    }  # fmt: skip
    _, breaks = _run(
        rule, [{"customer_id": "1", "name": source}], [{"customer_id": "a", "crm_id": "1", "name": target}]
    )
    assert breaks == ({("field_mismatch", "1", "a", "name")} if mismatch else set())


@pytest.mark.parametrize(
    ("days_apart", "mismatch"), [(0, False), (3, False), (4, True), (-3, False), (-4, True)]
)
def test_date_window(days_apart: int, mismatch: bool) -> None:
    rule = _time_rule(abs_tol="0")
    rule["compare"] = {"spent_date": {"tolerance": {"kind": "date_window", "days": 3}}}
    target_day = date.fromordinal(date(2026, 10, 1).toordinal() + days_apart)
    _, breaks = _run(
        rule, [_entry("1", "1.00")], [{**_entry("a", "1.00", psa_id="1"), "spent_date": target_day}]
    )
    assert breaks == ({("field_mismatch", "1", "a", "spent_date")} if mismatch else set())


def test_existence_duplicates_and_orphans() -> None:
    source = [_entry("1", "1.00"), _entry("2", "2.00"), _entry("3", "3.00")]
    target = [
        _entry("a", "1.00", psa_id="1", created_at="2026-10-01T10:00:00Z"),
        _entry("b", "1.00", psa_id="1", created_at="2026-10-02T10:00:00Z"),  # double posting: the later one
        _entry("c", "2.50", psa_id="2"),  # matched, hours differ
        _entry("d", "4.00", psa_id=None),  # no reference: only in the target
        _entry("e", "5.00", psa_id="99"),  # refers to an unknown source record
    ]
    result, breaks = _run(_time_rule(abs_tol="0.01"), source, target)
    assert breaks == {
        ("duplicate", "1", "b", None),
        ("field_mismatch", "2", "c", "hours"),
        ("missing_in_target", "3", None, None),
        ("missing_in_source", None, "d", None),
        ("orphan", "99", "e", None),
    }
    assert (result.source_rows, result.target_rows, result.compared, result.matched) == (3, 5, 2, 1)
    assert result.breaks_by_type == {
        "duplicate": 1, "field_mismatch": 1, "missing_in_source": 1, "missing_in_target": 1, "orphan": 1
    }  # fmt: skip


def test_a_source_reference_to_nothing_is_an_orphan_and_no_reference_is_missing() -> None:
    rule = {
        "rule_id": "c", "kind": "match", "system_of_record": "crm",
        "source": {"object": "customers", "system": "crm"}, "target": {"object": "customers", "system": "psa"},
        "match_key": {"source": ["psa_id"], "target": ["customer_id"]},
    }  # fmt: skip
    source = [{"customer_id": "1", "psa_id": "p1"}, {"customer_id": "2", "psa_id": None},
              {"customer_id": "3", "psa_id": "p9"}]  # fmt: skip
    _, breaks = _run(rule, source, [{"customer_id": "p1"}, {"customer_id": "p2"}])
    assert breaks == {
        ("missing_in_target", "2", None, None),
        ("orphan", "3", "p9", None),
        ("missing_in_source", None, "p2", None),
    }


def _totals_rule(missing_groups: str) -> dict[str, Any]:
    return {
        "rule_id": "totals", "kind": "aggregate", "system_of_record": "psa",
        "source": {"object": "time_entries", "system": "psa"},
        "target": {"object": "time_entries", "system": "erp"},
        "group_by": {"source": ["project_code"], "target": ["project_code"]},
        "missing_groups": missing_groups,
        "compare": {"hours": {"source": "sum(hours)", "target": "sum(hours)",
                              "tolerance": {"kind": "numeric", "abs_tol": "0.10"}}},
    }  # fmt: skip


def test_many_to_one_totals() -> None:
    source = [_entry(str(i), "0.25", project_code="A") for i in range(40)]  # 10.00 h
    source += [_entry(f"b{i}", "1.00", project_code="B") for i in range(3)]  # 3.00 h
    source += [_entry("c", "2.00", project_code="C")]  # only in the source
    target = [_entry("x", "10.10", project_code="A"),  # inside 0.10 (on the boundary)
              _entry("y", "1.50", project_code="B"), _entry("z", "1.39", project_code="B"),  # 2.89: outside
              _entry("d", "0.05", project_code="D")]  # only in the target, inside tolerance of zero  # fmt: skip
    result, breaks = _run(_totals_rule("zero"), source, target)
    assert breaks == {("aggregate_mismatch", "B", "B", "hours"), ("aggregate_mismatch", "C", "C", "hours")}
    assert (result.source_rows, result.target_rows, result.compared, result.matched) == (3, 3, 4, 2)
    _, ignored = _run(_totals_rule("ignore"), source, target)
    assert ignored == {("aggregate_mismatch", "B", "B", "hours")}


def test_aged_rule_ages_from_the_business_date() -> None:
    rule = {
        "rule_id": "unbilled", "kind": "aged", "system_of_record": "psa",
        "source": {"object": "time_entries", "system": "psa", "filter": "invoice_id IS NULL"},
        "aging": {"date": "spent_date", "min_days": 31},
    }  # fmt: skip
    source = [
        {**_entry("old", "1.00"), "spent_date": date(2026, 10, 15)},  # 31 days before AS_OF
        {**_entry("new", "1.00"), "spent_date": date(2026, 10, 16)},  # 30 days
        {**_entry("billed", "1.00", invoice_id="9"), "spent_date": date(2026, 1, 1)},
    ]
    result, breaks = _run(rule, source, [])
    assert breaks == {("aged", "old", None, None)}
    assert (result.source_rows, result.matched) == (2, 1)


def test_a_lookup_may_use_an_earlier_lookup_of_its_side() -> None:
    rule = _time_rule(abs_tol="0.01")
    rule["lookups"] = [
        {"name": "code", "side": "source", "object": "projects", "system": "ref",
         "by": {"project_id": "project_id"}, "value": "code"},
        # second hop: the project whose code is this project's code with "-X" appended
        {"name": "sibling", "side": "source", "object": "projects", "system": "ref",
         "by": {"code || '-X'": "code"}, "value": "project_id"},
    ]  # fmt: skip
    rule["source"]["filter"] = "sibling IS NOT NULL"
    projects = [{"project_id": "p", "code": "P1"}, {"project_id": "x", "code": "P1-X"},
                {"project_id": "q", "code": "P2"}]  # fmt: skip
    source = [_entry("1", "1.00", project_id="p"), _entry("2", "1.00", project_id="q")]
    result, breaks = _run(rule, source, [], lookup=projects)
    assert result.source_rows == 1 and breaks == {("missing_in_target", "1", None, None)}


def test_lookups_never_multiply_rows() -> None:
    rule = _time_rule(abs_tol="0.01")
    rule["lookups"] = [{"name": "code", "side": "source", "object": "projects", "system": "ref",
                        "by": {"project_id": "project_id"}, "value": "code"}]  # fmt: skip
    rule["source"]["filter"] = "code = 'P1'"
    projects = [{"project_id": "p", "code": "P1"}, {"project_id": "p", "code": "P2"},  # two rows for p
                {"project_id": "q", "code": "P3"}]  # fmt: skip
    source = [_entry("1", "1.00", project_id="p"), _entry("2", "1.00", project_id="q")]
    result, breaks = _run(rule, source, [_entry("a", "1.00", psa_id="1")], lookup=projects)
    assert (result.source_rows, result.compared, result.matched) == (1, 1, 1)
    assert breaks == set()
