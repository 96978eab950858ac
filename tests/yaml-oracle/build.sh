#!/usr/bin/env bash
# Builds tests/yaml-oracle (a YAML-to-JSON converter using Kubernetes' own YAML reading, see
# main.go) from Go modules and prints the binary's path. The binary is cached under
# ${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/yaml-oracle/<hash of go.mod, go.sum, main.go>/
# and not rebuilt when present. Needs Go >= 1.26 (PATH or /usr/local/go/bin) and the Go module
# proxy (or a warm module cache).
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hash="$(cat "$dir/go.mod" "$dir/go.sum" "$dir/main.go" | sha256sum | cut -c1-16)"
out="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/yaml-oracle/$hash/yaml-oracle"
if [[ ! -x "$out" ]]; then
  export PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null || { echo "yaml-oracle: go not found (need go >= 1.26)" >&2; exit 1; }
  mkdir -p "$(dirname "$out")"
  # go.sum is complete and committed: fail instead of editing go.mod/go.sum.
  (cd "$dir" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false -trimpath" CGO_ENABLED=0 \
    go build -o "$out.tmp" .)
  mv "$out.tmp" "$out"
  echo "yaml-oracle: built $out" >&2
fi
echo "$out"
