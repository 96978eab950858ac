#!/usr/bin/env bash
# Builds the e2e suite's OCI registry and its push client from published Go modules (no images,
# no release downloads), versions from the wrapper module e2e/registry/go.mod:
#   registry  github.com/distribution/distribution/v3/cmd/registry   (CNCF Distribution)
#   crane     github.com/google/go-containerregistry/cmd/crane       (pushes the zoo's OCI layouts)
# Cached by version under ${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/registry-<version>/ and
# not rebuilt when present (E2E_REBUILD=1 rebuilds).
#
# Usage: e2e/build-registry.sh              build what is missing, print timings (stderr)
#        e2e/build-registry.sh --print-env  print REGISTRY_BIN=... CRANE_BIN=... lines, nothing else
# Cold build: ~2-4 min on 2 cores; a cache hit is instant.
set -euo pipefail

e2e_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rmod="$e2e_dir/registry"
# shellcheck source=e2e/common.sh
source "$e2e_dir/common.sh"

print_env=0
for arg in "$@"; do
  case "$arg" in
    --print-env) print_env=1 ;;
    *) echo "usage: $0 [--print-env]" >&2; exit 2 ;;
  esac
done

DISTRIBUTION_VERSION="$(mod_version "$rmod/go.mod" github.com/distribution/distribution/v3)"
GGCR_VERSION="$(mod_version "$rmod/go.mod" github.com/google/go-containerregistry)"
[[ -n "$DISTRIBUTION_VERSION" && -n "$GGCR_VERSION" ]] || { echo "cannot read versions from $rmod/go.mod" >&2; exit 1; }

cache_root="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}"
registry_dir="$cache_root/registry-$DISTRIBUTION_VERSION"
crane_dir="$cache_root/crane-$GGCR_VERSION"

if ((print_env)); then
  echo "REGISTRY_BIN=$registry_dir/registry"
  echo "CRANE_BIN=$crane_dir/crane"
  exit 0
fi

log() { echo "build-registry: $*" >&2; }

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
# go.sum is complete and committed: fail instead of editing go.mod/go.sum.
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export CGO_ENABLED=0

command -v go >/dev/null || { log "go not found (need go >= 1.26)"; exit 1; }

t_all="$(now)"
# distribution's own version stamping (its Makefile's -X flags).
go_build_cached "$rmod" github.com/distribution/distribution/v3/cmd/registry "$registry_dir/registry" \
  "-X github.com/distribution/distribution/v3/version.version=$DISTRIBUTION_VERSION -X github.com/distribution/distribution/v3/version.mainpkg=github.com/distribution/distribution/v3"
go_build_cached "$rmod" github.com/google/go-containerregistry/cmd/crane "$crane_dir/crane" \
  "-X github.com/google/go-containerregistry/cmd/crane/cmd.Version=$GGCR_VERSION"
log "done in $(elapsed "$t_all") s (distribution $DISTRIBUTION_VERSION, crane $GGCR_VERSION, cache $cache_root)"
