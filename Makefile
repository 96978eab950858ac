# kube-harden: common tasks. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
BIN := target/release/kube-harden
DEBUG_BIN := target/debug/kube-harden

.PHONY: help build test test-targets unit lint standalone-check fmt fmt-check e2e controlplane psa-fixtures registry node node-e2e node-up node-down demo demo-once demo-offline e2e-kind clean
.PHONY: docker-build image static-check manifests-check monitoring-check helm chart-check
.PHONY: bench bench-peers bench-shapes conditions-cost peers fuzz fuzz-replay answers reliability soak yaml-oracle
.PHONY: images images-check images-repro legacy-e2e

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## Build the release binary
	$(CARGO) build --release --locked

unit: yaml-oracle psa-fixtures ## Unit, integration and property tests
	fixtures="$$(scripts/psa-fixtures.sh)"; KUBE_HARDEN_PSA_FIXTURES="$$fixtures" $(CARGO) test --locked --all-targets

yaml-oracle: ## Build the YAML oracle (Kubernetes' own YAML-to-JSON, from Go modules; cached) the YAML tests compare with
	tests/yaml-oracle/build.sh

lint: standalone-check ## clippy with warnings as errors (every workspace crate); nothing points outside the repository; fuzz/Cargo.lock fresh
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	# --all-targets skips the `test = false` suites (node, legacy apps): lint them by name.
	$(CARGO) clippy --locked -p kube-harden-e2e --test node --test legacy --test node_install --test node_helm -- -D warnings
	# fuzz/ is its own workspace: its lock must resolve and match Cargo.lock's versions.
	scripts/fuzz-lock-check.sh

# A clone has nothing beside it. The patterns are written so that this recipe does not match itself.
standalone-check: ## No tracked file outside docs/ points beside the repository (at the shared/ next to it)
	@rc=0; git grep -nI -e '[.][.]/shared' -e '/work/[s]hared' -- . ':(exclude)docs/' || rc=$$?; \
	case $$rc in \
	  0) echo "standalone-check: the lines above point outside the repository (a clone has no shared/ beside it)" >&2; exit 1 ;; \
	  1) echo "standalone-check: no tracked file outside docs/ points beside the repository" ;; \
	  *) echo "standalone-check: git grep failed (exit $$rc): not a git checkout?" >&2; exit 1 ;; \
	esac

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check: ## Check formatting
	$(CARGO) fmt --all -- --check

controlplane: ## Build kube-apiserver, etcd and kubectl from Go modules (cached; cold ~6 min)
	e2e/build-controlplane.sh

registry: ## Build the e2e OCI registry (distribution v3) and crane from Go modules (cached; cold ~3 min)
	e2e/build-registry.sh

psa-fixtures: ## Fetch Pod Security Admission's restricted fixtures (Go module k8s.io/pod-security-admission, cached); print their directory
	scripts/psa-fixtures.sh

e2e: controlplane psa-fixtures registry ## End-to-end tests: the webhook in a real kube-apiserver's admission chain; the e2e OCI registry
	$(CARGO) build --locked --bin kube-harden
	fixtures="$$(scripts/psa-fixtures.sh)"; KUBE_HARDEN_BIN=$(DEBUG_BIN) KUBE_HARDEN_PSA_FIXTURES="$$fixtures" $(CARGO) test --locked -p kube-harden-e2e

# What `make test` runs, in order (.ci/run runs and times them one by one: `make test-targets`).
TEST_TARGETS := fmt-check lint unit e2e node-e2e legacy-e2e static-check manifests-check monitoring-check chart-check

test: $(TEST_TARGETS) ## Everything CI runs: format check, clippy, all tests, e2e, node e2e, legacy apps on the node, image build, manifests, monitoring

test-targets:
	@echo $(TEST_TARGETS)

node: ## The node (docs/node.md): kubelet, scheduler, controller-manager, containerd, pause image (cached; cold ~15 min); runc + CNI plugins from apt
	e2e/cluster.sh prepare

node-e2e: node helm ## Node e2e (root): hardened pods really run on a kubelet + containerd + runc with kube-harden in the admission chain; then kube-harden's own image and manifests installed on a node: restart, upgrade, renewal, replica loss without a gap; fail-open; uninstall in any order; then installed, upgraded and uninstalled with its Helm chart
	cd e2e/node/programs && GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0 go test -count=1 ./...
	$(CARGO) build --locked --bin kube-harden
	KUBE_HARDEN_BIN=$(DEBUG_BIN) $(CARGO) test --locked -p kube-harden-e2e --test node
	KUBE_HARDEN_BIN=$(DEBUG_BIN) $(CARGO) test --locked -p kube-harden-e2e --test node_install
	KUBE_HARDEN_BIN=$(DEBUG_BIN) $(CARGO) test --locked -p kube-harden-e2e --test node_helm

node-up: node ## Start the single-node cluster with kube-harden in the background; prints the kubeconfig path
	$(CARGO) build --locked --bin kube-harden
	KUBE_HARDEN_BIN=$(DEBUG_BIN) e2e/cluster.sh up

node-down: ## Stop the single-node cluster and restore the host
	e2e/cluster.sh down

images-check: ## Tests of the OCI image assembler (scripts/oci-image.py): reproducible digests, modes, whiteouts
	python3 scripts/oci-image-test.py

images: images-check ## The legacy-app zoo from Debian packages (root; cached; cold ~5 min): e2e/images/build.sh
	e2e/images/build.sh

images-repro: ## The zoo built twice from empty caches (root; ~2 min): same digests, else what differs
	e2e/images/repro-check.sh

legacy-e2e: node images registry ## Legacy apps on the node (root), pulled from the e2e registry: plain, hardened image-blind and image-aware (--resolve-images), hardened with the fix; writes docs/legacy-apps.md
	$(CARGO) build --locked --bin kube-harden
	KUBE_HARDEN_BIN=$(DEBUG_BIN) $(CARGO) test --locked -p kube-harden-e2e --test legacy

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE ?= ghcr.io/kube-harden/kube-harden:$(VERSION)

docker-build: ## Build the container image (without a running container engine: `make image`, the same binary and layout as an OCI archive)
	@if command -v docker >/dev/null && docker info >/dev/null 2>&1; then \
	  docker build -t $(IMAGE) --build-arg VERSION=$(VERSION) . ; \
	else \
	  echo "docker-build: no container engine answers here (docker info failed): assembling the image without one (make image)"; \
	  scripts/image-build.sh --name $(IMAGE) -o target/image/kube-harden-$(VERSION).ghcr.oci.tar; \
	fi

image: ## The image as an OCI archive without a container engine (root): static binary, distroless-style layout, reproducible digest; prints path and digest
	scripts/image-build.sh

static-check: ## The image's static binary: built as the Dockerfile builds it, ldd/readelf prove it static, Dockerfile checked
	scripts/static-check.sh

manifests-check: controlplane ## Render manifests/ with kustomize; dry-run=server, PSA, RBAC, fail-open on a real kube-apiserver
	scripts/manifests-check.sh

helm: ## Build helm from its Go module (helm.sh/helm/v4, e2e/helm; cached by version)
	e2e/build-controlplane.sh --helm

chart-check: helm ## charts/kube-harden: helm lint --strict; helm template = kubectl kustomize of manifests/, object by object; values and schema; every value changed, dry-run=server on a real kube-apiserver
	scripts/chart-check.sh

monitoring-check: ## promtool check/test of the alerts; every dashboard panel and alert queried in a real Prometheus scraping kube-harden
	scripts/monitoring-check.sh

# Where a node can run (root, cgroups, Go), scripts/demo.sh builds it and the nginx image itself
# (`make node`, e2e/images/build.sh nginx): only that path needs them. DEMO_NODE=yes|no forces a path.
demo: build controlplane ## As root: legacy nginx on the node, broken hardened, running with the fix; else (says why) the API-server-only demo (Ctrl-C stops)
	KUBE_HARDEN_BIN=$(BIN) ./scripts/demo.sh

demo-once: build controlplane ## The same demo, run through once and stopped
	KUBE_HARDEN_BIN=$(BIN) ./scripts/demo.sh --once

demo-offline: build ## Harden the legacy manifests in examples/ offline and show the diff
	KUBE_HARDEN_BIN=$(BIN) ./scripts/demo-offline.sh

e2e-kind: ## The real image and manifests in a kind cluster (needs docker, kind; not run by CI)
	e2e/kind/run.sh

BENCH_SECONDS ?= 5
BENCH_PEERS_PODS ?= 400
BENCH_PEERS_LONG_SECONDS ?= 10
BENCH_SHAPES_PODS ?= 400
BENCH_SHAPES_ROUNDS ?= 3
BENCH_SHAPES_PROFILE_SECONDS ?= 7

bench: controlplane ## Benchmarks (figures, not timed tests): rules (criterion), server vs a canned baseline, pod creation via kube-apiserver
	$(CARGO) build --release --locked -p kube-harden -p kube-harden-bench --bins
	$(CARGO) bench --locked -p kube-harden-bench --bench engine
	$(CARGO) bench --locked -p kube-harden-bench --bench budget
	$(CARGO) bench --locked -p kube-harden-bench --bench images
	target/release/kube-harden-bench server --seconds $(BENCH_SECONDS)
	target/release/kube-harden-bench controlplane

peers: ## Build Kyverno and Gatekeeper from their Go modules for bench-peers (cached by version; cold ~5-10 min)
	bench/peers/build.sh

bench-shapes: controlplane ## kube-apiserver's CPU per pod by the shape of the webhook's patch (variants of equal effect side by side) and its CPU profiles (figures; not in `make test`)
	$(CARGO) build --release --locked -p kube-harden-bench --bins
	target/release/kube-harden-bench patch-shapes --pods $(BENCH_SHAPES_PODS) --rounds $(BENCH_SHAPES_ROUNDS) --profile-seconds $(BENCH_SHAPES_PROFILE_SECONDS)

conditions-cost: controlplane ## What a matchConditions skip would save the API server per Pod CREATE (figures; not in `make test`; docs/operations.md)
	$(CARGO) build --release --locked --bin kube-harden
	KUBE_HARDEN_BIN=target/release/kube-harden $(CARGO) test --locked -p kube-harden-e2e --test conditions_cost

bench-peers: controlplane peers ## kube-harden beside Kyverno, Gatekeeper and MutatingAdmissionPolicy on one control plane: latency, CPU per pod, RSS, fields stored, long windows with kube-apiserver profiles (figures; not in `make test`)
	$(CARGO) build --release --locked -p kube-harden -p kube-harden-bench --bins
	target/release/kube-harden-bench peers --pods $(BENCH_PEERS_PODS) --long-seconds $(BENCH_PEERS_LONG_SECONDS)

fuzz: ## Fuzz the admission handler (cargo-fuzz, nightly) for FUZZ_SECONDS (60) per target, from fuzz/corpus
	scripts/fuzz.sh

fuzz-replay: ## The fuzz targets' checks on every committed corpus input (stable toolchain, no libFuzzer run)
	cd fuzz && CARGO_TARGET_DIR=../target $(CARGO) build --locked --bin answers
	target/debug/answers replay .

answers: ## Are the answers to the fuzz corpus and the fixtures byte-identical to BASE's? (make answers BASE=<commit>)
	scripts/answers.sh

reliability: ## Hostile clients, connection limit, a soak (KUBE_HARDEN_SOAK_SECONDS, 60), rotation and SIGTERM under load
	$(CARGO) test --locked --test tests -- --ignored --test-threads 1 --nocapture it::reliability
	$(CARGO) test --locked --test tests -- --nocapture it::lifecycle

soak: ## The soak for 10 minutes at a steady rate: zero errors, RSS flat (start and end printed)
	KUBE_HARDEN_SOAK_SECONDS=600 $(CARGO) test --locked --test tests -- --ignored --nocapture it::reliability::soak

clean: ## Remove build output
	$(CARGO) clean
