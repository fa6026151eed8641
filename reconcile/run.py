"""One reconciliation run: rules over snapshots, breaks with stable identity, published to the lake.

:func:`reconcile` loads and validates the rules, picks the input snapshots (current, or as of a
past moment), runs every rule in an in-memory DuckDB (spilling to the staging folder), gives each
break its id, ``first_seen`` and valuation, and publishes the run (:mod:`data.breaks`). A live run
becomes the ``breaks`` view; an ``--as-of`` replay is kept beside it for comparison.

Identity: ``break_id`` hashes rule, break type, field and match key values, so the same break has
the same id on every run. The ledger (every break ever seen) carries ``first_seen`` over; a break
absent from a run that ran its rule is cleared (``cleared_at``), and when it returns it reopens
with its first ``first_seen`` and a ``reopened_at``. Rules not run this time (``--rule``) or
skipped for a missing snapshot keep their previous breaks unchanged.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from data.breaks import PARQUET, RULE_RUN_COLUMNS, BreakStore, run_summary_sql
from data.lock import PipelineLock
from data.sql import sql_literal
from data.warehouse import ensure_warehouse
from extractors.config import SourcesConfig, load_sources
from reconcile.compile import Relations
from reconcile.engine import RuleResult, prepare_connection, run_rule
from reconcile.identity import found_table, ran_sql, write_breaks
from reconcile.inputs import Inputs, crosswalk_relation, select_inputs
from reconcile.rules import ReconciliationRule, RuleSet, load_rules
from reconcile.suggest import add_suggestions
from reconcile.validate import validate_rules
from reconcile.valuation import fx_join, fx_relation, valuation_columns

__all__ = ["DEFAULT_RULES", "ReconciliationRun", "load_home_rules", "reconcile", "rules_path"]

#: The starter catalogue, used when the home folder has no ``rules.yaml``.
DEFAULT_RULES = Path(__file__).with_name("rules.yaml")


@dataclass(frozen=True)
class ReconciliationRun:
    """A finished run.

    Attributes:
        run_id: its id (folder under ``lake/breaks/reconciliation``). started_at: UTC.
        as_of: the moment whose current snapshots it read (= started_at for a live run).
        business_date: the date ages and ``{as_of}`` in rules refer to.
        replay: an ``--as-of`` run (not the ``breaks`` view).
        results: one per rule run. breaks: breaks in the run (carried-over ones included).
        snapshots: ``system/object`` -> snapshot id read. path: the published folder.
    """

    run_id: str
    started_at: datetime
    as_of: datetime
    business_date: date
    replay: bool
    results: list[RuleResult]
    breaks: int
    snapshots: dict[str, str]
    path: Path


def rules_path(home: Path, explicit: Path | None = None) -> Path:
    """The rules file: ``explicit``, else ``HOME/rules.yaml`` if present, else the starter catalogue."""
    if explicit is not None:
        return explicit
    own = home / "rules.yaml"
    return own if own.exists() else DEFAULT_RULES


def load_home_rules(home: Path, explicit: Path | None = None) -> tuple[SourcesConfig, RuleSet]:
    """Load ``sources.yaml`` and the rules, with every expression validated.

    Raises:
        extractors.config.ConfigError: sources.yaml is invalid.
        reconcile.rules.RuleError: the rules are invalid.
    """
    sources = load_sources(home / "sources.yaml")
    ruleset = load_rules(rules_path(home, explicit), systems=sources.systems)
    validate_rules(ruleset)
    return sources, ruleset


def reconcile(
    home: Path,
    *,
    rules: Path | None = None,
    rule_ids: list[str] | None = None,
    as_of: str | None = None,
    lock_wait_s: float = 0,
) -> ReconciliationRun:
    """Run the rules of ``home`` (all, or ``rule_ids``) and publish the breaks.

    Args:
        home: the home folder (``sources.yaml``, ``lake/``).
        rules: the rules file (default: :func:`rules_path`).
        rule_ids: only these rules; the others keep their previous breaks.
        as_of: a date, timestamp or snapshot id: replay on the snapshots current then.
        lock_wait_s: how long to wait for another pipeline run to finish.

    Raises:
        ConfigError / RuleError: bad configuration or rules (nothing runs).
        reconcile.inputs.AsOfError: ``as_of`` cannot be read.
        data.lock.PipelineBusy: another run holds the pipeline lock.
    """
    sources, ruleset = load_home_rules(home, rules)
    chosen = [ruleset.rule(r) for r in rule_ids] if rule_ids else list(ruleset.rules)
    with PipelineLock(home, wait_s=lock_wait_s):
        return _run(home, sources, ruleset, chosen, as_of)


def _run(
    home: Path, sources: SourcesConfig, ruleset: RuleSet, chosen: list[ReconciliationRule], as_of: str | None
) -> ReconciliationRun:
    started = datetime.now(UTC)
    inputs = select_inputs(home, as_of)
    replay = as_of is not None
    business_date = sources.business_date or inputs.moment.date()
    run_id = f"{started:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"
    store = BreakStore(home, "reconciliation")
    staged = store.staging(run_id)
    rels = Relations(
        relation=inputs.relation,
        crosswalk=lambda xw: crosswalk_relation(xw, ruleset.path),
        as_of=business_date,
    )
    con = duckdb.connect()
    try:
        con.execute(f"SET temp_directory = {sql_literal(str(staged / 'spill'))}")
        con.execute("SET preserve_insertion_order = false")
        prepare_connection(con)
        results = []
        for rule in chosen:
            missing = inputs.missing(rule)
            if missing:
                results.append(RuleResult(rule.rule_id, "skipped", f"no snapshot of {', '.join(missing)}"))
            else:
                results.append(run_rule(rule, con, rels))
        add_suggestions(con, ruleset, [r.rule_id for r in results if r.status == "ok"], rels)
        previous = _previous_run(store, inputs.moment, replay)
        fresh = {r.rule_id for r in results if r.status == "ok"}
        carried = set() if replay else {r.rule_id for r in ruleset.rules} - fresh
        total = _write_breaks(
            con, home, sources, ruleset, store, previous, fresh, carried,
            started=started, moment=inputs.moment, business_date=business_date, staged=staged, run_id=run_id,
        )  # fmt: skip
        _write_rule_runs(con, results, staged, run_id=run_id, started=started, inputs=inputs,
                         business_date=business_date, replay=replay)  # fmt: skip
        if not replay:  # the live runs' amounts over time (the ledger keeps none)
            con.execute(
                f"COPY (SELECT {sql_literal(run_id)} AS run_id, * FROM ({run_summary_sql('_breaks')})) "
                f"TO {sql_literal(str(staged / 'summary.parquet'))} {PARQUET}"
            )
    finally:
        con.close()
    shutil.rmtree(staged / "spill", ignore_errors=True)
    run = {
        "run_id": run_id, "started_at": started.isoformat(), "as_of": inputs.moment.isoformat(),
        "business_date": business_date.isoformat(), "replay": replay, "rules_file": str(ruleset.path),
        "snapshots": inputs.snapshot_ids(), "breaks": total,
        "results": [r.to_dict() for r in results],
    }  # fmt: skip
    path = store.publish(staged, run)
    if not replay:
        ensure_warehouse(home)
    return ReconciliationRun(run_id, started, inputs.moment, business_date, replay, results, total,
                             inputs.snapshot_ids(), path)  # fmt: skip


def _previous_run(store: BreakStore, moment: datetime, replay: bool) -> dict[str, Any] | None:
    """The run whose ledger gives ``first_seen``: the latest live run (for a replay: before ``moment``)."""
    if not replay:
        return store.latest()
    live = [r for r in store.runs() if not r["replay"] and datetime.fromisoformat(r["as_of"]) <= moment]
    return live[-1] if live else None


def _write_breaks(
    con: duckdb.DuckDBPyConnection, home: Path, sources: SourcesConfig, ruleset: RuleSet, store: BreakStore,
    previous: dict[str, Any] | None, fresh: set[str], carried: set[str], *,
    started: datetime, moment: datetime, business_date: date, staged: Path, run_id: str,
) -> int:  # fmt: skip
    """Identify, value and write ``breaks.parquet`` and ``ledger.parquet``; return the break count."""
    meta = [
        (r.rule_id, r.break_object, r.source.system, r.target_side.system, r.severity) for r in ruleset.rules
    ]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rules (rule_id VARCHAR, object VARCHAR, source_system VARCHAR, "
        "target_system VARCHAR, fixed_severity VARCHAR)"
    )
    con.executemany("INSERT INTO _rules VALUES (?, ?, ?, ?, ?)", meta)
    prev_dir = store.run_dir(previous["run_id"]) if previous else None
    found_table(con)
    valued = valuation_columns(ruleset.settings, sources.reporting_currency, business_date=business_date,
                               moment=moment)  # fmt: skip
    fx = fx_join(fx_relation(ruleset.settings, home), business_date)
    return write_breaks(
        con, prev_dir=prev_dir, ran=ran_sql("rule_id", sorted(fresh)),
        carry=ran_sql("rule_id", sorted(carried)), valued=valued, fx=fx,
        now=f"TIMESTAMPTZ '{started.isoformat()}'", run_id=run_id, staged=staged,
    )  # fmt: skip


def _write_rule_runs(
    con: duckdb.DuckDBPyConnection, results: list[RuleResult], staged: Path, *, run_id: str,
    started: datetime, inputs: Inputs, business_date: date, replay: bool,
) -> None:  # fmt: skip
    cols = ", ".join(f"{c} {t}" for c, t, _ in RULE_RUN_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _rule_runs ({cols})")
    con.executemany(
        f"INSERT INTO _rule_runs VALUES ({', '.join('?' for _ in RULE_RUN_COLUMNS)})",
        [
            [run_id, r.rule_id, r.status, r.error, started, inputs.moment, business_date, replay,
             r.source_rows, r.target_rows, r.compared, r.matched, r.breaks,
             json.dumps(r.breaks_by_type, sort_keys=True),
             r.duration_s]
            for r in results
        ],
    )  # fmt: skip
    con.execute(f"COPY _rule_runs TO {sql_literal(str(staged / 'rules.parquet'))} {PARQUET}")
