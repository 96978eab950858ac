#!/usr/bin/env bash
# make e2e-kind: kube-harden installed the way a cluster admin installs it, in a kind cluster.
#   1. kind create cluster (e2e/kind/kind-config.yaml), unless it exists
#   2. docker build the image from the Dockerfile, kind load it onto the nodes
#   3. the default installation (manifests/: self-managed certificates) with its parameter, the
#      API server's CIDR, set from the kubernetes Service's endpoints, and the Deployment's
#      image swapped for the one just built; wait for the rollout
#   4. smoke test: a namespace with Pod Security restricted + kube-harden.io/mode=enforce
#      admits a legacy pod, stored hardened; the same pod is refused where kube-harden is off
# Needs: docker, kind, kubectl. Not run by `make test` (no Docker on the CI machine).
# Env: KIND_CLUSTER (default kube-harden-e2e), KIND_NODE_IMAGE, IMAGE (default
#      kube-harden:e2e), KEEP_CLUSTER=1 to leave the cluster running afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster=${KIND_CLUSTER:-kube-harden-e2e}
image=${IMAGE:-kube-harden:e2e}
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: $tool is required (see e2e/kind/README.md)" >&2; exit 1; }
done
log() { printf '\n=== %s\n' "$*"; }
ctx="kind-$cluster"
k() { kubectl --context "$ctx" "$@"; }

if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "kind create cluster --name $cluster"
  kind create cluster --name "$cluster" --config e2e/kind/kind-config.yaml \
    ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s
fi
if [[ "${KEEP_CLUSTER:-0}" != 1 ]]; then
  trap 'kind delete cluster --name "$cluster"' EXIT
fi

log "docker build -t $image ."
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

apiserver_ip="$(k get endpointslices -n default -l kubernetes.io/service-name=kubernetes \
  -o jsonpath='{.items[0].endpoints[0].addresses[0]}')"
log "kubectl apply of manifests/ (API server $apiserver_ip/32, image $image)"
k kustomize manifests/ | sed "s#cidr: SET-THE-API-SERVER-CIDR#cidr: $apiserver_ip/32#" | k apply -f -
k -n kube-harden set image deployment/kube-harden "*=$image"
k -n kube-harden rollout status deployment/kube-harden --timeout=180s

log "waiting for the webhook configuration to get its caBundle and take effect"
k create namespace kh-probe --dry-run=client -o yaml | k apply -f -
k label namespace kh-probe kube-harden.io/mode=enforce --overwrite
for ((i = 0; i < 60; i++)); do
  if k -n kh-probe run probe --image=registry.k8s.io/pause:3.10 --dry-run=server -o yaml 2>/dev/null |
    grep -q 'kube-harden.io/hardened'; then
    break
  fi
  sleep 2
done
((i < 60)) || { echo "e2e-kind: the webhook did not take effect" >&2; k -n kube-harden logs deployment/kube-harden --tail=50 >&2; exit 1; }

log "smoke test"
for ns in kh-restricted kh-hardened; do
  k create namespace "$ns" --dry-run=client -o yaml | k apply -f -
  k label namespace "$ns" pod-security.kubernetes.io/enforce=restricted --overwrite
done
k label namespace kh-hardened kube-harden.io/mode=enforce --overwrite
if k -n kh-restricted run legacy --image=nginxinc/nginx-unprivileged:1.27 2>&1; then
  echo "e2e-kind: restricted admitted a legacy pod without kube-harden" >&2
  exit 1
fi
k -n kh-hardened run legacy --image=nginxinc/nginx-unprivileged:1.27
k -n kh-hardened get pod legacy -o jsonpath='{.metadata.annotations.kube-harden\.io/hardened}{"\n"}' | grep -q runAsNonRoot
k -n kh-hardened wait pod/legacy --for=condition=Ready --timeout=120s
k -n kh-hardened get pod legacy -o jsonpath='{.spec.securityContext}{"\n"}'
log "e2e-kind: OK (the hardened pod is running)"
