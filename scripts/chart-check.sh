#!/usr/bin/env bash
# `make chart-check`: charts/kube-harden, with helm and kubectl as e2e/build-controlplane.sh
# builds them (--helm; cached by version).
#  1. helm lint --strict: default values, with the one required value (the API server's CIDR),
#     in cert-manager mode, with monitoring on.
#  2. scripts/chart-check.py: `helm template` against `kubectl kustomize` of manifests/
#     (default, cert-manager and monitoring), object by object, and every value doing what it
#     says; typos and wrong types refused by values.schema.json.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "chart-check: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

while IFS='=' read -r k v; do
  case "$k" in
    KUBECTL_BIN) kubectl_bin="$v" ;;
    HELM_BIN) helm_bin="$v" ;;
  esac
done < <(e2e/build-controlplane.sh --helm --print-env)
[[ -x "${kubectl_bin:-}" ]] || fail "kubectl not built: e2e/build-controlplane.sh"
[[ -x "${helm_bin:-}" ]] || fail "helm not built: e2e/build-controlplane.sh --helm (make helm)"
log "$("$helm_bin" version --short), kubectl $("$kubectl_bin" version --client -o json | python3 -c 'import json, sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"

# 1. lint ---------------------------------------------------------------------------------------
lint() {
  local out
  out="$("$helm_bin" lint --strict charts/kube-harden "$@" 2>&1)" || { echo "$out" >&2; fail "helm lint --strict $*"; }
  grep -q '1 chart(s) linted, 0 chart(s) failed' <<<"$out" || { echo "$out" >&2; fail "helm lint --strict $*: unexpected output"; }
  ! grep -qE '^\[(WARNING|ERROR)\]' <<<"$out" || { echo "$out" >&2; fail "helm lint --strict $*: warnings"; }
}
lint # (lint mode turns the chart's `fail` for the missing CIDR into an INFO line: renders the rest)
lint --set-json 'networkPolicy.apiServerCIDRs=["10.96.0.1/32"]'
lint --set certificates.mode=cert-manager
lint --set-json 'networkPolicy.apiServerCIDRs=["10.96.0.1/32"]' --set monitoring.serviceMonitor.enabled=true \
  --set monitoring.prometheusRule.enabled=true --set monitoring.dashboard.enabled=true
log "helm lint --strict: clean (default values, the CIDR set, cert-manager, monitoring on)"

# 2. renderings and values ------------------------------------------------------------------------
python3 scripts/chart-check.py "$helm_bin" "$kubectl_bin"
