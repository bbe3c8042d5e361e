# Two commands do all the set-up on a fresh machine (Python 3.11, pip, the PyPI registry):
#   make demo   - virtual environment, install, build the demo twin, print its summary, serve the viewer
#   make test   - the same set-up, then the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
TWIN_DIR ?= twins/cevennes
PORT    ?= 8000
STAMP   = $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml web/package.json | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[scene,web,test,dev]"
	sh web/vendor.sh
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/twin build data/cevennes/basin.yml -o $(TWIN_DIR) --overwrite
	$(BIN)/twin info $(TWIN_DIR) --summary
	@echo "-- readings: the CNEMC sample (real, off this basin) and a simulated year at the demo stations"
	$(BIN)/twin stations $(TWIN_DIR) --add data/cnemc/stations.csv
	$(BIN)/twin ingest $(TWIN_DIR) data/cnemc/cnemc_sample_20260709_20260711.csv
	$(BIN)/python data/cevennes/simulate_readings.py $(TWIN_DIR) $(TWIN_DIR)/simulated-2025.csv
	$(BIN)/twin ingest $(TWIN_DIR) $(TWIN_DIR)/simulated-2025.csv
	$(BIN)/twin classify $(TWIN_DIR) --at 2025-12-31T20:00Z
	@echo "-- training scenario (simulated): mine-leak; its true answer is in $(TWIN_DIR)/scenarios/"
	$(BIN)/twin scenario $(TWIN_DIR) mine-leak --seed 1
	@echo "-- demo accounts (passwords generated now, shown once; secrets stay in $(TWIN_DIR)/secrets and ops.sqlite)"
	$(BIN)/twin users add $(TWIN_DIR) admin --role admin
	$(BIN)/twin users add $(TWIN_DIR) investigator-lozere --role investigator --jurisdiction 48
	$(BIN)/twin users add $(TWIN_DIR) investigator-gard --role investigator --jurisdiction 30
	@echo "-- the map viewer of the demo twin: log in as admin with the password above (Ctrl-C stops it; PORT=... for another port)"
	$(BIN)/twin serve $(TWIN_DIR) --port $(PORT)

test: setup
	$(BIN)/ruff check twin web tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check twin web tests benchmarks
	$(BIN)/ruff format --check twin web tests benchmarks

bench: setup
	$(BIN)/pip install --quiet ".[bench]"
	$(BIN)/python benchmarks/build.py

clean:
	rm -rf $(VENV) twins .pytest_cache
