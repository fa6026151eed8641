"""Generation of the `large` demo firm (>= 10M time entries): rows/s and peak RSS.

The firm is generated in a child process (`tieout demo generate --scale large`) so its peak
resident memory is measured alone (``RUSAGE_CHILDREN.ru_maxrss``); the target is < 2 GiB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RSS_GIB = 2.0


def main() -> None:
    """Generate the large firm once into a temporary home and print its figures."""
    with tempfile.TemporaryDirectory(prefix="tieout-bench-") as tmp:
        home = Path(tmp)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "cli", "demo", "generate", "--home", str(home), "--scale",
             "large", "--as-of", "2026-11-15"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wall_s = time.perf_counter() - started
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        manifest = json.loads((home / "demo" / "manifest.json").read_text())
        entries = manifest["rows"]["psa/time_entries"]
        lines = manifest["rows"]["erp/account.analytic.line"]
        size_mib = sum(f.stat().st_size for f in (home / "demo").rglob("*.parquet")) / 1024**2
    print("benchmark: generate_large")
    print(f"  time entries (Harvest)     {entries:>12,}")
    print(f"  timesheet lines (Odoo)     {lines:>12,}")
    print(f"  wall time                  {wall_s:>12.1f} s")
    print(f"  time entries per second    {entries / wall_s:>12,.0f}")
    print(f"  rows written per second    {(entries + lines) / wall_s:>12,.0f}")
    print(f"  peak RSS                   {peak_gib:>12.2f} GiB (target < {TARGET_RSS_GIB} GiB)")
    print(f"  Parquet on disk            {size_mib:>12,.0f} MiB")
    print(f"  within memory target       {'yes' if peak_gib < TARGET_RSS_GIB else 'NO'}")
