"""The app's fixtures: the small demo firm extracted, checked and reconciled once, with demo users.

``app_home`` goes through the real pipeline (the simulators over loopback HTTP, as ``make run``
does), so the pages show what a user of the demo sees. It is session-scoped: each xdist worker
builds it once for the test modules it runs (``--dist loadfile`` keeps a module on one worker).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from data.users import demo_users
from demo.generate import generate
from demo.live import free_port_base, serving
from pipeline import run_pipeline
from tests.conftest import AS_OF, SEED
from tests.live import credentials, pipeline_home

#: The repository root (app.py, pages/).
REPO = Path(__file__).resolve().parents[2]
#: Debian's chromium (never `playwright install`'s).
CHROMIUM = Path("/usr/bin/chromium")
#: The password of every demo user of ``app_home``.
PASSWORD = "tie-out-demo-pw"
#: Each demo user's legal entities (None: every one).
ROLES = {"admin": None, "finance": None, "finance_uk": ("UK",), "pmo": None, "executive": None}


@pytest.fixture(scope="session")
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding the small demo firm's warehouse after one pipeline run, and users.yaml.

    Users: :data:`ROLES`, all with :data:`PASSWORD` (bcrypt cost 4, to keep sign-ins fast).
    """
    demo = tmp_path_factory.mktemp("app-demo")
    generate(demo, scale="small", seed=SEED, as_of=AS_OF, port_base=free_port_base())
    # The credentials stay in the environment only while this firm is served: a session-long
    # setenv would hand them to every later test's simulators, which would then reject their own.
    with pytest.MonkeyPatch.context() as mp:
        for key, value in credentials(demo).items():
            mp.setenv(key, value)
        with serving(demo):
            home = pipeline_home(demo, tmp_path_factory.mktemp("app-home"))
            run = run_pipeline(home)
    assert all(r.status == "succeeded" for r in run.extractions)
    (home / "users.yaml").write_text(yaml.safe_dump({"users": demo_users(PASSWORD, rounds=4)}))
    return home


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed by scripts/install-chromium if missing (else the test is skipped)."""
    if not CHROMIUM.exists():
        done = subprocess.run([str(REPO / "scripts" / "install-chromium")], capture_output=True, text=True)
        if done.returncode != 0 or not CHROMIUM.exists():
            pytest.skip(f"chromium is missing and cannot be installed here: {done.stderr.strip()}")
    return CHROMIUM


def launch(playwright: Any, chromium: Path) -> Any:
    """Start headless ``chromium`` through Playwright (a Browser); flags for a container without GPU."""
    return playwright.chromium.launch(
        executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
