"""Shared fixtures: a small demo firm generated once per test session (per xdist worker)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

# A fixed as-of date keeps the small firm identical on every run of the suite.
AS_OF = date(2026, 11, 15)
SEED = 7


@pytest.fixture(autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Restore os.environ after each test.

    The CLI loads HOME/.env into the process environment when invoked in-process; without this
    one home's demo credentials would leak into the next test's subprocesses and win over that
    home's own .env (dotenv never overrides the environment).
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def small_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Tieout home folder holding the `small` demo firm (HOME/demo, HOME/sources.yaml)."""
    from demo.generate import generate

    home = tmp_path_factory.mktemp("home")
    generate(home, scale="small", seed=SEED, as_of=AS_OF)
    return home


@pytest.fixture(scope="session")
def small_demo(small_home: Path) -> Path:
    """The `small` demo firm's folder (HOME/demo)."""
    return small_home / "demo"
