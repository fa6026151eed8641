"""`make run` as a user runs it, at the `small` scale: the app ends up answering with the demo's exceptions.

The Makefile's own recipe runs (set-up, ``tieout demo generate``, ``tieout demo serve --extract
--app``) on free ports; headless Chromium signs in as the demo's finance user and finds the whole
exception queue of the warehouse the pipeline run built; Ctrl-C (SIGINT to the process group, as a
terminal sends it) then stops the simulators, the scheduler and the app.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from dotenv import dotenv_values

from data import queries
from data.warehouse import connect
from demo.live import free_port_base
from tests.app.conftest import REPO, free_port, launch

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "tests" / "artifacts" / "app"
#: Seconds for set-up, generation, the first pipeline run and the app's start on 2 busy cores.
START_S = 300
WAIT_MS = 60_000


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_make_run_serves_the_demo_exceptions_until_ctrl_c(chromium: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    home, port, sims = tmp_path / "home", free_port(), free_port_base()
    command = ["make", "-C", str(REPO), "run", "SCALE=small", f"PORT={port}", f"SIM_PORT={sims}",
               f"TIEOUT_HOME={home}"]  # fmt: skip
    proc = subprocess.Popen(
        command, env={**os.environ, "MAKEFLAGS": ""}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_S
        while not any(ln.startswith(f"App: http://127.0.0.1:{port}") for ln in out):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(out)
            time.sleep(0.5)
        con = connect(home)
        try:
            _, total = queries.exception_queue(con, queries.QueueFilter(), page_size=1)
        finally:
            con.close()
        assert total > 0
        password = dotenv_values(home / ".env")["TIEOUT_DEMO_PASSWORD"]
        with sync_playwright() as pw:
            browser = launch(pw, chromium)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            try:
                page.goto(f"http://127.0.0.1:{port}")
                page.get_by_role("textbox", name="User").fill("finance")
                page.get_by_role("textbox", name="Password").fill(str(password))
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("heading", name="Exceptions").wait_for()
                page.get_by_text(f"({total:,} breaks)").wait_for()
            finally:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "make-run.png"))
                browser.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        reader.join(timeout=5)
        proc.stdout.close()
    text = "".join(out)
    assert "Traceback" not in text, text
    still_up = [p for p in (port, sims, sims + 1, sims + 2) if _answers(p)]
    assert still_up == [], (still_up, text)  # Ctrl-C stopped the app and every simulator
