"""Run the benchmarks named on the command line (default: all) and print their figures.

Each benchmark's module is imported only when it runs, so running one imports none of the others.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def _lazy(name: str) -> Callable[[], None]:
    """Return a callable that imports ``bench.<name>`` and runs its ``main()``."""

    def run() -> None:
        importlib.import_module(f"bench.{name}").main()

    run.__name__ = run.__qualname__ = f"{name}.main"
    return run


BENCHMARKS: dict[str, Callable[[], None]] = {
    name: _lazy(name)
    for name in (
        "generate_large",
        "harvest_rate",
        "ingest_files",
        "reconcile_time",
        "check_time",
        "queue_query",
        "overview_queries",
    )
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
