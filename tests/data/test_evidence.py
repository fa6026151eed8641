"""The month-end evidence pack (ZIP contents, cleared breaks, entity scope) and the queue's CSV/XLSX files."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from data.breaks import BREAK_COLUMNS, LEDGER_COLUMNS, break_views
from data.evidence import (
    EVIDENCE_COLUMNS,
    XLSX_MAX_ROWS,
    can_export_evidence,
    evidence_pack,
    frame_csv,
    frame_xlsx,
    queue_file,
)
from data.queries import QUEUE_COLUMNS, QueueFilter
from data.users import User, hash_password
from data.workflow import Workflow

T1 = "2026-10-31T06:00:00+00:00"  # the earlier run
T2 = "2026-11-15T06:00:00+00:00"  # the latest run
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _break(break_id: str, entity: str, period: str, amount: str, seen: str, run_id: str) -> dict[str, Any]:
    return {
        "break_id": break_id, "rule_id": "time_entries_psa_erp", "category": "reconciliation",
        "break_type": "field_mismatch", "object": "time_entries", "source_system": "psa", "target_system": "erp",
        "source_id": f"s-{break_id}", "target_id": f"t-{break_id}", "match_key": f"s-{break_id}",
        "legal_entity_id": entity, "customer": f"Customer {entity}", "project_code": f"{entity}-1",
        "invoice_cycle": period, "field": "hours", "source_value": "7.50", "target_value": "8.00",
        "amount": amount, "currency": "USD", "amount_at_risk": amount, "reporting_currency": "USD",
        "severity": "low", "age_days": 3, "aging_bucket": "0-30", "first_seen": T1, "last_seen": seen,
        "run_id": run_id,
    }  # fmt: skip


def _write(path: Path, columns: tuple[tuple[str, str, str], ...], rows: list[dict[str, Any]]) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({', '.join(f'{n} {t}' for n, t, _ in columns)})")
    for row in rows:
        con.execute(
            f"INSERT INTO t ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
        )
    con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    con.close()


def _run(home: Path, run_id: str, started: str, breaks: list[dict[str, Any]], ledger: list[dict[str, Any]],
         *, replay: bool = False, latest: bool = True) -> None:  # fmt: skip
    folder = home / "lake" / "breaks" / "reconciliation" / run_id
    folder.mkdir(parents=True)
    _write(folder / "breaks.parquet", BREAK_COLUMNS, breaks)
    _write(folder / "ledger.parquet", LEDGER_COLUMNS, ledger)
    run = {"run_id": run_id, "started_at": started, "replay": replay, "rules_file": str(home / "old_rules.yaml"),
           "snapshots": {"psa/time_entries": "s1"}, "breaks": len(breaks), "results": [{"rule_id": "r", "breaks": 9}]}  # fmt: skip
    (folder / "run.json").write_text(json.dumps(run))
    if latest:
        (folder.parent / "latest.json").write_text(json.dumps({"run_id": run_id}))


def _ledger(break_id: str, entity: str, last_seen: str, cleared_at: str | None) -> dict[str, Any]:
    return {"break_id": break_id, "rule_id": "time_entries_psa_erp", "break_type": "field_mismatch",
            "legal_entity_id": entity, "first_seen": T1, "last_seen": last_seen, "cleared_at": cleared_at,
            "times_cleared": 1 if cleared_at else 0}  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Two live runs and a replay: the latest has uk-open, us-open (2026-10) and uk-other (2026-09);
    uk-gone and us-gone (2026-10) were in the first run only (cleared); a replay saw uk-gone again."""
    first = [
        _break("uk-gone", "UK", "2026-10", "100.00", T1, "run1"),
        _break("us-gone", "US", "2026-10", "200.00", T1, "run1"),
        _break("uk-open", "UK", "2026-10", "300.00", T1, "run1"),
    ]
    latest = [
        _break("uk-open", "UK", "2026-10", "300.00", T2, "run2"),
        _break("us-open", "US", "2026-10", "400.00", T2, "run2"),
        _break("uk-other", "UK", "2026-09", "500.00", T2, "run2"),
    ]
    ledger = [
        _ledger("uk-gone", "UK", T1, T2), _ledger("us-gone", "US", T1, T2), _ledger("uk-open", "UK", T2, None),
        _ledger("us-open", "US", T2, None), _ledger("uk-other", "UK", T2, None),
    ]  # fmt: skip
    _run(tmp_path, "run1", T1, first, ledger[:3], latest=False)
    _run(tmp_path, "run2", T2, latest, ledger)
    # a replay (--as-of) that saw uk-gone later: not the live history, so left out
    replayed = [_break("uk-gone", "UK", "2026-10", "900.00", "2026-11-20T00:00:00+00:00", "replay1")]
    _run(tmp_path, "replay1", T1, replayed, [], replay=True, latest=False)
    (tmp_path / "rules.yaml").write_text("# the rules in force\nrules: []\n")
    (tmp_path / "old_rules.yaml").write_text("# the rules of the latest run\nrules: []\n")
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "time_entries.yaml").write_text("# a suite\n")
    return tmp_path


@pytest.fixture
def con(home: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    for stmt in break_views(home)[0]:
        c.execute(stmt)
    return c


def _user(name: str, role: str, entities: list[str] | None = None) -> User:
    pw = hash_password("pw", rounds=4)
    return User(name=name, display_name=name, role=role, password_hash=pw, legal_entities=entities)


@pytest.fixture
def workflow() -> Workflow:
    """uk-open resolved, uk-gone accepted, us-gone commented."""
    entities = {"uk-open": "UK", "uk-gone": "UK", "us-gone": "US", "us-open": "US", "uk-other": "UK"}
    wf = Workflow(sa.create_engine("sqlite://"), legal_entity_of=entities)
    fin = _user("fiona", "finance")
    wf.set_status(fin, ["uk-open", "uk-gone"], "in_review")
    wf.set_status(fin, ["uk-open"], "resolved", "timing_difference")
    wf.set_status(fin, ["uk-gone"], "accepted", "known_exception")
    wf.comment(fin, ["us-gone"], "US only: the sync was late")
    wf.comment(fin, ["uk-other"], "another period")
    return wf


def _pack(zipped: bytes) -> tuple[zipfile.ZipFile, pd.DataFrame, pd.DataFrame]:
    zf = zipfile.ZipFile(io.BytesIO(zipped))
    breaks = pd.read_csv(zf.open("breaks.csv"), dtype=str, keep_default_na=False)
    history = pd.read_csv(zf.open("history.csv"), dtype=str, keep_default_na=False)
    return zf, breaks, history


def test_pack_holds_the_periods_open_and_cleared_breaks_with_history_rules_and_runs(
    con: duckdb.DuckDBPyConnection, home: Path, workflow: Workflow
) -> None:
    zipped = evidence_pack(con, home, "2026-10", None, workflow.state(), workflow.audit(), now=NOW)
    zf, breaks, history = _pack(zipped)
    assert sorted(zf.namelist()) == sorted([
        "README.txt", "breaks.csv", "history.csv", "rules/rules.yaml", "rules/latest_run/old_rules.yaml",
        "suites/time_entries.yaml", "runs/reconciliation/run.json",
    ])  # fmt: skip
    assert list(breaks.columns) == list(EVIDENCE_COLUMNS)
    outcome = dict(zip(breaks["break_id"], breaks["outcome"], strict=True))
    # latest run first (by amount at risk), then the cleared ones; no other period, no replay
    assert list(breaks["break_id"]) == ["us-open", "uk-open", "us-gone", "uk-gone"]
    assert outcome == {"us-open": "open", "uk-open": "resolved", "us-gone": "cleared", "uk-gone": "accepted"}
    gone = breaks.set_index("break_id").loc["uk-gone"]
    assert (gone["in_latest_run"], gone["times_cleared"], gone["run_id"], gone["reason_code"]) == (
        "False", "1", "run1", "known_exception")  # fmt: skip
    assert gone["cleared_at"].startswith("2026-11-15")
    assert set(history["break_id"]) == {"uk-open", "uk-gone", "us-gone"}  # not uk-other (2026-09)
    assert "US only: the sync was late" in set(history["new_value"])
    assert zf.read("rules/rules.yaml").startswith(b"# the rules in force")
    assert zf.read("rules/latest_run/old_rules.yaml").startswith(b"# the rules of the latest run")
    assert zf.read("suites/time_entries.yaml") == b"# a suite\n"
    run = json.loads(zf.read("runs/reconciliation/run.json"))
    assert run["run_id"] == "run2" and run["results"] == [{"rule_id": "r", "breaks": 9}]
    readme = zf.read("README.txt").decode()
    assert "billing period 2026-10" in readme and "Legal entities: all" in readme
    assert "Breaks: 4 (2 in the latest run, 2 cleared since)" in readme
    assert (
        "  resolved: 1" in readme
        and "  cleared: 1" in readme
        and "History rows (changes and comments): 7" in readme
    )
    assert (
        "reconciliation: run2" in readme and "breaks.csv" in readme and "2026-11-20T12:00:00+00:00" in readme
    )


def test_a_uk_pack_has_no_us_rows(con: duckdb.DuckDBPyConnection, home: Path, workflow: Workflow) -> None:
    uk = _user("uma", "finance", ["UK"])
    zipped = evidence_pack(con, home, "2026-10", ("UK",), workflow.state(), workflow.audit(), now=NOW)
    zf, breaks, history = _pack(zipped)
    assert list(breaks["break_id"]) == ["uk-open", "uk-gone"] and set(breaks["legal_entity_id"]) == {"UK"}
    assert set(history["break_id"]) == {"uk-open", "uk-gone"}
    everything = b"".join(zf.read(n) for n in zf.namelist())
    assert b"us-" not in everything and b"US only" not in everything and b"Customer US" not in everything
    run = json.loads(zf.read("runs/reconciliation/run.json"))
    assert "results" not in run and "breaks" not in run and run["snapshots"] == {"psa/time_entries": "s1"}
    readme = zf.read("README.txt").decode()
    assert "Legal entities: UK" in readme and "History rows (changes and comments): 6" in readme
    assert can_export_evidence(uk) and not can_export_evidence(_user("piet", "pmo"))
    assert not can_export_evidence(_user("eve", "executive")) and can_export_evidence(_user("ada", "admin"))


def test_empty_and_invalid_packs(con: duckdb.DuckDBPyConnection, home: Path) -> None:
    zf, breaks, history = _pack(evidence_pack(con, home, "2025-01", None, None, None, now=NOW))
    assert breaks.empty and history.empty and list(breaks.columns) == list(EVIDENCE_COLUMNS)
    assert "Breaks: 0 (0 in the latest run, 0 cleared since)" in zf.read("README.txt").decode()
    _, none, _ = _pack(evidence_pack(con, home, "2026-10", (), None, None, now=NOW))
    assert none.empty
    with pytest.raises(ValueError, match="YYYY-MM"):
        evidence_pack(con, home, "October", None, None, None)


def test_pack_of_a_home_without_runs(tmp_path: Path) -> None:
    c = duckdb.connect()
    for stmt in break_views(tmp_path)[0]:
        c.execute(stmt)
    zf, breaks, _ = _pack(evidence_pack(c, tmp_path, "2026-10", None, None, None))
    assert breaks.empty and "rules/rules.yaml" in zf.namelist()  # the starter catalogue
    assert not any(n.startswith("runs/") for n in zf.namelist())
    assert any(n.startswith("suites/") for n in zf.namelist())


def test_queue_files_csv_and_xlsx(con: duckdb.DuckDBPyConnection) -> None:
    csv = queue_file(con, QueueFilter(legal_entities=("UK",)), fmt="csv")
    frame = pd.read_csv(io.BytesIO(csv), dtype=str)
    assert list(frame.columns) == list(QUEUE_COLUMNS) and list(frame["break_id"]) == ["uk-other", "uk-open"]
    assert (
        list(frame["amount_at_risk"]) == ["500.00", "300.00"]
        and b"us-" not in csv
        and b"Customer US" not in csv
    )
    assert frame["assignee"].isna().all() and set(frame["status"]) == {"open"}
    book = openpyxl.load_workbook(
        io.BytesIO(queue_file(con, QueueFilter(legal_entities=("US",)), fmt="xlsx"))
    )
    rows = list(book.active.iter_rows(values_only=True))
    assert list(rows[0]) == list(QUEUE_COLUMNS) and len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["break_id"] == "us-open" and row["amount_at_risk"] == 400 and row["status"] == "open"
    assert row["last_seen"] == datetime(2026, 11, 15, 6, 0) and row["assignee"] is None  # UTC, no zone
    with pytest.raises(ValueError, match="unknown export format"):
        queue_file(con, QueueFilter(), fmt="pdf")


def test_frame_files() -> None:
    frame = pd.DataFrame({
        "a": [Decimal("1.50"), None], "b": [pd.Timestamp("2026-01-02T03:04:05Z"), pd.NaT], "c": ["x", pd.NA],
    })  # fmt: skip
    assert frame_csv(frame).decode().splitlines() == ["a,b,c", "1.50,2026-01-02 03:04:05+00:00,x", ",,"]
    rows = list(openpyxl.load_workbook(io.BytesIO(frame_xlsx(frame))).active.iter_rows(values_only=True))
    assert rows == [("a", "b", "c"), (1.5, datetime(2026, 1, 2, 3, 4, 5), "x")]  # a row of blanks is no row
    big = pd.DataFrame({"a": range(XLSX_MAX_ROWS + 1)})
    with pytest.raises(ValueError, match="too many for XLSX"):
        frame_xlsx(big)
