"""The demo simulators as users run them: `tieout demo serve` in a subprocess, on free loopback ports."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

SIMULATORS = ("hubspot", "harvest", "odoo")


def free_port_base() -> int:
    """Return a port P with P, P+1 and P+2 free on loopback."""
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
def serving(home: Path) -> Iterator[subprocess.Popen[str]]:
    """Run `tieout demo serve` on ``home`` until the block ends (SIGINT, then wait)."""
    env = {**os.environ, "TIEOUT_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "demo", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError(f"simulators exited: {seen} {proc.stderr.read()}")  # type: ignore[union-attr]
            seen.append(line)
            if "Simulators are up" in line:
                break
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def port(home: Path, simulator: str) -> int:
    """The port ``simulator`` listens on for the demo firm of ``home``."""
    return int(json.loads((home / "demo" / "manifest.json").read_text())["ports"][simulator])


def admin(home: Path, simulator: str, method: str, path: str, body: Any = None) -> Any:
    """Call a simulator's admin endpoint (``/_admin/faults``, ``/_admin/stats``, ``/_admin/reset``)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port(home, simulator)}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def pipeline_home(demo_home: Path, target: Path) -> Path:
    """A fresh home at ``target`` extracting from ``demo_home``'s simulators (config and .env copied)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_home / "sources.yaml", target / "sources.yaml")
    shutil.copy(demo_home / ".env", target / ".env")
    return target


def credentials(home: Path) -> dict[str, str]:
    """The demo credentials of ``home`` (its .env)."""
    return {k: v for k, v in dotenv_values(home / ".env").items() if v is not None}
