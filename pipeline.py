"""One pipeline run: extract (each due source) → publish snapshots → check them → reconcile → publish breaks.

``tieout run``, ``tieout demo serve --extract`` and the scheduler's jobs all come through
:func:`run_pipeline`. Each step holds the pipeline lock (:mod:`data.lock`), so runs never overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from checks.run import CheckRun, check
from extractors.run import RunResult, extract
from reconcile.run import ReconciliationRun, reconcile

__all__ = ["LOCK_WAIT_S", "PipelineRun", "run_pipeline", "scheduled_run"]

#: How long a scheduled run waits for a run in progress (another job, or the CLI), in seconds.
LOCK_WAIT_S = 3600.0


@dataclass(frozen=True)
class PipelineRun:
    """What one pipeline run did: the extraction runs, the check run and the reconciliation run."""

    extractions: list[RunResult]
    checks: CheckRun
    reconciliation: ReconciliationRun


def run_pipeline(
    home: Path,
    *,
    systems: list[str] | None = None,
    lock_wait_s: float = 0,
    on_progress: Callable[..., None] | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> PipelineRun:
    """Extract ``systems`` (default all), check the snapshots just published, then reconcile every rule.

    A failed extraction leaves its previous snapshot current, and the reconciliation still runs on
    what is current (rules whose inputs have no snapshot at all are skipped). The check run covers
    the snapshots this run published (and the freshness of every system).

    Raises:
        extractors.config.ConfigError: sources.yaml is invalid.
        checks.spec.SuiteError / reconcile.rules.RuleError: the suites or the rules are invalid.
        data.lock.PipelineBusy: another run holds the lock for longer than ``lock_wait_s``.
    """
    results = extract(home, systems=systems, on_progress=on_progress, on_result=on_result,
                      lock_wait_s=lock_wait_s)  # fmt: skip
    published = [r for r in results if r.status == "succeeded" and r.snapshot_id is not None]
    checks = check(home, units=[(r.system, r.object) for r in published], lock_wait_s=lock_wait_s)
    return PipelineRun(results, checks, reconcile(home, lock_wait_s=lock_wait_s))


def scheduled_run(home: str, system: str) -> None:
    """The scheduler's job: one pipeline run for ``system`` (module-level, so the job store can name it).

    Raises:
        as :func:`run_pipeline`.
    """
    run_pipeline(Path(home), systems=[system], lock_wait_s=LOCK_WAIT_S)
