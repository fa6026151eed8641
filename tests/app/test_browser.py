"""The app in a real browser: `tieout serve` on a demo home, driven by headless Chromium (Playwright).

Finance signs in, opens every page, filters the exception queue by a rule, selects a break, assigns
it, resolves it with a reason and comments on it; the app state's audit log must then hold those
changes by user ``finance``. Screenshots go to ``tests/artifacts/app/`` (git-ignored); with
``TIEOUT_README_SCREENSHOTS=1`` a few are also written, downsized, to ``docs/screenshots/`` for the
README.

Chromium is Debian's (``/usr/bin/chromium``), never ``playwright install``'s: when it is missing,
``scripts/install-chromium`` installs it (apt-get); the test is skipped only if that is impossible.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from data import queries
from data.warehouse import connect
from tests.app.conftest import PASSWORD, REPO, free_port, launch

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "tests" / "artifacts" / "app"
README_SHOTS = REPO / "docs" / "screenshots"
#: Screenshots (artifact name -> README name) copied to docs/screenshots with TIEOUT_README_SCREENSHOTS=1.
FOR_README = ("sign-in.png", "exceptions.png", "exceptions-detail.png", "overview.png", "unbilled.png",
              "pipeline-health.png")  # fmt: skip
#: Page title -> screenshot name (the Exceptions page is the default, shown after sign-in).
PAGES = {"Unbilled time": "unbilled", "Overview": "overview", "Pipeline health": "pipeline-health",
         "Data quality": "data-quality", "Trace": "trace"}  # fmt: skip
RULE = "invoices_erp_psa"
TRACE = "Quartz Telecom"  # a customer of the small demo firm
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def served(app_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(app URL, app-state URL): `tieout serve` on ``app_home``, on a copy of its app state.

    The copy (run log included) keeps this test's workflow changes out of the other tests' home.
    """
    state = tmp_path_factory.mktemp("browser-state") / "state.db"
    with closing(sqlite3.connect(app_home / "state.db")) as src, closing(sqlite3.connect(state)) as dst:
        src.backup(dst)
    state_url = f"sqlite:///{state}"
    env = {**os.environ, "TIEOUT_HOME": str(app_home), "TIEOUT_STATE_URL": state_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(free_port())], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    out: list[str] = []
    drain: threading.Thread | None = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if line.startswith("App: "):
                break
        url = next((ln.split()[1] for ln in out if ln.startswith("App: ")), None)
        assert url is not None and url.startswith("http://127.0.0.1:"), "".join(out)
        drain = threading.Thread(target=lambda: out.extend(proc.stdout or ()), daemon=True)
        drain.start()
        yield url, state_url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            if drain is not None:
                drain.join(timeout=5)
            proc.stdout.close()
    assert code == 0, "".join(out)  # Ctrl-C stops the scheduler and the app, exit 0


def _settle(page: Any) -> None:
    """Wait for the script run a click started (if any) to finish."""
    status = page.locator('[data-testid="stStatusWidget"]')
    with contextlib.suppress(PlaywrightTimeout):  # the run was too quick to show it
        status.wait_for(state="attached", timeout=1_500)
    status.wait_for(state="detached", timeout=WAIT_MS)
    page.wait_for_timeout(300)  # let the last elements paint (the data grids draw on a canvas)


def _no_errors(page: Any, where: str) -> None:
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    assert errors.count() == 0, (where, errors.all_inner_texts())


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def _choose(page: Any, combobox: str, option: str) -> None:
    """Pick ``option`` of a selectbox or multiselect: open its list by keyboard, narrow it, click."""
    page.get_by_role("combobox", name=combobox, exact=True).focus()
    page.keyboard.press("ArrowDown")  # a click on the box does not always open the list
    page.keyboard.type(option)  # a long list scrolls and re-renders its options: narrow it first
    page.get_by_role("option", name=option, exact=True).click()


def _select_first_row(page: Any, grid: Any) -> None:
    """Tick the first row's selection box (the grid is a canvas: click where it is drawn)."""
    for _ in range(3):  # a click while the grid is still laying out is lost: try again
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)  # header 35 px, rows 35 px
        with contextlib.suppress(PlaywrightTimeout):
            page.get_by_role("button", name="Assign 1").wait_for(timeout=10_000)
            return
    page.get_by_role("button", name="Assign 1").wait_for()


def _audit(state_url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(state_url)
    try:
        with engine.connect() as con:
            rows = con.execute(sa.text("SELECT * FROM audit_log ORDER BY id")).mappings().all()
    except sa.exc.OperationalError:  # no audit_log table yet
        return []
    finally:
        engine.dispose()
    return [dict(r) for r in rows]


def _wait_for_audit(state_url: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_MS / 1000
    rows = _audit(state_url)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = _audit(state_url)
    return rows


def test_finance_works_a_break_in_the_browser(
    chromium: Path, served: tuple[str, str], app_home: Path
) -> None:
    url, state_url = served
    (ARTIFACTS / "failure.png").unlink(missing_ok=True)
    con = connect(app_home)
    try:
        _, in_rule = queries.exception_queue(con, queries.QueueFilter(rules=(RULE,)), page_size=1)
    finally:
        con.close()
    with sync_playwright() as pw:
        browser = launch(pw, chromium)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        try:
            page.goto(url)
            page.get_by_role("textbox", name="User").wait_for()
            _settle(page)
            _shot(page, "sign-in.png")
            page.get_by_role("textbox", name="User").fill("finance")
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Exceptions").wait_for()
            _settle(page)
            _no_errors(page, "Exceptions")
            page.get_by_text("Signed in as Fiona Finance (finance)").wait_for()

            for title, shot in PAGES.items():
                page.locator('[data-testid="stSidebarNavLink"]', has_text=title).click()
                page.get_by_role("heading", name=title).wait_for()
                _settle(page)
                _no_errors(page, title)
                if title == "Trace":
                    page.get_by_role("textbox", name="Search").fill(TRACE)
                    page.keyboard.press("Enter")
                    page.get_by_text("across the systems").first.wait_for()
                    _settle(page)
                    _no_errors(page, "Trace")
                _shot(page, f"{shot}.png")
                if title == "Overview":  # trends run by run and month by month: 11 charts
                    page.get_by_role("heading", name="Month by month").wait_for()
                    charts = page.locator('[data-testid="stPlotlyChart"]')
                    charts.nth(10).wait_for()  # the last ones may still be drawing
                    assert charts.count() == 11

            page.locator('[data-testid="stSidebarNavLink"]', has_text="Exceptions").click()
            page.get_by_role("heading", name="Exceptions").wait_for()
            _settle(page)
            page.get_by_text("Filters", exact=True).click()
            for attempt in range(3):  # a rerun still under way can close the list and lose the choice
                if not page.locator('[data-baseweb="tag"]', has_text=RULE).count():
                    _choose(page, "Rule", RULE)
                page.keyboard.press("Escape")
                try:
                    page.get_by_text(f"({in_rule:,} breaks)").wait_for(timeout=20_000)
                    break
                except PlaywrightTimeout:
                    if attempt == 2:
                        raise
                    _settle(page)
            _settle(page)
            grid = page.locator('[data-testid="stDataFrame"]').first
            grid.locator("[role=gridcell]").first.wait_for(state="attached")
            header = grid.get_by_role("columnheader", name="rule_id", exact=True, include_hidden=True)
            column = header.get_attribute("aria-colindex")
            shown_rules = set(grid.locator(f'[role=gridcell][aria-colindex="{column}"]').all_inner_texts())
            assert shown_rules == {RULE}, shown_rules
            _shot(page, "exceptions.png")
            _select_first_row(page, grid)
            _settle(page)

            _choose(page, "Assign to (none: unassign)", "finance")
            page.get_by_role("button", name="Assign 1").click()
            assert len(_wait_for_audit(state_url, 1)) == 1
            _settle(page)
            page.get_by_role("button", name="Set status of 1").click()  # open -> in_review (the default)
            assert len(_wait_for_audit(state_url, 2)) == 2
            _settle(page)
            _choose(page, "Move to", "resolved")
            _choose(page, "Reason (to resolve, accept)", "timing_difference")
            page.get_by_role("button", name="Set status of 1").click()
            assert len(_wait_for_audit(state_url, 4)) == 4
            _settle(page)
            page.get_by_role("textbox", name="Comment").fill("Invoiced in the next period; clears by itself.")
            page.get_by_role("button", name="Comment on 1").click()
            rows = _wait_for_audit(state_url, 5)
            _settle(page)
            _no_errors(page, "Exceptions after the actions")
            page.get_by_text("History and comments").scroll_into_view_if_needed()
            _shot(page, "exceptions-detail.png")
        except BaseException:
            _shot(page, "failure.png")
            raise
        finally:
            browser.close()

    assert {r["user"] for r in rows} == {"finance"}
    assert len({r["break_id"] for r in rows}) == 1
    changes = [(r["action"], r["field"], r["old_value"], r["new_value"]) for r in rows]
    assert changes == [
        ("assign", "assignee", None, "finance"),
        ("set_status", "status", "open", "in_review"),
        ("set_status", "status", "in_review", "resolved"),
        ("set_status", "reason_code", None, "timing_difference"),
        ("comment", "comment", None, "Invoiced in the next period; clears by itself."),
    ], changes
    con = connect(app_home)
    try:
        rule = con.execute("SELECT rule_id FROM breaks WHERE break_id = ?", [rows[0]["break_id"]]).fetchone()
    finally:
        con.close()
    assert rule == (RULE,)
    if os.environ.get("TIEOUT_README_SCREENSHOTS") == "1":
        _readme_screenshots()


def _readme_screenshots() -> None:
    """Write the README's screenshots: downsized to 1200 px wide, 256 colours (small PNGs)."""
    from PIL import Image

    README_SHOTS.mkdir(parents=True, exist_ok=True)
    for name in FOR_README:
        with Image.open(ARTIFACTS / name) as img:
            small = img.convert("RGB")
            small.thumbnail((1200, 1200))
            small.quantize(colors=256).save(README_SHOTS / name, optimize=True)


def test_serve_refuses_missing_users_and_a_taken_port(app_home: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    bare = tmp_path / "home"
    bare.mkdir()
    (bare / "sources.yaml").write_bytes((app_home / "sources.yaml").read_bytes())
    result = runner.invoke(app, ["serve", "--home", str(bare), "--port", str(free_port())])
    assert result.exit_code == 2 and "users.yaml: not found" in result.output, result.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--home", str(app_home), "--port", str(port)])
    assert result.exit_code == 2 and f"port {port} on 127.0.0.1 is in use" in result.output, result.output
