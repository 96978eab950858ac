#!/usr/bin/env bash
# kube-harden in a real cluster's admission chain, for a person to watch.
#
# Two demos; the machine decides which (and the script says why):
#   on the node    where a node can run here (root, cgroups, the node binaries built or Go to
#                  build them, the host's node lock free): scripts/demo-node.sh, the legacy nginx
#                  on a kubelet + containerd + runc (docs/node.md), plain, hardened without the
#                  fix (it breaks, with kube-harden's hint), hardened with the fix (it answers).
#   API server only  everywhere else (below): no pod ever runs, the stored objects are shown.
#
# The API-server-only demo starts the local control plane (e2e/controlplane.sh: kube-apiserver
# v1.36.3 + etcd on 127.0.0.1) and the kube-harden webhook, registers the webhook from
# manifests/base (with clientConfig.url instead of the Service), then applies the legacy
# Deployment in examples/deployment-web.yaml to two namespaces:
#   hardened  kube-harden.io/mode=enforce, Pod Security `restricted` enforced (and warned)
#   plain     not opted in, Pod Security `restricted` warned (so kubectl shows what is wrong)
# and shows kubectl's output with the warnings, the stored securityContexts side by side, and
# the webhook's metrics. Then it keeps running (with the kubeconfig path printed) until Ctrl-C.
#
# Usage: scripts/demo.sh [--once] [--node|--api-server-only]
#          --once             stop everything and exit after the show
#          --node             the node demo or fail (waits while another node holds the host)
#          --api-server-only  the API-server-only demo, even where a node could run
# Env:   DEMO_NODE          auto (default), yes (= --node), no (= --api-server-only)
#        KUBE_HARDEN_BIN    the binary (default target/release/kube-harden)
#        DEMO_STATE_DIR     state (default target/demo): control plane, certs, logs (the node's
#                           in <state>/node)
#        NO_COLOR=1         plain output
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
node=${DEMO_NODE:-auto}
for arg in "$@"; do
  case "$arg" in
    --once) once=1 ;;
    --node) node=yes ;;
    --api-server-only) node=no ;;
    *) echo "usage: $0 [--once] [--node|--api-server-only]" >&2; exit 2 ;;
  esac
done
case "$node" in
  auto | yes | no) ;;
  *) echo "demo: DEMO_NODE must be auto, yes or no (not '$node')" >&2; exit 2 ;;
esac

# bin, state, title, note, wait_for_webhook; free_ports.
# shellcheck source=scripts/demo-common.sh
source scripts/demo-common.sh
# shellcheck source=e2e/common.sh
source e2e/common.sh

# ---------------------------------------------------------------- which demo
# why_no_node: prints why a node cannot run here, or nothing when it can (e2e/cluster.sh needs
# root, cgroups and its binaries; one node per host, the bridge being the lock).
why_no_node() {
  if [[ "$(id -u)" != 0 ]]; then
    echo "not root (uid $(id -u)): a kubelet and containerd need root for cgroups, mounts and network namespaces"
    return
  fi
  if [[ ! -f /sys/fs/cgroup/cgroup.controllers && ! -d /sys/fs/cgroup/memory ]]; then
    echo "no cgroup hierarchy is mounted at /sys/fs/cgroup (neither v2 nor v1's memory controller)"
    return
  fi
  local line missing=()
  while IFS= read -r line; do
    [[ -x "${line#*=}" ]] || missing+=("$(basename "${line#*=}")")
  done < <(e2e/build-controlplane.sh --node --print-env)
  if ((${#missing[@]})) && ! command -v go >/dev/null; then
    echo "the node's binaries are not built (${missing[*]}) and Go is not installed to build them (docs/node.md)"
    return
  fi
  if [[ "$node" == auto && -e /sys/class/net/kh-node0 ]]; then
    echo "another node holds this host (bridge kh-node0 of $(cat /sys/class/net/kh-node0/ifalias 2>/dev/null)); --node waits for it"
  fi
}
if [[ "$node" == no ]]; then
  reason="asked for (--api-server-only or DEMO_NODE=no)"
else
  reason=$(why_no_node)
fi
if [[ -z "$reason" ]]; then
  title "The node demo: this machine can run a node (root, cgroups, node binaries)"
  node_args=()
  ((once)) && node_args+=(--once)
  exec scripts/demo-node.sh "${node_args[@]}"
fi
if [[ "$node" == yes ]]; then
  echo "demo: --node, but no node can run here: $reason" >&2
  exit 1
fi
title "The API-server-only demo: no pod will run"
echo "Why not on a node: $reason."
note "(the node demo runs the legacy nginx on a kubelet; it needs root: see docs/node.md)"

webhook_pid=''
# shellcheck disable=SC2317 # (run by the EXIT trap)
cleanup() {
  trap - EXIT INT TERM
  if [[ -n "$webhook_pid" ]] && kill -0 "$webhook_pid" 2>/dev/null; then
    kill -TERM "$webhook_pid" 2>/dev/null || true
    wait "$webhook_pid" 2>/dev/null || true
  fi
  E2E_STATE_DIR="$state/controlplane" e2e/controlplane.sh stop 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- control plane
title "Starting the control plane (kube-apiserver v1.36.3 + etcd, 127.0.0.1)"
export E2E_STATE_DIR="$state/controlplane"
E2E_WATCH_PID=$$ e2e/controlplane.sh start
eval "$(e2e/controlplane.sh env)"
kubectl=$KUBECTL_BIN
[[ -x "$kubectl" ]] || { echo "demo: kubectl missing ($kubectl): run e2e/build-controlplane.sh" >&2; exit 1; }
k() { "$kubectl" "$@"; }

# ---------------------------------------------------------------- webhook
title "Starting kube-harden serve"
certs="$state/webhook"
rm -rf "$certs" && mkdir -p "$certs"
ca="$E2E_STATE_DIR/certs"
# A serving certificate for 127.0.0.1, signed by the control plane's CA.
(
  cd "$certs"
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout tls.key -out tls.csr -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' >tls.ext
  openssl x509 -req -sha256 -days 1 -in tls.csr -CA "$ca/ca.crt" -CAkey "$ca/ca.key" \
    -CAcreateserial -CAserial tls.srl -extfile tls.ext -out tls.crt 2>/dev/null
  rm -f tls.csr tls.ext
)
mapfile -t ports < <(free_ports 2)
webhook_port=${ports[0]} metrics_port=${ports[1]}
"$bin" serve --tls-cert-file "$certs/tls.crt" --tls-key-file "$certs/tls.key" \
  --webhook-addr "127.0.0.1:$webhook_port" --metrics-addr "127.0.0.1:$metrics_port" \
  --shutdown-delay 0s --shutdown-timeout 2s </dev/null >"$state/kube-harden.log" 2>&1 &
webhook_pid=$!
for ((i = 0; i < 100; i++)); do
  curl -sf --max-time 1 "http://127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1 && break
  kill -0 "$webhook_pid" 2>/dev/null || { cat "$state/kube-harden.log" >&2; echo "demo: kube-harden exited" >&2; exit 1; }
  sleep 0.1
done
curl -sf --max-time 1 "http://127.0.0.1:$metrics_port/readyz" >/dev/null || { echo "demo: kube-harden not ready" >&2; exit 1; }
note "https://127.0.0.1:$webhook_port (/mutate, /audit), metrics http://127.0.0.1:$metrics_port/metrics, log $state/kube-harden.log"

# ---------------------------------------------------------------- registration
title "Registering the webhook from manifests/base (clientConfig.service -> url + caBundle)"
bundle=$(base64 -w0 "$ca/ca.crt")
# The base also holds the in-cluster Deployment, Service, ...; only the configuration is needed.
k kustomize manifests/base | python3 -c '
import sys
docs = sys.stdin.read().split("\n---\n")
hits = [d for d in docs if "\nkind: MutatingWebhookConfiguration\n" in "\n" + d + "\n"]
if len(hits) != 1:
    sys.exit("demo: expected one MutatingWebhookConfiguration in manifests/base, found %d" % len(hits))
print(hits[0])' >"$state/base-mutatingwebhookconfiguration.yaml"
patch='['
for i in 0 1; do
  path=$(k patch --local -f "$state/base-mutatingwebhookconfiguration.yaml" --type json -p '[]' \
    -o "jsonpath={.webhooks[$i].clientConfig.service.path}")
  patch+="{\"op\":\"remove\",\"path\":\"/webhooks/$i/clientConfig/service\"},"
  patch+="{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/url\",\"value\":\"https://127.0.0.1:$webhook_port$path\"},"
  patch+="{\"op\":\"add\",\"path\":\"/webhooks/$i/clientConfig/caBundle\",\"value\":\"$bundle\"},"
done
patch="${patch%,}]"
k patch --local -f "$state/base-mutatingwebhookconfiguration.yaml" --type json -p "$patch" -o yaml \
  >"$state/mutatingwebhookconfiguration.yaml"
k apply -f "$state/mutatingwebhookconfiguration.yaml"

# Namespaces: both warn on restricted; only one is opted in.
k create namespace hardened >/dev/null
k label namespace hardened kube-harden.io/mode=enforce \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null
k create namespace plain >/dev/null
k label namespace plain pod-security.kubernetes.io/warn=restricted >/dev/null
k create namespace demo-probe >/dev/null
k label namespace demo-probe kube-harden.io/mode=enforce >/dev/null

wait_for_webhook demo-probe registry.k8s.io/pause:3.10
note "namespaces: hardened (kube-harden.io/mode=enforce; Pod Security enforce+warn restricted), plain (not opted in; Pod Security warn restricted)"

# ---------------------------------------------------------------- the show
for ns in hardened plain; do
  title "kubectl apply -n $ns -f examples/deployment-web.yaml"
  k apply -n "$ns" -f examples/deployment-web.yaml 2>&1
done

title "Stored pod template of deployment/web: hardened (left) vs plain (right)"
show() { # <ns>: the security-relevant part of the stored pod template, compact
  k get deployment web -n "$1" -o json | python3 -c '
import json, sys
spec = json.load(sys.stdin)["spec"]["template"]["spec"]
def flat(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {flat(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(flat(x) for x in v) + "]"
    return str(v).lower() if isinstance(v, bool) else str(v)
print("pod securityContext:")
for key, val in (spec.get("securityContext") or {}).items():
    print(f"  {key}: {flat(val)}")
if not spec.get("securityContext"):
    print("  (none)")
for c in spec["containers"]:
    name = c["name"]
    print(f"container {name}:")
    sc = c.get("securityContext") or {}
    for key, val in sc.items():
        print(f"  {key}: {flat(val)}")
    if not sc:
        print("  securityContext: (none)")
    for kind in ("requests", "limits"):
        r = (c.get("resources") or {}).get(kind)
        print(f"  {kind}: " + (" ".join(f"{k}={v}" for k, v in r.items()) if r else "(none)"))
    env = [e["name"] + "=" + e.get("value", "") for e in c.get("env", [])]
    print("  env: " + (" ".join(env) if env else "(none)"))
    mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
    print("  mounts: " + (" ".join(mounts) if mounts else "(none)"))
vols = [v["name"] + (" (emptyDir " + v["emptyDir"].get("sizeLimit", "") + ")" if "emptyDir" in v else "")
        for v in spec.get("volumes", [])]
print("volumes:")
for v in vols or ["(none)"]:
    print("  " + v)'
}
show hardened >"$state/hardened.yaml"
show plain >"$state/plain.yaml"
python3 - "$state/hardened.yaml" "$state/plain.yaml" <<'PY'
import sys
left = open(sys.argv[1]).read().splitlines()
right = open(sys.argv[2]).read().splitlines()
width = max(len(l) for l in left + ["namespace hardened"]) + 2
print(f"{'namespace hardened':<{width}}| namespace plain")
print("-" * width + "+" + "-" * 40)
for i in range(max(len(left), len(right))):
    l = left[i] if i < len(left) else ""
    r = right[i] if i < len(right) else ""
    print(f"{l:<{width}}| {r}")
PY
echo
echo "annotation kube-harden.io/hardened:"
printf '  hardened: %s\n' "$(k get deployment web -n hardened -o jsonpath='{.metadata.annotations.kube-harden\.io/hardened}')"
printf '  plain:    %s\n' "$(k get deployment web -n plain -o jsonpath='{.metadata.annotations.kube-harden\.io/hardened}')"

title "kube-harden metrics (http://127.0.0.1:$metrics_port/metrics)"
metrics=$(curl -sf --max-time 5 "http://127.0.0.1:$metrics_port/metrics")
grep '^kube_harden_admission_requests_total' <<<"$metrics" || true
note "(the Pod review is the dry-run probe that waited for the webhook configuration to take effect)"
grep '^kube_harden_changes_total' <<<"$metrics" | grep 'namespace="hardened"' | grep 'outcome="applied"' || true

title "Try it yourself"
echo "kubeconfig: $KUBECONFIG"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "  $kubectl get deployment web -n hardened -o yaml"
echo "  $kubectl run legacy -n hardened --image=nginx     # a pod: hardened, with the warnings"
if ((once)); then
  title "Stopping (--once)"
  exit 0
fi
echo
note "Running until Ctrl-C (control plane and webhook stop then)."
while kill -0 "$webhook_pid" 2>/dev/null; do sleep 1; done
echo "demo: kube-harden exited; see $state/kube-harden.log" >&2
exit 1
