"""Terminal output of ``tieout extract`` and ``tieout status`` (rich)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from extractors.run import RunResult
from extractors.status import ObjectStatus

__all__ = ["ExtractProgress", "print_status", "print_summary"]


class ExtractProgress:
    """One progress bar per system/object: pages and records received, elapsed time (on stderr)."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<24}"),
            BarColumn(),
            TextColumn(
                "{task.fields[records]:>10,} records  {task.fields[pages]:>5} pages  {task.fields[state]}"
            ),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}

    def __enter__(self) -> ExtractProgress:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def update(self, system: str, obj: str, pages: int, records: int) -> None:
        """Show that ``pages`` pages and ``records`` records of ``system``/``obj`` arrived."""
        self._progress.update(self._task(system, obj), pages=pages, records=records)

    def finish(self, run: RunResult) -> None:
        """Mark ``run``'s bar done, with its outcome."""
        state = "[green]ok" if run.status == "succeeded" else f"[red]{run.status}"
        self._progress.update(self._task(run.system, run.object), total=1, completed=1, state=state,
                              pages=run.pages, records=run.received or 0)  # fmt: skip

    def _task(self, system: str, obj: str) -> TaskID:
        key = (system, obj)
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(f"{system}/{obj}", total=None, records=0, pages=0,
                                                       state="")  # fmt: skip
        return self._tasks[key]


def print_summary(results: list[RunResult]) -> None:
    """Print one row per run, then the failures' messages."""
    table = Table(title="Extraction runs")
    for col in ("system", "object", "mode", "status", "rows", "received", "quarantined", "pages",
                "requests", "retries", "seconds"):  # fmt: skip
        table.add_column(
            col, justify="right" if col not in ("system", "object", "mode", "status") else "left"
        )
    for r in results:
        colour = "green" if r.status == "succeeded" else "red"
        counts = (r.rows, r.received, r.quarantined, r.pages, r.requests, r.retries)
        table.add_row(
            r.system, r.object, r.mode, f"[{colour}]{r.status}", *map(_n, counts), f"{r.duration_s:.1f}"
        )
    console = Console()
    console.print(table)
    for r in results:
        if r.error_message:
            console.print(f"[red]{r.error_class}[/red]: {r.error_message}", markup=True, highlight=False)


def print_status(statuses: list[ObjectStatus]) -> None:
    """Print one row per system and object: snapshot, age against SLA, last runs."""
    table = Table(title="Snapshots")
    for col in ("system", "object", "current snapshot", "rows", "quarantined", "age (min)", "SLA (min)",
                "fresh", "last runs (newest first)"):  # fmt: skip
        table.add_column(col)
    for s in statuses:
        runs = " ".join(
            ("ok" if r["status"] == "succeeded" else f"{r['status']}:{r['error_class']}") for r in s.last_runs
        )
        fresh = "[green]yes" if s.fresh else "[red]no"
        table.add_row(s.system, s.object, s.snapshot_id or "-", _n(s.rows), _n(s.quarantined),
                      f"{s.age_minutes:.0f}" if s.age_minutes is not None else "-",
                      str(s.freshness_sla_minutes), fresh, runs or "-")  # fmt: skip
    Console().print(table)


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
