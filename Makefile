# agi-credit — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export TZ ?= UTC

.PHONY: help setup r-deps k8s-tools run serve test test-containers kind-e2e k8s lint format \
	bench-train bench-serve bench-scorer bench-soak images compose-up compose-down clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

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

# kustomize (k8s/ is built with it in the tests): Debian's, into .venv/bin, when missing.
k8s-tools: $(INSTALLED)
	@scripts/ensure-k8s-tools.sh kustomize

test: setup k8s-tools ## Run the test suite (real R, real processes, the chart and k8s/ rendered)
	$(BIN)/pytest

lint: setup ## ruff, mypy, hadolint, bandit and pip-audit
	$(BIN)/ruff check src tests bench scripts charts
	$(BIN)/ruff format --check src tests bench scripts charts
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile
	$(BIN)/bandit -q -c pyproject.toml -r src
	@scripts/audit.sh

format: setup ## Format the code with ruff
	$(BIN)/ruff format src tests bench scripts charts
	$(BIN)/ruff check --fix src tests bench scripts charts

bench-train: setup ## Full-size synthetic data through the whole training job
	$(BIN)/python bench/train.py

bench-serve: setup ## The predictor under wrk, against stock KServe + sklearn and FastAPI
	@command -v wrk >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "wrk is missing: sudo apt-get install wrk" >&2; exit 1; }
	$(BIN)/python bench/serve.py $(ARGS)

bench-scorer: setup ## The compiled scorer alone, against its BLAS form of before (one run)
	$(BIN)/python bench/scorer.py $(ARGS)

SOAK_SECONDS ?= 600

bench-soak: setup ## The stack under steady REST + gRPC load while v2 is trained, promoted, rolled back
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS) $(ARGS)

# The images, their CA bundle for pip inside the builds (this machine's, when it exists: a
# TLS-inspecting proxy needs it; `make images EXTRA_CA_BUNDLE=` passes none).
IMAGES ?= training predictor auth
EXTRA_CA_BUNDLE ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)

images: ## Build the three container images (tagged <yyyymmdd>-<short sha> and latest)
	@IMAGES='$(IMAGES)' EXTRA_CA_BUNDLE='$(EXTRA_CA_BUNDLE)' scripts/build-images.sh

COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

compose-up: images ## Build the images, then train once and serve with docker compose (auth on :8000)
	$(COMPOSE) up -d
	@echo "agi-credit: http://127.0.0.1:$${AUTH_PORT:-8000} (the training service runs first; see README, With Docker)"

compose-down: ## Stop the compose stack (its volumes stay: add ARGS=-v to remove them)
	$(COMPOSE) --profile tools down $(ARGS)

test-containers: setup ## Images, the compose stack and the end-to-end tests through auth (installs Docker)
	$(BIN)/python scripts/test_containers.py

MODE ?= deployment

kind-e2e: setup ## On a kind cluster: images, install (MODE=deployment|kserve|kustomize), tests/e2e, helm test
	MODE=$(MODE) $(BIN)/python scripts/kind_e2e.py

k8s: setup ## Regenerate k8s/base from the chart (tests check it is current)
	$(BIN)/python scripts/render_k8s.py

clean: ## Remove the venv, caches and the local store (keeps data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts src/*.egg-info
