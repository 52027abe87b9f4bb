# purchasing-power: `make demo` runs the whole loop on generated data; `make test` checks it.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_DATA := data/demo
DEMO_USERS ?= 20000
DEMO_DAYS ?= 365
# make test: one pytest worker per core, each taking whole files (their module fixtures build once)
TEST_WORKERS ?= 2

export DO_NOT_TRACK := 1
export DBT_PROFILES_DIR := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: help install demo build summary test lint docs format bench clean

help:
	@echo "make demo    install, generate demo data, dbt build, print a summary"
	@echo "make test    lint, the docs site and the test suite (what CI runs)"
	@echo "make lint    ruff, ruff format --check, mypy (strict), SQLFluff, yamllint"
	@echo "make docs    the documentation site into site/ (mkdocs --strict: broken links fail)"
	@echo "make format  ruff format and SQLFluff fix"
	@echo "make bench   benchmarks under bench/ (BENCH_SCALE=small|medium|large)"

$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(INSTALLED)

$(DEMO_DATA)/events.parquet: | $(INSTALLED)
	$(BIN)/purchasing-power generate --out $(DEMO_DATA) --users $(DEMO_USERS) --days $(DEMO_DAYS)

build: $(INSTALLED) $(DEMO_DATA)/events.parquet
	$(BIN)/dbt build --no-use-colors

summary: $(INSTALLED)
	$(BIN)/purchasing-power summary

demo: build summary

lint: $(INSTALLED)
	$(BIN)/ruff check python tests bench models
	$(BIN)/ruff format --check python tests bench models
	$(BIN)/mypy
	$(BIN)/yamllint --strict .
	PURCHASING_POWER_DB=$$(mktemp -d)/lint.duckdb $(BIN)/sqlfluff lint models tests/dbt

format: $(INSTALLED)
	$(BIN)/ruff format python tests bench models
	$(BIN)/ruff check --fix python tests bench models
	PURCHASING_POWER_DB=$$(mktemp -d)/lint.duckdb $(BIN)/sqlfluff fix models tests/dbt

# --strict turns every warning into an error: a link to a missing page or anchor fails.
docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: lint docs
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# lleaves, the compiled scorer the bench compares with, needs an llvmlite older than
# numba's: it gets an environment of its own.
LLEAVES_VENV := .venv-lleaves
LLEAVES_INSTALLED := $(LLEAVES_VENV)/.installed

$(LLEAVES_INSTALLED): $(INSTALLED) bench/lleaves.lock
	test -x $(LLEAVES_VENV)/bin/python || $(BIN)/uv venv --quiet --python $(BIN)/python $(LLEAVES_VENV)
	$(BIN)/uv pip install --quiet --python $(LLEAVES_VENV)/bin/python -r bench/lleaves.lock
	touch $@

bench: $(LLEAVES_INSTALLED)
	$(BIN)/python bench/run.py --scale $${BENCH_SCALE:-small} --lleaves-python $(LLEAVES_VENV)/bin/python

clean:
	rm -rf target logs warehouse artifacts data site .pytest_cache .ruff_cache .mypy_cache
