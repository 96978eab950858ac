#!/usr/bin/env bash
# Installs and runs the admission controllers `make bench-peers` compares kube-harden with, on a
# control plane of e2e/controlplane.sh (out of cluster: no node, so both run as local processes
# reached by URL), each scoped to its own bench namespace by a label:
#   bench.kube-harden.io/config=kyverno                  Kyverno ClusterPolicy (policies/kyverno-clusterpolicy.yaml)
#   bench.kube-harden.io/config=kyverno-mutatingpolicy   Kyverno CEL MutatingPolicy (policies/kyverno-mutatingpolicy.yaml)
#   bench.kube-harden.io/config=gatekeeper               Gatekeeper mutators (policies/gatekeeper.yaml)
#   bench.kube-harden.io/config=map                      MutatingAdmissionPolicy (policies/map.yaml)
#
# Usage: bench/peers/peers.sh up <control plane state dir> <namespace>=<config>...
#            CRDs, namespaces (created and labelled), policies; starts Gatekeeper and Kyverno;
#            waits until each config's namespace gets a mutated pod. PIDs: <state>/peers/*.pid
#        bench/peers/peers.sh kyverno <control plane state dir> true|false <namespace>
#            restarts Kyverno with --admissionReports=true|false, waits until it mutates there
#        bench/peers/peers.sh down <control plane state dir>
#            stops Gatekeeper and Kyverno
# Env: KYVERNO_BIN, GATEKEEPER_BIN (default: bench/peers/build.sh's, built if missing).
set -euo pipefail

peers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$peers_dir/../.." && pwd)"
# shellcheck source=e2e/common.sh
source "$repo_dir/e2e/common.sh"

log() { echo "peers: $*" >&2; }
die() { log "error: $*"; exit 1; }

(($# >= 2)) || die "usage: $0 up|kyverno|down <control plane state dir> ..."
cmd="$1" cp_state="$(cd "$2" && pwd)"
shift 2
PID_DIR="$cp_state/peers"
mkdir -p "$PID_DIR/logs"

while IFS= read -r line; do
  k="${line%%=*}"
  [[ -n "${!k:-}" ]] || printf -v "$k" '%s' "${line#*=}"
done < <("$peers_dir/build.sh" --print-env)
# The control plane's kubeconfig, copied so that every process's command line names PID_DIR.
kubeconfig="$PID_DIR/kubeconfig"
cp "$cp_state/kubeconfig" "$kubeconfig"
kubectl_bin="$("$repo_dir/e2e/build-controlplane.sh" --print-env | sed -n 's/^KUBECTL_BIN=//p')"
kubectl() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }

# crds <file>...: the CustomResourceDefinitions among the YAML documents of the files.
crds() {
  python3 - "$@" <<'PY'
import re, sys
for path in sys.argv[1:]:
    for doc in re.split(r"^---\s*$", open(path).read(), flags=re.M):
        if re.search(r"^kind: CustomResourceDefinition\s*$", doc, flags=re.M):
            print("---\n" + doc.strip("\n"))
PY
}

# wait_mutated <namespace>: a pod created there comes back with a seccomp profile (every config
# adds one); the webhooks are registered asynchronously.
wait_mutated() {
  local ns="$1" i
  for ((i = 0; i < 120; i++)); do
    if kubectl -n "$ns" create -o jsonpath='{.spec.securityContext.seccompProfile.type}' -f - \
      <<<'{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"probe-"},"spec":{"containers":[{"name":"c","image":"example.com/probe:1"}]}}' \
      2>/dev/null | grep -q RuntimeDefault; then
      log "$ns: mutated after ${i} s"
      return 0
    fi
    sleep 1
  done
  die "$ns: no mutated pod after 120 s"
}

start_gatekeeper() {
  local port health certs="$PID_DIR/gatekeeper-certs"
  read -r port health < <(free_ports 2 | xargs)
  # A serving certificate for 127.0.0.1 from the control plane's CA (no cert rotation: it would
  # want a Service and the webhook configuration of its release manifest).
  mkdir -p "$certs"
  (
    cd "$certs"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout tls.key -out tls.csr -subj /CN=gatekeeper
    openssl x509 -req -sha256 -days 2 -in tls.csr -CA "$cp_state/certs/ca.crt" -CAkey "$cp_state/certs/ca.key" \
      -CAcreateserial -out tls.crt -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
    cp "$cp_state/certs/ca.crt" ca.crt
  ) >"$PID_DIR/logs/gatekeeper-certs.log" 2>&1 || die "openssl failed: $(cat "$PID_DIR/logs/gatekeeper-certs.log")"
  # The operations of the release's webhook Deployment.
  POD_NAMESPACE=gatekeeper-system POD_NAME=gatekeeper-bench NAMESPACE=gatekeeper-system CONTAINER_NAME=manager \
    start_bg gatekeeper "$GATEKEEPER_BIN" --kubeconfig="$kubeconfig" --port="$port" --host=127.0.0.1 \
    --cert-dir="$certs" --disable-cert-rotation --health-addr="127.0.0.1:$health" --metrics-addr=0 \
    --operation=webhook --operation=mutation-webhook --exempt-namespace=gatekeeper-system \
    --disable-opa-builtin='{http.send}' --logtostderr
  # Pods only, like the other webhooks here (the release's registration sends every resource).
  kubectl apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: bench-gatekeeper
webhooks:
- name: mutation.gatekeeper.sh
  clientConfig:
    url: https://127.0.0.1:$port/v1/mutate
    caBundle: $(base64 -w0 "$certs/ca.crt")
  rules:
  - {operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods], scope: Namespaced}
  namespaceSelector:
    matchLabels:
      bench.kube-harden.io/config: gatekeeper
  failurePolicy: Ignore
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 10
  reinvocationPolicy: Never
EOF
  log "gatekeeper $GATEKEEPER_VERSION on 127.0.0.1:$port (log $PID_DIR/logs/gatekeeper.log)"
}

# start_kyverno true|false: the admission controller alone (no background, reports or cleanup
# controllers), out of cluster: it registers its webhooks with the URL https://--serverIP.
start_kyverno() {
  local reports="$1" port metrics
  read -r port metrics < <(free_ports 2 | xargs)
  # A restart keeps the port: the registered webhooks' URL stays right meanwhile.
  [[ -s "$PID_DIR/kyverno.port" ]] && port="$(<"$PID_DIR/kyverno.port")"
  echo "$port" >"$PID_DIR/kyverno.port"
  KYVERNO_NAMESPACE=kyverno KYVERNO_POD_NAME=kyverno-bench KYVERNO_SERVICEACCOUNT_NAME=kyverno-admission-controller \
    KYVERNO_ROLE_NAME=kyverno:admission-controller KYVERNO_DEPLOYMENT=kyverno-admission-controller \
    KYVERNO_SVC=kyverno-svc INIT_CONFIG=kyverno METRICS_CONFIG=kyverno-metrics \
    start_bg kyverno "$KYVERNO_BIN" --kubeconfig="$kubeconfig" --serverIP="127.0.0.1:$port" \
    --webhookServerHost=127.0.0.1 --webhookServerPort="$port" --admissionReports="$reports" --disableMetrics=true --metricsPort="$metrics" \
    --controllerRuntimeMetricsAddress=0 --caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca \
    --tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair --generateValidatingAdmissionPolicy=false \
    --generateMutatingAdmissionPolicy=false --loggingFormat=text --v=1
  started_alive kyverno || die "kyverno exited: $(tail -5 "$PID_DIR/logs/kyverno.log")"
  log "kyverno $KYVERNO_VERSION on 127.0.0.1:$port, admissionReports=$reports (log $PID_DIR/logs/kyverno.log)"
}

cmd_up() {
  [[ -x "$KYVERNO_BIN" && -x "$GATEKEEPER_BIN" ]] || "$peers_dir/build.sh"
  local t0 pair ns cfg
  t0="$(now)"
  crds "$KYVERNO_DIR"/config/crds/*/*.yaml "$GATEKEEPER_DIR/deploy/gatekeeper.yaml" |
    kubectl apply --server-side -f - >/dev/null
  kubectl wait --for condition=established --timeout=60s crd --all >/dev/null
  for ns in kyverno gatekeeper-system; do kubectl create namespace "$ns" >/dev/null; done
  for pair in "$@"; do
    ns="${pair%%=*}" cfg="${pair#*=}"
    kubectl create namespace "$ns" >/dev/null
    kubectl label namespace "$ns" "bench.kube-harden.io/config=$cfg" >/dev/null
  done
  # Kyverno's configuration: its webhooks see only its two namespaces (the others must not pay
  # for a call), no registry rewriting.
  kubectl -n kyverno create configmap kyverno-metrics >/dev/null
  kubectl -n kyverno create configmap kyverno >/dev/null \
    --from-literal=enableDefaultRegistryMutation=false --from-literal=generateSuccessEvents=false \
    --from-literal=resourceFilters='[Event,*,*][*/*,kyverno,*][*/*,gatekeeper-system,*]' \
    --from-literal=webhooks='{"namespaceSelector":{"matchExpressions":[{"key":"bench.kube-harden.io/config","operator":"In","values":["kyverno","kyverno-mutatingpolicy"]}]}}'
  kubectl apply -f "$peers_dir/policies/map.yaml" >/dev/null
  # Gatekeeper owns its status objects by its own Pod (POD_NAME): one that never runs (no node).
  kubectl -n gatekeeper-system create -f - >/dev/null \
    <<<'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"gatekeeper-bench"},"spec":{"containers":[{"name":"manager","image":"example.com/none:1"}]}}'
  start_gatekeeper
  start_kyverno "${KYVERNO_REPORTS:-true}"
  # Gatekeeper and Kyverno must have their CRDs' watches up before the policies land.
  sleep 5
  kubectl apply -f "$peers_dir/policies/gatekeeper.yaml" >/dev/null
  kubectl apply -f "$peers_dir/policies/kyverno-clusterpolicy.yaml" -f "$peers_dir/policies/kyverno-mutatingpolicy.yaml" >/dev/null
  for pair in "$@"; do
    cfg="${pair#*=}"
    case "$cfg" in kyverno | kyverno-mutatingpolicy | gatekeeper | map) wait_mutated "${pair%%=*}" ;; esac
  done
  log "up in $(elapsed "$t0") s"
}

case "$cmd" in
  up)
    rm -f "$PID_DIR/kyverno.port"
    cmd_up "$@"
    ;;
  kyverno)
    stop_one kyverno
    start_kyverno "${1:?true|false}"
    wait_mutated "${2:?namespace to probe}"
    ;;
  down)
    stop_one kyverno
    stop_one gatekeeper
    ;;
  *) die "unknown command $cmd" ;;
esac
