"""Break identity across runs, through the real pipeline: files -> extract -> reconcile -> lake."""

from __future__ import annotations

import csv
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import duckdb
import pytest

from data import kpis, warehouse
from data.breaks import BREAK_COLUMNS, BreakStore, BreakViews, break_views
from data.sql import sql_literal
from data.warehouse import connect, ensure_warehouse, warehouse_path
from extractors.run import extract
from reconcile.run import ReconciliationRun, reconcile

pytestmark = pytest.mark.slow  # every test runs the pipeline (extract, reconcile) a few times

NAMES, COUNTRIES = "customers_crm_erp", "customer_countries"

# psa is configured but never extracted: a rule reading it has no snapshot.
SOURCES = """
reporting_currency: USD
systems:
  crm:
    connector: files
    objects: [customers]
    paths: {customers: exports/crm_customers.csv}
  erp:
    connector: files
    objects: [customers]
    paths: {customers: exports/erp_customers.csv}
  psa:
    connector: files
    objects: [customers]
    paths: {customers: exports/psa_customers.csv}
"""

# The rules file, with the system each rule's target is read from.
RULES = Template("""
rules:
  - rule_id: customers_crm_erp
    kind: match
    source: {object: customers, system: crm, filter: "is_customer"}
    target: {object: customers, system: $names}
    system_of_record: crm
    match_key: {source: [customer_id], target: [crm_id]}
    compare:
      name: {tolerance: {kind: normalized_text}}
      currency: {}
    context: {customer: name}
  - rule_id: customer_countries
    kind: match
    source: {object: customers, system: crm, filter: "is_customer"}
    target: {object: customers, system: $countries}
    system_of_record: crm
    match_key: {source: [customer_id], target: [crm_id]}
    compare:
      country: {}
""")

CRM_HEADER = ["customer_id", "name", "currency", "country", "is_customer"]
CRM = [
    ["C1", "Acme Ltd", "USD", "US", "true"],
    ["C2", "Beta GmbH", "EUR", "DE", "true"],
    ["C3", "Gamma Inc", "USD", "US", "true"],
    ["C4", "Delta LLC", "USD", "US", "true"],  # not in the ERP
    ["C5", "Epsilon", "USD", "US", "false"],  # a prospect: filtered out
]
ERP_HEADER = ["customer_id", "crm_id", "name", "currency", "country"]
ERP = [
    ["E1", "C1", "ACME ltd.", "USD", "GB"],  # same name once normalised; another country
    ["E2", "C2", "Betta GmbH", "EUR", "DE"],  # misspelt name
    ["E3", "C3", "Gamma Inc", "EUR", "US"],  # another currency
    ["E9", "C9", "Zeta", "USD", "US"],  # refers to no CRM customer
]
# (rule_id, break_type, source_id, field) of every break ERP makes
EXPECTED = {
    (NAMES, "field_mismatch", "C2", "name"),
    (NAMES, "field_mismatch", "C3", "currency"),
    (NAMES, "missing_in_target", "C4", None),
    (NAMES, "orphan", "C9", None),
    (COUNTRIES, "field_mismatch", "C1", "country"),
    (COUNTRIES, "missing_in_target", "C4", None),
    (COUNTRIES, "orphan", "C9", None),
}
BETA = (NAMES, "field_mismatch", "C2", "name")

CONTRACT = [
    "break_id", "rule_id", "category", "break_type", "object", "source_system", "target_system",
    "source_id", "target_id", "legal_entity_id", "customer", "project_code", "invoice_cycle", "field",
    "source_value", "target_value", "amount_at_risk", "currency", "severity", "first_seen", "last_seen",
    "run_id",
]  # fmt: skip

Row = dict[str, Any]


def erp_with(**changes: list[str]) -> list[list[str]]:
    """ERP rows with some rows (by crm_id) replaced."""
    return [changes.get(row[1], row) for row in ERP]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])


def make_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "sources.yaml").write_text(SOURCES, encoding="utf-8")
    (home / "rules.yaml").write_text(RULES.substitute(names="erp", countries="erp"), encoding="utf-8")
    write_csv(home / "exports" / "crm_customers.csv", CRM_HEADER, CRM)
    write_csv(home / "exports" / "erp_customers.csv", ERP_HEADER, ERP)
    return home


def cycle(home: Path, erp: list[list[str]] | None = None, **kwargs: Any) -> ReconciliationRun:
    """(Rewrite the ERP export,) extract crm and erp, reconcile."""
    if erp is not None:
        write_csv(home / "exports" / "erp_customers.csv", ERP_HEADER, erp)
    time.sleep(0.01)  # distinct timestamps even on a coarse clock
    results = extract(home, systems=["crm", "erp"])
    assert [(r.system, r.status) for r in results] == [("crm", "succeeded"), ("erp", "succeeded")]
    return reconcile(home, **kwargs)


def read(path: Path) -> list[Row]:
    with duckdb.connect() as con:
        result = con.execute("SELECT * FROM read_parquet(?)", [str(path)])
        names = [d[0] for d in result.description or []]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def breaks(run: ReconciliationRun) -> dict[str, Row]:
    """The run's breaks by break_id."""
    rows = read(run.path / "breaks.parquet")
    by_id = {r["break_id"]: r for r in rows}
    assert len(by_id) == len(rows)
    return by_id


def ledger(run: ReconciliationRun) -> dict[str, Row]:
    return {r["break_id"]: r for r in read(run.path / "ledger.parquet")}


def key(row: Row) -> tuple[str, str, str, str | None]:
    return (row["rule_id"], row["break_type"], row["source_id"], row["field"])


def ids(found: dict[str, Row]) -> dict[tuple[str, str, str, str | None], str]:
    """Break key -> break_id (each key once)."""
    by_key = {key(r): break_id for break_id, r in found.items()}
    assert len(by_key) == len(found)
    return by_key


def query(home: Path, *sql: str) -> list[list[tuple[Any, ...]]]:
    """The rows of each query ``sql`` on the home's warehouse (one connection)."""
    with connect(home) as con:
        return [con.execute(q).fetchall() for q in sql]


def tables(home: Path, names: tuple[str, ...]) -> dict[str, list[Any]]:
    """Every row of each warehouse table or view ``names``, sorted."""
    return dict(zip(names, query(home, *(f"SELECT * FROM {t} ORDER BY ALL" for t in names)), strict=True))


def of_rule(found: dict[str, Row], rule_id: str) -> dict[str, Row]:
    return {i: r for i, r in found.items() if r["rule_id"] == rule_id}


@dataclass(frozen=True)
class History:
    """first: defects found. again: nothing changed. fixed: Beta's ERP name corrected. back: misspelt again.
    replay: ``--as-of`` the first run's moment, after all of them."""

    home: Path
    first: ReconciliationRun
    again: ReconciliationRun
    fixed: ReconciliationRun
    back: ReconciliationRun
    replay: ReconciliationRun


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    home = make_home(tmp_path_factory.mktemp("identity") / "home")
    first = cycle(home)
    again = cycle(home)
    fixed = cycle(home, erp_with(C2=["E2", "C2", "Beta GmbH", "EUR", "DE"]))
    back = cycle(home, ERP)
    replay = reconcile(home, as_of=first.as_of.isoformat())
    return History(home, first, again, fixed, back, replay)


def test_first_run_finds_each_defect_once(history: History) -> None:
    first = breaks(history.first)

    assert set(ids(first)) == EXPECTED
    assert [(r.rule_id, r.status) for r in history.first.results] == [(NAMES, "ok"), (COUNTRIES, "ok")]
    assert history.first.breaks == len(EXPECTED)
    beta = first[ids(first)[BETA]]
    assert (beta["source_id"], beta["target_id"], beta["source_value"], beta["target_value"]) == (
        "C2", "E2", "Beta GmbH", "Betta GmbH",
    )  # fmt: skip
    assert (beta["customer"], beta["object"], beta["source_system"], beta["target_system"]) == (
        "Beta GmbH", "customers", "crm", "erp",
    )  # fmt: skip
    assert {r["first_seen"] for r in first.values()} == {history.first.started_at}
    assert {r["run_id"] for r in first.values()} == {history.first.run_id}


def test_breaks_file_has_the_contract_columns(history: History) -> None:
    with duckdb.connect() as con:
        described = con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?)", [str(history.first.path / "breaks.parquet")]
        ).fetchall()
    columns = [str(row[0]) for row in described]
    types = {str(row[0]): str(row[1]) for row in described}

    assert set(CONTRACT) <= set(columns)
    assert columns == [c for c, _, _ in BREAK_COLUMNS]
    assert types["first_seen"] == types["last_seen"] == "TIMESTAMP WITH TIME ZONE"
    assert types["amount_at_risk"] == "DECIMAL(18,2)"


def test_unchanged_inputs_keep_break_ids_and_first_seen(history: History) -> None:
    first, again = breaks(history.first), breaks(history.again)

    assert ids(again) == ids(first)
    for break_id, row in again.items():
        assert row["first_seen"] == first[break_id]["first_seen"] == history.first.started_at
        assert row["last_seen"] == history.again.started_at
        assert row["run_id"] == history.again.run_id


def test_a_fixed_break_is_cleared_in_the_ledger(history: History) -> None:
    beta_id = ids(breaks(history.first))[BETA]
    fixed = breaks(history.fixed)

    assert beta_id not in fixed
    assert set(ids(fixed)) == EXPECTED - {BETA}
    assert {r["first_seen"] for r in fixed.values()} == {history.first.started_at}
    cleared = ledger(history.fixed)[beta_id]
    assert cleared["cleared_at"] == history.fixed.started_at
    assert cleared["times_cleared"] == 1
    assert cleared["last_seen"] == history.again.started_at
    assert cleared["first_seen"] == history.first.started_at
    still_open = [r for i, r in ledger(history.fixed).items() if i != beta_id]
    assert len(still_open) == len(EXPECTED) - 1
    assert {(r["cleared_at"], r["times_cleared"]) for r in still_open} == {(None, 0)}


def test_a_returning_break_reopens_with_its_id_and_first_seen(history: History) -> None:
    beta_id = ids(breaks(history.first))[BETA]
    back = breaks(history.back)

    assert ids(back) == ids(breaks(history.first))
    beta = back[beta_id]
    assert beta["first_seen"] == history.first.started_at
    assert beta["reopened_at"] == history.back.started_at
    assert beta["last_seen"] == history.back.started_at
    assert {r["reopened_at"] for i, r in back.items() if i != beta_id} == {None}
    reopened = ledger(history.back)[beta_id]
    assert (reopened["cleared_at"], reopened["reopened_at"], reopened["times_cleared"]) == (
        None, history.back.started_at, 1,
    )  # fmt: skip


def test_as_of_replays_the_first_run_exactly(history: History) -> None:
    first, replay = breaks(history.first), breaks(history.replay)
    unchanged = [c for c, _, _ in BREAK_COLUMNS if c not in ("last_seen", "run_id")]

    assert history.replay.replay is True
    assert history.replay.as_of == history.first.as_of
    assert history.replay.snapshots == history.first.snapshots
    assert history.replay.snapshots != history.back.snapshots
    assert sorted(first) == sorted(replay)
    for break_id, row in replay.items():
        assert {c: row[c] for c in unchanged} == {c: first[break_id][c] for c in unchanged}
        assert row["run_id"] == history.replay.run_id


def test_a_replay_is_kept_beside_the_latest_live_run(history: History) -> None:
    store = BreakStore(history.home, "reconciliation")

    latest = store.latest()
    assert latest is not None and latest["run_id"] == history.back.run_id
    runs = {r["run_id"]: r["replay"] for r in store.runs()}
    assert runs == {
        history.first.run_id: False, history.again.run_id: False, history.fixed.run_id: False,
        history.back.run_id: False, history.replay.run_id: True,
    }  # fmt: skip
    assert (store.run_dir(history.replay.run_id) / "breaks.parquet").is_file()


def test_each_live_run_keeps_its_breaks_added_up_and_the_warehouse_holds_them(history: History) -> None:
    live = (history.first, history.again, history.fixed, history.back)
    summed, latest = query(
        history.home,
        "SELECT run_id, started_at, sum(breaks), count(DISTINCT rule_id) FROM tieout_run_summary "
        "GROUP BY ALL ORDER BY started_at",
        "SELECT rule_id, legal_entity_id, aging_bucket, breaks FROM tieout_run_summary "
        f"WHERE run_id = {sql_literal(history.back.run_id)} ORDER BY ALL",
    )
    assert summed == [
        (run.run_id, run.started_at, run.breaks, 2) for run in live
    ]  # the replay is not a live run
    assert history.fixed.breaks == history.first.breaks - 1
    counted = Counter(
        (r["rule_id"], r["legal_entity_id"], r["aging_bucket"]) for r in breaks(history.back).values()
    )
    assert latest == sorted((*group, n) for group, n in counted.items()) and latest


def test_a_rebuilt_warehouse_reads_only_the_new_runs_and_equals_one_built_from_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(tmp_path / "home")
    carried: list[frozenset[str]] = []

    def recording(home: Path, **kwargs: Any) -> BreakViews:
        carried.append(kwargs.get("carried", frozenset()))
        return break_views(home, **kwargs)

    monkeypatch.setattr(warehouse, "break_views", recording)
    first = cycle(home)
    second = cycle(home)
    # the rebuilds after the second run's publish copy the first run from the previous file
    assert carried[0] == frozenset() and carried[-1] == frozenset({first.run_id})
    stmts = break_views(home, previous="previous", carried=frozenset({first.run_id})).statements
    created = " ".join(s for s in stmts if s.startswith("CREATE TABLE"))
    assert str(second.path / "rules.parquet") in created and str(second.path / "summary.parquet") in created
    assert str(first.path) not in created  # the previous file has it
    (view,) = (s for s in stmts if s.startswith("CREATE VIEW reconciliation_runs"))
    assert "parquet" not in view  # a table built once, not every run's file read per query
    read = ("tieout_live_runs", "tieout_run_summary", "reconciliation_runs")
    built_run_by_run = tables(home, read)
    warehouse_path(home).unlink()
    ensure_warehouse(home)
    assert tables(home, read) == built_run_by_run
    assert [r[0] for r in built_run_by_run["tieout_live_runs"]] == sorted((first.run_id, second.run_id))
    assert built_run_by_run["tieout_run_summary"]
    assert {r[0] for r in built_run_by_run["reconciliation_runs"]} == {first.run_id, second.run_id}
    assert len(built_run_by_run["reconciliation_runs"]) == 4  # two rules a run


def test_a_replay_joins_reconciliation_runs_at_the_next_connect(tmp_path: Path) -> None:
    """A replay leaves ``latest.json`` alone; ``published.json`` still makes the warehouse outdated."""
    home = make_home(tmp_path / "home")
    first = cycle(home)

    def runs() -> set[tuple[str, bool]]:
        return set(query(home, "SELECT DISTINCT run_id, replay FROM reconciliation_runs")[0])

    assert runs() == {(first.run_id, False)}
    replay = reconcile(home, as_of=first.as_of.isoformat())
    assert runs() == {(first.run_id, False), (replay.run_id, True)}
    # a replay is no live run: the KPIs' runs and the breaks stay the live run's
    live, broken = query(home, "SELECT run_id FROM tieout_live_runs", "SELECT DISTINCT run_id FROM breaks")
    assert live == [(first.run_id,)] and broken == [(first.run_id,)]


def test_a_snapshot_publish_copies_the_break_tables_instead_of_computing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(tmp_path / "home")
    cycle(home)
    names = tuple(kpis.BREAK_TABLES)
    before = tables(home, names)
    # computing them now would fail: an extraction alone (no new break run) must copy them
    monkeypatch.setattr(kpis, "BREAK_TABLES", dict.fromkeys(names, "SELECT error('computed again')"))
    results = extract(home, systems=["crm", "erp"])
    assert [r.status for r in results] == ["succeeded", "succeeded"]
    assert tables(home, names) == before and before["tieout_open_breaks"]


def test_running_one_rule_keeps_the_other_rules_breaks(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    first = cycle(home)
    # Beta's name fixed (NAMES) and Acme's country corrected (COUNTRIES): both rules would change.
    erp = erp_with(C1=["E1", "C1", "ACME ltd.", "USD", "US"], C2=["E2", "C2", "Beta GmbH", "EUR", "DE"])

    one = cycle(home, erp, rule_ids=[NAMES])

    assert [r.rule_id for r in one.results] == [NAMES]
    assert of_rule(breaks(one), COUNTRIES) == of_rule(breaks(first), COUNTRIES)
    assert {i: r for i, r in ledger(one).items() if r["rule_id"] == COUNTRIES} == {
        i: r for i, r in ledger(first).items() if r["rule_id"] == COUNTRIES
    }
    names = of_rule(breaks(one), NAMES)
    assert set(ids(names)) == {k for k in EXPECTED if k[0] == NAMES} - {BETA}
    assert {r["run_id"] for r in names.values()} == {one.run_id}
    assert {r["first_seen"] for r in names.values()} == {first.started_at}
    latest = BreakStore(home, "reconciliation").latest()
    assert latest is not None and latest["run_id"] == one.run_id
    # the same inputs with every rule: COUNTRIES no longer finds Acme's country
    every = reconcile(home)
    assert set(ids(of_rule(breaks(every), COUNTRIES))) == {k for k in EXPECTED if k[0] == COUNTRIES} - {
        (COUNTRIES, "field_mismatch", "C1", "country")
    }


def test_a_rule_without_snapshot_is_skipped_and_keeps_its_breaks(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    first = cycle(home)
    psa_rules = home / "rules_psa.yaml"  # COUNTRIES now reads the psa, never extracted
    psa_rules.write_text(RULES.substitute(names="erp", countries="psa"), encoding="utf-8")

    skipped = cycle(home, rules=psa_rules)

    statuses = {r.rule_id: (r.status, r.error) for r in skipped.results}
    assert statuses == {NAMES: ("ok", None), COUNTRIES: ("skipped", "no snapshot of psa/customers")}
    assert of_rule(breaks(skipped), COUNTRIES) == of_rule(breaks(first), COUNTRIES)
    assert {r["run_id"] for r in of_rule(breaks(skipped), NAMES).values()} == {skipped.run_id}
    assert {i: r for i, r in ledger(skipped).items() if r["rule_id"] == COUNTRIES} == {
        i: r for i, r in ledger(first).items() if r["rule_id"] == COUNTRIES
    }
    recorded = {r["rule_id"]: r["status"] for r in read(skipped.path / "rules.parquet")}
    assert recorded == {NAMES: "ok", COUNTRIES: "skipped"}


def test_a_run_where_no_rule_runs_keeps_first_seen(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    first = cycle(home)
    psa_rules = home / "rules_psa.yaml"  # both rules read the psa, never extracted: both are skipped
    psa_rules.write_text(RULES.substitute(names="psa", countries="psa"), encoding="utf-8")

    nothing = reconcile(home, rules=psa_rules)
    later = reconcile(home)

    assert {r.status for r in nothing.results} == {"skipped"}
    assert breaks(nothing) == breaks(first)
    assert ids(breaks(later)) == ids(breaks(first))
    assert {r["first_seen"] for r in breaks(later).values()} == {first.started_at}
    assert ledger(nothing) == ledger(first)
