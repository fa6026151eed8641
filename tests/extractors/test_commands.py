"""`tieout extract`, `tieout status` and the schedule, as users run them, on the live simulators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import yaml

from data.appstate import state_url
from data.breaks import BreakStore
from data.lake import Lake
from data.lock import PipelineLock
from extractors.schedule import configure_jobs, make_scheduler
from pipeline import scheduled_run


def _tieout(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIEOUT_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_extract_prints_a_summary_and_status_reports_freshness(home: Path) -> None:
    done = _tieout(home, "extract", "--system", "psa", "--object", "customers", "--object", "invoices")
    assert done.returncode == 0, done.stderr
    assert "Extraction runs" in done.stdout and done.stdout.count("succeeded") == 2
    assert "psa/customers" in done.stderr  # the progress bars
    status = _tieout(home, "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {(s["system"], s["object"]): s for s in json.loads(status.stdout)}
    assert len(rows) == 10  # every configured system and object, extracted or not
    customers = rows["psa", "customers"]
    assert customers["snapshot_id"] == Lake(home).current("psa", "customers").snapshot_id  # type: ignore[union-attr]
    assert customers["fresh"] is True and customers["age_minutes"] < customers["freshness_sla_minutes"]
    assert customers["last_runs"][0]["status"] == "succeeded" and customers["last_runs"][0]["rows"] > 0
    assert (
        rows["psa", "time_entries"]["snapshot_id"] is None and rows["psa", "time_entries"]["fresh"] is False
    )
    table = _tieout(home, "status")
    assert table.returncode == 0 and "Snapshots" in table.stdout and "time_entries" in table.stdout


def test_extract_exit_codes(home: Path) -> None:
    env_token = "TIEOUT_DEMO_HARVEST_TOKEN"
    os.environ[env_token], saved = "bad-token-xyz", os.environ[env_token]
    try:
        failed = _tieout(home, "extract", "--system", "psa", "--object", "customers")
    finally:
        os.environ[env_token] = saved
    assert failed.returncode == 1 and "AuthFailed" in failed.stdout and "bad-token-xyz" not in failed.stdout
    unknown = _tieout(home, "extract", "--system", "nope")
    assert unknown.returncode == 2 and "no system 'nope'" in unknown.stderr
    with PipelineLock(home):
        busy = _tieout(home, "extract", "--system", "psa")
    assert busy.returncode == 3 and "Another pipeline run holds" in busy.stderr


def test_bad_sources_yaml_is_refused_with_the_key_path(home: Path) -> None:
    data = yaml.safe_load((home / "sources.yaml").read_text())
    data["systems"]["psa"]["schedule"] = {"interval_minutes": 30, "cron": "0 * * * *"}
    data["systems"]["erp"]["objects"] = ["invoices", "payments"]
    (home / "sources.yaml").write_text(yaml.safe_dump(data))
    done = _tieout(home, "extract")
    assert done.returncode == 2
    assert "systems.psa.schedule: Value error, give exactly one of interval_minutes or cron" in done.stderr
    assert "systems.erp.objects.1: Input should be 'customers'" in done.stderr


def _jobs(home: Path) -> dict[str, bytes]:
    engine = sa.create_engine(state_url(home))
    with engine.connect() as con:
        return dict(con.execute(sa.text("SELECT id, job_state FROM apscheduler_jobs")).fetchall())


def test_schedule_keeps_one_job_per_system_in_the_app_state_database(home: Path) -> None:
    scheduler = make_scheduler(home)
    scheduler.start(paused=True)
    try:
        assert sorted(configure_jobs(scheduler, home)) == ["extract:crm", "extract:erp", "extract:psa"]
        psa = scheduler.get_job("extract:psa")
        assert psa.trigger.interval.total_seconds() == 30 * 60 and psa.coalesce and psa.max_instances == 1
        assert psa.func_ref == "pipeline:scheduled_run"  # what the job store saves
        data = yaml.safe_load((home / "sources.yaml").read_text())
        del data["systems"]["crm"]
        data["systems"]["erp"]["schedule"] = {"cron": "15 2 * * *"}
        (home / "sources.yaml").write_text(yaml.safe_dump(data))
        configure_jobs(scheduler, home)
        assert sorted(_jobs(home)) == ["extract:erp", "extract:psa"]
        assert str(scheduler.get_job("extract:erp").trigger).startswith("cron[")
    finally:
        scheduler.shutdown(wait=False)
    restarted = make_scheduler(home)
    restarted.start(paused=True)
    try:
        assert sorted(j.id for j in restarted.get_jobs()) == ["extract:erp", "extract:psa"]
    finally:
        restarted.shutdown(wait=False)


def test_a_due_job_runs_the_pipeline_for_its_system(home: Path) -> None:
    data = yaml.safe_load((home / "sources.yaml").read_text())
    data["systems"] = {"psa": {**data["systems"]["psa"], "objects": ["customers"]}}
    (home / "sources.yaml").write_text(yaml.safe_dump(data))
    scheduler = make_scheduler(home)
    scheduler.start(paused=True)
    try:
        configure_jobs(scheduler, home)
        scheduler.modify_job("extract:psa", next_run_time=datetime.now(UTC))
        scheduler.resume()
        deadline = time.monotonic() + 60
        while Lake(home).current("psa", "customers") is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        scheduler.shutdown(wait=True)
    assert Lake(home).current("psa", "customers") is not None


def test_scheduled_run_extracts_one_system_and_reconciles(home: Path) -> None:
    scheduled_run(str(home), "psa")
    assert (
        Lake(home).current("psa", "customers") is not None and Lake(home).current("crm", "customers") is None
    )
    run = BreakStore(home, "reconciliation").latest()
    assert run is not None
    status = {r["rule_id"]: r["status"] for r in run["results"]}
    assert status["unbilled_time"] == "ok" and status["customers_crm_erp"] == "skipped"
