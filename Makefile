# kube-harden: common tasks. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
BIN := target/release/kube-harden

.PHONY: help build test unit lint fmt fmt-check demo clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## Build the release binary
	$(CARGO) build --release --locked

unit: ## Unit, integration and property tests
	$(CARGO) test --locked --all-targets

lint: ## clippy with warnings as errors
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check: ## Check formatting
	$(CARGO) fmt --all -- --check

test: fmt-check lint unit ## Everything CI runs: format check, clippy, all tests

demo: build ## Harden the legacy manifests in examples/ and show the diff
	KUBE_HARDEN_BIN=$(BIN) ./scripts/demo-offline.sh

clean: ## Remove build output
	$(CARGO) clean
