"""``tieout schedule``: the pipeline per system on the schedules of sources.yaml (APScheduler 3.x).

One job per system (id ``extract:<system>``), triggered every ``interval_minutes`` or on the
``cron`` line (UTC). Jobs live in the app-state database (SQLAlchemy job store), so a restart keeps
their next run times; misfired runs are coalesced into one, and one job never overlaps itself
(``max_instances=1``). A job is one pipeline run (:func:`pipeline.scheduled_run`: extract the
system, then reconcile). Jobs run one at a time in this process, and the pipeline lock keeps them
from overlapping a ``tieout extract`` started by hand (a job waits for it).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from data.appstate import state_url
from extractors.config import Schedule, load_sources
from pipeline import scheduled_run

__all__ = ["configure_jobs", "make_scheduler", "run_scheduler", "trigger"]

_JOB_PREFIX = "extract:"


def trigger(schedule: Schedule) -> BaseTrigger:
    """The APScheduler trigger of a system's ``schedule`` (UTC)."""
    if schedule.cron is not None:
        return CronTrigger.from_crontab(schedule.cron, timezone="UTC")
    assert schedule.interval_minutes is not None
    return IntervalTrigger(minutes=schedule.interval_minutes, timezone="UTC")


def configure_jobs(scheduler: BaseScheduler, home: Path) -> list[str]:
    """Add (or replace) one job per system of ``HOME/sources.yaml``; remove jobs of removed systems.

    Returns the job ids.

    Raises:
        extractors.config.ConfigError: sources.yaml is missing or invalid.
    """
    config = load_sources(home / "sources.yaml")
    ids = []
    for slug, cfg in config.systems.items():
        job_id = _JOB_PREFIX + slug
        scheduler.add_job(
            scheduled_run,
            trigger(cfg.schedule),
            args=[str(home), slug],
            id=job_id,
            name=f"extract {slug}",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        ids.append(job_id)
    for job in scheduler.get_jobs():
        if job.id.startswith(_JOB_PREFIX) and job.id not in ids:
            job.remove()
    return ids


def make_scheduler(home: Path) -> BackgroundScheduler:
    """A scheduler with its job store in the app-state database and one worker thread."""
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=state_url(home), tablename="apscheduler_jobs")},
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        timezone="UTC",
    )


def run_scheduler(home: Path, *, on_event: Callable[[str], None] = print) -> None:
    """Configure the jobs and run them until SIGINT/SIGTERM.

    Raises:
        extractors.config.ConfigError: sources.yaml is missing or invalid.
    """
    scheduler = make_scheduler(home)
    scheduler.start(paused=True)
    for job_id in configure_jobs(scheduler, home):
        job = scheduler.get_job(job_id)
        on_event(f"{job_id}: {job.trigger} (next run {job.next_run_time:%Y-%m-%d %H:%M:%S %Z})")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler.resume()
    on_event("Scheduler running; press Ctrl-C to stop.")
    stop.wait()
    on_event("Stopping: waiting for the run in progress, if any.")
    scheduler.shutdown(wait=True)
