"""Each package's public names: `__all__` has no duplicates and every name in it resolves."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["data", "extractors"])
def test_all_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert len(names) == len(set(names))
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == [], f"{package}.__all__ names what it does not define: {missing}"


def test_every_top_level_module_the_command_imports_is_installed() -> None:
    # `.venv/bin/tieout` runs outside the repo folder's import path: a module that pyproject.toml
    # does not install (as `pipeline` once was) fails only there, never under `python -m cli`
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    installed = set(setuptools["py-modules"])
    scripts = {p.stem for p in root.glob("*.py")} - {"app"}  # app.py is run by Streamlit, from the repo
    assert scripts <= installed, f"top-level modules missing from py-modules: {sorted(scripts - installed)}"
