#!/usr/bin/env bash
# `make chart-check`: charts/kube-harden, with helm and kubectl as e2e/build-controlplane.sh
# builds them (--helm; cached by version).
#  1. helm lint --strict: default values, with the one required value (the API server's CIDR),
#     in cert-manager mode, with monitoring on.
#  2. scripts/chart-check.py: `helm template` against `kubectl kustomize` of manifests/
#     (default, cert-manager and monitoring), object by object, and every value doing what it
#     says; typos and wrong types refused by values.schema.json.
#  3. Renderings with every value changed (the defaults are kustomize's, which
#     manifests-check validates), self-managed and cert-manager: `kubectl apply
#     --dry-run=server --validate=strict` on a real kube-apiserver (e2e/controlplane.sh, its own
#     state dir), cert-manager and Prometheus Operator objects against e2e/testdata/crds; no
#     warning (Pod Security restricted included).
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

# 3. non-default renderings on a real API server ------------------------------------------------
work="${CHART_CHECK_DIR:-$PWD/target/chart-check}"
rm -rf "$work"; mkdir -p "$work"
export E2E_STATE_DIR="${E2E_STATE_DIR:-$PWD/target/e2e-chart}" E2E_WATCH_PID=$$
trap 'e2e/controlplane.sh stop || true' EXIT
e2e/controlplane.sh start
export KUBECONFIG="$E2E_STATE_DIR/kubeconfig"
k() { "$kubectl_bin" "$@"; }
k apply -f e2e/testdata/crds/ >&2
k wait --for=condition=Established --timeout=60s -f e2e/testdata/crds/ >&2
printf 'runAsUser: 3000\nrunAsGroup: 3000\n' >"$work/policy.yaml"
changed=(--set namespace.name=hardening --set replicas=3 --set image.repository=registry.example.com/kh
  --set "image.digest=sha256:$(printf '%064d' 0)" --set image.pullPolicy=Always --set resources.limits.memory=300Mi
  --set webhook.modeLabel=example.com/harden --set-json 'webhook.excludeNamespaces=["kube-system","monitoring"]'
  --set-json 'extraEnv=[{"name":"GOMAXPROCS","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu"}}}]'
  --set monitoring.serviceMonitor.enabled=true --set monitoring.serviceMonitor.labels.release=prom
  --set monitoring.prometheusRule.enabled=true --set monitoring.dashboard.enabled=true
  --set-file policy="$work/policy.yaml")
"$helm_bin" template kube-harden charts/kube-harden "${changed[@]}" \
  --set-json 'networkPolicy.apiServerCIDRs=["10.0.0.1/32","10.0.0.2/32"]' >"$work/self-managed.yaml"
"$helm_bin" template kube-harden charts/kube-harden "${changed[@]}" --set certificates.mode=cert-manager \
  >"$work/cert-manager.yaml"
# The rendered Namespace for real, Pod Security labels included (a dry-run namespace cannot hold
# dry-run objects, and restricted then warns about anything in it that would violate it).
python3 -c 'import sys, yaml; [yaml.safe_dump(d, sys.stdout) for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Namespace"]' \
  "$work/self-managed.yaml" | k apply -f - >&2
[[ "$(k get namespace hardening -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')" == restricted ]] \
  || fail "the rendered namespace hardening does not enforce restricted"
for f in self-managed cert-manager; do
  if ! k apply --dry-run=server --validate=strict -f "$work/$f.yaml" >"$work/$f.out" 2>&1; then
    cat "$work/$f.out" >&2; fail "every value changed, $f: kubectl apply --dry-run=server refused it"
  fi
  ! grep -qi warning "$work/$f.out" || { cat "$work/$f.out" >&2; fail "every value changed, $f: the API server warned"; }
  log "every value changed, $f: $(grep -c 'dry run' "$work/$f.out") objects accepted by kubectl apply --dry-run=server, no warnings"
done
log "ok"
