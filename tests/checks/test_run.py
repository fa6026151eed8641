"""Check runs through the real pipeline: files -> extract -> check -> lake, warehouse views and the CLI."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from checks.run import CheckRun, check
from checks.snapshot import freshness
from cli import app
from data.lake import Lake
from data.warehouse import connect
from extractors.config import load_sources
from extractors.run import extract

pytestmark = pytest.mark.slow  # each test extracts and checks a few times (GX takes seconds to import)

SOURCES = """
reporting_currency: USD
business_date: 2026-11-15
founded: 2020-01-01
systems:
  psa:
    connector: files
    objects: [time_entries]
    paths: {time_entries: exports/time.csv}
  crm:
    connector: files
    objects: [customers]
    paths: {customers: exports/customers.csv}
"""
HEADER = ["time_entry_id", "project_id", "project_code", "spent_date", "billing_period", "hours", "currency",
          "cost_amount", "legal_entity_id"]  # fmt: skip
GOOD = {
    "T1": ["P1", "ACME-1", "2026-10-01", "2026-10", "8.00", "USD", "800.00", "US"],
    "T8": ["P1", "ACME-1", "2026-10-02", "2026-10", "24.00", "USD", "2400.00", "US"],  # the boundary holds
}
BAD = {
    "T2": ["P1", "ACME-1", "2026-10-03", "2026-10", "24.01", "USD", "2401.00", "US"],
    "T3": ["P1", "ACME-1", "2026-10-04", "2026-10", "-1.50", "USD", "0.00", "US"],
    "T4": ["P2", "BETA-1", "2026-10-05", "2026-10", "2.00", "XYZ", "200.00", "UK"],
    "T5": ["P2", "BETA-1", "2026-12-20", "2026-12", "2.00", "GBP", "200.00", "UK"],
    "T6": ["", "", "2026-10-06", "2026-10", "2.00", "GBP", "200.00", "UK"],
    "T7": ["P2", "BETA-1", "2019-06-01", "2019-06", "2.00", "GBP", "200.00", "UK"],
    "": ["P2", "BETA-1", "2026-10-07", "2026-10", "2.00", "GBP", "200.00", "UK"],  # no id: quarantined
}
EXPECTED = {
    ("time_entries.hours_in_range", "failed_expectation", "T2", "hours", "24.01"),
    ("time_entries.hours_in_range", "failed_expectation", "T3", "hours", "-1.50"),
    ("time_entries.currency_in_set", "failed_expectation", "T4", "currency", "XYZ"),
    ("time_entries.spent_date_in_range", "failed_expectation", "T5", "spent_date", "2026-12-20"),
    ("time_entries.spent_date_in_range", "failed_expectation", "T7", "spent_date", "2019-06-01"),
    ("time_entries.project_id_not_null", "failed_expectation", "T6", "project_id", None),
    ("time_entries.quarantined", "quarantined", None, None, "time_entry_id: missing"),
}


def _write(home: Path, rows: dict[str, list[str]], extra: dict[str, str] | None = None) -> None:
    with (home / "exports" / "time.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER + list(extra or {}))
        for key, row in rows.items():
            w.writerow([key, *row, *(extra or {}).values()])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "exports").mkdir()
    (tmp_path / "sources.yaml").write_text(SOURCES)
    (tmp_path / "exports" / "customers.csv").write_text(
        "customer_id,name,currency,status\nC1,Acme,USD,active\n"
    )
    _write(tmp_path, {**GOOD, **BAD})
    return tmp_path


def _run(home: Path, **kw: object) -> CheckRun:
    results = extract(home)
    assert all(r.status == "succeeded" for r in results), [r.error_message for r in results]
    return check(home, **kw)  # type: ignore[arg-type]


def _breaks(home: Path) -> dict[tuple[object, ...], tuple[object, ...]]:
    with connect(home) as con:
        rows = con.execute(
            "SELECT rule_id, break_type, source_id, field, source_value, break_id, first_seen, reopened_at, "
            "source_system, severity FROM breaks WHERE category = 'data_quality'"
        ).fetchall()
    return {r[:5]: r[5:] for r in rows}


def test_failures_become_breaks_with_ids_and_results(home: Path) -> None:
    run = _run(home)
    found = _breaks(home)
    assert set(found) == EXPECTED
    assert {v[3] for v in found.values()} == {"psa"}
    assert (
        found[("time_entries.project_id_not_null", "failed_expectation", "T6", "project_id", None)][4]
        == "medium"
    )
    with connect(home) as con:
        results = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT rule_id, success, element_count, unexpected_count, sample_ids, system FROM check_results "
                "WHERE system = 'psa'"
            ).fetchall()
        }
    assert results["time_entries.hours_in_range"][:3] == (False, 8, 2)
    assert sorted(json.loads(results["time_entries.hours_in_range"][3])) == ["T2", "T3"]
    assert results["time_entries.time_entry_id_unique"][:3] == (True, 8, 0)
    assert results["time_entries.quarantined"][:3] == (False, 9, 1)
    assert results["time_entries.volume"][0] and results["time_entries.schema_drift"][0]
    assert results["time_entries.freshness"][0]
    assert run.failed == 5 and run.breaks == len(EXPECTED)
    assert run.docs is not None and run.docs.exists()


def test_breaks_keep_their_ids_clear_reopen_and_drift_shows(home: Path) -> None:
    _run(home)
    first = _breaks(home)
    t3 = ("time_entries.hours_in_range", "failed_expectation", "T3", "hours", "-1.50")
    fixed = {**BAD, "T3": ["P1", "ACME-1", "2026-10-04", "2026-10", "1.50", "USD", "150.00", "US"]}
    _write(home, {**GOOD, **fixed}, extra={"notes": "n/a"})  # T3 fixed, and a new column arrives
    _run(home)
    second = _breaks(home)
    drift = ("time_entries.schema_drift", "schema_drift", None, "notes", "added")
    assert set(second) == (EXPECTED - {t3}) | {drift}
    assert second[drift][3:] == ("psa", "high")
    quarantined = next(k for k in EXPECTED if k[1] == "quarantined")
    for key in EXPECTED - {t3, quarantined}:
        assert second[key][:2] == first[key][:2], key  # same break_id and first_seen
    # a record without a key is known by its content, which the new column changed
    assert second[quarantined][0] != first[quarantined][0]
    with connect(home) as con:
        cleared = con.execute(
            "SELECT cleared_at FROM break_ledger WHERE break_id = ?", [first[t3][0]]
        ).fetchone()
    assert cleared is not None and cleared[0] is not None
    _write(home, {**GOOD, **BAD}, extra={"notes": "n/a"})
    _run(home)
    third = _breaks(home)
    assert t3 in third and drift not in third
    assert third[t3][:2] == first[t3][:2] and third[t3][2] is not None  # reopened, first seen kept


def test_volume_band_and_checking_one_system_carries_the_others(home: Path) -> None:
    _run(home)
    _write(home, GOOD)  # 9 rows -> 2
    _run(home, systems=["psa"])
    found = _breaks(home)
    assert ("time_entries.volume", "volume_change", None, None, "2 rows, was 8 (-75.0%)") in found
    before = set(found)
    check(home, systems=["crm"])
    assert set(_breaks(home)) == before  # psa's breaks carried over a crm-only run
    with connect(home) as con:
        results = con.execute("SELECT count(*) FROM check_results").fetchall()
    check(home, units=[])  # nothing published (every extraction failed): only freshness is re-checked
    assert set(_breaks(home)) == before
    with connect(home) as con:
        assert con.execute("SELECT count(*) FROM check_results").fetchall() == results
    with connect(home) as con:
        systems = con.execute("SELECT DISTINCT system FROM check_results ORDER BY 1").fetchall()
    assert systems == [("crm",), ("psa",)]


def test_freshness_against_the_sla(home: Path) -> None:
    extract(home, systems=["psa"])
    sources = load_sources(home / "sources.yaml")
    now = datetime.now(UTC)
    fresh = {(f.system, f.object): f for f in freshness(Lake(home), sources, now)}
    assert fresh[("psa", "time_entries")].success
    assert (
        not fresh[("crm", "customers")].success and fresh[("crm", "customers")].observed == "never extracted"
    )
    later = {(f.system, f.object): f for f in freshness(Lake(home), sources, now + timedelta(minutes=181))}
    assert not later[("psa", "time_entries")].success
    assert later[("psa", "time_entries")].expected == "extracted within 180 minutes"


def test_cli_check_exit_codes(home: Path) -> None:
    runner = CliRunner()
    extract(home)
    env = {"COLUMNS": "200"}
    failing = runner.invoke(app, ["check", "--home", str(home), "--system", "psa"], env=env)
    assert failing.exit_code == 1, failing.output
    assert "time_entries.hours_in_range: 2" in failing.output
    clean = runner.invoke(app, ["check", "--home", str(home), "--system", "crm"], env=env)
    assert clean.exit_code == 0, clean.output
    unknown = runner.invoke(app, ["check", "--home", str(home), "--system", "hr"], env=env)
    assert unknown.exit_code == 2 and "unknown system 'hr'" in unknown.output
    (home / "checks").mkdir()
    (home / "checks" / "time_entries.yaml").write_text(
        "object: time_entries\nexpect:\n  - {column: hours, betwen: [0, 24]}\n"
    )
    bad = runner.invoke(app, ["check", "--home", str(home)], env=env)
    assert bad.exit_code == 2
    assert (
        "time_entries.yaml: suite 'time_entries'" in bad.output
        and "expect.0.betwen: unknown key" in bad.output
    )


def test_nulls_do_not_fail_a_format_check(home: Path) -> None:
    extract(home)
    (home / "checks").mkdir()
    (home / "checks" / "customers.yaml").write_text(
        "object: customers\nexpect:\n  - {column: tax_id, matches: '^[A-Z]{2}'}\n"
    )
    run = check(home, systems=["crm"])
    (row,) = [r for r in run.outcomes["crm/customers"] if r["rule_id"] == "customers.tax_id_format"]
    assert row["success"] and row["unexpected_count"] == 0  # all NULL: nothing to fail
