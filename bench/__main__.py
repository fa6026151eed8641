"""Run the benchmarks named on the command line (default: all) and print their figures."""

from __future__ import annotations

import sys

from bench import generate_large, harvest_rate, ingest_files, reconcile_time

BENCHMARKS = {
    "generate_large": generate_large.main,
    "harvest_rate": harvest_rate.main,
    "ingest_files": ingest_files.main,
    "reconcile_time": reconcile_time.main,
}


def main(argv: list[str]) -> int:
    """Run each named benchmark in turn; return a process exit code."""
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    for name in names:
        BENCHMARKS[name]()
    return 0


sys.exit(main(sys.argv[1:]))
