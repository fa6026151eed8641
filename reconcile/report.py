"""Terminal output of ``tieout reconcile`` and ``tieout run`` (rich): one line per rule."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from reconcile.run import ReconciliationRun

__all__ = ["print_reconciliation"]


def print_reconciliation(run: ReconciliationRun, console: Console | None = None) -> None:
    """Print the run's per-rule figures: rows each side, compared, matched, breaks by type, seconds."""
    console = console or Console()
    kind = "replay as of" if run.replay else "current snapshots as of"
    table = Table(title=f"Reconciliation {run.run_id} ({kind} {run.as_of:%Y-%m-%d %H:%M:%S} UTC, "
                        f"business date {run.business_date})")  # fmt: skip
    for col in (
        "rule",
        "status",
        "source rows",
        "target rows",
        "compared",
        "matched",
        "breaks",
        "by type",
        "s",
    ):
        justify = "left" if col in ("rule", "status", "by type") else "right"
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in run.results:
        by_type = ", ".join(f"{k} {v:,}" for k, v in sorted(r.breaks_by_type.items()))
        table.add_row(
            r.rule_id, r.status if r.error is None else f"{r.status}: {r.error}", f"{r.source_rows:,}",
            f"{r.target_rows:,}", f"{r.compared:,}", f"{r.matched:,}", f"{r.breaks:,}", by_type,
            f"{r.duration_s:.2f}",
        )  # fmt: skip
    console.print(table)
    where = "kept beside the queue" if run.replay else "now the `breaks` view"
    console.print(f"{run.breaks:,} breaks in the run ({where}): {run.path}")
