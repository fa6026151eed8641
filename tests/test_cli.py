"""The `tieout` command: home folder resolution, `demo generate` and `demo serve` over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from typer.testing import CliRunner

from cli import app
from demo.live import free_port_base
from tests.conftest import AS_OF

runner = CliRunner()


def test_generate_uses_tieout_home_and_writes_config_without_secrets(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = runner.invoke(
        app, ["demo", "generate", "--scale", "small", "--seed", "3", "--as-of", str(AS_OF)],
        env={"TIEOUT_HOME": str(home)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "time entries" in result.output and "expected breaks" in result.output
    assert (home / "demo" / "ground_truth.parquet").exists()
    env_file = home / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    secrets = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    sources_text = (home / "sources.yaml").read_text()
    sources = yaml.safe_load(sources_text)
    assert set(sources["systems"]) == {"crm", "psa", "erp"}
    for system in sources["systems"].values():
        assert system["base_url"].startswith("http://127.0.0.1:")
        for var in system["auth"].values():
            assert var in secrets
    assert not any(value in sources_text for value in secrets.values())


def test_home_option_wins_over_tieout_home(tmp_path: Path) -> None:
    args = ["demo", "generate", "--scale", "small", "--as-of", str(AS_OF), "--home", str(tmp_path / "opt")]
    result = runner.invoke(app, args, env={"TIEOUT_HOME": str(tmp_path / "env")})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "opt" / "demo" / "manifest.json").exists()
    assert not (tmp_path / "env").exists()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "generate", "--home", str(tmp_path / "h"), "--scale", "huge"])
    assert result.exit_code == 2
    assert "huge" in result.output
    result = runner.invoke(app, ["demo", "generate", "--home", str(tmp_path), "--as-of", "2026-13-01"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["demo", "serve", "--home", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "tieout demo generate" in result.output


def test_serve_answers_on_loopback_until_interrupted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    base = free_port_base()
    gen = runner.invoke(app, ["demo", "generate", "--home", str(home), "--scale", "small",
                              "--as-of", str(AS_OF), "--port-base", str(base)])  # fmt: skip
    assert gen.exit_code == 0, gen.output
    env = {**os.environ, "TIEOUT_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", "serve"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 60
        while len(lines) < 4 and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
        assert len(lines) == 4, (lines, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        for name, port in zip(("hubspot", "harvest", "odoo"), range(base, base + 3), strict=True):
            assert any(ln.startswith(name) and f"http://127.0.0.1:{port}" in ln for ln in lines)
        assert "Simulators are up" in lines[-1]
        creds = dict(ln.split("=", 1) for ln in (home / ".env").read_text().splitlines())
        req = urllib.request.Request(
            f"http://127.0.0.1:{base + 1}/v2/clients?per_page=5",
            headers={"Authorization": f"Bearer {creds['TIEOUT_DEMO_HARVEST_TOKEN']}",
                     "Harvest-Account-Id": creds["TIEOUT_DEMO_HARVEST_ACCOUNT_ID"]},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert len(json.load(resp)["clients"]) == 5
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_serve_with_extract_fills_the_warehouse_like_make_run(tmp_path: Path) -> None:
    import duckdb

    home = tmp_path / "home"
    gen = runner.invoke(app, ["demo", "generate", "--home", str(home), "--scale", "small",
                              "--as-of", str(AS_OF), "--port-base", str(free_port_base())])  # fmt: skip
    assert gen.exit_code == 0, gen.output
    env = {**os.environ, "TIEOUT_HOME": str(home), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "demo", "serve", "--extract"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        out = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            out.append(line)
            if line.startswith("Warehouse:"):
                break
        text = "".join(out)
        assert "Warehouse:" in text, text
        assert text.count("succeeded") == 10 and "failed" not in text
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        systems = con.execute("SELECT system, count(*) FROM time_entries GROUP BY 1 ORDER BY 1").fetchall()
        assert [s for s, _ in systems] == ["erp", "psa"] and all(n > 1000 for _, n in systems)
        assert "231 breaks in the run" in text  # the small firm's ground truth
        by_category = dict(con.execute("SELECT category, count(*) FROM breaks GROUP BY ALL").fetchall())
        assert by_category == {"reconciliation": 231, "data_quality": 12}  # both parts of the ground truth
        assert "6 of 112 checks failing; 12 data-quality breaks in the queue" in text
        con.close()
        again = runner.invoke(
            app, ["reconcile", "--home", str(home), "--rule", "unbilled_time"], env={"COLUMNS": "200"}
        )
        assert again.exit_code == 0, again.output
        assert "unbilled_time" in again.output and "231 breaks in the run" in again.output
        bad = runner.invoke(app, ["reconcile", "--home", str(home), "--as-of", "last tuesday"])
        assert bad.exit_code == 2 and "--as-of 'last tuesday'" in bad.output
        (home / "rules.yaml").write_text("rules: [{rule_id: x, kind: match}]\n")
        refused = runner.invoke(app, ["reconcile", "--home", str(home)])
        assert refused.exit_code == 2 and "rule 'x' (rules.0)" in refused.output
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()  # type: ignore[union-attr]
