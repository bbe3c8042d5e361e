# Two commands do all the set-up on a fresh machine (Debian or Ubuntu with Python 3.11, venv and make):
#   make demo   - system packages (Node and npm), virtual environment, install, build the demo twin, print its
#                 summary, serve the viewer
#   make test   - system packages (also Chromium, a CJK font, Mesa's EGL, PostgreSQL), the same set-up, then
#                 lint, types and the whole test suite
# Missing system packages are installed with apt-get when run as root; otherwise the command to run is printed
# (scripts/system-packages.sh).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
TWIN_DIR ?= twins/cevennes
PORT    ?= 8000
STAMP   = $(VENV)/.installed
MAPLIBRE = twin_web/static/vendor/maplibre-gl/VERSION
# what scripts/system-packages.sh checks for: the goal asked for (a prerequisite inherits it)
SYSTEM_FOR = demo
test: SYSTEM_FOR = test

.PHONY: system setup demo test lint bench clean

system:
	@sh scripts/system-packages.sh $(SYSTEM_FOR)

$(BIN)/python: | system
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[scene,web,test,dev]"
	touch $(STAMP)

$(MAPLIBRE): twin_web/package.json twin_web/package-lock.json | system
	sh twin_web/vendor.sh

setup: system $(STAMP) $(MAPLIBRE)

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
	$(BIN)/ruff check twin twin_web tests benchmarks notebooks
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers of DESIGN.md §2 and no import circles (pyproject.toml [tool.importlinter])
	@echo "-- tests: PostgreSQL in a throwaway cluster the run starts and removes; a skipped test is a failure unless marked expected_skip(reason=...)"
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check twin twin_web tests benchmarks notebooks
	$(BIN)/ruff format --check twin twin_web tests benchmarks

bench: setup
	$(BIN)/pip install --quiet ".[bench]"
	$(BIN)/python benchmarks/build.py

clean:
	rm -rf $(VENV) twins .pytest_cache
