"""Files connector at scale: the large demo's time entries (>= 10M rows) into a snapshot.

Target: at least 1M rows/s, peak resident memory under 2 GiB.

The large demo firm is generated once into ``<repo>/.bench/large`` (about two and a half minutes)
and reused while its manifest says ``scale: large``. A separate temporary pipeline home reads its
Harvest time entries (``demo/psa/time_entries/*.parquet``) through a ``files`` system whose
mapping override turns Harvest's columns into the canonical ones. Each extraction runs in a
child process (``extractors.run.extract``), so its peak RSS is its own: the child reports its
``RUSAGE_SELF`` high-water mark, and the parent's ``RUSAGE_CHILDREN`` (the maximum over every
child it waited for, the generator's included) is shown as well. The runs share the home, so
the second and later runs publish new snapshots over the previous ones.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
LARGE_HOME = ROOT / ".bench" / "large"
RUNS = 3
TARGET_ROWS_PER_S = 1_000_000
TARGET_RSS_GIB = 2.0
AS_OF = "2026-11-15"

#: Harvest's time-entry columns (``demo.tables.HARVEST_TIME_ENTRIES``) -> canonical time entries.
HARVEST_FIELDS = {
    "time_entry_id": "id",
    "project_id": "project_id",
    "project_code": "project_code",
    "customer_id": "client_id",
    "person_id": "user_id",
    "person_name": "user_name",
    "spent_date": "spent_date",
    "billing_period": "strftime(spent_date, '%Y-%m')",
    "hours": "hours",
    "billable": "billable",
    "approved": "is_closed",
    "bill_rate": "billable_rate",
    "cost_rate": "cost_rate",
    "billable_amount": "round(hours * billable_rate, 2)",
    "cost_amount": "round(hours * cost_rate, 2)",
    "invoice_id": "invoice_id",
    "psa_id": "id",
    "created_at": "created_at",
    "updated_at": "updated_at",
}

#: Runs one extraction in the child and prints its run-log row, timing and peak RSS as JSON.
CHILD = """\
import json, resource, sys, time
from pathlib import Path
from extractors.run import extract
started = time.perf_counter()
(run,) = extract(Path(sys.argv[1]), systems=["files"])
extract_s = time.perf_counter() - started
print(json.dumps({
    "status": run.status, "error": f"{run.error_class}: {run.error_message}",
    "rows": run.rows, "received": run.received, "quarantined": run.quarantined,
    "pages": run.pages, "snapshot_id": run.snapshot_id, "duration_s": run.duration_s,
    "extract_s": extract_s, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def large_demo() -> tuple[Path, dict[str, Any], float | None]:
    """Return the cached large demo home, its manifest, and the seconds spent generating it.

    The seconds are None when the cache was reused.
    """
    manifest_path = LARGE_HOME / "demo" / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("scale") == "large":
            return LARGE_HOME, manifest, None
    LARGE_HOME.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cli", "demo", "generate", "--home", str(LARGE_HOME), "--scale", "large",
         "--as-of", AS_OF],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return LARGE_HOME, json.loads(manifest_path.read_text()), time.perf_counter() - started


def write_pipeline_home(home: Path, entries_glob: Path) -> None:
    """Write ``HOME/sources.yaml`` with one ``files`` system reading the time entries at ``entries_glob``."""
    config = {
        "reporting_currency": "USD",
        "systems": {
            "files": {
                "connector": "files",
                "objects": ["time_entries"],
                "paths": {"time_entries": str(entries_glob)},
                "mappings": {"time_entries": {"fields": HARVEST_FIELDS}},
            }
        },
    }
    (home / "sources.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run_once(home: Path) -> dict[str, Any]:
    """Extract the ``files`` system of ``home`` in a child process; return its figures.

    Raises:
        RuntimeError: the extraction did not succeed.
    """
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(home)], check=True, cwd=ROOT, capture_output=True, text=True
    )
    wall_s = time.perf_counter() - started
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != "succeeded":
        raise RuntimeError(f"the extraction failed: {result['error']}")
    result["wall_s"] = wall_s
    result["children_maxrss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    snapshot = home / "lake" / "canonical" / "time_entries" / "files" / result["snapshot_id"]
    result["snapshot_mib"] = sum(f.stat().st_size for f in snapshot.rglob("*") if f.is_file()) / 1024**2
    return result


def main() -> None:
    """Load the large demo's time entries through the files connector several times; print the figures."""
    demo_home, manifest, generated_s = large_demo()
    source = demo_home / "demo" / "psa" / "time_entries"
    files = sorted(source.glob("*.parquet"))
    source_mib = sum(f.stat().st_size for f in files) / 1024**2
    expected = int(manifest["rows"]["psa/time_entries"])
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tieout-bench-") as tmp:
        home = Path(tmp)
        write_pipeline_home(home, source / "*.parquet")
        for _ in range(RUNS):
            runs.append(run_once(home))
    print("benchmark: ingest_files")
    if generated_s is None:
        print(f"  large demo                   {demo_home} (cached)")
    else:
        print(f"  large demo                   {demo_home} (generated in {generated_s:.0f} s)")
    print(f"  source files                 {len(files)} Parquet files, {source_mib:,.0f} MiB")
    print(f"  time entries in the demo     {expected:>12,}")
    for i, r in enumerate(runs, 1):
        print(
            f"  run {i}: rows {r['rows']:,}, quarantined {r['quarantined']:,}, "
            f"extract {r['extract_s']:.1f} s "
            f"(child wall {r['wall_s']:.1f} s), {r['rows'] / r['extract_s']:,.0f} rows/s, "
            f"peak RSS {r['maxrss_kib'] / 1024**2:.2f} GiB, snapshot {r['snapshot_mib']:,.0f} MiB"
        )
    rates = [r["rows"] / r["extract_s"] for r in runs]
    wall_rates = [r["rows"] / r["wall_s"] for r in runs]
    median = statistics.median(rates)
    peak_gib = max(r["maxrss_kib"] for r in runs) / 1024**2
    children_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    rows = runs[-1]["rows"]
    meets = median >= TARGET_ROWS_PER_S and peak_gib < TARGET_RSS_GIB and runs[-1]["received"] >= 10_000_000
    print(f"  rows in the snapshot         {rows:>12,} (quarantined {runs[-1]['quarantined']:,})")
    print(f"  median extract time          {statistics.median(r['extract_s'] for r in runs):>12.1f} s")
    print(f"  median rows/s (extract)      {median:>12,.0f} ({median / TARGET_ROWS_PER_S:.2f}x the target)")
    print(f"  median rows/s (child wall)   {statistics.median(wall_rates):>12,.0f}")
    print(
        f"  peak RSS of the runs         {peak_gib:>12.2f} GiB ({peak_gib / TARGET_RSS_GIB:.0%} of the limit)"
    )
    print(f"  peak RSS, RUSAGE_CHILDREN    {children_gib:>12.2f} GiB (max over all children waited for)")
    print(
        f"  target                       {TARGET_ROWS_PER_S:>12,} rows/s, < {TARGET_RSS_GIB} GiB, >= 10M read"
    )
    print(f"  meets target                 {'yes' if meets else 'NO':>12}")
