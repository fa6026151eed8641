"""The demo simulators as users run them: ``tieout demo serve`` in a child process on free ports.

For benchmarks and tests that need the real loopback network: :func:`free_port_base` picks ports
for ``tieout demo generate --port-base``, :func:`serving` runs the simulators for the length of a
``with`` block, :func:`admin` calls their admin endpoints (faults, stats, reset).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["READY_LINE", "admin", "free_port_base", "port", "serving"]

#: What ``tieout demo serve`` prints once every simulator answers.
READY_LINE = "Simulators are up"


def free_port_base() -> int:
    """Return a port P with P, P+1 and P+2 free on loopback (the three simulators' ports)."""
    for _ in range(50):
        base = random.randrange(20000, 60000)
        try:
            for port in range(base, base + 3):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no three free consecutive ports")


@contextmanager
def serving(home: Path, timeout_s: float = 60, args: Sequence[str] = ()) -> Iterator[subprocess.Popen[str]]:
    """Run ``tieout demo serve`` on ``home`` until the block ends (then SIGINT and wait).

    Args:
        home: a home holding a generated demo firm (or, with ``--odoo-records DIR`` in ``args``,
            a home whose Odoo systems the replayed records serve).
        timeout_s: seconds to wait for the simulators to answer.
        args: more arguments of ``tieout demo serve``.

    Yields:
        The serving process, once its simulators answer.

    Raises:
        RuntimeError: the simulators exited or did not come up in time.
    """
    env = {**os.environ, "TIEOUT_HOME": str(home)}
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "demo", "serve", *args],
            env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        drain: threading.Thread | None = None
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                line = proc.stdout.readline()
                if not line:
                    errors.seek(0)
                    raise RuntimeError(f"the simulators exited: {errors.read()}")
                if READY_LINE in line:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the simulators did not come up within {timeout_s:.0f} s")
            # Keep reading what the server prints so that a full pipe never blocks it.
            drain = threading.Thread(target=proc.stdout.read, daemon=True)
            drain.start()
            yield proc
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if drain is not None:
                drain.join(timeout=5)
            proc.stdout.close()


def port(home: Path, simulator: str) -> int:
    """The port ``simulator`` (``hubspot``, ``harvest``, ``odoo``) listens on for ``home``'s demo firm."""
    return int(json.loads((home / "demo" / "manifest.json").read_text())["ports"][simulator])


def admin(home: Path, simulator: str, method: str, path: str, body: Any = None) -> Any:
    """Call a simulator's admin endpoint (``/_admin/faults``, ``/_admin/stats``, ``/_admin/reset``).

    Returns the JSON answer, or None for an empty one.
    """
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port(home, simulator)}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback only)
        raw = resp.read()
    return json.loads(raw) if raw else None
