# The targets every crate's Makefile shares; the crate's Makefile sets SERVICE (its directory and
# image name) and may set RUN_RECIPE_CUSTOM := 1 to define `run` itself.
SHELL := /bin/bash
.DEFAULT_GOAL := build

CARGO ?= cargo
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
PACKAGE := redline-$(SERVICE)
RUN_DIR ?= $(ROOT)/.run
MANIFEST ?= $(RUN_DIR)/manifest.json
REDIS_URL ?= redis://127.0.0.1:6390
IMAGE_PREFIX ?= redline/
IMAGE_TAG ?= latest
ARGS ?=

.PHONY: help build test lint run docker_build

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/$$(SERVICE)/$(SERVICE)/g' | awk -F: '!seen[$$1]++' | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-13s %s\n", $$1, $$2}'

build: ## Build the $(SERVICE) binary (debug)
	cd $(ROOT) && $(CARGO) build -p $(PACKAGE)

test: ## Run the $(SERVICE) crate's tests
	cd $(ROOT) && $(CARGO) test -p $(PACKAGE)

lint: ## clippy with warnings as errors, on this crate
	cd $(ROOT) && $(CARGO) clippy -p $(PACKAGE) --all-targets -- -D warnings

ifndef RUN_RECIPE_CUSTOM
run: build ## Run $(SERVICE) against `make run`'s devnet and Redis (.run/manifest.json, REDIS_URL); ARGS="..." adds flags
	cd $(ROOT) && REDIS_URL=$(REDIS_URL) $(CARGO) run -q -p $(PACKAGE) -- --manifest $(MANIFEST) $(ARGS)
endif

docker_build: ## Build the image redline/$(SERVICE):latest (FROM scratch, see ../docker; IMAGE_PREFIX, IMAGE_TAG)
	cd $(ROOT) && SERVICES=$(SERVICE) IMAGE_PREFIX=$(IMAGE_PREFIX) TAG=$(IMAGE_TAG) CARGO=$(CARGO) bash docker/build.sh
