"""Reconciliation at scale: the time-entry rule (PSA approved time vs ERP posted time), 1M and 10M rows.

Targets at 10M rows a side: Tieout's engine within 4x of the decode-and-hash floor, at least 2x
faster than a polars reconciliation, at least 5x faster than datacompy's fastest variant, and a
peak RSS under 2.5 GiB.

Inputs. ``.bench/reconcile/<n>/`` (git-ignored) holds ``source.parquet`` (PSA time entries) and
``target.parquet`` (ERP time entries, ``psa_id`` naming the PSA entry), n rows each, generated once
with numpy (fixed seed) and written by DuckDB with the canonical types (ids and codes VARCHAR,
``hours``/``cost_amount`` DECIMAL(18,2), ``spent_date`` DATE, ``created_at`` TIMESTAMPTZ), and
``expected.json``: the counts the injected defects must produce (0.05-0.5% of the rows each).
The defects are unapproved PSA entries (filtered out, never posted), entries missing in the ERP,
ERP lines without ``psa_id`` (missing in source), orphans (``psa_id`` unknown, or naming an
unapproved entry), duplicates (a later, identical second ERP line), hours and cost differences
of exactly 0.01 (on the tolerance: no break), exactly 0.02 (a break) and more, a wrong project
and a wrong billing period. Changing :data:`GENERATOR_VERSION` or :data:`SEED` regenerates them.

Method. Each run is a child process, so its peak RSS (``RUSAGE_SELF.ru_maxrss``, interpreter and
imports included) is its own. Linux folds the peak of the image a child replaces into its
``ru_maxrss``, and ``subprocess`` spawns through vfork, so a child reports at least the parent's
peak RSS. That is why the parent imports only the standard library, and inputs are generated in
a child too. ``/proc/self/status`` VmHWM (the child's own high-water mark) is shown next to it.
The time is measured in the child from the first read to the last result (the grouped breaks as a
DuckDB table or a polars frame, before the checks read them into Python), imports excluded.
Runs are interleaved: round-robin, with the order rotated each round, so the machine's drift hits
every candidate alike. A candidate slower than :data:`SLOW_S` runs once per size. Figures are
medians over the runs.

- ``tieout``: :func:`reconcile.engine.run_rule` with a rule equal to the catalogue's
  ``time_entries_psa_erp`` (checked against ``reconcile/rules.yaml``) over ``read_parquet`` of the
  two files, then the breaks grouped by legal entity, project, month, break type and field. DuckDB
  gets ``memory_limit`` :data:`DUCKDB_MEMORY_LIMIT` (under the RSS target) and spills to
  ``.bench/reconcile/spill``. Each statement ``run_rule`` sends is timed; the medians are printed.
- ``polars``: a lazy polars reconciliation with the same semantics: filter, duplicates ranked by
  ``created_at`` then id, full join on the key, per-field tolerance, the same grouping. It runs on
  the streaming engine, with one ``collect_all`` (cached common subplans). It is exact: hours and
  amounts stay polars ``Decimal(18,2)``, and the tolerance is a Decimal literal.
- ``datacompy-polars`` / ``datacompy-pandas``: ``PolarsCompare`` / ``PandasCompare`` on the join
  column with ``abs_tol=0.01``, given only the key and the four compared columns (the source
  filtered on ``approved`` while reading; pandas gets the decimals as ``decimal.Decimal`` objects,
  as ``read_parquet`` returns them). The rows only in the ERP are then split into missing in
  source (no ``psa_id``), duplicates (key known) and orphans. datacompy compares numbers with
  ``np.isclose`` on float64, so pairs exactly 0.01 apart may come out as breaks. The check calls
  that a finding when the count equals what float64 predicts (computed by the generator). A
  datacompy variant is skipped at a size when the smaller size predicts more than
  :data:`SKIP_SECONDS` or :data:`SKIP_GIB`.
- ``floor-count``: DuckDB counting the rows of both files (Parquet metadata only).
- ``floor-hash``: DuckDB decoding both files' key and compared columns (source: id, approved,
  hours, cost, project, period; target: id, psa_id, the same four) into ``sum(hash(...))``.

Every reconciling candidate must report the generator's counts: missing either side, orphans,
duplicates, mismatches per field, pairs compared (and matched, where reported). Tieout and polars
must also agree on the grouped breaks (a digest of every group's count and amount). A
disagreement fails the benchmark after the figures are printed.

Setup: polars and datacompy are benchmark-only packages, pinned in ``bench/requirements.txt``::

    .venv/bin/python -m uv pip install --no-deps -r bench/requirements.txt

``--no-deps`` because datacompy 1.1.0 declares ``pandas<3.1``, an untested upper bound, and the
project keeps pandas 3.1.1; the checks show whether datacompy's results hold. Run
``.venv/bin/python -m bench reconcile_time`` for both sizes (about 15 minutes on 2 shared cores,
plus 1.5 minutes to generate the inputs the first time). For one size, or another memory limit::

    export TIEOUT_BENCH_RECONCILE_SIZES=1000000 TIEOUT_BENCH_DUCKDB_MEMORY_LIMIT=4GB
    .venv/bin/python -m bench reconcile_time
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.children import run_child

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench" / "reconcile"
SIZES = (1_000_000, 10_000_000)
ROUNDS = {1_000_000: 3, 10_000_000: 2}
SLOW_S = 120.0
SEED = 20261115
GENERATOR_VERSION = 1
AS_OF = date(2026, 1, 31)
DUCKDB_MEMORY_LIMIT = os.environ.get("TIEOUT_BENCH_DUCKDB_MEMORY_LIMIT", "2GB")
CHILD_TIMEOUT_S = 1800
SKIP_SECONDS = 600
SKIP_GIB = 12.0

TARGET_SIZE = 10_000_000
TARGET_FLOOR_RATIO = 4.0
TARGET_VS_POLARS = 2.0
TARGET_VS_DATACOMPY = 5.0
TARGET_RSS_GIB = 2.5

CANDIDATES = ("tieout", "polars", "datacompy-polars", "datacompy-pandas", "floor-count", "floor-hash")
NEEDS = {"polars": {"polars"}, "datacompy-polars": {"datacompy", "polars"}, "datacompy-pandas": {"datacompy"}}
COUNT_KEYS = (
    "source_rows", "target_rows", "compared", "matched", "missing_in_target", "missing_in_source",
    "orphan", "duplicate", "mismatch_hours", "mismatch_amount", "mismatch_project_code",
    "mismatch_billing_period",
)  # fmt: skip
FIELDS = ("hours", "amount", "project_code", "billing_period")

#: The catalogue's rule ``time_entries_psa_erp`` (reconcile/rules.yaml), as the engine receives it.
RULE: dict[str, Any] = {
    "rule_id": "time_entries_psa_erp",
    "description": (
        "Approved PSA time is posted to the ERP once, with the same hours, cost, project and period."
    ),
    "kind": "match",
    "source": {"object": "time_entries", "system": "psa", "filter": "approved"},
    "target": {"object": "time_entries", "system": "erp"},
    "system_of_record": "psa",
    "match_key": {"source": ["time_entry_id"], "target": ["psa_id"]},
    "compare": {
        "hours": {"tolerance": {"kind": "numeric", "abs_tol": "0.01"}, "value": "difference"},
        "amount": {
            "source": "cost_amount",
            "target": "cost_amount",
            "tolerance": {"kind": "numeric", "abs_tol": "0.01"},
            "value": "difference",
        },
        "project_code": {},
        "billing_period": {},
    },
    "context": {
        "legal_entity_id": {"source": "split_part(project_code, '-', 1)", "target": "legal_entity_id"},
        "project_code": "project_code",
        "invoice_cycle": "billing_period",
    },
    "value": {"amount": "cost_amount", "currency": "currency"},
}
TOLERANCE = Decimal("0.01")

#: Defects injected, as shares of n (disjoint sets of PSA entries, drawn from one permutation).
DEFECTS = {
    "unapproved": 0.005,  # approved = false: filtered out, never posted
    "missing_in_target": 0.003,  # approved, not posted
    "hours_on_tolerance": 0.003,  # ERP hours differ by exactly 0.01: not a break
    "hours_past_tolerance": 0.001,  # by exactly 0.02: a break
    "hours_far": 0.002,  # by 0.03 to 2.00
    "amount_on_tolerance": 0.003,
    "amount_past_tolerance": 0.001,
    "amount_far": 0.002,  # by 0.03 to 9.99
    "hours_and_amount": 0.001,  # both far
    "project": 0.002,  # another project code
    "period": 0.002,  # the next month's billing period
    "all_fields": 0.0005,  # hours, amount, project and period all differ
    "duplicate": 0.003,  # posted twice (a later, identical ERP line)
}
#: ERP lines that name no approved PSA entry, as shares of n.
MISSING_IN_SOURCE = 0.003  # psa_id NULL
ORPHANS = 0.002  # psa_id unknown (half) or an unapproved PSA entry (half)
PROJECTS = 5000
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD")  # of legal entities LE1..LE5
PSA_ID_BASE = 2_000_000_000
ERP_ID_BASE = 700_000_000

#: Runs one candidate in the child and prints its figures as JSON, with its peak RSS measured two ways.
CHILD = """\
import json, resource, sys
from bench.reconcile_time import run_candidate
out = run_candidate(sys.argv[1], sys.argv[2])
out["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/status") as status:
    out["hwm_kib"] = next(int(x.split()[1]) for x in status if x.startswith("VmHWM:"))
print(json.dumps(out))
"""
#: Generates the inputs of one size (in a child, so that the parent's peak RSS stays small).
GENERATE = """\
import sys
from pathlib import Path
from bench.reconcile_time import generate
generate(int(sys.argv[1]), Path(sys.argv[2]))
"""
#: Prints whether RULE equals the catalogue's rule (in a child: pydantic stays out of the parent).
CATALOGUE = "from bench.reconcile_time import catalogue_agrees; print(catalogue_agrees())"


# --------------------------------------------------------------------------- inputs


def inputs(n: int) -> tuple[Path, dict[str, Any], float | None]:
    """Return the folder of the size-``n`` inputs, their expected counts, and seconds spent generating.

    The seconds are None when the inputs were already there.
    """
    folder = BENCH_DIR / str(n)
    path = folder / "expected.json"
    if path.exists():
        expected = json.loads(path.read_text())
        if expected.get("generator") == [GENERATOR_VERSION, SEED]:
            return folder, expected, None
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", GENERATE, str(n), str(folder)], cwd=ROOT, check=True)
    return folder, json.loads(path.read_text()), time.perf_counter() - started


def generate(n: int, folder: Path) -> dict[str, Any]:
    """Write ``source.parquet``, ``target.parquet`` and ``expected.json`` of size ``n`` into ``folder``."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([SEED, n])
    # the PSA's time entries, in id order; money and hours in hundredths
    proj = rng.integers(0, PROJECTS, n)
    rate = rng.integers(5_000, 20_001, PROJECTS)[proj]
    day = rng.integers(0, 731, n)  # 2024-01-01 .. 2025-12-31
    hours = rng.integers(25, 1001, n)
    cost = (hours * rate + 50) // 100  # rounded half up
    created = day * 86_400 + 61_200 + rng.integers(0, 21_600, n)  # seconds since 2024-01-01: the evening
    approved = np.ones(n, dtype=bool)

    perm = rng.permutation(n)
    cat: dict[str, Any] = {}
    at = 0
    for name, share in DEFECTS.items():
        k = round(n * share)
        cat[name] = np.sort(perm[at : at + k])
        at += k
    approved[cat["unapproved"]] = False

    # the ERP's lines: every approved entry posted, except those missing in the target
    posted = np.ones(n, dtype=bool)
    posted[cat["unapproved"]] = False
    posted[cat["missing_in_target"]] = False
    idx = np.flatnonzero(posted)
    pos = np.full(n, -1)
    pos[idx] = np.arange(idx.size)  # PSA entry -> its ERP line
    t_psa = idx + PSA_ID_BASE
    t_proj, t_day, t_hours, t_cost = proj[idx].copy(), day[idx].copy(), hours[idx].copy(), cost[idx].copy()
    t_shift = np.zeros(idx.size, dtype=np.int64)  # months between spent_date's period and the billing period
    t_created = created[idx] + rng.integers(86_400, 5 * 86_400, idx.size)
    t_entity = proj[idx] % len(CURRENCIES)  # the entity that booked it, even on a wrong project

    def bump(values: Any, name: str, low: int, high: int | None = None) -> None:
        rows = pos[cat[name]]
        steps = np.full(rows.size, low) if high is None else rng.integers(low, high + 1, rows.size)
        values[rows] += rng.choice([-1, 1], size=rows.size) * steps

    bump(t_hours, "hours_on_tolerance", 1)
    bump(t_hours, "hours_past_tolerance", 2)
    bump(t_hours, "hours_far", 3, 200)
    bump(t_cost, "amount_on_tolerance", 1)
    bump(t_cost, "amount_past_tolerance", 2)
    bump(t_cost, "amount_far", 3, 999)
    for name in ("hours_and_amount", "all_fields"):
        bump(t_hours, name, 3, 200)
        bump(t_cost, name, 3, 999)
    for name in ("project", "all_fields"):
        rows = pos[cat[name]]
        t_proj[rows] = (t_proj[rows] + rng.integers(1, PROJECTS, rows.size)) % PROJECTS
    for name in ("period", "all_fields"):
        t_shift[pos[cat[name]]] = 1

    # extra ERP lines: second postings, lines without psa_id, orphans
    dup = pos[cat["duplicate"]]
    k_mis, k_orph = round(n * MISSING_IN_SOURCE), round(n * ORPHANS)
    k_extra = k_mis + k_orph
    e_proj = rng.integers(0, PROJECTS, k_extra)
    e_day = rng.integers(0, 731, k_extra)
    e_hours = rng.integers(25, 1001, k_extra)
    e_cost = (e_hours * rng.integers(5_000, 20_001, k_extra) + 50) // 100
    e_created = e_day * 86_400 + 61_200 + rng.integers(86_400, 5 * 86_400, k_extra)
    half = k_orph // 2
    unknown = PSA_ID_BASE + n + 1_000_000 + np.arange(k_orph - half)
    unapproved_ref = PSA_ID_BASE + rng.choice(cat["unapproved"], half, replace=False)
    psa_id = np.concatenate([t_psa, t_psa[dup], np.full(k_mis, -1), unknown, unapproved_ref])
    zeros = np.zeros(k_extra, dtype=np.int64)
    target = {
        "psa": psa_id,
        "proj": np.concatenate([t_proj, t_proj[dup], e_proj]),
        "entity": np.concatenate([t_entity, t_entity[dup], e_proj % len(CURRENCIES)]),
        "day": np.concatenate([t_day, t_day[dup], e_day]),
        "shift": np.concatenate([t_shift, t_shift[dup], zeros]),
        "hours": np.concatenate([t_hours, t_hours[dup], e_hours]),
        "cost": np.concatenate([t_cost, t_cost[dup], e_cost]),
        "created": np.concatenate([t_created, t_created[dup] + 3_600, e_created]),
    }
    order = rng.permutation(psa_id.size)  # the ERP's lines in no particular order
    target = {k: v[order] for k, v in target.items()}
    target["erp"] = ERP_ID_BASE + np.arange(psa_id.size)

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    source = {"id": np.arange(n) + PSA_ID_BASE, "proj": proj, "day": day, "hours": hours, "cost": cost,
              "approved": approved, "created": created}  # fmt: skip
    con.register("src", pa.table(source))
    con.register("tgt", pa.table(target))
    currency = "[" + ", ".join(f"'{c}'" for c in CURRENCIES) + "]"
    project = "'LE' || (proj % 5 + 1) || '-P' || lpad(CAST(proj AS VARCHAR), 5, '0') AS project_code"
    spent = "DATE '2024-01-01' + CAST(day AS INTEGER)"
    common = (
        f"{spent} AS spent_date, (hours::DECIMAL(18,0) * 0.01)::DECIMAL(18,2) AS hours, "
        "(cost::DECIMAL(18,0) * 0.01)::DECIMAL(18,2) AS cost_amount, "
        "TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(created) AS created_at"
    )
    con.execute(
        f"COPY (SELECT CAST(id AS VARCHAR) AS time_entry_id, {project}, "
        f"strftime({spent}, '%Y-%m') AS billing_period, {common}, {currency}[proj % 5 + 1] AS currency, "
        f"approved, 'LE' || (proj % 5 + 1) AS legal_entity_id FROM src) "
        f"TO '{folder / 'source.parquet'}' (FORMAT parquet)"
    )
    con.execute(
        "COPY (SELECT CAST(erp AS VARCHAR) AS time_entry_id, "
        f"CASE WHEN psa >= 0 THEN CAST(psa AS VARCHAR) END AS psa_id, {project}, "
        f"strftime({spent} + to_months(shift), '%Y-%m') AS billing_period, {common}, "
        f"{currency}[entity + 1] AS currency, true AS approved, 'LE' || (entity + 1) AS legal_entity_id "
        f"FROM tgt) TO '{folder / 'target.parquet'}' (FORMAT parquet)"
    )
    con.close()

    def count(*names: str) -> int:
        return sum(cat[x].size for x in names)

    def float_breaks(name: str, s: Any, t: Any) -> int:
        """Pairs of ``name`` (exactly 0.01 apart) that float64 ``np.isclose(atol=0.01)`` calls different."""
        rows = cat[name]
        return int((~np.isclose(s[rows] / 100, t[pos[rows]] / 100, rtol=0, atol=0.01)).sum())

    compared = n - count("unapproved", "missing_in_target")
    differing = count("hours_past_tolerance", "hours_far", "amount_past_tolerance", "amount_far",
                      "hours_and_amount", "project", "period", "all_fields")  # fmt: skip
    expected = {
        "generator": [GENERATOR_VERSION, SEED],
        "counts": {
            "source_rows": n - count("unapproved"),
            "target_rows": int(psa_id.size),
            "compared": compared,
            "matched": compared - differing,
            "missing_in_target": count("missing_in_target"),
            "missing_in_source": k_mis,
            "orphan": k_orph,
            "duplicate": count("duplicate"),
            "mismatch_hours": count("hours_past_tolerance", "hours_far", "hours_and_amount", "all_fields"),
            "mismatch_amount": count("amount_past_tolerance", "amount_far", "hours_and_amount", "all_fields"),
            "mismatch_project_code": count("project", "all_fields"),
            "mismatch_billing_period": count("period", "all_fields"),
        },
        "float64_extra": {
            "mismatch_hours": float_breaks("hours_on_tolerance", hours, t_hours),
            "mismatch_amount": float_breaks("amount_on_tolerance", cost, t_cost),
        },
        "on_tolerance": {"hours": count("hours_on_tolerance"), "amount": count("amount_on_tolerance")},
        "past_tolerance": {"hours": count("hours_past_tolerance"), "amount": count("amount_past_tolerance")},
        "rows": {"source": n, "target": int(psa_id.size)},
    }
    (folder / "expected.json").write_text(json.dumps(expected, indent=2))
    return expected


# --------------------------------------------------------------------------- candidates (in the child)


def tieout_rule() -> Any:
    """The rule the engine runs (:data:`RULE` validated)."""
    from reconcile.rules import ReconciliationRule

    return ReconciliationRule.model_validate(RULE)


def catalogue_agrees() -> bool:
    """Whether :data:`RULE` equals ``time_entries_psa_erp`` in ``reconcile/rules.yaml``."""
    from reconcile.rules import load_rules

    catalogue = load_rules(ROOT / "reconcile" / "rules.yaml").rule(RULE["rule_id"])
    return bool(catalogue == tieout_rule())


def _digest(groups: Iterable[tuple[Any, ...]]) -> dict[str, Any]:
    """Groups (entity, project, month, break type, field, count, amount): their number, totals and digest."""
    rows = sorted(tuple("" if v is None else str(v) for v in g) for g in groups)
    text = "\n".join("\t".join(r) for r in rows)
    return {
        "groups": len(rows),
        "breaks": sum(int(r[5]) for r in rows),
        "amount": str(sum((Decimal(r[6]) for r in rows if r[6]), Decimal(0))),
        "sha256": hashlib.sha256(text.encode()).hexdigest()[:16],
    }


def _counts_from_groups(groups: list[tuple[Any, ...]]) -> dict[str, int]:
    out = dict.fromkeys(("missing_in_target", "missing_in_source", "orphan", "duplicate"), 0)
    out.update({f"mismatch_{f}": 0 for f in FIELDS})
    for g in groups:
        kind, field, cnt = g[3], g[4], int(g[5])
        out[f"mismatch_{field}" if kind == "field_mismatch" else kind] += cnt
    return out


class TimedConnection:
    """A DuckDB connection that adds up the seconds of each kind of statement sent through ``execute``."""

    def __init__(self, con: Any, rule_id: str) -> None:
        self.con, self.suffix = con, f"_{rule_id}"
        self.seconds: dict[str, float] = {}

    def label(self, sql: str) -> str:
        """A short name for ``sql``: the temp table it creates, ``counts``, ``insert breaks``..."""
        words = sql.split()
        if words[:5] == ["CREATE", "OR", "REPLACE", "TEMP", "TABLE"]:
            return "create " + words[5].removesuffix(self.suffix)
        if words[0] == "INSERT":
            return "insert breaks"
        if words[0] == "DROP":
            return "drop"
        return "breaks by type" if "break_type" in words[1] else "counts"

    def execute(self, sql: str, *args: Any) -> Any:
        """Execute ``sql`` on the connection, timing it."""
        started = time.perf_counter()
        result = self.con.execute(sql, *args)
        label = self.label(sql)
        self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
        return result


def _tieout(folder: Path) -> dict[str, Any]:
    import duckdb

    from data.sql import sql_literal
    from reconcile.compile import RAW_BREAKS, Relations
    from reconcile.engine import prepare_connection, run_rule
    from reconcile.rules import Crosswalk

    files = {"psa": folder / "source.parquet", "erp": folder / "target.parquet"}

    def no_crosswalk(xw: Crosswalk) -> str:
        raise AssertionError(f"the rule has no crosswalk, yet {xw} was asked for")

    rels = Relations(
        relation=lambda obj, system: f"read_parquet({sql_literal(str(files[system]))})",
        crosswalk=no_crosswalk,
        as_of=AS_OF,
    )
    rule = tieout_rule()
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET memory_limit = {sql_literal(DUCKDB_MEMORY_LIMIT)}")
    con.execute(f"SET temp_directory = {sql_literal(str(BENCH_DIR / 'spill'))}")
    con.execute("SET preserve_insertion_order = false")  # as reconcile/run.py does
    prepare_connection(con)
    timed = TimedConnection(con, rule.rule_id)
    result = run_rule(rule, timed, rels)  # type: ignore[arg-type]
    if result.status != "ok":
        raise RuntimeError(f"the rule failed: {result.error}")
    grouping = time.perf_counter()
    con.execute(
        "CREATE TEMP TABLE _groups AS SELECT legal_entity_id, project_code, invoice_cycle, break_type, "
        f"field, count(*), sum(amount) FROM {RAW_BREAKS} GROUP BY ALL"
    )
    seconds = time.perf_counter() - started
    timed.seconds["group breaks"] = time.perf_counter() - grouping
    # read into Python for the checks untimed, as polars' grouped frame is
    groups = con.execute("SELECT * FROM _groups").fetchall()
    con.close()
    counts = {
        "source_rows": result.source_rows,
        "target_rows": result.target_rows,
        "compared": result.compared,
        "matched": result.matched,
        **_counts_from_groups(groups),
    }
    return {"seconds": seconds, "counts": counts, "groups": _digest(groups), "statements": timed.seconds}


_NUMERIC = {"hours": True, "cost_amount": True, "project_code": False, "billing_period": False}
_FIELD_NAMES = {"hours": "hours", "cost_amount": "amount", "project_code": "project_code",
                "billing_period": "billing_period"}  # fmt: skip


def polars_plan(folder: Path) -> list[Any]:
    """The polars candidate's lazy frames.

    They are: the joined pairs that are unmatched or differ, the pair totals, each side's size,
    each side's keyless rows, and each side's later duplicates.
    """
    import polars as pl

    tol = pl.lit(TOLERANCE, dtype=pl.Decimal(18, 2))
    data = ["hours", "cost_amount", "project_code", "billing_period", "legal_entity_id"]
    ids = {"id": pl.col("time_entry_id"), "ord": pl.col("created_at")}
    src = (
        pl.scan_parquet(folder / "source.parquet")
        .filter(pl.col("approved"))
        .with_columns(legal_entity_id=pl.col("project_code").str.split("-").list.first())
        .select(*data, k=pl.col("time_entry_id"), **ids)
    )
    tgt = pl.scan_parquet(folder / "target.parquet").select(*data, k=pl.col("psa_id"), **ids)

    def side(lf: pl.LazyFrame, p: str) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
        """(all rows, first row of each key, the key's later rows), columns prefixed ``p``."""
        lf = lf.select(pl.all().name.prefix(f"{p}_"))
        k = f"{p}_k"
        # cached: without it the optimiser recomputes is_duplicated for each branch below
        keyed = lf.filter(pl.col(k).is_not_null()).with_columns(_dup=pl.col(k).is_duplicated()).cache()
        ranked = keyed.filter("_dup").sort(k, f"{p}_ord", f"{p}_id")
        ranked = ranked.with_columns(_n=pl.int_range(pl.len()).over(k))
        firsts = pl.concat([keyed.filter(~pl.col("_dup")), ranked.filter(pl.col("_n") == 0).drop("_n")])
        return lf, firsts.drop("_dup"), ranked.filter(pl.col("_n") > 0)

    def within(c: str) -> pl.Expr:
        s, t = pl.col(f"s_{c}"), pl.col(f"t_{c}")
        if _NUMERIC[c]:
            return ((s - t).abs() <= tol).fill_null(s.is_null() & t.is_null())
        return s.eq_missing(t)

    s_all, s_first, s_later = side(src, "s")
    t_all, t_first, t_later = side(tgt, "t")
    paired = pl.col("s_id").is_not_null() & pl.col("t_id").is_not_null()
    joined = s_first.join(t_first, left_on="s_k", right_on="t_k", how="full", coalesce=False).with_columns(
        _paired=paired, **{f"_ok_{c}": within(c) for c in _NUMERIC}
    )
    all_ok = pl.all_horizontal(f"_ok_{c}" for c in _NUMERIC)
    return [
        joined.filter(~pl.col("_paired") | ~all_ok),
        joined.select(compared=pl.col("_paired").sum(), matched=(pl.col("_paired") & all_ok).sum()),
        s_all.select(n=pl.len()),
        t_all.select(n=pl.len()),
        s_all.filter(pl.col("s_k").is_null()),
        t_all.filter(pl.col("t_k").is_null()),
        s_later,
        t_later,
    ]


def _polars(folder: Path) -> dict[str, Any]:
    import polars as pl

    started = time.perf_counter()
    frames = pl.collect_all(polars_plan(folder), engine="streaming")
    odd, totals, s_n, t_n, s_null, t_null, s_dup, t_dup = frames

    def breaks(df: pl.DataFrame, kind: str, p: str, q: str, field: str | None, amount: pl.Expr) -> Any:
        def ctx(c: str) -> pl.Expr:
            return pl.coalesce(f"{p}_{c}", f"{q}_{c}")

        return df.select(
            legal_entity_id=ctx("legal_entity_id"),
            project_code=ctx("project_code"),
            invoice_cycle=ctx("billing_period"),
            break_type=pl.lit(kind),
            field=pl.lit(field, dtype=pl.String),
            amount=amount,
        )

    s_amount, t_amount = pl.col("s_cost_amount"), pl.col("t_cost_amount")
    difference = (s_amount.fill_null(0) - t_amount.fill_null(0)).abs()
    parts = [
        breaks(s_null, "missing_in_target", "s", "s", None, s_amount),
        breaks(t_null, "missing_in_source", "t", "t", None, t_amount),
        breaks(odd.filter(pl.col("t_id").is_null()), "missing_in_target", "s", "s", None, s_amount),
        breaks(odd.filter(pl.col("s_id").is_null()), "orphan", "t", "t", None, t_amount),
        breaks(s_dup, "duplicate", "s", "s", None, s_amount),
        breaks(t_dup, "duplicate", "t", "t", None, t_amount),
    ]
    for c, name in _FIELD_NAMES.items():
        amount = difference if _NUMERIC[c] else pl.coalesce(s_amount, t_amount)
        wrong = odd.filter(pl.col("_paired") & ~pl.col(f"_ok_{c}"))
        parts.append(breaks(wrong, "field_mismatch", "s", "t", name, amount))
    group = ["legal_entity_id", "project_code", "invoice_cycle", "break_type", "field"]
    grouped = pl.concat(parts).group_by(group).agg(n=pl.len(), amount=pl.col("amount").sum())
    seconds = time.perf_counter() - started
    groups = [tuple(r) for r in grouped.select(*group, "n", "amount").iter_rows()]
    counts = {
        "source_rows": s_n["n"][0],
        "target_rows": t_n["n"][0],
        "compared": totals["compared"][0],
        "matched": totals["matched"][0],
        **_counts_from_groups(groups),
    }
    return {"seconds": seconds, "counts": counts, "groups": _digest(groups)}


def _datacompy(folder: Path, flavour: str) -> dict[str, Any]:
    import datacompy

    cols = ["hours", "cost_amount", "project_code", "billing_period"]
    key = {"psa_id": "time_entry_id"}
    started = time.perf_counter()
    cmp: Any
    if flavour == "polars":
        import polars as pl

        s = pl.read_parquet(folder / "source.parquet", columns=["time_entry_id", "approved", *cols])
        s = s.filter(pl.col("approved")).drop("approved")
        t = pl.read_parquet(folder / "target.parquet", columns=["psa_id", *cols]).rename(key)
        cmp = datacompy.PolarsCompare(s, t, join_columns="time_entry_id", abs_tol=0.01)
        extra = cmp.df2_unq_rows["time_entry_id"]
        no_key = int(extra.is_null().sum())
        known = int(extra.is_in(s["time_entry_id"]).sum())
    else:
        import pandas as pd

        approved = [("approved", "==", True)]
        s = pd.read_parquet(folder / "source.parquet", columns=["time_entry_id", *cols], filters=approved)
        t = pd.read_parquet(folder / "target.parquet", columns=["psa_id", *cols]).rename(columns=key)
        cmp = datacompy.PandasCompare(s, t, join_columns="time_entry_id", abs_tol=0.01)
        extra = cmp.df2_unq_rows["time_entry_id"]
        no_key = int(extra.isna().sum())
        known = int(extra.isin(s["time_entry_id"]).sum())
    unequal = {c["column"]: int(c["unequal_cnt"]) for c in cmp.column_stats}
    seconds = time.perf_counter() - started
    counts = {
        "source_rows": len(s),
        "target_rows": len(t),
        "compared": len(cmp.intersect_rows),
        "missing_in_target": len(cmp.df1_unq_rows),
        "missing_in_source": no_key,
        "orphan": len(extra) - no_key - known,
        "duplicate": known,
        **{f"mismatch_{name}": unequal[c] for c, name in _FIELD_NAMES.items()},
    }
    return {"seconds": seconds, "counts": counts}


def _floor(folder: Path, hashed: bool) -> dict[str, Any]:
    import duckdb

    src, tgt = (f"read_parquet('{folder / f}')" for f in ("source.parquet", "target.parquet"))
    fields = "hours, cost_amount, project_code, billing_period"
    if hashed:
        sql = (
            f"SELECT (SELECT sum(hash(time_entry_id, approved, {fields})) FROM {src}), "
            f"(SELECT sum(hash(time_entry_id, psa_id, {fields})) FROM {tgt}), "
            f"(SELECT count(*) FROM {src}), (SELECT count(*) FROM {tgt})"
        )
    else:
        sql = f"SELECT 0, 0, (SELECT count(*) FROM {src}), (SELECT count(*) FROM {tgt})"
    started = time.perf_counter()
    con = duckdb.connect()
    row = con.execute(sql).fetchone()
    seconds = time.perf_counter() - started
    con.close()
    assert row is not None
    return {"seconds": seconds, "scanned": [int(row[2]), int(row[3])]}


def run_candidate(name: str, folder: str) -> dict[str, Any]:
    """Run candidate ``name`` on the inputs in ``folder`` (in the child process); return its figures."""
    runners: dict[str, Callable[[Path], dict[str, Any]]] = {
        "tieout": _tieout,
        "polars": _polars,
        "datacompy-polars": lambda f: _datacompy(f, "polars"),
        "datacompy-pandas": lambda f: _datacompy(f, "pandas"),
        "floor-count": lambda f: _floor(f, hashed=False),
        "floor-hash": lambda f: _floor(f, hashed=True),
    }
    return runners[name](Path(folder))


# --------------------------------------------------------------------------- the parent


def skipped(n: int, names: list[str], measured: dict[tuple[str, int], dict[str, Any]]) -> dict[str, str]:
    """The datacompy variants to skip at size ``n`` and why, from what the next smaller size measured."""
    skip = {}
    for name in names:
        smaller = [m for (c, m) in measured if c == name and m < n]
        if not name.startswith("datacompy") or not smaller:
            continue
        m = max(smaller)
        r = measured[(name, m)]
        # what grows with n is the peak above the interpreter's own (the count floor's peak)
        base = measured[("floor-count", m)]["peak_gib"] if ("floor-count", m) in measured else 0.0
        est_s, est_gib = r["median_s"] * n / m * 1.1, base + (r["peak_gib"] - base) * n / m
        if est_s > SKIP_SECONDS or est_gib > SKIP_GIB:
            skip[name] = (
                f"{m:,} rows took {r['median_s']:.0f} s and {r['peak_gib']:.1f} GiB, so ~{est_s:.0f} s and "
                f"~{est_gib:.1f} GiB expected: over the {SKIP_SECONDS} s / {SKIP_GIB:.0f} GiB budget"
            )
    return skip


def check(name: str, result: dict[str, Any], expected: dict[str, Any]) -> tuple[bool, str]:
    """Whether candidate ``name``'s counts agree with the generator's, and the line to print."""
    if "error" in result:
        return False, f"FAILED: {result['error']}"
    if "scanned" in result:
        src, tgt = result["scanned"]
        ok = [src, tgt] == [expected["rows"]["source"], expected["rows"]["target"]]
        return ok, f"{'ok' if ok else 'WRONG'}: scanned {src:,} + {tgt:,} rows"
    want, got = expected["counts"], result["counts"]
    wrong = {k: (got[k], want[k]) for k in COUNT_KEYS if k in got and got[k] != want[k]}
    findings = []
    if name.startswith("datacompy"):
        for k, extra in expected["float64_extra"].items():
            if k in wrong and got[k] == want[k] + extra:
                del wrong[k]
                of = expected["on_tolerance"][k.removeprefix("mismatch_")]
                findings.append(f"{k} {got[k]:,} = {want[k]:,} + {extra:,} of the {of:,} pairs 0.01 apart")
    if wrong:
        return False, "DISAGREES: " + "; ".join(f"{k} {g:,} (expected {w:,})" for k, (g, w) in wrong.items())
    shown = ", ".join(f"{k} {got[k]:,}" for k in COUNT_KEYS[2:] if k in got)
    if findings:
        shown += "\n      FINDING (float64 np.isclose, not exact decimals): " + "; ".join(findings)
    return True, "ok: " + shown


def run_size(n: int, names: list[str], measured: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """Measure ``names`` at size ``n`` into ``measured``, printing runs and checks; return the problems."""
    folder, expected, generated_s = inputs(n)
    rows = expected["rows"]["source"] + expected["rows"]["target"]
    mib = sum((folder / f).stat().st_size for f in ("source.parquet", "target.parquet")) / 1024**2
    made = "reused" if generated_s is None else f"generated in {generated_s:.0f} s"
    c, on = expected["counts"], expected["on_tolerance"]
    print(f"\n  n = {n:,} a side: {folder} ({made}), {rows:,} rows, {mib:,.0f} MiB of Parquet")
    print(
        f"  expected: {c['source_rows']:,} approved, compared {c['compared']:,}, matched {c['matched']:,}; "
        f"missing_in_target {c['missing_in_target']:,}, missing_in_source {c['missing_in_source']:,}, "
        f"orphan {c['orphan']:,}, duplicate {c['duplicate']:,};\n"
        f"            mismatches: hours {c['mismatch_hours']:,}, amount {c['mismatch_amount']:,}, "
        f"project_code {c['mismatch_project_code']:,}, billing_period {c['mismatch_billing_period']:,}; "
        f"{on['hours']:,} hours and {on['amount']:,} amounts exactly 0.01 apart (no break)"
    )
    skip = skipped(n, names, measured)
    for name, why in skip.items():
        print(f"  skipped {name}: {why}")
    todo = [x for x in names if x not in skip]
    runs: dict[str, list[dict[str, Any]]] = {x: [] for x in todo}
    rounds = ROUNDS.get(n, 1)
    for r in range(rounds):
        for name in todo[r % len(todo) :] + todo[: r % len(todo)]:
            done = runs[name]
            if done and ("error" in done[-1] or done[-1]["seconds"] > SLOW_S):
                continue  # failed, or too slow to repeat
            res = run_child(CHILD, name, folder, CHILD_TIMEOUT_S)
            done.append(res)
            shown = res.get("error") or (
                f"{res['seconds']:7.2f} s (child wall {res['wall_s']:6.1f} s), ru_maxrss "
                f"{res['maxrss_kib'] / 1024**2:5.2f} GiB, VmHWM {res['hwm_kib'] / 1024**2:5.2f} GiB"
            )
            print(f"    round {r + 1}/{rounds}  {name:<17} {shown}", flush=True)
    problems = []
    digests = {}
    print("  checks:")
    for name in todo:
        ok_runs = [x for x in runs[name] if "error" not in x]
        checks = [check(name, x, expected) for x in runs[name]]
        print(f"    {name:<17} {checks[0][1]}")
        problems += [f"{name} at {n:,}: {line}" for ok, line in checks if not ok]
        if len({json.dumps(x.get("groups"), sort_keys=True) for x in ok_runs}) > 1:
            problems.append(f"{name} at {n:,}: the grouped breaks differ between runs")
        if ok_runs and "groups" in ok_runs[0]:
            digests[name] = ok_runs[0]["groups"]
        if ok_runs:
            measured[(name, n)] = {
                "median_s": statistics.median(x["seconds"] for x in ok_runs),
                "median_wall_s": statistics.median(x["wall_s"] for x in ok_runs),
                "peak_gib": max(x["maxrss_kib"] for x in ok_runs) / 1024**2,
                "hwm_gib": max(x["hwm_kib"] for x in ok_runs) / 1024**2,
                "runs": len(ok_runs),
                "rows": rows,
            }
        if name == "tieout" and ok_runs:
            labels = ok_runs[0]["statements"]
            parts = (f"{k} {statistics.median(x['statements'][k] for x in ok_runs):.2f}" for k in labels)
            print(f"      statements (median s): {', '.join(parts)}")
    for name, d in digests.items():
        print(f"    grouped breaks of {name}: {d['groups']:,} groups, {d['breaks']:,} breaks, amount "
              f"{d['amount']}, digest {d['sha256']}")  # fmt: skip
    if len({json.dumps(d, sort_keys=True) for d in digests.values()}) > 1:
        problems.append(f"the grouped breaks of {' and '.join(digests)} differ at {n:,}")
    return problems


def table(measured: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Print every candidate's figures, size by size."""
    print(
        f"  {'candidate':<17} {'n a side':>10} {'runs':>4} {'median s':>9} {'child wall s':>12} "
        f"{'ru_maxrss GiB':>13} {'VmHWM GiB':>9} {'rows/s':>11} {'x hash floor':>12}"
    )
    for n in sorted({m for _, m in measured}):
        floor = measured.get(("floor-hash", n))
        for name in CANDIDATES:
            r = measured.get((name, n))
            if r is None:
                continue
            ratio = f"{r['median_s'] / floor['median_s']:.1f}" if floor else "-"
            print(
                f"  {name:<17} {n:>10,} {r['runs']:>4} {r['median_s']:>9.2f} {r['median_wall_s']:>12.1f} "
                f"{r['peak_gib']:>13.2f} {r['hwm_gib']:>9.2f} {r['rows'] / r['median_s']:>11,.0f} {ratio:>12}"
            )


def targets(measured: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Print each target and whether it is met (at :data:`TARGET_SIZE`, else indicative at the largest)."""
    sizes = sorted({m for c, m in measured if c == "tieout"})
    if not sizes:
        print("  targets: not measured (Tieout did not run)")
        return
    n = TARGET_SIZE if TARGET_SIZE in sizes else sizes[-1]
    note = "" if n == TARGET_SIZE else f" (indicative only: the targets are for {TARGET_SIZE:,})"
    print(f"  targets at {n:,} rows a side, DuckDB memory_limit {DUCKDB_MEMORY_LIMIT}{note}:")
    t = measured[("tieout", n)]

    def line(label: str, value: float | None, shown: str, met: Callable[[float], bool]) -> None:
        verdict = "not measured" if value is None else ("yes" if met(value) else "NO")
        print(f"    {label:<46} {shown if value is not None else '-':<30} met: {verdict}")

    floor = measured.get(("floor-hash", n))
    ratio = t["median_s"] / floor["median_s"] if floor else None
    line(f"Tieout within {TARGET_FLOOR_RATIO:g}x of the decode-and-hash floor", ratio, f"{ratio or 0:.1f}x",
         lambda v: v <= TARGET_FLOOR_RATIO)  # fmt: skip
    pol = measured.get(("polars", n))
    vs_pol = pol["median_s"] / t["median_s"] if pol else None
    line(f"Tieout >= {TARGET_VS_POLARS:g}x faster than polars", vs_pol, f"{vs_pol or 0:.2f}x",
         lambda v: v >= TARGET_VS_POLARS)  # fmt: skip
    dc = sorted((r["median_s"], c) for (c, m), r in measured.items() if m == n and c.startswith("datacompy"))
    vs_dc = dc[0][0] / t["median_s"] if dc else None
    line(f"Tieout >= {TARGET_VS_DATACOMPY:g}x faster than datacompy's fastest", vs_dc,
         f"{vs_dc or 0:.2f}x ({dc[0][1] if dc else '-'})", lambda v: v >= TARGET_VS_DATACOMPY)  # fmt: skip
    line(f"Tieout peak RSS < {TARGET_RSS_GIB} GiB", t["peak_gib"], f"{t['peak_gib']:.2f} GiB (ru_maxrss)",
         lambda v: v < TARGET_RSS_GIB)  # fmt: skip


def main() -> None:
    """Generate the inputs, run the candidates interleaved per size, check them, print figures and targets."""
    env = os.environ.get("TIEOUT_BENCH_RECONCILE_SIZES", "")
    sizes = [int(s) for s in env.split(",") if s.strip()] or list(SIZES)
    print("benchmark: reconcile_time")
    missing = {m for m in ("polars", "datacompy") if importlib.util.find_spec(m) is None}
    if missing:
        print(
            f"  benchmark-only package(s) missing: {', '.join(sorted(missing))}; the candidates needing "
            "them are skipped.\n  Install them with: "
            ".venv/bin/python -m uv pip install --no-deps -r bench/requirements.txt"
        )
    names = [c for c in CANDIDATES if not NEEDS.get(c, set()) & missing]
    agrees = subprocess.run([sys.executable, "-c", CATALOGUE], cwd=ROOT, capture_output=True, text=True)
    same = "yes" if agrees.stdout.strip() == "True" else "NO: the figures are for RULE in this benchmark"
    print(f"  rule equals {RULE['rule_id']} in reconcile/rules.yaml: {same}")
    load = os.getloadavg()
    print(f"  {os.cpu_count()} CPUs; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)")
    measured: dict[tuple[str, int], dict[str, Any]] = {}
    problems: list[str] = []
    started = time.perf_counter()
    for n in sizes:
        problems += run_size(n, names, measured)
    shutil.rmtree(BENCH_DIR / "spill", ignore_errors=True)
    load = os.getloadavg()
    parent_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n  total {time.perf_counter() - started:.0f} s; load average now {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f}; this process's peak RSS {parent_mib:.0f} MiB (a floor under each child's ru_maxrss)"
    )
    table(measured)
    targets(measured)
    if problems:
        print("\n  CHECKS FAILED:\n    " + "\n    ".join(problems))
        raise SystemExit(f"reconcile_time: {len(problems)} check(s) failed")
