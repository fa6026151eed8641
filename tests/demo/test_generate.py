"""The demo firm: deterministic, coherent, and its ground truth agrees with its own tables.

The checks read the generated Parquet files with plain DuckDB SQL, independently of the
generator's code, so a defect recorded in the ground truth but not present in the data (or the
reverse) fails here.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from demo.generate import generate
from demo.ground_truth import DEFECT_KINDS, QUALITY_KINDS, RULES
from demo.tables import TABLES, create_views
from extractors.config import load_sources
from tests.conftest import AS_OF, SEED

BREAK_TYPES = {"missing_in_target", "missing_in_source", "field_mismatch", "duplicate", "orphan",
               "aggregate_mismatch", "aged"}  # fmt: skip
# data-quality defect kind, the rule that must report it, and the field (checks/suites/time_entries.yaml)
QUALITY_BREAKS = {
    ("negative_hours", "time_entries.hours_in_range", "hours"),
    ("negative_hours", "time_entries.cost_amount_in_range", "cost_amount"),  # hours × cost rate
    ("negative_hours", "time_entries.billable_amount_in_range", "billable_amount"),  # hours × bill rate
    ("future_date", "time_entries.spent_date_in_range", "spent_date"),
    ("unknown_currency", "time_entries.currency_in_set", "currency"),
    ("null_project", "time_entries.project_id_not_null", "project_id"),
}
QUALITY_RULES = {rule_id for _, rule_id, _ in QUALITY_BREAKS}
# the data-quality defects, as the Harvest time-entry table shows them
QUALITY_IN_TABLE = {
    "negative_hours": "hours < 0",
    "future_date": f"spent_date > DATE '{AS_OF}'",
    "unknown_currency": "client_currency NOT IN ('USD', 'GBP', 'EUR')",
    "null_project": "project_id IS NULL",
}


@pytest.fixture(scope="module")
def db(small_demo: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_views(con, small_demo)
    con.execute(f"CREATE VIEW gt AS SELECT * FROM read_parquet('{small_demo / 'ground_truth.parquet'}')")
    return con


def _ids(con: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    return {str(r[0]) for r in con.execute(sql).fetchall()}


def test_same_seed_same_firm_other_seed_other_firm(small_demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, scale="small", seed=SEED, as_of=AS_OF)
    other = tmp_path / "other"
    generate(other, scale="small", seed=SEED + 1, as_of=AS_OF)
    for t in TABLES:
        first = pq.read_table(t.path(small_demo))
        assert first.equals(pq.read_table(t.path(again / "demo"))), t.name
    gt = pq.read_table(small_demo / "ground_truth.parquet")
    assert gt.equals(pq.read_table(again / "demo" / "ground_truth.parquet"))
    assert not gt.equals(pq.read_table(other / "demo" / "ground_truth.parquet"))
    te = "psa/time_entries"
    assert not pq.read_table(small_demo / te).equals(pq.read_table(other / "demo" / te))


def test_every_rule_and_break_type_has_injected_defects(db: duckdb.DuckDBPyConnection) -> None:
    rules = _ids(db, "SELECT DISTINCT rule_id FROM gt")
    assert rules == set(RULES) | QUALITY_RULES
    assert _ids(db, "SELECT DISTINCT break_type FROM gt") == BREAK_TYPES | {"failed_expectation"}
    buckets = _ids(db, "SELECT DISTINCT aging_bucket FROM gt WHERE rule_id = 'unbilled_time'")
    assert buckets == {"0-30", "31-60", "61-90", "90+"}
    for rule, n in db.execute("SELECT rule_id, count(*) FROM gt GROUP BY ALL").fetchall():
        assert n >= 2, rule
    # ids are unique per expected break
    dupes = db.execute("""SELECT count(*) FROM (SELECT rule_id, break_type, source_id, target_id,
                          field FROM gt GROUP BY ALL HAVING count(*) > 1)""").fetchone()
    assert dupes == (0,)


def test_manifest_counts_every_defect_kind(small_demo: Path) -> None:
    manifest = json.loads((small_demo / "manifest.json").read_text())
    assert set(manifest["defects_injected"]) == set(DEFECT_KINDS) | set(QUALITY_KINDS)
    assert all(manifest["defects_injected"][k] >= 2 for k in QUALITY_KINDS)
    assert manifest["as_of"] == AS_OF.isoformat()
    assert 3000 <= manifest["rows"]["psa/time_entries"] <= 10000  # "a few thousand"


def test_firm_is_coherent(db: duckdb.DuckDBPyConnection) -> None:
    assert _ids(db, 'SELECT DISTINCT legal_entity FROM "crm/companies"') == {"US", "UK", "DE"}
    assert _ids(db, 'SELECT DISTINCT currency FROM "psa/invoices"') >= {"USD", "GBP", "EUR"}
    dated = """FROM "psa/time_entries" WHERE id::VARCHAR NOT IN
                 (SELECT source_id FROM gt WHERE defect = 'future_date')"""
    months = db.execute(f"SELECT count(DISTINCT strftime(spent_date, '%Y-%m')) {dated}")
    assert months.fetchone() == (12,)
    assert db.execute(f"SELECT max(spent_date) {dated}").fetchone() == (
        date(2026, 11, 13),
    )  # Friday before as-of
    states = _ids(db, 'SELECT DISTINCT state FROM "erp/account.move"')
    assert states == {"draft", "posted", "cancel"}
    assert "paid" in _ids(db, 'SELECT DISTINCT payment_state FROM "erp/account.move"')
    assert _ids(db, 'SELECT DISTINCT billable FROM "psa/time_entries"') == {"True", "False"}
    # invoice lines price the billed time: every T&M invoice line equals hours × rate
    bad = db.execute("""SELECT count(*) FROM "psa/invoice_line_items"
                        WHERE amount <> round(quantity * unit_price, 2)""").fetchone()
    assert bad == (0,)
    # Harvest invoice totals are line sums plus tax
    bad = db.execute("""SELECT count(*) FROM "psa/invoices" i
                        JOIN (SELECT invoice_id, sum(amount) s FROM "psa/invoice_line_items" GROUP BY 1) l
                          ON l.invoice_id = i.id WHERE i.amount <> l.s + i.tax_amount""").fetchone()
    assert bad == (0,)


def test_odoo_carries_the_other_systems_ids(db: duckdb.DuckDBPyConnection) -> None:
    crm = _ids(db, 'SELECT id FROM "crm/companies"')
    refs = _ids(db, 'SELECT ref FROM "erp/res.partner" WHERE ref IS NOT NULL')
    orphans = _ids(
        db, "SELECT source_id FROM gt WHERE rule_id = 'customers_crm_erp' AND break_type = 'orphan'"
    )
    assert refs - crm == orphans
    harvest = _ids(db, 'SELECT id FROM "psa/time_entries"')
    posted = _ids(db, 'SELECT x_harvest_id FROM "erp/account.analytic.line" WHERE x_harvest_id IS NOT NULL')
    unknown = _ids(
        db,
        "SELECT source_id FROM gt WHERE rule_id = 'time_entries_psa_erp' AND break_type = 'orphan'",
    )
    assert posted - harvest == unknown


def test_missing_and_duplicate_time_agree_with_the_tables(db: duckdb.DuckDBPyConnection) -> None:
    not_posted = _ids(
        db,
        """SELECT t.id FROM "psa/time_entries" t WHERE t.is_closed AND NOT EXISTS
                             (SELECT 1 FROM "erp/account.analytic.line" l WHERE l.x_harvest_id = t.id)""",
    )
    expected = _ids(
        db,
        """SELECT source_id FROM gt WHERE rule_id = 'time_entries_psa_erp'
                           AND break_type = 'missing_in_target'""",
    )
    assert not_posted == expected
    doubled = _ids(
        db,
        """SELECT x_harvest_id FROM "erp/account.analytic.line"
                          WHERE x_harvest_id IS NOT NULL GROUP BY 1 HAVING count(*) = 2""",
    )
    assert doubled == _ids(db, "SELECT source_id FROM gt WHERE break_type = 'duplicate' "
                               "AND rule_id = 'time_entries_psa_erp'")  # fmt: skip
    manual = _ids(db, 'SELECT id FROM "erp/account.analytic.line" WHERE x_harvest_id IS NULL')
    assert manual == _ids(db, "SELECT target_id FROM gt WHERE rule_id = 'time_entries_psa_erp' "
                              "AND break_type = 'missing_in_source'")  # fmt: skip


def test_hours_and_amount_breaks_match_the_tolerances(db: duckdb.DuckDBPyConnection) -> None:
    """Outside 0.01 is a break, on or inside it is not: the answer key follows the tables."""
    diffs = db.execute("""
        SELECT t.id::VARCHAR, abs(t.hours - l.unit_amount) > 0.01 AS hours_break,
               abs(t.hours * t.cost_rate + l.amount) > 0.01 AS amount_break
        FROM "psa/time_entries" t JOIN "erp/account.analytic.line" l ON l.x_harvest_id = t.id
        WHERE t.is_closed QUALIFY row_number() OVER (PARTITION BY t.id ORDER BY l.id) = 1""").fetchall()
    hours = {i for i, h, _ in diffs if h}
    amount = {i for i, _, a in diffs if a}
    gt = "SELECT source_id FROM gt WHERE rule_id = 'time_entries_psa_erp' AND field = '{}'"
    assert hours == _ids(db, gt.format("hours"))
    assert amount == _ids(db, gt.format("amount"))
    inside = db.execute("""SELECT count(*) FROM "psa/time_entries" t
                           JOIN "erp/account.analytic.line" l ON l.x_harvest_id = t.id
                           WHERE abs(t.hours - l.unit_amount) = 0.01""").fetchone()
    assert inside is not None and inside[0] >= 2  # boundary cases exist and are not breaks


def test_unbilled_time_is_exactly_the_aged_breaks(db: duckdb.DuckDBPyConnection) -> None:
    unbilled = _ids(
        db,
        f"""
        SELECT t.id FROM "psa/time_entries" t JOIN "psa/projects" p ON p.id = t.project_id
        WHERE t.is_closed AND t.billable AND NOT p.is_fixed_fee AND t.invoice_id IS NULL
          AND last_day(t.spent_date) < DATE '{AS_OF}'""",
    )
    assert unbilled == _ids(db, "SELECT source_id FROM gt WHERE rule_id = 'unbilled_time'")
    assert len(unbilled) >= 8


def test_customer_and_invoice_field_breaks_differ_in_the_tables(
    db: duckdb.DuckDBPyConnection,
) -> None:
    names = db.execute("""
        SELECT g.source_id, c.name, p.name FROM gt g
        JOIN "crm/companies" c ON c.id = g.source_id
        JOIN "erp/res.partner" p ON p.id::VARCHAR = g.target_id
        WHERE g.rule_id = 'customers_crm_erp' AND g.field = 'name'""").fetchall()
    assert names and all(crm != erp for _, crm, erp in names)
    status = db.execute("""
        SELECT m.payment_state, i.state FROM gt g
        JOIN "erp/account.move" m ON m.id::VARCHAR = g.source_id
        JOIN "psa/invoices" i ON i.id::VARCHAR = g.target_id
        WHERE g.rule_id = 'invoices_erp_psa' AND g.field = 'status'""").fetchall()
    assert status and all(s == ("paid", "open") for s in status)
    won = db.execute(f"""
        SELECT count(*) FROM "crm/deals" d WHERE d.dealstage = 'closedwon'
          AND d.closedate < TIMESTAMPTZ '{AS_OF}' - INTERVAL 14 DAY
          AND NOT EXISTS (SELECT 1 FROM "psa/projects" p WHERE p.code = d.project_code)""").fetchone()
    expected = db.execute("SELECT count(*) FROM gt WHERE rule_id = 'deals_without_project'").fetchone()
    assert won == expected


def test_quality_defects_are_in_the_tables_on_unapproved_time(db: duckdb.DuckDBPyConnection) -> None:
    """Each data-quality kind hits at least 2 entries, all awaiting approval, as the answer key says."""
    for kind, where in QUALITY_IN_TABLE.items():
        found = _ids(db, f'SELECT id FROM "psa/time_entries" WHERE {where}')
        assert len(found) >= 2, kind
        assert found == _ids(db, f"SELECT source_id FROM gt WHERE defect = '{kind}'"), kind
    rows = db.execute("""
        SELECT g.defect, g.rule_id, g.field, t.billable, t.is_closed, g.legal_entity_id = u.legal_entity
        FROM gt g JOIN "psa/time_entries" t ON t.id::VARCHAR = g.source_id
        JOIN "psa/users" u ON u.id = t.user_id
        WHERE g.break_type = 'failed_expectation'""").fetchall()
    assert {r[1] for r in rows} == QUALITY_RULES
    for defect, rule_id, field, billable, approved, same_entity in rows:
        assert (defect, rule_id, field) in QUALITY_BREAKS
        assert field != "billable_amount" or billable  # a non-billable entry has no billable amount
        assert not approved  # so no reconciliation rule reads it
        assert same_entity
    negative = db.execute("""SELECT count(*), count(*) FILTER (WHERE billable) FROM "psa/time_entries"
                             WHERE hours < 0""").fetchone()
    breaks = db.execute("""SELECT count(*) FILTER (WHERE field = 'hours'), count(*) FILTER (WHERE field =
                           'billable_amount') FROM gt WHERE defect = 'negative_hours'""").fetchone()
    assert negative == breaks
    shape = db.execute("""SELECT DISTINCT object, source_system, target_system, target_id, aging_bucket
                          FROM gt WHERE break_type = 'failed_expectation'""").fetchall()
    assert shape == [("time_entries", "psa", None, None, None)]


def test_quality_defects_can_be_left_out(small_demo: Path, tmp_path: Path) -> None:
    """Without them the firm and its reconciliation answer key are the same, less those entries."""
    generate(tmp_path, scale="small", seed=SEED, as_of=AS_OF, quality_defects=False)
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert not set(manifest["defects_injected"]) & set(QUALITY_KINDS)
    gt = pq.read_table(tmp_path / "demo" / "ground_truth.parquet")
    with_quality = pq.read_table(small_demo / "ground_truth.parquet")
    assert gt.equals(with_quality.filter(pc.is_in(with_quality["rule_id"], pa.array(sorted(RULES)))))
    for t in TABLES:
        if t.name != "time_entries":
            assert pq.read_table(t.path(small_demo)).equals(pq.read_table(t.path(tmp_path / "demo"))), t.name
    con = duckdb.connect()
    create_views(con, tmp_path / "demo")
    for kind, where in QUALITY_IN_TABLE.items():
        assert con.execute(f'SELECT count(*) FROM "psa/time_entries" WHERE {where}').fetchone() == (0,), kind
    con.execute(f"CREATE VIEW q AS SELECT * FROM read_parquet('{small_demo / 'psa/time_entries/*.parquet'}')")
    con.execute(f"CREATE VIEW gt AS SELECT * FROM read_parquet('{small_demo / 'ground_truth.parquet'}')")
    changed = _ids(con, 'SELECT id FROM (SELECT * FROM q EXCEPT ALL SELECT * FROM "psa/time_entries")')
    assert changed == _ids(con, "SELECT source_id FROM gt WHERE break_type = 'failed_expectation'")


def test_sources_yaml_has_a_founding_day_before_every_date(
    small_home: Path, db: duckdb.DuckDBPyConnection
) -> None:
    founded = load_sources(small_home / "sources.yaml").founded
    assert founded is not None
    assert yaml.safe_load((small_home / "sources.yaml").read_text())["founded"] == founded
    for t in TABLES:
        for f in t.schema:
            if pa.types.is_date(f.type) or pa.types.is_timestamp(f.type):
                first = db.execute(f'SELECT min("{f.name}")::DATE FROM "{t.system}/{t.name}"').fetchone()
                assert first is not None and (first[0] is None or first[0] > founded), (t.name, f.name)
