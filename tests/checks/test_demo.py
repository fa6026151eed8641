"""The suites on the demo firm served over HTTP: a clean firm passes every check; a dropped field drifts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.run import check
from checks.spec import load_suites
from data.warehouse import connect
from demo.generate import generate
from demo.live import admin, free_port_base, serving
from extractors.run import extract
from pipeline import PipelineRun, run_pipeline
from tests.conftest import AS_OF, SEED
from tests.live import credentials, pipeline_home

pytestmark = pytest.mark.slow  # generates, serves and extracts a small firm


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, PipelineRun]]:
    """(demo home, pipeline home, first pipeline run) of a small firm without data-quality defects, still served."""
    demo = tmp_path_factory.mktemp("demo-clean")
    generate(demo, scale="small", seed=SEED, as_of=AS_OF, quality_defects=False, port_base=free_port_base())
    mp = pytest.MonkeyPatch()
    for key, value in credentials(demo).items():
        mp.setenv(key, value)
    try:
        with serving(demo):
            home = pipeline_home(demo, tmp_path_factory.mktemp("home-clean"))
            yield demo, home, run_pipeline(home)
    finally:
        mp.undo()


def test_a_clean_firm_passes_every_suite(clean: tuple[Path, Path, PipelineRun]) -> None:
    _, home, run = clean
    assert run.checks.failed == 0 and run.checks.breaks == 0
    assert len(run.checks.checked) == 10  # crm 2, psa 4, erp 4 objects
    con = connect(home)
    kinds = dict(con.execute("SELECT check_type, count(*) FROM check_results GROUP BY ALL").fetchall())
    suites = load_suites()
    expected = sum(len(suites[u.split("/")[1]].expectations(u.split("/")[0])) for u in run.checks.checked)
    assert kinds["expectation"] == expected and kinds["freshness"] == 10 and kinds["schema_drift"] == 10
    assert con.execute("SELECT count(*) FROM check_results WHERE NOT success").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM breaks WHERE category = 'data_quality'").fetchone() == (0,)
    assert (home / "data_docs" / "index.html").exists()


def test_a_dropped_field_is_schema_drift_on_the_next_snapshot(clean: tuple[Path, Path, PipelineRun]) -> None:
    demo, home, _ = clean
    admin(demo, "harvest", "PUT", "/_admin/faults", {"drop_fields": {"time_entries": ["cost_rate"]}})
    try:
        (result,) = extract(home, systems=["psa"], objects=["time_entries"], full=True)
    finally:
        admin(demo, "harvest", "PUT", "/_admin/faults", {})
    assert result.status == "succeeded"
    run = check(home, systems=["psa"], objects=["time_entries"])
    (drift,) = [r for r in run.outcomes["psa/time_entries"] if r["check_type"] == "schema_drift"]
    assert not drift["success"] and drift["column_name"] == "cost_rate"
    con = connect(home)
    rows = con.execute(
        "SELECT rule_id, break_type, source_system, field, source_value, severity FROM breaks "
        "WHERE category = 'data_quality'"
    ).fetchall()
    assert rows == [("time_entries.schema_drift", "schema_drift", "psa", "cost_rate", "removed", "high")]
