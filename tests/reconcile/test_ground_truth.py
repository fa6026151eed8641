"""The starter catalogue held to the demo's answer key, through the whole pipeline.

For each scale, the demo firm is generated, served by ``tieout demo serve`` over real HTTP,
extracted and reconciled (:func:`pipeline.run_pipeline`); the reconciliation breaks of the
``breaks`` view of ``HOME/warehouse.duckdb`` must equal the reconciliation rows of
``demo/ground_truth.parquet`` exactly on (rule_id, break_type, source_id, target_id, field):
precision and recall 1.0 for every rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from data.warehouse import connect
from demo.generate import generate
from demo.ground_truth import RULES
from demo.live import free_port_base, serving
from pipeline import PipelineRun, run_pipeline
from tests.conftest import AS_OF, SEED
from tests.live import credentials, pipeline_home

KEY = "rule_id, break_type, source_id, target_id, field"
#: The reconciliation rules; the answer key also holds the data-quality rules' expected breaks.
RECONCILIATION = f"rule_id IN ({', '.join(repr(r) for r in RULES)})"
#: Expected breaks per rule (seed 7, as of 2026-11-15), as the generator's tests state them.
COUNTS = {
    "small": {"customers_crm_erp": 18, "customers_crm_psa": 8, "deals_without_project": 2, "projects_psa_erp": 14,
              "time_entries_psa_erp": 71, "time_totals_psa_erp": 63, "unbilled_time": 28, "invoices_erp_psa": 19,
              "invoice_vs_time": 8},
    "default": {"customers_crm_erp": 54, "customers_crm_psa": 24, "deals_without_project": 17,
                "projects_psa_erp": 77, "time_entries_psa_erp": 1234, "time_totals_psa_erp": 986,
                "unbilled_time": 158, "invoices_erp_psa": 130, "invoice_vs_time": 66},
}  # fmt: skip


@pytest.fixture(scope="module", params=["small", "default"])
def reconciled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, PipelineRun]]:
    """(scale, pipeline home, pipeline run) of a demo firm extracted and reconciled once."""
    scale = str(request.param)
    demo = tmp_path_factory.mktemp(f"demo-{scale}")
    generate(demo, scale=scale, seed=SEED, as_of=AS_OF, port_base=free_port_base())
    mp = pytest.MonkeyPatch()
    for key, value in credentials(demo).items():
        mp.setenv(key, value)
    try:
        with serving(demo):
            home = pipeline_home(demo, tmp_path_factory.mktemp(f"home-{scale}"))
            run = run_pipeline(home)
        yield scale, demo, run
    finally:
        mp.undo()


def test_breaks_equal_the_ground_truth(reconciled: tuple[str, Path, PipelineRun]) -> None:
    scale, demo, run = reconciled
    assert all(r.status == "succeeded" for r in run.extractions)
    assert run.reconciliation is not None
    assert {r.rule_id: r.status for r in run.reconciliation.results} == dict.fromkeys(RULES, "ok")
    home = run.reconciliation.path.parents[3]
    con = connect(home)
    truth = f"(SELECT * FROM read_parquet('{demo / 'demo' / 'ground_truth.parquet'}') WHERE {RECONCILIATION})"
    breaks = f"(SELECT * FROM breaks WHERE {RECONCILIATION})"
    extra = con.execute(f"SELECT {KEY} FROM {breaks} EXCEPT ALL SELECT {KEY} FROM {truth}").fetchall()
    missed = con.execute(f"SELECT {KEY} FROM {truth} EXCEPT ALL SELECT {KEY} FROM {breaks}").fetchall()
    assert (extra, missed) == ([], [])  # precision and recall 1.0 for every rule
    per_rule = dict(con.execute(f"SELECT rule_id, count(*) FROM {breaks} GROUP BY ALL").fetchall())
    assert per_rule == COUNTS[scale]
    by_result = {r.rule_id: r.breaks for r in run.reconciliation.results}
    assert by_result == COUNTS[scale]


def test_every_break_is_placed_and_valued(reconciled: tuple[str, Path, PipelineRun]) -> None:
    _, demo, run = reconciled
    assert run.reconciliation is not None
    con = connect(run.reconciliation.path.parents[3])
    truth = f"(SELECT * FROM read_parquet('{demo / 'demo' / 'ground_truth.parquet'}') WHERE {RECONCILIATION})"
    # the legal entity and aging bucket of each break agree with the answer key
    wrong = con.execute(
        f"SELECT b.rule_id, b.break_type, b.source_id, b.target_id, b.legal_entity_id, g.legal_entity_id, "
        f"b.aging_bucket, g.aging_bucket FROM breaks AS b JOIN {truth} AS g USING ({KEY}) "
        "WHERE b.legal_entity_id IS DISTINCT FROM g.legal_entity_id "
        "OR (g.aging_bucket IS NOT NULL AND b.aging_bucket IS DISTINCT FROM g.aging_bucket) LIMIT 5"
    ).fetchall()
    assert wrong == []
    ids = con.execute("SELECT count(*), count(DISTINCT break_id) FROM breaks").fetchone()
    assert ids is not None and ids[0] == ids[1]
    # money breaks carry an amount at risk in the reporting currency, converted exactly
    unvalued = con.execute(
        "SELECT rule_id, count(*) FROM breaks WHERE amount IS NOT NULL AND amount_at_risk IS NULL GROUP BY ALL"
    ).fetchall()
    assert unvalued == []
    usd = con.execute(
        "SELECT count(*) FROM breaks WHERE currency = 'USD' AND amount <> amount_at_risk"
    ).fetchone()
    assert usd == (0,)


def test_data_quality_breaks_equal_the_ground_truth(reconciled: tuple[str, Path, PipelineRun]) -> None:
    _, demo, run = reconciled
    home = run.reconciliation.path.parents[3]
    con = connect(home)
    truth = (
        f"(SELECT * FROM read_parquet('{demo / 'demo' / 'ground_truth.parquet'}') WHERE NOT {RECONCILIATION})"
    )
    breaks = "(SELECT * FROM breaks WHERE category = 'data_quality')"
    # Harvest records no legal entity: it comes from the ERP's project, so an entry without a
    # project has none
    placed = f"{KEY}, legal_entity_id"
    known = f"{KEY}, CASE WHEN defect = 'null_project' THEN NULL ELSE legal_entity_id END"
    extra = con.execute(f"SELECT {placed} FROM {breaks} EXCEPT ALL SELECT {known} FROM {truth}").fetchall()
    missed = con.execute(f"SELECT {known} FROM {truth} EXCEPT ALL SELECT {placed} FROM {breaks}").fetchall()
    assert (extra, missed) == ([], [])
    assert con.execute(f"SELECT count(*) FROM {truth}").fetchone()[0] >= 12  # type: ignore[index]
    # the pipeline checked every snapshot it published, and only the injected defects fail
    failed = {
        r for (r,) in con.execute("SELECT DISTINCT rule_id FROM check_results WHERE NOT success").fetchall()
    }
    assert failed == {r for (r,) in con.execute(f"SELECT DISTINCT rule_id FROM {truth}").fetchall()}
    assert run.checks.checked.keys() == {f"{r.system}/{r.object}" for r in run.extractions}
