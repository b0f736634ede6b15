# agi-credit — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export TZ ?= UTC

.PHONY: help setup r-deps run serve test lint format bench-train bench-serve clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

setup: r-deps $(INSTALLED) ## Install R (Debian packages, as root) and the .venv; quick when done

r-deps:
	@scripts/ensure-r.sh

# The venv is rebuilt only when the dependencies change.
$(INSTALLED): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

run: setup ## Data and a model if none, then the predictor (:8080) and auth sidecar (:8000)
	@scripts/run-stack.sh

serve: setup ## Serve the model store with the KServe predictor (HTTP :8080, gRPC :8081)
	@echo "predictor: http://127.0.0.1:8080 (Ctrl-C stops it). Try:"
	@echo "  curl -s -H 'Content-Type: application/json' http://127.0.0.1:8080/v1/models/agi-credit:predict \\"
	@echo "    -d '{\"instances\": [{\"AMT_INCOME_TOTAL\": 5000, \"AMT_CREDIT\": 200000, \"DAYS_BIRTH\": -12000, \"AMT_GOODS_PRICE\": 180000}]}'"
	$(BIN)/agi-credit serve

test: setup ## Run the test suite (real R, real processes)
	$(BIN)/pytest

lint: setup ## ruff and mypy
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: setup ## Format the code with ruff
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench-train: setup ## Full-size synthetic data through the whole training job
	$(BIN)/python bench/train.py

bench-serve: setup ## The predictor under wrk, against stock KServe + sklearn and FastAPI
	@command -v wrk >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "wrk is missing: sudo apt-get install wrk" >&2; exit 1; }
	$(BIN)/python bench/serve.py

clean: ## Remove the venv, caches and the local store (keeps data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts src/*.egg-info
