"""The extraction pipeline against the three simulators over real HTTP on loopback (small demo).

Landing is checked against the generator's own tables with independent SQL, never against the
extractor's mappings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from data.appstate import EXTRACTION_RUNS, state_engine
from data.lake import Lake
from data.warehouse import connect
from demo.live import admin
from demo.tables import TABLES
from extractors.run import RunResult, extract


def _demo_con(demo_home: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for t in TABLES:
        con.execute(
            f"CREATE VIEW \"{t.system}/{t.name}\" AS SELECT * FROM read_parquet('{t.glob(demo_home / 'demo')}')"
        )
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def _fast(results: list[RunResult]) -> dict[tuple[str, str], RunResult]:
    return {(r.system, r.object): r for r in results}


# Per system and object: the generator's rows that must land (id as text) and a value to compare.
EXPECTED = {
    ("crm", "customers"): ("SELECT id AS id, name AS v FROM \"crm/companies\"", "name"),
    ("crm", "projects"): ("SELECT id, project_code AS v FROM \"crm/deals\" WHERE dealstage = 'closedwon'", "code"),
    ("psa", "customers"): ("SELECT CAST(id AS VARCHAR) AS id, currency AS v FROM \"psa/clients\"", "currency"),
    ("psa", "projects"): ("SELECT CAST(id AS VARCHAR) AS id, code AS v FROM \"psa/projects\"", "code"),
    ("psa", "time_entries"): ("SELECT CAST(id AS VARCHAR) AS id, CAST(hours AS VARCHAR) AS v FROM \"psa/time_entries\"",
                              "CAST(hours AS VARCHAR)"),
    ("psa", "invoices"): ("SELECT CAST(id AS VARCHAR) AS id, CAST(amount AS VARCHAR) AS v FROM \"psa/invoices\"",
                          "CAST(amount_total AS VARCHAR)"),
    ("erp", "customers"): ("SELECT CAST(id AS VARCHAR) AS id, vat AS v FROM \"erp/res.partner\" "
                           "WHERE is_company OR customer_rank > 0", "tax_id"),
    ("erp", "projects"): ("SELECT CAST(id AS VARCHAR) AS id, CAST(x_harvest_id AS VARCHAR) AS v "
                          "FROM \"erp/project.project\"", "psa_id"),
    ("erp", "time_entries"): ("SELECT CAST(id AS VARCHAR) AS id, CAST(-amount AS VARCHAR) AS v "
                              "FROM \"erp/account.analytic.line\" WHERE project_id IS NOT NULL",
                              "CAST(cost_amount AS VARCHAR)"),
    ("erp", "invoices"): ("SELECT CAST(id AS VARCHAR) AS id, CAST(CASE WHEN move_type = 'out_refund' THEN -amount_total "
                          "ELSE amount_total END AS VARCHAR) AS v FROM \"erp/account.move\" "
                          "WHERE move_type IN ('out_invoice', 'out_refund')", "CAST(amount_total AS VARCHAR)"),
}  # fmt: skip
KEYS = {"customers": "customer_id", "projects": "project_id", "time_entries": "time_entry_id",
        "invoices": "invoice_id"}  # fmt: skip


def test_every_record_of_every_object_lands_exactly_once(home: Path, demo_home: Path) -> None:
    results = extract(home)
    assert {(r.system, r.object): r.status for r in results} == {k: "succeeded" for k in EXPECTED}
    assert all(r.quarantined == 0 and r.requests > 0 and r.error_message is None for r in results)
    demo = _demo_con(demo_home)
    wh = connect(home)
    for (system, obj), (sql, column) in EXPECTED.items():
        expected = {(i, v) for i, v in demo.execute(sql).fetchall()}
        key = KEYS[obj]
        landed = wh.execute(f"SELECT {key}, {column} FROM {obj} WHERE system = '{system}'").fetchall()
        assert len(landed) == len({k for k, _ in landed}), f"{system}/{obj}: a record landed twice"
        assert set(landed) == expected, f"{system}/{obj}: landed rows differ from the demo firm's"
    # Totals that must survive exactly (DECIMAL end to end).
    assert _one(wh, "SELECT sum(hours) FROM time_entries WHERE system = 'psa'") == _one(
        demo, 'SELECT sum(hours) FROM "psa/time_entries"'
    )
    assert _one(wh, "SELECT count(DISTINCT snapshot_id) FROM time_entries") == 2
    entities = wh.execute(
        "SELECT DISTINCT legal_entity_id FROM invoices WHERE system = 'erp' ORDER BY 1"
    ).fetchall()
    assert entities == [("DE",), ("UK",), ("US",)], "Odoo companies map to legal entities (value_maps)"
    runs = _fast(results)
    assert runs["psa", "time_entries"].rows == _one(demo, 'SELECT count(*) FROM "psa/time_entries"')
    # Project managers: Harvest's from its user assignments, Odoo's from user_id; the same people.
    managers = set(demo.execute(
        "SELECT CAST(p.id AS VARCHAR), u.first_name || ' ' || u.last_name FROM \"psa/projects\" AS p "
        "JOIN \"psa/users\" AS u ON u.id = p.project_manager_id"
    ).fetchall())  # fmt: skip
    assert set(
        wh.execute("SELECT project_id, project_manager FROM projects WHERE system = 'psa'").fetchall()
    ) == (managers)
    in_erp = wh.execute(
        "SELECT psa_id, project_manager FROM projects WHERE system = 'erp' AND psa_id IS NOT NULL"
    )
    erp_managers = set(in_erp.fetchall())
    assert erp_managers and erp_managers <= managers


def test_second_pull_is_incremental_and_the_snapshot_stays_complete(home: Path) -> None:
    first = _fast(extract(home, systems=["psa"]))
    second = _fast(extract(home, systems=["psa"]))
    for obj in ("customers", "projects", "time_entries", "invoices"):
        assert first["psa", obj].mode == "full" and second["psa", obj].mode == "incremental"
        assert second["psa", obj].rows == first["psa", obj].rows
        assert (second["psa", obj].received or 0) < (first["psa", obj].received or 0)
    wh = connect(home)
    assert _one(wh, "SELECT count(*) FROM snapshots WHERE system = 'psa'") == 8
    assert _one(wh, "SELECT count(*) FROM snapshots WHERE system = 'psa' AND current") == 4
    assert _one(wh, "SELECT count(DISTINCT snapshot_id) FROM time_entries") == 1
    assert _one(wh, "SELECT count(*) FROM time_entries_history") == 2 * (
        first["psa", "time_entries"].rows or 0
    )
    # rows carried over from the first snapshot keep the run that fetched them
    full, incremental = first["psa", "time_entries"], second["psa", "time_entries"]
    by_run = dict(wh.execute("SELECT run_id, count(*) FROM time_entries GROUP BY run_id").fetchall())
    fetched = {
        full.run_id: (full.rows or 0) - (incremental.received or 0),
        incremental.run_id: incremental.received,
    }
    assert by_run == {run: n for run, n in fetched.items() if n}


def _set_faults(demo_home: Path, simulator: str, faults: dict[str, Any]) -> None:
    admin(demo_home, simulator, "PUT", "/_admin/faults", faults)


def _tweak(home: Path, system: str, **values: Any) -> None:
    path = home / "sources.yaml"
    data = yaml.safe_load(path.read_text())
    data["systems"][system].update(values)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("faults", "config", "status", "expect"),
    [
        ({"extra_429": 3, "retry_after_s": 1}, {}, "succeeded", {"429": 3}),
        ({"error_5xx": 2, "error_status": 502}, {}, "succeeded", {"502": 2}),
        ({"slow_requests": 1, "slow_s": 2.5}, {"timeout_s": 1}, "succeeded", {}),
        ({"malformed_pages": [2]}, {"page_size": 20}, "failed", "MalformedResponse"),
        ({"error_5xx_pages": [2]}, {"page_size": 20}, "failed", "SourceUnavailable"),
        ({"rename_fields": {"clients": {"id": "client_id"}}}, {}, "failed", "SchemaDrift"),
    ],
    ids=["429-storm", "5xx-burst", "timeout", "malformed-page", "5xx-forever", "renamed-field"],
)
def test_faults_end_in_success_after_retries_or_a_clear_failure(
    home: Path, demo_home: Path, faults: dict[str, Any], config: dict[str, Any], status: str, expect: Any
) -> None:
    good = _fast(extract(home, systems=["psa"], objects=["customers"]))["psa", "customers"]
    assert good.status == "succeeded"
    _tweak(home, "psa", **config)
    _set_faults(demo_home, "harvest", faults)
    run = _fast(extract(home, systems=["psa"], objects=["customers"], full=True))["psa", "customers"]
    assert run.status == status, run.error_message
    current = Lake(home).current("psa", "customers")
    assert current is not None
    if status == "succeeded":
        assert run.retries >= 1
        for code, n in expect.items():
            assert run.http_status_counts[code] == n
        assert current.snapshot_id == run.snapshot_id
    else:
        assert run.error_class == expect
        assert run.error_message is not None and run.error_message.startswith("psa/customers: ")
        assert current.snapshot_id == good.snapshot_id, "the previous snapshot must stay current"
        assert _one(connect(home), "SELECT count(*) FROM customers WHERE system = 'psa'") == good.rows
    with state_engine(home).connect() as con:
        row = (
            con.execute(EXTRACTION_RUNS.select().where(EXTRACTION_RUNS.c.run_id == run.run_id))
            .mappings()
            .one()
        )
    assert (
        row["status"] == status and row["requests"] == run.requests and row["error_class"] == run.error_class
    )


def test_wrong_credentials_fail_with_a_clear_message_and_no_secret(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIEOUT_DEMO_HARVEST_TOKEN", "wrong-token-value-123")
    monkeypatch.setenv("TIEOUT_DEMO_ODOO_API_KEY", "wrong-odoo-key-456")
    runs = _fast(extract(home, systems=["psa", "erp"], objects=["customers"]))
    for system in ("psa", "erp"):
        run = runs[system, "customers"]
        assert run.status == "failed" and run.error_class == "AuthFailed"
        assert run.error_message is not None and run.error_message.startswith(f"{system}/customers: ")
        assert (
            "wrong-token-value-123" not in run.error_message and "wrong-odoo-key-456" not in run.error_message
        )
    assert Lake(home).current("psa", "customers") is None


def test_missing_secret_fails_each_object_of_the_system(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIEOUT_DEMO_HUBSPOT_TOKEN")
    runs = extract(home, systems=["crm"])
    assert [(r.object, r.status, r.error_class) for r in runs] == [
        ("customers", "failed", "ConfigError"), ("projects", "failed", "ConfigError")]  # fmt: skip
    assert "TIEOUT_DEMO_HUBSPOT_TOKEN" in (runs[0].error_message or "")


READER = textwrap.dedent("""
    import json, os, sys, duckdb
    path, stop = sys.argv[1], sys.argv[2]
    errors, seen, attempts = [], set(), 0
    while not os.path.exists(stop) or attempts < 20:
        attempts += 1
        try:
            con = duckdb.connect(path, read_only=True)
            n, snaps = con.execute(
                "SELECT count(*), count(DISTINCT snapshot_id) FROM time_entries WHERE system = 'psa'").fetchone()
            con.close()
            seen.add((n, snaps))
        except Exception as exc:
            errors.append(repr(exc))
    print(json.dumps({"attempts": attempts, "seen": sorted(seen), "errors": errors}))
""")


def test_readers_in_another_process_never_error_during_publishes(home: Path) -> None:
    first = _fast(extract(home, systems=["psa"], objects=["time_entries"]))["psa", "time_entries"]
    stop = home / "stop-reading"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(home / "warehouse.duckdb"), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    for _ in range(3):
        run = _fast(extract(home, systems=["psa"], objects=["time_entries"], full=True))[
            "psa", "time_entries"
        ]
        assert run.status == "succeeded"
    stop.touch()
    out, err = reader.communicate(timeout=120)
    report = json.loads(out)
    assert report["errors"] == [], err
    assert report["attempts"] >= 20
    assert report["seen"] == [[first.rows, 1]], "a reader saw a partial or mixed snapshot"


KILLER = textwrap.dedent("""
    import os, signal, sys
    where = sys.argv[1]
    if where == "extract":
        import extractors.staging as staging
        original = staging.RawSink.records
        def records(self, page):
            original(self, page)
            if self.pages == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        staging.RawSink.records = records
    else:
        import data.lake as lake
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        lake.Lake._write_manifest = die
    from cli import app
    sys.argv = ["tieout", "extract", "--system", "psa", "--object", "time_entries", "--full"]
    app()
""")


@pytest.mark.parametrize("where", ["extract", "publish"])
def test_sigkill_leaves_the_last_good_snapshot_current(home: Path, where: str) -> None:
    _tweak(home, "psa", page_size=1000)
    good = _fast(extract(home, systems=["psa"], objects=["time_entries"]))["psa", "time_entries"]
    proc = subprocess.run([sys.executable, "-c", KILLER, where], env={**os.environ, "TIEOUT_HOME": str(home)},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    if where == "publish":
        assert list((Lake(home).root / "canonical" / "time_entries" / "psa").iterdir()), "publish had begun"
    wh = connect(home)
    assert _one(wh, "SELECT count(*), min(snapshot_id) FROM time_entries WHERE system = 'psa'") == (
        good.rows, good.snapshot_id)  # fmt: skip
    wh.close()
    again = _fast(extract(home, systems=["psa"], objects=["time_entries"]))["psa", "time_entries"]
    assert again.status == "succeeded" and again.rows == good.rows
    assert not list(Lake(home).staging_root.iterdir())
    snapshot_dirs = {p.name for p in (Lake(home).root / "canonical" / "time_entries" / "psa").iterdir()}
    assert snapshot_dirs == {good.snapshot_id, again.snapshot_id}, "orphans of the killed run were swept"
    with state_engine(home).connect() as con:
        statuses = [
            r.status for r in con.execute(EXTRACTION_RUNS.select().order_by(EXTRACTION_RUNS.c.started_at))
        ]
    assert statuses == ["succeeded", "interrupted", "succeeded"]
