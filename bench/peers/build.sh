#!/usr/bin/env bash
# Builds the admission controllers `make bench-peers` compares kube-harden with, from their
# published Go modules (no images, no release downloads), versions from the wrapper modules:
#   kyverno     github.com/kyverno/kyverno/cmd/kyverno          (bench/peers/kyverno/go.mod)
#   gatekeeper  github.com/open-policy-agent/gatekeeper/v3      (bench/peers/gatekeeper/go.mod)
# Cached by version under ${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/peers-<name>-<version>/
# and not rebuilt when present (E2E_REBUILD=1 rebuilds). Go builds run under `nice -n 19`.
#
# Usage: bench/peers/build.sh              build what is missing, print timings (stderr)
#        bench/peers/build.sh --print-env  print KYVERNO_BIN=... GATEKEEPER_BIN=... KYVERNO_DIR=...
#                                          GATEKEEPER_DIR=... lines (module source dirs: CRDs)
# Cold build: ~3-6 min each on 2 cores (the module download included); a cache hit is instant.
set -euo pipefail

peers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/common.sh
source "$peers_dir/../../e2e/common.sh"

print_env=0
for arg in "$@"; do
  case "$arg" in
    --print-env) print_env=1 ;;
    *) echo "usage: $0 [--print-env]" >&2; exit 2 ;;
  esac
done

KYVERNO_VERSION="$(mod_version "$peers_dir/kyverno/go.mod" github.com/kyverno/kyverno)"
GATEKEEPER_VERSION="$(mod_version "$peers_dir/gatekeeper/go.mod" github.com/open-policy-agent/gatekeeper/v3)"
[[ -n "$KYVERNO_VERSION" && -n "$GATEKEEPER_VERSION" ]] || { echo "cannot read versions from $peers_dir/*/go.mod" >&2; exit 1; }

cache_root="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}"
kyverno_bin="$cache_root/peers-kyverno-$KYVERNO_VERSION/kyverno"
gatekeeper_bin="$cache_root/peers-gatekeeper-$GATEKEEPER_VERSION/gatekeeper"

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
# go.sum is complete and committed: fail instead of editing go.mod/go.sum.
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export CGO_ENABLED=0

if ((print_env)); then
  # The module source (CRDs, manifests), downloaded if missing.
  kdir="$(cd "$peers_dir/kyverno" && go list -m -f '{{.Dir}}' github.com/kyverno/kyverno)"
  gdir="$(cd "$peers_dir/gatekeeper" && go list -m -f '{{.Dir}}' github.com/open-policy-agent/gatekeeper/v3)"
  echo "KYVERNO_VERSION=$KYVERNO_VERSION"
  echo "KYVERNO_BIN=$kyverno_bin"
  echo "KYVERNO_DIR=$kdir"
  echo "GATEKEEPER_VERSION=$GATEKEEPER_VERSION"
  echo "GATEKEEPER_BIN=$gatekeeper_bin"
  echo "GATEKEEPER_DIR=$gdir"
  exit 0
fi

log() { echo "build-peers: $*" >&2; }
command -v go >/dev/null || { log "go not found (need go >= 1.26)"; exit 1; }

t_all="$(now)"
# Gatekeeper's Makefile stamps its version this way.
go_build_cached "$peers_dir/gatekeeper" github.com/open-policy-agent/gatekeeper/v3 "$gatekeeper_bin" \
  "-X github.com/open-policy-agent/gatekeeper/v3/pkg/version.Version=$GATEKEEPER_VERSION"
go_build_cached "$peers_dir/kyverno" github.com/kyverno/kyverno/cmd/kyverno "$kyverno_bin" \
  "-X github.com/kyverno/kyverno/pkg/version.BuildVersion=$KYVERNO_VERSION"
log "done in $(elapsed "$t_all") s (kyverno $KYVERNO_VERSION, gatekeeper $GATEKEEPER_VERSION, cache $cache_root)"
