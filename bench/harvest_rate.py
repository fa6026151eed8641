"""Harvest extraction against the documented rate limit: requests/s, records/s, 429s.

Target: against Harvest's 100 requests / 15 s the extractor never receives a 429 in a clean run,
yet sustains at least 90% of the allowed request rate.

A small demo firm is generated into a temporary home and served by ``tieout demo serve`` (a
subprocess, whose Harvest simulator enforces the limit with a sliding window per token). The
home's ``psa`` system gets a small ``page_size`` so that one full pull of the time entries (~5.9k
records) takes a few hundred requests, enough for the limit to bind for half a minute or more;
its ``max_requests_per_min`` stays as the generator writes it, since that client-side limiter is
what is measured. The pull runs in this process, over the real loopback network.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import yaml
from dotenv import dotenv_values

from demo.generate import generate
from demo.harvest import RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW_S
from demo.live import admin, free_port_base, serving
from extractors.run import extract

PAGE_SIZE = 25
TARGET_RATIO = 0.90


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the block, then restore what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _small_pages(home: Path, page_size: int) -> float:
    """Set psa's ``page_size`` in ``HOME/sources.yaml``; return its ``max_requests_per_min``."""
    path = home / "sources.yaml"
    config = yaml.safe_load(path.read_text())
    psa = config["systems"]["psa"]
    psa["page_size"] = page_size
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return float(psa["max_requests_per_min"])


def main() -> None:
    """Pull the small firm's time entries from the Harvest simulator once and print the figures."""
    with tempfile.TemporaryDirectory(prefix="tieout-bench-") as tmp:
        home = Path(tmp)
        generate(home, scale="small", seed=7, as_of=date(2026, 11, 15), port_base=free_port_base())
        client_per_min = _small_pages(home, PAGE_SIZE)
        creds = {k: v for k, v in dotenv_values(home / ".env").items() if v is not None}
        page_times: list[float] = []

        def on_progress(system: str, obj: str, pages: int, received: int) -> None:
            page_times.append(time.perf_counter())

        with environment(creds), serving(home):
            admin(home, "harvest", "POST", "/_admin/reset")
            started = time.perf_counter()
            (run,) = extract(
                home, systems=["psa"], objects=["time_entries"], full=True, on_progress=on_progress
            )
            wall_s = time.perf_counter() - started
            server = admin(home, "harvest", "GET", "/_admin/stats")
    if run.status != "succeeded":
        raise RuntimeError(f"the extraction failed: {run.error_class}: {run.error_message}")
    limit = RATE_LIMIT_REQUESTS / RATE_LIMIT_WINDOW_S
    received = run.received or 0
    # The pull proper: from the call to the last page; the run's own duration adds mapping and publish.
    fetch_s = page_times[-1] - started
    # Steady state: between the first and the last response, requests 2..N were sent.
    steady_s = page_times[-1] - page_times[0]
    steady_rate = (run.requests - 1) / steady_s if steady_s > 0 else float("nan")
    run_rate = run.requests / run.duration_s
    fetch_rate = run.requests / fetch_s
    client_429 = run.http_status_counts.get("429", 0)
    server_429 = int(server["by_status"].get("429", 0))
    ratio = steady_rate / limit
    meets = ratio >= TARGET_RATIO and client_429 == 0 and server_429 == 0
    figures = [
        ("time entries received", f"{received:,}"),
        ("page size", f"{PAGE_SIZE}"),
        ("pages", f"{run.pages:,}"),
        ("requests (client)", f"{run.requests:,}"),
        ("requests (simulator)", f"{server['requests']:,}"),
        ("retries", f"{run.retries:,}"),
        ("HTTP statuses (client)", json.dumps(run.http_status_counts)),
        ("HTTP statuses (simulator)", json.dumps(server["by_status"])),
        ("429s seen by the client", f"{client_429}"),
        ("429s served by the simulator", f"{server_429}"),
        ("wall time of extract()", f"{wall_s:.1f} s"),
        ("run duration (run log)", f"{run.duration_s:.1f} s"),
        ("fetching (call to last page)", f"{fetch_s:.1f} s"),
        ("mapping + publish", f"{wall_s - fetch_s:.1f} s"),
        ("documented limit", f"{limit:.2f} req/s ({RATE_LIMIT_REQUESTS} per {RATE_LIMIT_WINDOW_S:g} s)"),
        ("client limiter (sources.yaml)", f"{client_per_min / 60:.2f} req/s ({client_per_min:g} per min)"),
        ("requests/s over the run", f"{run_rate:.2f} ({run_rate / limit:.1%} of the limit)"),
        ("requests/s while fetching", f"{fetch_rate:.2f} ({fetch_rate / limit:.1%} of the limit)"),
        ("requests/s first to last page", f"{steady_rate:.2f} ({ratio:.1%} of the limit)"),
        ("records/s over the run", f"{received / run.duration_s:,.0f}"),
        ("records/s while fetching", f"{received / fetch_s:,.0f}"),
        ("ratio to the limit", f"{ratio:.3f} (first to last page; target >= {TARGET_RATIO:.2f})"),
        ("meets target", f"{'yes' if meets else 'NO'} (ratio >= {TARGET_RATIO:.2f} and no 429)"),
    ]
    print("benchmark: harvest_rate")
    for label, value in figures:
        print(f"  {label:<31}{value}")
