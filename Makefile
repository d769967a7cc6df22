# Every target sets itself up: a fresh machine needs only python3 and make.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --frozen --no-sync

.PHONY: run test bench lint setup clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	touch $@

setup: $(VENV)/.synced

run: setup
	$(RUN) vigil demo

test: setup
	$(RUN) pytest $(PYTEST_ARGS)

bench: setup
	$(RUN) python benchmarks/hashing.py
	$(RUN) python benchmarks/robustness.py
	$(RUN) python benchmarks/index.py $(INDEX_BENCH_ARGS)
	$(RUN) python benchmarks/api_load.py

lint: setup
	$(RUN) ruff check src tests benchmarks
	$(RUN) ruff format --check src tests benchmarks
	$(RUN) mypy src

clean:
	rm -rf $(VENV) $(TOOLS) vigil-data .pytest_cache .mypy_cache .ruff_cache
