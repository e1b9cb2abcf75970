# redline — top-level Makefile. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := build

CARGO ?= cargo
ACCOUNTS ?= 10000
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

deps: ## Install what this machine lacks (redis-server from Debian's packages)
	@bash scripts/ensure-redis.sh >/dev/null

test: deps ## Run every test (starts its own throwaway Redis servers and devnets)
	$(CARGO) test --workspace --no-fail-fast

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

run: deps build ## The whole pipeline on a devnet with $(ACCOUNTS) accounts; Ctrl-C stops it
	ACCOUNTS=$(ACCOUNTS) SEED=$(SEED) RPC_PORT=$(RPC_PORT) REDIS_PORT=$(REDIS_PORT) RUN_DIR=$(RUN_DIR) \
		bash scripts/run.sh

clean-run: ## Remove the logs and state of `make run`
	rm -rf $(RUN_DIR)
