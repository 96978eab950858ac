#!/usr/bin/env bash
# The node demo (scripts/demo.sh picks it where a node can run): the legacy nginx of
# examples/legacy-nginx.yaml on a real kubelet + containerd + runc with kube-harden in the
# admission chain (e2e/cluster.sh, docs/node.md), three times:
#   plain           not opted in: runs as root with a writable root; curl from the host answers
#   hardened        kube-harden.io/mode=enforce, no fix: kube-harden's warnings, and the pod
#                   breaks (its last log line, restart count and exit code)
#   hardened-fixed  the same, with the fix kube-harden's hint names (examples/legacy-nginx-fixed.yaml):
#                   runs hardened (its UID and read-only root from the pod spec); curl answers
# Every namespace warns on Pod Security `restricted`, so kubectl also says what is wrong.
# Builds what is missing first (make node, the nginx image of make images; both cached).
#
# Usage: scripts/demo-node.sh [--once]   --once: bring the node down and exit after the show;
#                                        else run until Ctrl-C (the node goes down then)
# Env:   KUBE_HARDEN_BIN, DEMO_STATE_DIR, NO_COLOR as for scripts/demo.sh; the node's state is
#        <DEMO_STATE_DIR>/node
set -euo pipefail
cd "$(dirname "$0")/.."

once=0
case "${1:-}" in
  --once) once=1 ;;
  "") ;;
  *) echo "usage: $0 [--once]" >&2; exit 2 ;;
esac

# bin, state, title, note, wait_for_webhook.
# shellcheck source=scripts/demo-common.sh
source scripts/demo-common.sh
export E2E_NODE_STATE_DIR="$state/node"

up=0
# shellcheck disable=SC2317 # (run by the EXIT trap)
cleanup() {
  trap - EXIT INT TERM
  if ((up)); then
    title "Stopping the node (e2e/cluster.sh down)"
    e2e/cluster.sh down 2>&1 | tail -n 1
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the node
title "Building what the node needs (make node; e2e/images/build.sh nginx): cached after the first run"
e2e/cluster.sh prepare
archive=$(e2e/images/build.sh nginx | awk '$1 == "archive" && $2 == "nginx" { print $4 }')
[[ -f "$archive" ]] || { echo "demo: e2e/images/build.sh printed no archive for nginx" >&2; exit 1; }

title "Starting the node (e2e/cluster.sh up): kubelet, containerd, runc, kube-harden in the admission chain"
up=1
E2E_WATCH_PID=$$ KUBE_HARDEN_BIN="$bin" e2e/cluster.sh up >/dev/null
eval "$(e2e/cluster.sh env)"
e2e/cluster.sh import "$archive" 2>&1 | sed 's/^/  /'
k() { "$KUBECTL_BIN" "$@"; }
note "node $E2E_NODE_NAME at $E2E_NODE_IP; pods in $E2E_NODE_SUBNET, reachable from this host"

namespaces=(plain hardened hardened-fixed)
for ns in "${namespaces[@]}"; do
  k create namespace "$ns" >/dev/null
  k label namespace "$ns" pod-security.kubernetes.io/warn=restricted >/dev/null
done
k label namespace hardened kube-harden.io/mode=enforce >/dev/null
k label namespace hardened-fixed kube-harden.io/mode=enforce >/dev/null
wait_for_webhook hardened "$E2E_PAUSE_IMAGE"
note "namespaces: plain (not opted in), hardened and hardened-fixed (kube-harden.io/mode=enforce); all warn on Pod Security restricted"

# ---------------------------------------------------------------- helpers
pod_json() { # <ns>: the Deployment's newest pod, as JSON
  k get pods -n "$1" -l app=nginx -o json | python3 -c '
import json, sys
pods = json.load(sys.stdin)["items"]
if not pods:
    sys.exit(1)
pods.sort(key=lambda p: p["metadata"]["creationTimestamp"])
print(json.dumps(pods[-1]))'
}

pod_py() { # <python code over p, the pod, and c, its container's status>: the pod JSON on stdin
  python3 -c "
import json, sys
p = json.load(sys.stdin)
c = (p.get('status', {}).get('containerStatuses') or [{}])[0]
$1"
}
field() { pod_py "print($1)"; } # <python expression>

# security: the container's UID and root filesystem as the pod spec has them, and what is writable
security() {
  pod_py "
sc = p['spec'].get('securityContext') or {}
cc = p['spec']['containers'][0].get('securityContext') or {}
uid = cc.get('runAsUser', sc.get('runAsUser'))
ro = cc.get('readOnlyRootFilesystem', False)
mounts = [m['mountPath'] for m in p['spec']['containers'][0].get('volumeMounts', [])
          if not m['mountPath'].startswith('/var/run/secrets/')]
print('runs as (pod spec): ' + ('UID %s' % uid if uid is not None else 'no runAsUser: the image default, root')
      + ', readOnlyRootFilesystem: ' + str(ro).lower()
      + ', mounts: ' + (' '.join(mounts) if mounts else '(none)'))"
}

get_root() { # <ip>: GET / on the pod IP from this host, retried for a few seconds
  local code i
  for ((i = 0; i < 10; i++)); do
    if code=$(curl -s --max-time 3 -o "$state/body.html" -w '%{http_code}' "http://$1/"); then
      echo "GET http://$1/ -> $code $(grep -o '<title>[^<]*</title>' "$state/body.html" || true)"
      return 0
    fi
    sleep 1
  done
  echo "GET http://$1/ -> no answer ($(curl -sS --max-time 3 "http://$1/" 2>&1 >/dev/null | head -n 1))"
  return 1
}

runs() { # <ns>: the pod comes up, answers from the host, and has not restarted
  k rollout status deployment/nginx -n "$1" --timeout=120s
  local pod
  pod=$(pod_json "$1")
  get_root "$(field "p['status']['podIP']" <<<"$pod")"
  printf 'pod %s: %s, restarts %s\n' "$(field "p['metadata']['name']" <<<"$pod")" \
    "$(field "c.get('ready') and 'Ready' or 'not Ready'" <<<"$pod")" "$(field "c.get('restartCount', 0)" <<<"$pod")"
  security <<<"$pod"
}

breaks() { # <ns>: the pod starts and fails, again and again; its last log line, restart count
  # and exit code. Read while the container is down (terminated, or waiting in its back-off):
  # while it runs again, the kubelet may already have removed the run that failed, and its log.
  local pod='' i name line=''
  for ((i = 0; i < 240; i++)); do
    sleep 0.5
    pod=$(pod_json "$1") || continue
    name=$(field "p['metadata']['name']" <<<"$pod")
    case "$(field "next(iter(c.get('state', {})), '') if c.get('restartCount', 0) >= 1 else ''" <<<"$pod")" in
      terminated) line=$(k logs -n "$1" "$name" --tail=1 2>/dev/null) || line='' ;;
      waiting) line=$(k logs -n "$1" "$name" --previous --tail=1 2>/dev/null) || line='' ;;
      *) line='' ;;
    esac
    [[ -z "$line" || "$line" == "unable to retrieve container logs"* ]] || break
    line=''
  done
  [[ -n "$line" ]] || { echo "demo: the unfixed nginx did not fail within 120 s" >&2; exit 1; }
  printf 'pod %s: %s, restarts %s, last exit: %s\n' "$name" \
    "$(field "' '.join([k + (' (' + v['reason'] + ')' if v.get('reason') else '') for k, v in c.get('state', {}).items()])" <<<"$pod")" \
    "$(field "c.get('restartCount', 0)" <<<"$pod")" \
    "$(field "'code %(exitCode)s (%(reason)s)' % (c['state'].get('terminated') or c['lastState']['terminated'])" <<<"$pod")"
  printf 'last log line: %s\n' "$line"
  get_root "$(field "p['status'].get('podIP', '')" <<<"$pod")" || true
  security <<<"$pod"
}

# ---------------------------------------------------------------- the show
title "1. Plain namespace: kubectl apply -n plain -f examples/legacy-nginx.yaml"
k apply -n plain -f examples/legacy-nginx.yaml 2>&1
runs plain

title "2. kube-harden, no fix: kubectl apply -n hardened -f examples/legacy-nginx.yaml"
k apply -n hardened -f examples/legacy-nginx.yaml 2>&1
note "(the warnings above are kube-harden's and Pod Security's; now the hardened pod starts...)"
breaks hardened

title "3. kube-harden with the fix: kubectl apply -n hardened-fixed -f examples/legacy-nginx-fixed.yaml"
diff -u examples/legacy-nginx.yaml examples/legacy-nginx-fixed.yaml | grep '^[+-] ' || true
k apply -n hardened-fixed -f examples/legacy-nginx-fixed.yaml 2>&1
runs hardened-fixed

title "kube-harden metrics ($E2E_WEBHOOK_METRICS_URL/metrics)"
metrics=$(curl -sf --max-time 5 "$E2E_WEBHOOK_METRICS_URL/metrics")
grep '^kube_harden_admission_requests_total' <<<"$metrics" || true

note "(built, up and shown in $SECONDS s)"

title "Try it yourself"
echo "kubeconfig: $KUBECONFIG"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "  $KUBECTL_BIN get pods -A -o wide"
echo "  $KUBECTL_BIN get pod -n hardened-fixed -l app=nginx -o yaml"
if ((once)); then
  exit 0
fi
echo
note "Running until Ctrl-C (the node goes down then: e2e/cluster.sh down)."
while [[ -s "$E2E_NODE_STATE_DIR/kube-harden.pid" ]] && kill -0 "$(<"$E2E_NODE_STATE_DIR/kube-harden.pid")" 2>/dev/null; do
  sleep 1
done
echo "demo: kube-harden exited; see $E2E_NODE_STATE_DIR/logs/kube-harden.log" >&2
exit 1
