# Tieout: `make run` sets up and runs the demo; `make test` sets up and runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export UV_COMPILE_BYTECODE := 1
# Where `tieout` keeps configuration and data; override with `make run TIEOUT_HOME=...`.
TIEOUT_HOME ?= data
export TIEOUT_HOME
SCALE ?= default
SEED ?= 7
# Port of the app (Streamlit) that `make run` serves on 127.0.0.1.
PORT ?= 8501
# Port of the HubSpot simulator of the demo; Harvest and Odoo use the next two.
SIM_PORT ?= 8711

.PHONY: run test setup bench lint lock clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The stamp is newer than every requirements file once they are installed.
$(VENV)/.installed: $(BIN)/uv requirements.txt requirements-dev.txt pyproject.toml
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/tieout demo generate --scale $(SCALE) --seed $(SEED) --port-base $(SIM_PORT)
	$(BIN)/tieout demo serve --extract --app --port $(PORT)

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lock: $(BIN)/uv
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --no-header -o requirements.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
