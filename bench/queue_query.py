"""The exception queue's query layer on a million breaks: one filtered, sorted page.

Target: a filtered, sorted page of the queue (:func:`data.queries.exception_queue`: the count and
the page) in under 300 ms, median.

Input: one million breaks with the ``breaks`` view's columns (:data:`data.breaks.BREAK_COLUMNS`),
written once to ``<repo>/.bench/queue/breaks.parquet`` by DuckDB from a seeded formula
(:mod:`bench.breaks_fixture`: rules, three legal entities, 200 projects, 24 billing periods,
severities, ages, amounts), and a workflow state of 20,000 touched breaks. A warehouse-like
database file holds a ``breaks`` view over the Parquet file, as ``HOME/warehouse.duckdb`` does,
opened read-only per query as the app does.

Cases, each run :data:`RUNS` times, interleaved, medians printed: the whole queue by amount at
risk; one legal entity and billing period; a UK-scoped user filtering a rule and status ``open``
by age; a text search; facets for the filter widgets.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.breaks_fixture import ROWS, write_breaks

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench" / "queue"
TOUCHED = 20_000
RUNS = 15
TARGET_MS = 300.0


def _generate(folder: Path) -> Path:
    return write_breaks(folder / "breaks.parquet", ROWS)


def _warehouse(folder: Path, parquet: Path) -> Path:
    import duckdb

    db = folder / "warehouse.duckdb"
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute(f"CREATE VIEW breaks AS SELECT * FROM read_parquet('{parquet}')")
    con.close()
    return db


def _state() -> Any:
    import pandas as pd

    ids = [f"b{i:08d}" for i in range(0, ROWS, ROWS // TOUCHED)][:TOUCHED]
    return pd.DataFrame({
        "break_id": ids,
        "status": [["in_review", "resolved", "accepted", "open"][i % 4] for i in range(len(ids))],
        "assignee": [f"user{i % 7}" for i in range(len(ids))],
        "reason_code": [None] * len(ids),
        "updated_at": pd.Timestamp("2026-11-20T10:00:00Z"),
        "updated_by": ["admin"] * len(ids),
    })  # fmt: skip


def main() -> None:
    """Generate (once) and time the queue's cases; print medians and the target line."""
    import duckdb

    from data.queries import QueueFilter, exception_queue, queue_facets

    print("benchmark: queue_query")
    parquet = _generate(BENCH_DIR)
    db = _warehouse(BENCH_DIR, parquet)
    state = _state()
    cases: dict[str, Any] = {
        "all, by amount at risk": lambda c: exception_queue(c, QueueFilter(), state=state),
        "US, 2026-03, page 3": lambda c: exception_queue(
            c, QueueFilter(legal_entities=("US",), billing_periods=("2026-03",)), state=state, page=3
        ),
        "UK user, rule, open, by age": lambda c: exception_queue(
            c,
            QueueFilter(legal_entities=("UK",), rules=("unbilled_time",), statuses=("open",)),
            state=state,
            sort="age",
        ),
        "search 'Customer 17'": lambda c: exception_queue(c, QueueFilter(search="Customer 17"), state=state),
        "facets (UK user)": lambda c: queue_facets(c, QueueFilter(legal_entities=("UK",)), state=state),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    shown: dict[str, str] = {}
    for _ in range(RUNS):
        for name, run in cases.items():
            started = time.perf_counter()
            con = duckdb.connect(str(db), read_only=True)
            out = run(con)
            con.close()
            times[name].append((time.perf_counter() - started) * 1000)
            shown[name] = f"{out[1]:,} matching" if isinstance(out, tuple) else f"{len(out)} facets"
    print(f"  {ROWS:,} breaks, {TOUCHED:,} with workflow state; {RUNS} runs each, interleaved")
    print(f"  {'case':<30} {'median ms':>10} {'max ms':>8}  result")
    for name, ms in times.items():
        print(f"  {name:<30} {statistics.median(ms):10.1f} {max(ms):8.1f}  {shown[name]}")
    worst = max(statistics.median(ms) for name, ms in times.items() if not name.startswith("facets"))
    met = "yes" if worst < TARGET_MS else "NO"
    print(
        f"  target: a filtered, sorted page < {TARGET_MS:g} ms median: worst case {worst:.1f} ms  met: {met}"
    )
