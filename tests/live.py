"""Pipeline homes on the live demo simulators (run by :mod:`demo.live`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from dotenv import dotenv_values


def pipeline_home(demo_home: Path, target: Path) -> Path:
    """A fresh home at ``target`` extracting from ``demo_home``'s simulators.

    Its configuration, .env and FX rates (``demo/ref``, which the rules value breaks with) are copied.
    """
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_home / "sources.yaml", target / "sources.yaml")
    shutil.copy(demo_home / ".env", target / ".env")
    shutil.copytree(demo_home / "demo" / "ref", target / "demo" / "ref")
    return target


def credentials(home: Path) -> dict[str, str]:
    """The demo credentials of ``home`` (its .env)."""
    return {k: v for k, v in dotenv_values(home / ".env").items() if v is not None}
