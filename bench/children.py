"""Running one benchmark candidate in a child process, so its peak RSS is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["run_child"]

ROOT = Path(__file__).resolve().parents[1]


def run_child(script: str, name: str, folder: Path, timeout_s: float) -> dict[str, Any]:
    """Run ``script`` (Python source taking the candidate and folder as argv) in a child process.

    Returns:
        The JSON object the child prints last, with ``wall_s`` (seconds, process start to exit),
        or ``{"error": ...}`` when it timed out or exited non-zero (its last stderr line).
    """
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", script, name, str(folder)], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s} s"}
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": f"exit {done.returncode}: {lines[-1] if lines else '(no message)'}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall_s
    return result
