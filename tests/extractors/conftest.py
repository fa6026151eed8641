"""Fixtures of the extractor tests: the demo simulators over real HTTP, and fresh pipeline homes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.generate import generate
from demo.live import admin, free_port_base, serving
from tests.conftest import AS_OF, SEED
from tests.live import credentials, pipeline_home


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small demo firm served by `tieout demo serve` for the whole module."""
    home = tmp_path_factory.mktemp("demo")
    generate(home, scale="small", seed=SEED, as_of=AS_OF, port_base=free_port_base())
    with serving(home):
        yield home


@pytest.fixture()
def home(demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh pipeline home on the live simulators, with the demo credentials in the environment."""
    for key, value in credentials(demo_home).items():
        monkeypatch.setenv(key, value)
    for sim in ("hubspot", "harvest", "odoo"):
        admin(demo_home, sim, "POST", "/_admin/reset")
    yield pipeline_home(demo_home, tmp_path / "home")
    for sim in ("hubspot", "harvest", "odoo"):
        admin(demo_home, sim, "POST", "/_admin/reset")
