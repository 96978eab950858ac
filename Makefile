# kube-harden: common tasks. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
BIN := target/release/kube-harden
DEBUG_BIN := target/debug/kube-harden

.PHONY: help build test unit lint fmt fmt-check e2e controlplane demo demo-once demo-offline e2e-kind clean
.PHONY: docker-build static-check manifests-check monitoring-check
.PHONY: bench fuzz reliability soak

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## Build the release binary
	$(CARGO) build --release --locked

unit: ## Unit, integration and property tests
	$(CARGO) test --locked --all-targets

lint: ## clippy with warnings as errors (every workspace crate)
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check: ## Check formatting
	$(CARGO) fmt --all -- --check

controlplane: ## Build kube-apiserver, etcd and kubectl from Go modules (cached; cold ~6 min)
	e2e/build-controlplane.sh

e2e: controlplane ## End-to-end tests: the webhook in a real kube-apiserver's admission chain
	$(CARGO) build --locked --bin kube-harden
	KUBE_HARDEN_BIN=$(DEBUG_BIN) $(CARGO) test --locked -p kube-harden-e2e

test: fmt-check lint unit e2e static-check manifests-check monitoring-check ## Everything CI runs: format check, clippy, all tests, e2e, image build, manifests, monitoring

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE ?= ghcr.io/kube-harden/kube-harden:$(VERSION)

docker-build: ## Build the container image (without a running container engine: the same static build, checked)
	@if command -v docker >/dev/null && docker info >/dev/null 2>&1; then \
	  docker build -t $(IMAGE) --build-arg VERSION=$(VERSION) . ; \
	else \
	  echo "docker-build: no container engine answers here (docker info failed); running the Dockerfile's build step instead:"; \
	  echo "docker-build: scripts/static-build.sh, then the image would be distroless/static + that binary"; \
	  scripts/static-check.sh; \
	fi

static-check: ## The image's static binary: built as the Dockerfile builds it, ldd/readelf prove it static, Dockerfile checked
	scripts/static-check.sh

manifests-check: controlplane ## Render manifests/ with kustomize; dry-run=server, PSA, RBAC, fail-open on a real kube-apiserver
	scripts/manifests-check.sh

monitoring-check: ## promtool check/test of the alerts; every dashboard panel and alert queried in a real Prometheus scraping kube-harden
	scripts/monitoring-check.sh

demo: build controlplane ## kube-harden in a local cluster: a legacy Deployment applied, warnings, stored result, metrics (Ctrl-C stops)
	KUBE_HARDEN_BIN=$(BIN) ./scripts/demo.sh

demo-once: build controlplane ## The same demo, run through once and stopped
	KUBE_HARDEN_BIN=$(BIN) ./scripts/demo.sh --once

demo-offline: build ## Harden the legacy manifests in examples/ offline and show the diff
	KUBE_HARDEN_BIN=$(BIN) ./scripts/demo-offline.sh

e2e-kind: ## The real image and manifests in a kind cluster (needs docker, kind; not run by CI)
	e2e/kind/run.sh

BENCH_SECONDS ?= 5

bench: controlplane ## Benchmarks (figures, not timed tests): rules (criterion), server vs a canned baseline, pod creation via kube-apiserver
	$(CARGO) build --release --locked -p kube-harden -p kube-harden-bench --bins
	$(CARGO) bench --locked -p kube-harden-bench --bench engine
	$(CARGO) bench --locked -p kube-harden-bench --bench budget
	target/release/kube-harden-bench server --seconds $(BENCH_SECONDS)
	target/release/kube-harden-bench controlplane

fuzz: ## Fuzz the admission handler (cargo-fuzz, nightly) for FUZZ_SECONDS (60) per target, from fuzz/corpus
	scripts/fuzz.sh

reliability: ## Hostile clients, connection limit, a soak (KUBE_HARDEN_SOAK_SECONDS, 60), rotation and SIGTERM under load
	$(CARGO) test --locked --test tests -- --ignored --test-threads 1 --nocapture it::reliability
	$(CARGO) test --locked --test tests -- --nocapture it::lifecycle

soak: ## The soak for 10 minutes at a steady rate: zero errors, RSS flat (start and end printed)
	KUBE_HARDEN_SOAK_SECONDS=600 $(CARGO) test --locked --test tests -- --ignored --nocapture it::reliability::soak

clean: ## Remove build output
	$(CARGO) clean
