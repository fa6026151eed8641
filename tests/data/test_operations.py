"""The operations pages' query layer on a small hand-built warehouse and app state: exact results, scope.

The views are tables with the warehouse's exact columns and types (data/canonical.py,
data/breaks.py). The firm:

    customers  crm C1 "Acme Ltd" UK (psa_id P1)   psa P1 "Acme Ltd" (no entity)   erp 7 "ACME LTD" UK (crm_id C1)
               crm C2 "Globex Inc" US (psa_id P2)  psa P2 "Globex Inc." (no entity) erp E2 "Globex" UK (crm_id C2)
               psa P3 "Initech 100%_ Corp" (nobody links it, no entity)
               erp E3 "Umbrella" DE (no crm_id)
    projects   UK-1 "Acme Audit": crm D1, psa PR1 (customer P1), erp EP1 UK (customer 7)
               US-9: psa PR9 only (no entity)
    invoices   psa I1 "UK-2026-001" + erp 7 "INV/7" UK (x_harvest_id I1); erp 8 "INV/8" US alone

Note the ERP customer and the ERP invoice that are both id ``7``: a break about one must never be
taken for the other.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from data import operations as ops
from data.appstate import EXTRACTION_RUNS, state_engine
from data.breaks import BREAK_COLUMNS, CHECK_RESULT_COLUMNS
from data.canonical import CANONICAL, LINEAGE
from data.lock import PipelineBusy, PipelineLock

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        names = list(row)
        con.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            list(row.values()),
        )


CUSTOMERS = [
    {"system": "crm", "customer_id": "C1", "name": "Acme Ltd", "legal_entity_id": "UK", "crm_id": "C1", "psa_id": "P1", "tax_id": "GB1"},
    {"system": "psa", "customer_id": "P1", "name": "Acme Ltd", "psa_id": "P1"},
    {"system": "erp", "customer_id": "7", "name": "ACME LTD", "legal_entity_id": "UK", "crm_id": "C1", "erp_id": "7", "tax_id": "GB1"},
    {"system": "crm", "customer_id": "C2", "name": "Globex Inc", "legal_entity_id": "US", "crm_id": "C2", "psa_id": "P2"},
    {"system": "psa", "customer_id": "P2", "name": "Globex Inc.", "psa_id": "P2"},
    {"system": "erp", "customer_id": "E2", "name": "Globex", "legal_entity_id": "UK", "crm_id": "C2", "erp_id": "E2"},
    {"system": "psa", "customer_id": "P3", "name": "Initech 100%_ Corp", "psa_id": "P3"},
    {"system": "erp", "customer_id": "E3", "name": "Umbrella", "legal_entity_id": "DE", "erp_id": "E3"},
]  # fmt: skip
PROJECTS = [
    {"system": "crm", "project_id": "D1", "code": "UK-1", "name": "Acme Audit", "customer_id": "C1", "crm_id": "D1"},
    {"system": "psa", "project_id": "PR1", "code": "UK-1", "name": "UK-1 Acme Audit", "customer_id": "P1", "psa_id": "PR1"},
    {"system": "erp", "project_id": "EP1", "code": "UK-1", "name": "UK-1 Acme Audit", "customer_id": "7", "legal_entity_id": "UK", "psa_id": "PR1", "erp_id": "EP1"},
    {"system": "psa", "project_id": "PR9", "code": "US-9", "name": "Globex Rollout", "customer_id": "P2", "psa_id": "PR9"},
]  # fmt: skip
INVOICES = [
    {"system": "psa", "invoice_id": "I1", "number": "UK-2026-001", "currency": "GBP", "amount_total": Decimal("120.00"), "status": "paid", "psa_id": "I1", "psa_number": "UK-2026-001"},
    {"system": "erp", "invoice_id": "7", "number": "INV/7", "legal_entity_id": "UK", "currency": "GBP", "amount_total": Decimal("100.00"), "status": "paid", "psa_id": "I1", "psa_number": "UK-2026-001"},
    {"system": "erp", "invoice_id": "8", "number": "INV/8", "legal_entity_id": "US", "currency": "USD", "amount_total": Decimal("50.00"), "status": "posted"},
]  # fmt: skip


def brk(break_id: str, rule_id: str, object_: str, src: str, tgt: str | None, **kw: Any) -> dict[str, Any]:
    category = "data_quality" if "." in rule_id else "reconciliation"
    return {"break_id": break_id, "rule_id": rule_id, "category": category, "object": object_,
            "source_system": src, "target_system": tgt, "first_seen": T0, "last_seen": T0, **kw}  # fmt: skip


BREAKS = [
    brk("b1", "customers_crm_erp", "customers", "crm", "erp", break_type="field_mismatch", source_id="C1",
        target_id="7", match_key="C1", legal_entity_id="UK", customer="Acme Ltd", field="name", severity="low"),
    brk("b2", "invoices_erp_psa", "invoices", "erp", "psa", break_type="field_mismatch", source_id="7",
        target_id="I1", match_key="I1", legal_entity_id="UK", customer="ACME LTD", field="amount",
        amount=Decimal("20.00"), amount_at_risk=Decimal("500.00"), severity="high"),
    brk("b3", "time_entries_psa_erp", "time_entries", "psa", "erp", break_type="missing_in_target",
        source_id="T1", match_key="T1", legal_entity_id="UK", project_code="UK-1", severity="medium"),
    brk("b4", "unbilled_time", "time_entries", "psa", "psa", break_type="aged", source_id="T2", match_key="T2",
        legal_entity_id="UK", customer="Acme Ltd", project_code="UK-1", amount_at_risk=Decimal("100.00"),
        severity="high", age_days=40),
    brk("b5", "customers.name_not_null", "customers", "psa", None, break_type="failed_expectation",
        source_id="P3", match_key="psa|P3", severity="medium", age_days=0),
    brk("b6", "customers.freshness", "customers", "psa", None, break_type="stale", match_key="psa|customers",
        source_value="extracted 200 minutes ago", target_value="extracted within 120 minutes", severity="high",
        age_days=0),
    brk("b7", "customers_crm_psa", "customers", "crm", "psa", break_type="missing_in_target", source_id="C2",
        match_key="P2", legal_entity_id="US", customer="Globex Inc", severity="low"),
    brk("b8", "customers_crm_erp", "customers", "crm", "erp", break_type="field_mismatch", source_id="C2",
        target_id="E2", match_key="C2", legal_entity_id="US", customer="Globex Inc", field="legal_entity_id",
        severity="medium"),
    brk("b9", "projects_psa_erp", "projects", "psa", "erp", break_type="field_mismatch", source_id="PR1",
        target_id="EP1", match_key="PR1", legal_entity_id="UK", customer="Acme Ltd", project_code="UK-1",
        field="status", severity="low"),
    brk("b10", "time_entries.hours_in_range", "time_entries", "erp", None, break_type="failed_expectation",
        source_id="L5", match_key="erp|L5", legal_entity_id="US", severity="low", age_days=2),
]  # fmt: skip


def check(
    system: str, obj: str, expectation: str, check_type: str, success: bool, **kw: Any
) -> dict[str, Any]:
    return {"run_id": "R1", "checked_at": T0, "system": system, "object": obj, "snapshot_id": f"{system}-{obj}",
            "suite": obj, "expectation": expectation, "rule_id": f"{obj}.{expectation}", "check_type": check_type,
            "success": success, **kw}  # fmt: skip


CHECKS = [
    check("psa", "customers", "name_not_null", "expectation", False, column_name="name", element_count=3,
          unexpected_count=1, unexpected_percent=33.3, sample_ids='["P3"]',
          gx_type="expect_column_values_to_not_be_null"),
    check("psa", "customers", "freshness", "freshness", False, observed="extracted 200 minutes ago",
          expected="extracted within 120 minutes", element_count=1, unexpected_count=1, unexpected_percent=100.0,
          sample_ids="[]"),
    check("crm", "customers", "name_not_null", "expectation", True, column_name="name", element_count=2,
          unexpected_count=0, unexpected_percent=0.0, sample_ids="[]"),
    check("erp", "time_entries", "hours_in_range", "expectation", False, column_name="hours",
          element_count=10, unexpected_count=2, unexpected_percent=20.0, sample_ids='["L5", "L6"]'),
    check("erp", "time_entries", "volume", "volume", True, element_count=10, unexpected_count=0,
          unexpected_percent=0.0, sample_ids="[]"),
    check("erp", "invoices", "total_in_range", "expectation", False, error="column amount_total missing"),
]  # fmt: skip


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'America/New_York'")  # nothing may depend on the session's zone
    for name, table in CANONICAL.items():
        cols = ", ".join(f"{col.name} {col.sql_type}" for col in (*LINEAGE, *table.columns))
        c.execute(f"CREATE TABLE {name} ({cols})")
    for table, cols in (("breaks", BREAK_COLUMNS), ("check_results", CHECK_RESULT_COLUMNS)):
        c.execute(f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t, _ in cols)})")
    lineage = {"snapshot_id": "S", "run_id": "R", "extracted_at": T0}
    insert(c, "customers", [{**lineage, **r} for r in CUSTOMERS])
    insert(c, "projects", [{**lineage, **r} for r in PROJECTS])
    insert(c, "invoices", [{**lineage, **r} for r in INVOICES])
    insert(c, "breaks", BREAKS)
    insert(c, "check_results", CHECKS)
    return c


def col(frame: pd.DataFrame, name: str) -> list[Any]:
    return [v if isinstance(v, list) else None if pd.isna(v) else v for v in frame[name]]


# --- trace -----------------------------------------------------------------------------------------


def test_candidates_group_the_records_of_every_system_by_match_key(con: duckdb.DuckDBPyConnection) -> None:
    found = ops.trace_candidates(con, "acme")
    assert list(found.columns) == list(ops.CANDIDATE_COLUMNS)
    assert found.drop(columns="exact").values.tolist() == [
        ["customer", "C1", "ACME LTD / Acme Ltd", "crm, erp, psa", "UK", 3],
        ["project", "UK-1", "UK-1 Acme Audit", "crm, erp, psa", "UK", 3],
    ]
    assert col(found, "exact") == [False, False]


def test_candidates_put_exact_matches_first_and_search_ids_codes_numbers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert col(ops.trace_candidates(con, "uk-1"), "key")[0] == "UK-1"
    assert col(ops.trace_candidates(con, "uk-1"), "exact")[0] is True
    invoice = ops.trace_candidates(con, "INV/7")
    assert invoice.drop(columns="exact").values.tolist() == [
        ["invoice", "I1", "INV/7 / UK-2026-001", "erp, psa", "UK", 2]
    ]
    assert col(ops.trace_candidates(con, "P2"), "key") == ["C2"]  # the PSA client's id, in both records
    assert col(ops.trace_candidates(con, "umbrella"), "key") == ["erp:E3"]
    assert col(ops.trace_candidates(con, "INV/8"), "key") == ["erp:8"]


def test_candidates_escape_like_wildcards_and_ignore_blank_text(con: duckdb.DuckDBPyConnection) -> None:
    assert col(ops.trace_candidates(con, "_"), "key") == ["psa:P3"]
    assert col(ops.trace_candidates(con, "100%"), "key") == ["psa:P3"]
    blank = ops.trace_candidates(con, "  ")
    assert blank.empty and list(blank.columns) == list(ops.CANDIDATE_COLUMNS)
    assert ops.trace_candidates(con, "acme", kinds=("invoice",)).empty
    assert col(ops.trace_candidates(con, "acme", kinds=("project",)), "key") == ["UK-1"]
    assert len(ops.trace_candidates(con, "a", limit=2)) == 2
    with pytest.raises(ValueError, match="unknown kind 'client'"):
        ops.trace_candidates(con, "acme", kinds=("client",))


def test_candidates_within_scope(con: duckdb.DuckDBPyConnection) -> None:
    # the PSA client without an entity takes its group's (UK); Globex's group knows UK and US
    uk = ops.trace_candidates(con, "globex", legal_entities=("UK",))
    assert uk.drop(columns="exact").values.tolist() == [["customer", "C2", "Globex", "erp", "UK", 1]]
    us = ops.trace_candidates(con, "globex", legal_entities=("US",))
    assert us.drop(columns="exact").values.tolist() == [["customer", "C2", "Globex Inc", "crm", "US", 1]]
    assert col(ops.trace_candidates(con, "acme", legal_entities=("UK",)), "records") == [3, 3]
    assert ops.trace_candidates(con, "acme", legal_entities=("US",)).empty
    assert ops.trace_candidates(con, "acme", legal_entities=()).empty
    # nothing links the Initech client or project US-9 to an entity: only unlimited users see them
    assert ops.trace_candidates(con, "initech", legal_entities=("UK", "US", "DE")).empty
    assert ops.trace_candidates(con, "US-9", legal_entities=("US",)).empty
    assert col(ops.trace_candidates(con, "US-9"), "key") == ["US-9"]


def test_records_in_crm_psa_erp_order(con: duckdb.DuckDBPyConnection) -> None:
    recs = ops.trace_records(con, "customer", "C1")
    assert list(recs.columns) == ["system", *CANONICAL["customers"].names, "snapshot_id", "extracted_at"]
    assert recs[["system", "customer_id", "name"]].values.tolist() == [
        ["crm", "C1", "Acme Ltd"], ["psa", "P1", "Acme Ltd"], ["erp", "7", "ACME LTD"],
    ]  # fmt: skip
    assert str(recs["extracted_at"].dtype) == "datetime64[us, UTC]"
    assert recs["extracted_at"].iloc[0] == pd.Timestamp(T0)
    inv = ops.trace_records(con, "invoice", "I1")
    assert inv[["system", "invoice_id", "amount_total"]].values.tolist() == [
        ["psa", "I1", Decimal("120.00")], ["erp", "7", Decimal("100.00")],
    ]  # fmt: skip
    assert col(ops.trace_records(con, "project", "UK-1"), "project_id") == ["D1", "PR1", "EP1"]
    assert ops.trace_records(con, "customer", "nope").empty
    with pytest.raises(ValueError, match="unknown kind"):
        ops.trace_records(con, "deal", "D1")


def test_records_within_scope(con: duckdb.DuckDBPyConnection) -> None:
    assert col(ops.trace_records(con, "customer", "C1", legal_entities=("UK",)), "customer_id") == [
        "C1",
        "P1",
        "7",
    ]
    assert ops.trace_records(con, "customer", "C1", legal_entities=("US",)).empty
    # entities disagree (US in the CRM, UK in the ERP): each sees its own; the PSA client nobody limited
    assert col(ops.trace_records(con, "customer", "C2"), "customer_id") == ["C2", "P2", "E2"]
    assert col(ops.trace_records(con, "customer", "C2", legal_entities=("UK",)), "customer_id") == ["E2"]
    assert col(ops.trace_records(con, "customer", "C2", legal_entities=("US",)), "customer_id") == ["C2"]
    assert col(ops.trace_records(con, "customer", "C2", legal_entities=("US", "UK")), "customer_id") == [
        "C2", "P2", "E2",
    ]  # fmt: skip
    assert ops.trace_records(con, "customer", "psa:P3", legal_entities=("UK",)).empty
    assert col(ops.trace_records(con, "customer", "psa:P3"), "customer_id") == ["P3"]


def test_side_by_side(con: duckdb.DuckDBPyConnection) -> None:
    table = ops.side_by_side(ops.trace_records(con, "invoice", "I1"))
    assert list(table.columns) == ["field", "psa I1", "erp 7", "differs"]
    rows = {r[0]: list(r[1:]) for r in table.itertuples(index=False)}
    assert rows["amount_total"] == ["120.00", "100.00", True]
    assert rows["psa_id"] == ["I1", "I1", False]
    assert rows["legal_entity_id"][1:] == ["UK", False] and pd.isna(rows["legal_entity_id"][0])
    assert "due_date" not in rows  # no record fills it
    assert rows["extracted_at"] == ["2026-11-20 08:00:00+00:00", "2026-11-20 08:00:00+00:00", False]
    empty = ops.side_by_side(ops.trace_records(con, "invoice", "nope"))
    assert empty.empty and list(empty.columns) == ["field", "differs"]


def test_breaks_of_a_customer_its_records_name_and_projects(con: duckdb.DuckDBPyConnection) -> None:
    found = ops.trace_breaks(con, "customer", "C1")
    assert list(found.columns) == list(ops.TRACE_BREAK_COLUMNS)
    # b2 is about ERP invoice 7, not ERP customer 7: it comes by the customer's name, not as its record
    assert found[["via", "break_id"]].values.tolist() == [
        ["record", "b1"], ["customer", "b2"], ["customer", "b4"], ["project_code", "b3"], ["customer", "b9"],
    ]  # fmt: skip
    assert found["amount_at_risk"].iloc[1] == Decimal("500.00")
    assert str(found["age_days"].dtype) == "Int64" and str(found["first_seen"].dtype) == "datetime64[us, UTC]"


def test_breaks_of_an_invoice_and_a_project(con: duckdb.DuckDBPyConnection) -> None:
    assert col(ops.trace_breaks(con, "invoice", "I1"), "break_id") == ["b2"]  # b1's target 7 is a customer
    project = ops.trace_breaks(con, "project", "UK-1")
    assert project[["via", "break_id"]].values.tolist() == [
        ["record", "b9"], ["project_code", "b4"], ["project_code", "b3"],
    ]  # fmt: skip
    assert col(ops.trace_breaks(con, "customer", "psa:P3"), "break_id") == ["b5"]  # by its record id
    assert col(ops.trace_breaks(con, "customer", "C2"), "break_id") == ["b8", "b7"]  # severity order
    assert ops.trace_breaks(con, "invoice", "erp:8").empty


def test_breaks_within_scope(con: duckdb.DuckDBPyConnection) -> None:
    assert len(ops.trace_breaks(con, "customer", "C1", legal_entities=("UK",))) == 5
    assert ops.trace_breaks(con, "customer", "C1", legal_entities=("US",)).empty
    # a UK user sees Globex's ERP record, but its breaks are the US entity's
    assert ops.trace_breaks(con, "customer", "C2", legal_entities=("UK",)).empty
    assert col(ops.trace_breaks(con, "customer", "C2", legal_entities=("US",)), "break_id") == ["b8", "b7"]
    # breaks without an entity never reach a limited user, and neither does an unlinked record's
    assert ops.trace_breaks(con, "customer", "psa:P3", legal_entities=("UK", "US", "DE")).empty
    assert ops.trace_breaks(con, "customer", "C1", legal_entities=()).empty


# --- data quality ----------------------------------------------------------------------------------


def test_check_results_failing_first_with_filters(con: duckdb.DuckDBPyConnection) -> None:
    every = ops.check_results(con)
    assert list(every.columns) == list(ops.CHECK_COLUMNS)
    assert every[["system", "object", "expectation", "success"]].values.tolist() == [
        ["erp", "invoices", "total_in_range", False],
        ["erp", "time_entries", "hours_in_range", False],
        ["psa", "customers", "freshness", False],
        ["psa", "customers", "name_not_null", False],
        ["crm", "customers", "name_not_null", True],
        ["erp", "time_entries", "volume", True],
    ]
    assert col(every, "sample_ids")[:4] == [[], ["L5", "L6"], [], ["P3"]]
    assert col(every, "unexpected_percent")[1] == 20.0 and str(every["unexpected_count"].dtype) == "Int64"
    assert col(every, "error")[0] == "column amount_total missing"
    assert str(every["checked_at"].dtype) == "datetime64[us, UTC]"
    assert col(ops.check_results(con, systems=("erp",), check_types=("expectation",)), "expectation") == [
        "total_in_range", "hours_in_range",
    ]  # fmt: skip
    assert col(ops.check_results(con, objects=("customers",), failing_only=True), "expectation") == [
        "freshness", "name_not_null",
    ]  # fmt: skip
    assert col(ops.check_results(con, with_samples=False), "sample_ids") == [[]] * 6


def test_check_facets_and_summary(con: duckdb.DuckDBPyConnection) -> None:
    assert ops.check_facets(con) == {
        "systems": ["crm", "erp", "psa"],
        "objects": ["customers", "invoices", "time_entries"],
        "check_types": ["expectation", "freshness", "volume"],
    }
    summary = ops.check_summary(con)
    assert summary.drop(columns="checked_at").values.tolist() == [
        ["psa", "customers", 2, 2, 0],
        ["erp", "invoices", 1, 1, 1],
        ["erp", "time_entries", 2, 1, 0],
        ["crm", "customers", 1, 0, 0],
    ]


def test_quality_breaks_scope_and_filters(con: duckdb.DuckDBPyConnection) -> None:
    every = ops.quality_breaks(con)
    assert list(every.columns) == list(ops.QUALITY_BREAK_COLUMNS)
    assert col(every, "break_id") == ["b6", "b5", "b10"]  # high, then medium, low
    assert col(ops.quality_breaks(con, legal_entities=("US",)), "break_id") == ["b10"]
    assert ops.quality_breaks(con, legal_entities=("UK",)).empty  # b5, b6 have no entity
    assert ops.quality_breaks(con, legal_entities=()).empty
    assert col(ops.quality_breaks(con, systems=("psa",), objects=("customers",)), "break_id") == ["b6", "b5"]


def test_data_docs_zip(tmp_path: Path) -> None:
    assert ops.data_docs_index(tmp_path) == tmp_path / "data_docs" / "index.html"
    with pytest.raises(FileNotFoundError, match="tieout check"):
        ops.data_docs_zip(tmp_path)
    (tmp_path / "data_docs" / "static").mkdir(parents=True)
    (tmp_path / "data_docs" / "index.html").write_text("<html>docs</html>")
    (tmp_path / "data_docs" / "static" / "a.css").write_text("body {}")
    with zipfile.ZipFile(BytesIO(ops.data_docs_zip(tmp_path))) as zf:
        assert sorted(zf.namelist()) == ["data_docs/index.html", "data_docs/static/a.css"]
        assert zf.read("data_docs/index.html") == b"<html>docs</html>"


# --- pipeline health -------------------------------------------------------------------------------


def run(run_id: str, corr: str, system: str, obj: str, status: str, start_min: int, secs: float | None,
        **kw: Any) -> dict[str, Any]:  # fmt: skip
    started = T0 + timedelta(minutes=start_min)
    return {"run_id": run_id, "correlation_id": corr, "system": system, "object": obj, "mode": "full",
            "started_at": started, "finished_at": None if secs is None else started + timedelta(seconds=secs),
            "status": status, **kw}  # fmt: skip


RUNS = [
    run("r1", "A", "crm", "customers", "succeeded", 0, 2.5, rows=10, retries=0, http_status_counts={"200": 3}),
    run("r2", "A", "psa", "customers", "failed", 1, 4.0, rows=None, retries=3,
        http_status_counts={"200": 1, "429": 2, "503": 1}, error_class="SourceUnavailable", error_message="down"),
    run("r3", "B", "crm", "customers", "succeeded", 60, 1.0, rows=11, retries=1, http_status_counts={"200": 2}),
    run("r4", "B", "psa", "customers", "running", 61, None, rows=None, retries=0, http_status_counts=None),
    run("r5", "C", "erp", "invoices", "interrupted", 30, 5.0, rows=None, retries=0, http_status_counts={}),
]  # fmt: skip


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    monkeypatch.delenv("TIEOUT_STATE_URL", raising=False)
    eng = state_engine(tmp_path)
    with eng.begin() as conn:
        conn.execute(sa.insert(EXTRACTION_RUNS), RUNS)
    return eng


def test_extraction_runs_newest_first_with_durations_and_http_errors(engine: sa.Engine) -> None:
    runs = ops.extraction_runs(engine)
    assert list(runs.columns) == list(ops.RUN_COLUMNS)
    assert col(runs, "run_id") == ["r4", "r3", "r5", "r2", "r1"]
    assert col(runs, "duration_s") == [None, 1.0, 5.0, 4.0, 2.5]
    assert col(runs, "http_errors") == [0, 0, 0, 3, 0]
    assert col(runs, "http_statuses") == ["", "200×2", "", "200×1, 429×2, 503×1", "200×3"]
    assert runs["started_at"].iloc[-1] == pd.Timestamp(T0) and pd.isna(runs["finished_at"].iloc[0])
    assert str(runs["started_at"].dtype) == "datetime64[us, UTC]" and str(runs["rows"].dtype) == "Int64"
    assert col(ops.extraction_runs(engine, systems=("psa",)), "run_id") == ["r4", "r2"]
    assert col(ops.extraction_runs(engine, statuses=("failed", "interrupted")), "run_id") == ["r5", "r2"]
    assert col(ops.extraction_runs(engine, limit=2), "run_id") == ["r4", "r3"]
    assert ops.run_systems(engine) == ["crm", "erp", "psa"]


def test_pipeline_runs_group_by_correlation(engine: sa.Engine) -> None:
    runs = ops.pipeline_runs(engine)
    assert list(runs.columns) == list(ops.PIPELINE_RUN_COLUMNS)
    assert runs.drop(columns=["started_at", "finished_at"]).astype(object).where(
        runs.notna(), None
    ).values.tolist() == [
        [None, "running", 2, 0, 1, 11, 1, 0, "B"],
        [5.0, "failed", 1, 1, 0, 0, 0, 0, "C"],
        [64.0, "failed", 2, 1, 0, 10, 3, 3, "A"],
    ]
    assert runs["started_at"].iloc[2] == pd.Timestamp(T0)
    assert runs["finished_at"].iloc[2] == pd.Timestamp(T0 + timedelta(seconds=64))
    assert col(ops.pipeline_runs(engine, limit=1), "correlation_id") == ["B"]


def test_no_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIEOUT_STATE_URL", raising=False)
    eng = state_engine(tmp_path)
    assert ops.extraction_runs(eng).empty and list(ops.extraction_runs(eng).columns) == list(ops.RUN_COLUMNS)
    assert ops.pipeline_runs(eng).empty and ops.run_systems(eng) == []


def test_pipeline_holder(tmp_path: Path) -> None:
    assert ops.pipeline_holder(tmp_path) is None
    with PipelineLock(tmp_path):
        assert ops.pipeline_holder(tmp_path) == (
            f"pid {os.getpid()} since {json.loads((tmp_path / 'pipeline.lock.holder').read_text())['since']}: "
            f"{' '.join(sys.argv)}"
        )
    assert ops.pipeline_holder(tmp_path) is None
    (tmp_path / "pipeline.lock.holder").write_text(json.dumps({"pid": 2**22 + 12345, "since": "x"}))
    assert ops.pipeline_holder(tmp_path) is None  # killed holder
    (tmp_path / "pipeline.lock.holder").write_text("not json")
    assert ops.pipeline_holder(tmp_path) is None


def wait(launch: ops.PipelineLaunch) -> int:
    deadline = time.monotonic() + 30
    while launch.returncode is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert launch.returncode is not None
    return launch.returncode


def test_start_pipeline_runs_in_the_background(tmp_path: Path) -> None:
    code = "import os, sys; print(os.environ['TIEOUT_HOME']); sys.exit(1)"
    launch = ops.start_pipeline(tmp_path, command=[sys.executable, "-c", code])
    assert launch.log == tmp_path / "logs" / "app_run.log"
    assert wait(launch) == 1
    assert launch.log.read_text().strip() == str(tmp_path)
    assert "finished with failures (exit code 1" in launch.describe()
    slow = ops.start_pipeline(tmp_path, command=[sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert slow.returncode is None and "is running" in slow.describe()
    finally:
        os.kill(slow.pid, 9)
    assert wait(slow) == -9


def test_start_pipeline_refuses_while_a_run_holds_the_lock(tmp_path: Path) -> None:
    with PipelineLock(tmp_path), pytest.raises(PipelineBusy, match="holds"):
        ops.start_pipeline(tmp_path, command=[sys.executable, "-c", "pass"])
    assert not (tmp_path / "logs").exists()  # nothing started
    assert wait(ops.start_pipeline(tmp_path, command=[sys.executable, "-c", "pass"])) == 0
