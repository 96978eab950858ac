#!/usr/bin/env bash
# Builds the local control plane used by the end-to-end tests from published
# Go modules (no images, no release downloads):
#   kube-apiserver + kubectl  from k8s.io/kubernetes   (e2e/controlplane/kube-apiserver)
#   etcd                      from go.etcd.io/etcd/server/v3 (e2e/controlplane/etcd)
# and, with --node, the node (docs/node.md):
#   kubelet, kube-scheduler, kube-controller-manager  from the same wrapper module
#   containerd, ctr, containerd-shim-runc-v2  from github.com/containerd/containerd/v2
#                                             (e2e/node/containerd, cgo off, -tags no_btrfs)
#   pause, webcheck  the node's own static programs (e2e/node/programs)
# and, with --helm, helm (charts/kube-harden's tests, docs/install.md):
#   helm                                      from helm.sh/helm/v4 (e2e/helm)
# Versions come from the wrapper modules' go.mod.  Binaries are cached by
# version under ${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/controlplane/ (and
# .../node/, .../helm-<version>/) and not rebuilt when present.
#
# Usage: e2e/build-controlplane.sh [--node] [--helm]   build what is missing, print timings
#        e2e/build-controlplane.sh [--node] [--helm] --print-env  print
#            KUBE_APISERVER_BIN=... ETCD_BIN=... KUBECTL_BIN=... lines (with --node also
#            KUBELET_BIN, KUBE_SCHEDULER_BIN, KUBE_CONTROLLER_MANAGER_BIN, CONTAINERD_BIN,
#            CTR_BIN, CONTAINERD_SHIM_BIN, PAUSE_BIN, WEBCHECK_BIN; with --helm HELM_BIN),
#            nothing else on stdout
# Env:   KUBE_HARDEN_CACHE   cache root (default $HOME/.cache/kube-harden)
#        E2E_BUILD_KUBECTL=0 skip building kubectl
#        E2E_REBUILD=1       rebuild even if cached
# Cold build: ~15-25 min on 2 cores (see e2e/README.md); a cache hit is instant.
set -euo pipefail

e2e_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kmod="$e2e_dir/controlplane/kube-apiserver"
emod="$e2e_dir/controlplane/etcd"
cmod="$e2e_dir/node/containerd"
pmod="$e2e_dir/node/programs"
hmod="$e2e_dir/helm"

node=0 helm=0 print_env=0
for arg in "$@"; do
  case "$arg" in
    --node) node=1 ;;
    --helm) helm=1 ;;
    --print-env) print_env=1 ;;
    *) echo "usage: $0 [--node] [--helm] [--print-env]" >&2; exit 2 ;;
  esac
done

# shellcheck source=e2e/common.sh
source "$e2e_dir/common.sh"
K8S_VERSION="$(mod_version "$kmod/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(mod_version "$emod/go.mod" go.etcd.io/etcd/server/v3)"
CONTAINERD_VERSION="$(mod_version "$cmod/go.mod" github.com/containerd/containerd/v2)"
HELM_VERSION="$(mod_version "$hmod/go.mod" helm.sh/helm/v4)"
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" && -n "$CONTAINERD_VERSION" && -n "$HELM_VERSION" ]] || { echo "cannot read versions from wrapper go.mod files" >&2; exit 1; }

cache_root="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/controlplane"
k8s_dir="$cache_root/kubernetes-$K8S_VERSION"
etcd_dir="$cache_root/etcd-$ETCD_VERSION"
build_kubectl="${E2E_BUILD_KUBECTL:-1}"
containerd_dir="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/node/containerd-$CONTAINERD_VERSION"
# The node's own programs are keyed by their sources' hash (they have no version).
programs_hash="$(cd "$pmod" && find . -type f \( -name '*.go' -o -name go.mod \) ! -name '*_test.go' -print0 | LC_ALL=C sort -z |
  xargs -0 sha256sum | sha256sum | cut -c1-16)"
programs_dir="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/node/programs-$programs_hash"
helm_dir="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/helm-$HELM_VERSION"

if ((print_env)); then
  echo "KUBE_APISERVER_BIN=$k8s_dir/kube-apiserver"
  echo "ETCD_BIN=$etcd_dir/etcd"
  echo "KUBECTL_BIN=$k8s_dir/kubectl"
  if ((node)); then
    echo "KUBELET_BIN=$k8s_dir/kubelet"
    echo "KUBE_SCHEDULER_BIN=$k8s_dir/kube-scheduler"
    echo "KUBE_CONTROLLER_MANAGER_BIN=$k8s_dir/kube-controller-manager"
    echo "CONTAINERD_BIN=$containerd_dir/containerd"
    echo "CTR_BIN=$containerd_dir/ctr"
    echo "CONTAINERD_SHIM_BIN=$containerd_dir/containerd-shim-runc-v2"
    echo "PAUSE_BIN=$programs_dir/pause"
    echo "WEBCHECK_BIN=$programs_dir/webcheck"
  fi
  ((helm)) && echo "HELM_BIN=$helm_dir/helm"
  exit 0
fi

log() { echo "build-controlplane: $*" >&2; }

# Never let go fetch another toolchain on its own; both modules build on go1.26.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
# go.sum is complete and committed: fail instead of editing go.mod/go.sum.
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export CGO_ENABLED=0

command -v go >/dev/null || { log "go not found (need go >= 1.26)"; exit 1; }
log "$(go version)"

t_all="$(now)"

go_build_cached "$emod" go.etcd.io/etcd/server/v3 "$etcd_dir/etcd"

# Same version stamping as kubernetes' hack/lib/version.sh: both packages
# carry the variables (component-base for the servers, client-go for clients).
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
kver_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kver_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

go_build_cached "$kmod" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_dir/kube-apiserver" "$kver_ldflags"
if [[ "$build_kubectl" == 1 ]]; then
  go_build_cached "$kmod" k8s.io/kubernetes/cmd/kubectl "$k8s_dir/kubectl" "$kver_ldflags"
fi

if ((node)); then
  for cmd in kubelet kube-scheduler kube-controller-manager; do
    go_build_cached "$kmod" "k8s.io/kubernetes/cmd/$cmd" "$k8s_dir/$cmd" "$kver_ldflags"
  done
  # containerd's own version stamping (its Makefile's -X flags).
  cver_ldflags="-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
  cver_ldflags+=" -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2"
  for cmd in containerd ctr containerd-shim-runc-v2; do
    go_build_cached "$cmod" "github.com/containerd/containerd/v2/cmd/$cmd" "$containerd_dir/$cmd" "$cver_ldflags" -tags no_btrfs
  done
  for cmd in pause webcheck; do
    go_build_cached "$pmod" "./$cmd" "$programs_dir/$cmd" ""
  done
fi

if ((helm)); then
  # helm's own version stamping (its Makefile's -X flags; `helm version` prints it).
  go_build_cached "$hmod" helm.sh/helm/v4/cmd/helm "$helm_dir/helm" \
    "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
fi

log "done in $(elapsed "$t_all") s (kubernetes $K8S_VERSION, etcd $ETCD_VERSION$( ((node)) && echo ", containerd $CONTAINERD_VERSION")$( ((helm)) && echo ", helm $HELM_VERSION"), cache $cache_root)"
