# redline — top-level Makefile. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := build

CARGO ?= cargo
CHAINS ?= osmosis
ACCOUNTS ?= 10000
CREDIT_ACCOUNTS ?= 1000
SEED ?= 1
RPC_PORT ?= 26657
REDIS_PORT ?= 6390
RUN_DIR ?= .run
export CARGO_TERM_COLOR ?= auto

.PHONY: help build deps test lint fmt run clean-run

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

build: ## Build every crate (debug)
	$(CARGO) build --workspace --bins

deps: ## Install what this machine lacks (redis-server and chromium from Debian's packages)
	@bash scripts/ensure-redis.sh >/dev/null
	@bash scripts/ensure-chromium.sh >/dev/null

test: deps deps-py build ## Run every test (own throwaway Redis servers, devnets, Docker images, moto_server)
	$(CARGO) test --workspace --no-fail-fast

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

BACKEND ?= process
PRICE_DROP_AFTER ?= 30
PRICE_DROP ?= uatom=7
DASHBOARD_ADDR ?= 127.0.0.1:9300

# `exec`: the script replaces the recipe's shell, so the signals make passes on to its child
# (SIGTERM; SIGINT/SIGHUP reach the whole process group) land in the script's trap, which stops
# everything it started.
run: deps build $(if $(filter docker,$(BACKEND)),docker_build) ## The whole pipeline: devnet (CHAINS=osmosis, or osmosis,neutron for one devnet and one deployment each; ACCOUNTS=10000 Red Bank borrowers, CREDIT_ACCOUNTS=1000 credit accounts), manager + workers (BACKEND=process|docker), a price drop after PRICE_DROP_AFTER=30 s; Ctrl-C or SIGTERM stops it
	exec env CHAINS=$(CHAINS) ACCOUNTS=$(ACCOUNTS) CREDIT_ACCOUNTS=$(CREDIT_ACCOUNTS) SEED=$(SEED) RPC_PORT=$(RPC_PORT) REDIS_PORT=$(REDIS_PORT) RUN_DIR=$(RUN_DIR) \
		BACKEND=$(BACKEND) PRICE_DROP_AFTER=$(PRICE_DROP_AFTER) PRICE_DROP="$(PRICE_DROP)" \
		DASHBOARD_ADDR=$(DASHBOARD_ADDR) bash scripts/run.sh

clean-run: ## Remove the logs and state of `make run`
	rm -rf $(RUN_DIR)

# ---------------------------------------------------------------- images and AWS (docker/, deploy/)
IMAGE_PREFIX ?= redline/
IMAGE_TAG ?= latest
IMAGES ?= collector health-checker liquidator manager devnet
PYTHON ?= python3

.PHONY: docker_build docker_push deps-py

docker_build: ## Static binaries, then one FROM-scratch image per service: redline/<service>:latest (only what changed; cold, about 11 minutes on 2 cores)
	SERVICES="$(IMAGES)" IMAGE_PREFIX=$(IMAGE_PREFIX) TAG=$(IMAGE_TAG) CARGO=$(CARGO) bash docker/build.sh

docker_push: ## Tag and push the images: make docker_push REGISTRY=<host[/path]> (e.g. your ECR registry)
	@test -n "$(REGISTRY)" || { echo "usage: make docker_push REGISTRY=123456789012.dkr.ecr.us-east-1.amazonaws.com [IMAGE_TAG=latest]" >&2; exit 2; }
	@set -e; for service in $(IMAGES); do \
		source="$(IMAGE_PREFIX)$$service:$(IMAGE_TAG)"; \
		target="$(REGISTRY)/$(IMAGE_PREFIX)$$service:$(IMAGE_TAG)"; \
		docker image inspect "$$source" >/dev/null 2>&1 || { echo "$$source is missing: run make docker_build" >&2; exit 1; }; \
		docker tag "$$source" "$$target"; \
		echo "pushing $$target"; \
		docker push "$$target"; \
	done

PY_DEPS := 'moto[server]>=5,<6' 'cfn-lint>=1,<2' 'check-jsonschema>=0.29,<1'
PY_IMPORTS := import moto.server, boto3, cfnlint, check_jsonschema

deps-py: ## Install moto[server], cfn-lint and check-jsonschema from PyPI when missing (tests of the ecs backend, deploy/ and .github/workflows/)
	@$(PYTHON) -c '$(PY_IMPORTS)' 2>/dev/null || \
		$(PYTHON) -m pip install --quiet $(PY_DEPS) 2>/dev/null || \
		$(PYTHON) -m pip install --quiet --break-system-packages $(PY_DEPS)
	@$(PYTHON) -c '$(PY_IMPORTS)' || { echo "deps-py: $(PY_DEPS) did not install for $(PYTHON)" >&2; exit 1; }

# Where cargo builds (CARGO_TARGET_DIR when set, as cargo itself reads it).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: bench
bench: deps ## Run the benchmarks and write BENCHMARKS.md
	$(CARGO) build --release -p redline-tests --bin bench
	$(TARGET_DIR)/release/bench --output BENCHMARKS.md

# The fault tests write their figures as JSON fragments to RELIABILITY_DIR (also under
# `make test`, harmlessly); only this target renders RELIABILITY.md from them.
RELIABILITY_DIR ?= $(TARGET_DIR)/reliability

.PHONY: reliability
reliability: deps ## Run the fault tests (chaos_kill, chaos_redis, chaos_rpc) and write RELIABILITY.md from their figures
	rm -f $(RELIABILITY_DIR)/*.json
	$(CARGO) build --workspace --bins
	RELIABILITY_DIR=$(abspath $(RELIABILITY_DIR)) $(CARGO) test -p redline-tests --test chaos_kill --test chaos_redis --test chaos_rpc
	$(CARGO) run --quiet -p redline-tests --bin reliability -- --dir $(RELIABILITY_DIR) --output RELIABILITY.md
