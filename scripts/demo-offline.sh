#!/usr/bin/env bash
# Hardens every legacy manifest in examples/ offline and shows what changed, as a unified diff
# of the object before and after (both normalised by kubectl, so only real changes show), then
# the decisions kube-harden took.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${KUBE_HARDEN_BIN:-target/release/kube-harden}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for file in examples/*.yaml; do
  printf '\n\033[1m=== %s\033[0m\n' "$file"
  kubectl patch --local -f "$file" --type json -p '[]' -o yaml >"$tmp/before.yaml"
  "$bin" harden -f "$file" -o json >"$tmp/hardened.json"
  kubectl patch --local -f "$tmp/hardened.json" --type json -p '[]' -o yaml >"$tmp/after.yaml"
  diff -u --label before --label after "$tmp/before.yaml" "$tmp/after.yaml" || true
  echo "--- decisions:"
  "$bin" harden -f "$file" --explain 2>&1 >/dev/null | sed 's/^#/ /'
done
