#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, with kube-harden in its admission chain
# (docs/node.md): etcd + kube-apiserver (e2e/controlplane.sh), kube-scheduler,
# kube-controller-manager, containerd (+ Debian's runc and CNI plugins), a kubelet, and
# `kube-harden serve` registered as the MutatingWebhookConfiguration of manifests/base for
# namespaces labelled kube-harden.io/mode=enforce (or =audit).
#
# Usage: e2e/cluster.sh up       start everything in the background (building what is missing),
#                                wait until the node is Ready, print the kubeconfig path on stdout
#        e2e/cluster.sh down     stop everything and restore the host (see "host" below)
#        e2e/cluster.sh status   exit 0 if every process runs and the node is Ready
#        e2e/cluster.sh env      print shell `export` lines (KUBECONFIG, E2E_NODE_IP, ...)
#        e2e/cluster.sh import <archive.tar>...   import OCI archives into the node's containerd
#        e2e/cluster.sh prepare  install the Debian packages, build the binaries and images
#                                (what `up` does first; `make node`)
#
# Needs root, cgroup v1 or v2 mounted, iproute2, openssl, curl, python3; installs Debian's runc,
# containernetworking-plugins and iptables with apt-get when missing.
#
# Env:   E2E_NODE_STATE_DIR  state dir (default <repo>/target/e2e-node): certs, configs, logs,
#                            containerd's root and state, the kubelet's root dir
#        E2E_NODE_SUBNET     the node's private /24 (default: the first 10.213.N.0/24 that no
#                            route or address of this host overlaps)
#        KUBE_HARDEN_BIN     the kube-harden binary (default <repo>/target/debug/kube-harden)
#        E2E_WATCH_PID=<pid> start a watchdog that runs `down` once <pid> exits, so a killed
#                            test run leaves nothing behind
#        E2E_NO_BUILD=1      never build; fail if a binary is missing
#        E2E_READY_TIMEOUT   seconds to wait for each component (default 120)
#        E2E_NODE_WAIT       seconds `up` waits while another node holds the host (default 1800):
#                            one node per host (fixed paths, one cgroup root, one bridge name)
#        E2E_NODE_WEBHOOK    host (default): `kube-harden serve` on the host, registered by URL;
#                            in-cluster: none on the host, for kube-harden's own image and
#                            manifests (docs/node.md "kube-harden in the cluster"): kube-apiserver
#                            on the node address, port 6443 (pods reach it; the manifests'
#                            NetworkPolicy allows it), ServiceAccount admission on,
#                            --enable-aggregator-routing (webhook Services resolved to endpoints:
#                            there is no kube-proxy), and $S/kube-harden-overlay written
#
# Host: the script creates one bridge (kh-node0) with the node address .1 of its /24, cgroups
# under /kube-harden-node in every hierarchy, and lets the kubelet set the sysctls it insists on
# (kernel.panic, kernel.panic_on_oops, vm.overcommit_memory). `down` restores the saved sysctl
# values, unmounts everything mounted under the state dir or the fixed paths, removes the
# cgroups and the bridge, and removes the fixed directories the kubelet and containerd write to
# (/var/lib/kubelet, /var/log/containers, /var/log/pods, /var/lib/cni, /run/containerd, /run/nri)
# when they did not exist before `up`.
set -euo pipefail

e2e_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$e2e_dir/.." && pwd)"
# shellcheck source=e2e/common.sh
source "$e2e_dir/common.sh"
# Symlinks resolved: mount points are listed by their real path, and down unmounts what is under $S.
S="$(realpath -m -- "${E2E_NODE_STATE_DIR:-$repo_dir/target/e2e-node}")"
READY_TIMEOUT="${E2E_READY_TIMEOUT:-120}"
BRIDGE=kh-node0
NODE_NAME=kube-harden-node
CGROUP_ROOT=kube-harden-node
CNI_NETWORK=kube-harden-node
CNI_BIN_DIR=/usr/lib/cni
# What the kubelet sets (pkg/kubelet/cm: setupKernelTunables) and the forwarding switch the CNI
# bridge plugin would flip as a gateway.
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward)
FIXED_DIRS=(/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/containerd /run/nri /var/run/netns)
PAUSE_IMAGE=kube-harden.local/node/pause:1
WEBCHECK_IMAGE=kube-harden.local/node/webcheck:1
# Stopped in this order by `down` (the control plane last, by e2e/controlplane.sh).
COMPONENTS=(kubelet kube-controller-manager kube-scheduler kube-harden containerd)
WEBHOOK_MODE="${E2E_NODE_WEBHOOK:-host}"

log() { echo "cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- processes --

# (pid_alive, started_alive, stop_one, start_bg, start_watchdog: e2e/common.sh)
PID_DIR="$S"

# wait_for <what> <name of the process that must stay alive> <command...>
wait_for() {
  local what="$1" name="$2" deadline=$((SECONDS + READY_TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    started_alive "$name" || { tail -n 40 "$S/logs/$name.log" >&2; die "$name exited while waiting for $what"; }
    ((SECONDS < deadline)) || { tail -n 40 "$S/logs/$name.log" >&2; die "$what not ready after ${READY_TIMEOUT}s"; }
    sleep 0.5
  done
}

# ------------------------------------------------------------------- checks --

ensure_packages() {
  local missing=()
  command -v runc >/dev/null || missing+=(runc)
  [[ -x "$CNI_BIN_DIR/bridge" && -x "$CNI_BIN_DIR/host-local" && -x "$CNI_BIN_DIR/loopback" ]] ||
    missing+=(containernetworking-plugins)
  command -v iptables-save >/dev/null || missing+=(iptables)
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  log "installing ${missing[*]} (apt-get)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

find_binaries() {
  local line k v absent=0
  while IFS= read -r line; do
    k="${line%%=*}" v="${line#*=}"
    [[ -n "${!k:-}" ]] || printf -v "$k" '%s' "$v"
    [[ -x "${!k}" ]] || absent=1
  done < <("$e2e_dir/build-controlplane.sh" --node --print-env)
  if ((absent)); then
    [[ "${E2E_NO_BUILD:-0}" != 1 ]] || die "binaries missing and E2E_NO_BUILD=1; run: make node"
    log "building the missing binaries (cold: ~25 min on 2 cores)"
    "$e2e_dir/build-controlplane.sh" --node >&2
  fi
  RUNC_BIN="$(command -v runc)"
}

# pick_subnet: the first 10.213.N.0/24 no route or address of this host overlaps.
pick_subnet() {
  if [[ -n "${E2E_NODE_SUBNET:-}" ]]; then
    echo "$E2E_NODE_SUBNET"
    return
  fi
  { ip -4 -o route show table all; ip -4 -o addr show; } | python3 -c '
import ipaddress, re, sys
used = []
for line in sys.stdin:
    for m in re.finditer(r"(?<![\w.])(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", line):
        try:
            net = ipaddress.ip_network(m.group(1), strict=False)
        except ValueError:
            continue
        if net.prefixlen > 0:
            used.append(net)
for n in range(256):
    cand = ipaddress.ip_network(f"10.213.{n}.0/24")
    if not any(cand.overlaps(u) for u in used):
        print(cand)
        break
else:
    sys.exit("no free 10.213.N.0/24")
'
}

# The node's configuration files, certificates and images; host state and the host lock.
# shellcheck source=e2e/node/config.sh
source "$e2e_dir/node/config.sh"
# shellcheck source=e2e/node/host.sh
source "$e2e_dir/node/host.sh"

# ---------------------------------------------------------------------- up --

cmd_prepare() {
  [[ "$(id -u)" == 0 ]] || die "must run as root (a kubelet and containerd manage cgroups, mounts and network namespaces)"
  for tool in ip openssl curl python3; do command -v "$tool" >/dev/null || die "$tool not found"; done
  ensure_packages
  find_binaries
  mkdir -p "$S"
  build_images
}

cmd_up() {
  local name
  for name in "${COMPONENTS[@]}" watchdog; do
    pid_alive "$name" >/dev/null && die "already up in $S (run: $0 down)"
  done
  if [[ -d "$S/host-before" ]]; then
    log "state of an earlier run that was not brought down in $S: bringing it down first"
    cmd_down
    set -e
  fi
  local t0 t
  t0="$(now)"
  [[ "$WEBHOOK_MODE" == host || "$WEBHOOK_MODE" == in-cluster ]] ||
    die "E2E_NODE_WEBHOOK must be host or in-cluster, not '$WEBHOOK_MODE'"
  cmd_prepare
  KUBE_HARDEN_BIN="${KUBE_HARDEN_BIN:-$repo_dir/target/debug/kube-harden}"
  [[ -x "$KUBE_HARDEN_BIN" ]] || die "no kube-harden at $KUBE_HARDEN_BIN (cargo build --bin kube-harden)"

  # Fresh state each time; keep nothing from an earlier run but reuse the directory.
  mkdir -p "$S"
  (cd "$S" && rm -rf certs logs containerd cni kubelet pod-logs host-before ./*.pid ./*.yaml ./*.json env kubeconfig \
    kube-harden-overlay webhook-mode)
  echo "$WEBHOOK_MODE" >"$S/webhook-mode"
  mkdir -p "$S/logs" "$S/certs"

  # From the moment the bridge is ours, a failure (or the watchdog) brings everything down.
  acquire_host
  UP_DONE=0 # global: the EXIT trap runs after this function has returned
  trap '[[ $UP_DONE == 1 ]] || { log "start-up failed, cleaning up"; cmd_down; }' EXIT
  trap 'exit 130' INT TERM
  save_host_state
  # Started before anything else, so a run killed while `up` is still working is cleaned up too.
  start_watchdog env E2E_NODE_STATE_DIR="$S" "$e2e_dir/cluster.sh" down

  # Network: the bridge carries the node address and the pods' veths.
  SUBNET="$(pick_subnet)"
  local base="${SUBNET%.0/24}"
  NODE_IP="$base.1" POD_FIRST="$base.10" POD_LAST="$base.250"
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  log "node address $NODE_IP on $BRIDGE, pods in $SUBNET"

  # Control plane, with what a node needs of it.
  t="$(now)"
  local cp="$S/controlplane" api_address=127.0.0.1 api_port="" disable_admission=ServiceAccount api_extra=""
  if [[ "$WEBHOOK_MODE" == in-cluster ]]; then
    # Pods reach the API server on the node address (on-link over the bridge), with service
    # account tokens; the API server reaches webhook Services at their endpoints' pod IPs.
    # 6443, as on kubeadm's control-plane nodes: a port the manifests' NetworkPolicy allows.
    api_address="$NODE_IP" api_port=6443 disable_admission="" api_extra="--enable-aggregator-routing=true"
  fi
  # (E2E_WATCH_PID emptied: this script's watchdog stops the control plane too, in order)
  E2E_STATE_DIR="$cp" E2E_WATCH_PID="" E2E_NO_BUILD=1 KUBE_APISERVER_BIN="$KUBE_APISERVER_BIN" ETCD_BIN="$ETCD_BIN" \
    KUBECTL_BIN="$KUBECTL_BIN" E2E_READY_TIMEOUT="$READY_TIMEOUT" \
    E2E_APISERVER_ADDRESS="$api_address" E2E_APISERVER_PORT="$api_port" \
    E2E_APISERVER_DISABLE_ADMISSION="$disable_admission" \
    E2E_APISERVER_ARGS="--enable-admission-plugins=NodeRestriction $api_extra \
      --kubelet-preferred-address-types=InternalIP \
      --kubelet-certificate-authority=$cp/certs/ca.crt \
      --kubelet-client-certificate=$cp/certs/admin.crt --kubelet-client-key=$cp/certs/admin.key" \
    "$e2e_dir/controlplane.sh" start
  # shellcheck disable=SC1091
  source "$cp/env"
  cp "$cp/kubeconfig" "$S/kubeconfig"
  log "control plane in $(elapsed "$t") s"

  # Identities: the kubelet is a real node (group system:nodes, bound to the bootstrap
  # ClusterRole system:node; NodeRestriction admission); the scheduler and controller-manager
  # use the admin identity. (--enable-admission-plugins is a list flag: the value above is
  # appended to controlplane.sh's; --authorization-mode would be too, hence RBAC only.)
  "$KUBECTL_BIN" --kubeconfig "$S/kubeconfig" create clusterrolebinding kube-harden-node:nodes \
    --clusterrole=system:node --group=system:nodes >&2
  client_cert kubelet "system:node:$NODE_NAME" system:nodes
  client_cert kubelet-serving "$NODE_NAME" "" "IP:$NODE_IP,DNS:$NODE_NAME"
  client_cert kube-harden kube-harden "" "IP:127.0.0.1,DNS:localhost"
  cp "$cp/certs/admin.crt" "$S/certs/admin.crt"
  cp "$cp/certs/admin.key" "$S/certs/admin.key"
  kubeconfig "$S/kubelet.kubeconfig" kubelet
  kubeconfig "$S/admin.kubeconfig" admin

  # containerd, with the node's own images.
  t="$(now)"
  build_images
  write_containerd_config
  start_bg containerd env PATH="$(dirname "$CONTAINERD_SHIM_BIN"):$PATH" \
    "$CONTAINERD_BIN" --config "$S/containerd/config.toml"
  wait_for "containerd" containerd ctr_ version
  [[ -S "$S/containerd/containerd.sock" ]] || die "containerd does not listen on $S/containerd/containerd.sock"
  local img
  for img in "${IMAGE_ARCHIVES[@]}"; do
    ctr_ images import "$img" >>"$S/logs/ctr.log" 2>&1 || { cat "$S/logs/ctr.log" >&2; die "cannot import $img"; }
  done
  log "containerd and images in $(elapsed "$t") s"

  # kube-harden, registered for opted-in namespaces (in-cluster: installed later, as a user would).
  local ports
  mapfile -t ports < <(free_ports 4)
  WEBHOOK_PORT="${ports[0]}" METRICS_PORT="${ports[1]}"
  local scheduler_port="${ports[2]}" cm_port="${ports[3]}"
  if [[ "$WEBHOOK_MODE" == host ]]; then
    start_bg kube-harden "$KUBE_HARDEN_BIN" serve \
      --tls-cert-file "$S/certs/kube-harden.crt" --tls-key-file "$S/certs/kube-harden.key" \
      --webhook-addr "127.0.0.1:$WEBHOOK_PORT" --metrics-addr "127.0.0.1:$METRICS_PORT" \
      --shutdown-delay 0s --shutdown-timeout 2s
    wait_for "kube-harden" kube-harden curl -sf --max-time 2 "http://127.0.0.1:$METRICS_PORT/readyz"
    register_webhook
  else
    write_in_cluster_overlay
  fi

  start_bg kube-scheduler "$KUBE_SCHEDULER_BIN" --kubeconfig "$S/admin.kubeconfig" \
    --authentication-kubeconfig "$S/admin.kubeconfig" --authorization-kubeconfig "$S/admin.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$scheduler_port" \
    --cert-dir "$S/scheduler-certs"
  start_bg kube-controller-manager "$KUBE_CONTROLLER_MANAGER_BIN" --kubeconfig "$S/admin.kubeconfig" \
    --authentication-kubeconfig "$S/admin.kubeconfig" --authorization-kubeconfig "$S/admin.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$cm_port" \
    --cert-dir "$S/controller-manager-certs" \
    --service-account-private-key-file "$cp/certs/sa.key" --root-ca-file "$cp/certs/ca.crt" \
    --use-service-account-credentials=false

  # The kubelet.
  t="$(now)"
  make_cgroups
  write_kubelet_config
  local extra=()
  "$KUBELET_BIN" --help 2>&1 | grep -q -- '--pod-infra-container-image' &&
    extra+=(--pod-infra-container-image="$PAUSE_IMAGE")
  start_bg kubelet "$KUBELET_BIN" --config "$S/kubelet-config.yaml" \
    --kubeconfig "$S/kubelet.kubeconfig" --root-dir "$S/kubelet" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" "${extra[@]}"
  wait_for "node $NODE_NAME Ready" kubelet node_ready
  log "kubelet registered, node Ready in $(elapsed "$t") s"

  # Verify where containerd listens: the configured socket, never the default one.
  [[ ! -S /run/containerd/containerd.sock ]] || ! grep -qxF /run/containerd "$S/host-before/absent-dirs" ||
    die "containerd also listens on /run/containerd/containerd.sock: its [grpc] section was ignored"

  local webhook_env="export E2E_WEBHOOK_METRICS_URL='http://127.0.0.1:$METRICS_PORT'"
  [[ "$WEBHOOK_MODE" == host ]] || webhook_env="export E2E_KUBE_HARDEN_OVERLAY='$S/kube-harden-overlay'"
  cat >"$S/env" <<EOF
export KUBECONFIG='$S/kubeconfig'
export E2E_NODE_STATE_DIR='$S'
export E2E_NODE_NAME='$NODE_NAME'
export E2E_NODE_IP='$NODE_IP'
export E2E_NODE_SUBNET='$SUBNET'
export E2E_APISERVER_URL='$E2E_APISERVER_URL'
export E2E_NODE_WEBHOOK='$WEBHOOK_MODE'
$webhook_env
export E2E_PAUSE_IMAGE='$PAUSE_IMAGE'
export E2E_WEBCHECK_IMAGE='$WEBCHECK_IMAGE'
export KUBECTL_BIN='$KUBECTL_BIN'
export CTR_BIN='$CTR_BIN'
export CONTAINERD_ADDRESS='$S/containerd/containerd.sock'
EOF

  UP_DONE=1
  trap - EXIT INT TERM
  if [[ "$WEBHOOK_MODE" == host ]]; then
    log "up in $(elapsed "$t0") s: node $NODE_NAME ($NODE_IP), webhook https://127.0.0.1:$WEBHOOK_PORT"
  else
    log "up in $(elapsed "$t0") s: node $NODE_NAME ($NODE_IP), no webhook: install it with kubectl apply -k $S/kube-harden-overlay"
  fi
  echo "$S/kubeconfig"
}

# -------------------------------------------------------------------- down --

cmd_down() {
  # A tear-down goes on past any failure: each step undoes what it can.
  set +e
  [[ "${E2E_FROM_WATCHDOG:-0}" == 1 ]] || stop_one watchdog
  rm -f "$S/watchdog.pid"
  local t0 pid name host=0
  t0="$(now)"
  [[ -d "$S" ]] || return 0
  # Host-wide state (cgroups, fixed paths, sysctls, the bridge) only when this node owns it.
  if [[ "$(bridge_owner)" == "$S" ]]; then
    host=1
  elif [[ -n "$(bridge_owner)" ]]; then
    log "the host belongs to another node ($(bridge_owner)): stopping this one's processes only"
  fi
  stop_one kubelet
  # The pods' processes, then their shims (daemonised, found by containerd's socket path).
  ((host)) && kill_cgroup_procs
  for pid in $(our_pids containerd-shim-runc-v2); do kill -KILL "$pid" 2>/dev/null || true; done
  for name in "${COMPONENTS[@]}"; do
    stop_one "$name"
  done
  E2E_STATE_DIR="$S/controlplane" "$e2e_dir/controlplane.sh" stop
  if ((host)); then
    kill_cgroup_procs
    unmount_ours "$S" "${FIXED_DIRS[@]}"
    remove_cgroups
    ip link delete "$BRIDGE" || log "warning: cannot delete $BRIDGE"
    restore_host_state
  else
    unmount_ours "$S"
  fi
  # Keep the logs (target/e2e-node/logs) for a post-mortem; everything else goes.
  (cd "$S" && rm -rf --one-file-system certs containerd cni kubelet pod-logs controlplane/etcd-data \
    scheduler-certs controller-manager-certs host-before env ./*.kubeconfig kubeconfig ./*.yaml ./*.json \
    kube-harden-overlay webhook-mode)
  log "down in $(elapsed "$t0") s"
}

cmd_status() {
  local name
  for name in "${COMPONENTS[@]}"; do
    [[ "$name" != kube-harden || "$(cat "$S/webhook-mode" 2>/dev/null)" != in-cluster ]] || continue
    pid_alive "$name" >/dev/null || { log "$name not running"; return 1; }
  done
  E2E_STATE_DIR="$S/controlplane" "$e2e_dir/controlplane.sh" status || return 1
  # shellcheck disable=SC1091
  source "$S/env"
  node_ready || { log "node not Ready"; return 1; }
  log "running: node $NODE_NAME Ready"
}

cmd_import() {
  [[ -f "$S/env" ]] || die "not up ($S/env missing)"
  # shellcheck disable=SC1091
  source "$S/env"
  local f
  for f in "$@"; do
    ctr_ images import "$f" >&2
  done
}

# Sourced (for a look at one function): define, run nothing.
[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  prepare) cmd_prepare ;;
  status) cmd_status ;;
  env)
    [[ -f "$S/env" ]] || die "not up ($S/env missing)"
    cat "$S/env"
    ;;
  import)
    shift
    cmd_import "$@"
    ;;
  *) echo "usage: $0 up|down|status|env|prepare|import <archive>..." >&2; exit 2 ;;
esac
