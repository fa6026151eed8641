"""Terminal output of ``tieout check`` and ``tieout run`` (rich): one line per snapshot checked."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from checks.run import CheckRun

__all__ = ["print_checks"]


def print_checks(run: CheckRun, console: Console | None = None) -> None:
    """Print per snapshot: checks run and failed, and each failure with its count and sample ids."""
    console = console or Console()
    table = Table(title=f"Data-quality checks {run.run_id} ({run.started_at:%Y-%m-%d %H:%M:%S} UTC)")
    for col in ("snapshot", "checks", "failing", "failures (rows or findings; sample ids)"):
        table.add_column(col, justify="right" if col in ("checks", "failing") else "left")
    for unit, rows in sorted(run.outcomes.items()):
        failed = [r for r in rows if not r["success"]]
        lines = [
            f"{r['rule_id']}: {r['unexpected_count']:,}"
            + (f" {r['sample_ids']}" if r["sample_ids"] != "[]" else "")
            + (f" ({r['observed']})" if r["observed"] else "")
            + (f" error: {r['error']}" if r["error"] else "")
            for r in failed
        ]
        table.add_row(unit, f"{len(rows):,}", f"{len(failed):,}", "\n".join(lines) or "-")
    console.print(table)
    console.print(
        f"{run.failed:,} of {run.results:,} checks failing; {run.breaks:,} data-quality breaks in the queue"
    )
    if run.docs is not None:
        console.print(f"Data Docs: {run.docs}")
