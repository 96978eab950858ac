#!/usr/bin/env bash
# Local Kubernetes control plane for end-to-end tests: a real etcd and a real
# kube-apiserver on 127.0.0.1 (free ports), like controller-runtime's envtest.
# No scheduler, controller-manager or kubelet: pods stay Pending, namespaces
# never finish deleting, no ServiceAccount tokens are minted.
#
# Usage: e2e/controlplane.sh start   start (building binaries first if needed),
#                                    wait for /readyz, write $STATE_DIR/kubeconfig
#        e2e/controlplane.sh stop    stop both processes by recorded PID
#        e2e/controlplane.sh env     print shell `export` lines (KUBECONFIG, ...)
#        e2e/controlplane.sh status  exit 0 if both processes are alive and /readyz ok
#
# Env:   E2E_STATE_DIR       state dir (default <repo>/target/e2e-controlplane);
#                            holds kubeconfig, certs/, logs/, *.pid, env
#        E2E_READY_TIMEOUT   seconds to wait for /readyz (default 90)
#        KUBE_APISERVER_BIN, ETCD_BIN, KUBECTL_BIN   use these binaries instead of
#                            the ones e2e/build-controlplane.sh builds/caches
#        E2E_NO_BUILD=1      never build; fail if the binaries are missing
#        E2E_APISERVER_ARGS  extra kube-apiserver flags (word-split)
#        E2E_APISERVER_ADDRESS  the address kube-apiserver binds, advertises and is reached at
#                            (default 127.0.0.1; the node uses its bridge address so that pods
#                            reach it too); added to its certificate's names
#        E2E_APISERVER_PORT  its port (default: a free one)
#        E2E_APISERVER_DISABLE_ADMISSION  --disable-admission-plugins (default ServiceAccount:
#                            no controller-manager creates service accounts here; empty: none)
#        E2E_WATCH_PID=<pid> also start a watchdog that runs `stop` once <pid>
#                            exits (e.g. the test runner's PID), so a killed
#                            harness leaves no servers behind
#
# A harness does:  e2e/controlplane.sh start && export KUBECONFIG=$STATE_DIR/kubeconfig
#                  ... ; trap 'e2e/controlplane.sh stop' EXIT
# start/stop print only to stderr, and the servers never inherit the caller's
# stdout/stderr (they log to $STATE_DIR/logs/), so capturing output does not hang.
set -euo pipefail

e2e_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$e2e_dir/.." && pwd)"
# shellcheck source=e2e/common.sh
source "$e2e_dir/common.sh"
STATE_DIR="${E2E_STATE_DIR:-$repo_dir/target/e2e-controlplane}"
READY_TIMEOUT="${E2E_READY_TIMEOUT:-90}"
SERVICE_CIDR="10.0.0.0/24"
API_ADDRESS="${E2E_APISERVER_ADDRESS:-127.0.0.1}"
DISABLE_ADMISSION="${E2E_APISERVER_DISABLE_ADMISSION-ServiceAccount}"

log() { echo "controlplane: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- processes --

# (pid_alive, started_alive, stop_one, start_bg, start_watchdog: e2e/common.sh)
PID_DIR="$STATE_DIR"

cmd_stop() {
  # The watchdog ends by exec'ing `stop` itself; it must not signal itself.
  [[ "${E2E_FROM_WATCHDOG:-0}" == 1 ]] || stop_one watchdog
  rm -f "$STATE_DIR/watchdog.pid"
  # apiserver first so it does not log etcd connection errors while exiting.
  stop_one kube-apiserver
  stop_one etcd
}

# ------------------------------------------------------------------ helpers --

find_binaries() {
  if [[ -z "${KUBE_APISERVER_BIN:-}" || -z "${ETCD_BIN:-}" || -z "${KUBECTL_BIN:-}" ]]; then
    local line
    while IFS= read -r line; do
      local k="${line%%=*}" v="${line#*=}"
      [[ -n "${!k:-}" ]] || printf -v "$k" '%s' "$v"
    done < <("$e2e_dir/build-controlplane.sh" --print-env)
  fi
  if [[ ! -x "$KUBE_APISERVER_BIN" || ! -x "$ETCD_BIN" ]]; then
    [[ "${E2E_NO_BUILD:-0}" != 1 ]] || die "binaries missing ($KUBE_APISERVER_BIN, $ETCD_BIN) and E2E_NO_BUILD=1; run e2e/build-controlplane.sh"
    log "control plane binaries missing, building them (cold build takes 15-25 min)"
    "$e2e_dir/build-controlplane.sh" >&2
  fi
  [[ -x "$KUBE_APISERVER_BIN" ]] || die "no kube-apiserver at $KUBE_APISERVER_BIN"
  [[ -x "$ETCD_BIN" ]] || die "no etcd at $ETCD_BIN"
}

make_certs() { # <dir>
  local d="$1"
  mkdir -p "$d"
  (
    cd "$d"
    exec >certs.log 2>&1
    # CA
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
      -keyout ca.key -out ca.crt -subj "/CN=kube-harden-e2e-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
    # kube-apiserver serving cert
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver"
    local extra_san=""
    [[ "$API_ADDRESS" == 127.0.0.1 ]] || extra_san=",IP:$API_ADDRESS"
    cat >apiserver.ext <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc$extra_san
EOF
    openssl x509 -req -sha256 -days 2 -in apiserver.csr -CA ca.crt -CAkey ca.key \
      -CAcreateserial -extfile apiserver.ext -out apiserver.crt
    # admin client cert (system:masters bypasses RBAC)
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=kube-harden-e2e-admin"
    cat >admin.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
    openssl x509 -req -sha256 -days 2 -in admin.csr -CA ca.crt -CAkey ca.key \
      -CAcreateserial -extfile admin.ext -out admin.crt
    # service-account token signing key pair
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
    rm -f ./*.csr ./*.ext
    chmod 600 ./*.key
  ) || { cat "$d/certs.log" >&2; die "openssl failed"; }
}

b64() { base64 -w0 <"$1"; }

write_kubeconfig() { # <server url>
  local f="$STATE_DIR/kubeconfig" c="$STATE_DIR/certs"
  umask 077
  cat >"$f.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-harden-e2e
  cluster:
    server: $1
    certificate-authority-data: $(b64 "$c/ca.crt")
users:
- name: kube-harden-e2e-admin
  user:
    client-certificate-data: $(b64 "$c/admin.crt")
    client-key-data: $(b64 "$c/admin.key")
contexts:
- name: kube-harden-e2e
  context:
    cluster: kube-harden-e2e
    user: kube-harden-e2e-admin
current-context: kube-harden-e2e
EOF
  mv -f "$f.tmp" "$f"
}

readyz() { # <url>
  curl -sf --max-time 5 --cacert "$STATE_DIR/certs/ca.crt" \
    --cert "$STATE_DIR/certs/admin.crt" --key "$STATE_DIR/certs/admin.key" \
    "$1/readyz" >/dev/null 2>&1
}

dump_logs() {
  local f
  for f in "$STATE_DIR"/logs/*.log; do
    [[ -f "$f" ]] || continue
    echo "----- last 40 lines of $f -----" >&2
    tail -n 40 "$f" >&2
  done
}

# -------------------------------------------------------------------- start --

cmd_start() {
  if pid_alive etcd >/dev/null || pid_alive kube-apiserver >/dev/null || pid_alive watchdog >/dev/null; then
    die "already running in $STATE_DIR (run: $0 stop)"
  fi
  command -v openssl >/dev/null || die "openssl not found"
  command -v curl >/dev/null || die "curl not found"
  command -v python3 >/dev/null || die "python3 not found"
  find_binaries

  local t0=$SECONDS
  # Fresh state each start: new certs, empty etcd.
  # (only our own entries are removed, in case E2E_STATE_DIR points somewhere shared)
  mkdir -p "$STATE_DIR"
  (cd "$STATE_DIR" && rm -rf certs logs etcd-data apiserver-certs kubeconfig env ./*.pid)
  mkdir -p "$STATE_DIR/logs"
  make_certs "$STATE_DIR/certs"

  # From here on, anything that fails must not leave a process behind.
  local started=0
  trap '[[ $started == 1 ]] || { cmd_stop; }' EXIT
  trap 'exit 130' INT TERM

  local ports etcd_port peer_port api_port
  mapfile -t ports < <(free_ports 3)
  etcd_port="${ports[0]}" peer_port="${ports[1]}" api_port="${E2E_APISERVER_PORT:-${ports[2]}}"
  local etcd_url="http://127.0.0.1:$etcd_port" api_url="https://$API_ADDRESS:$api_port"

  start_bg etcd "$ETCD_BIN" \
    --name=e2e \
    --data-dir="$STATE_DIR/etcd-data" \
    --listen-client-urls="$etcd_url" \
    --advertise-client-urls="$etcd_url" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="e2e=http://127.0.0.1:$peer_port" \
    --initial-cluster-state=new \
    --unsafe-no-fsync \
    --log-level=warn

  local deadline=$((SECONDS + READY_TIMEOUT))
  until curl -sf --max-time 2 "$etcd_url/health" >/dev/null 2>&1; do
    started_alive etcd || { dump_logs; die "etcd exited during start-up"; }
    ((SECONDS < deadline)) || { dump_logs; die "etcd not healthy after ${READY_TIMEOUT}s"; }
    sleep 0.2
  done

  local c="$STATE_DIR/certs"
  # shellcheck disable=SC2086
  start_bg kube-apiserver "$KUBE_APISERVER_BIN" \
    --advertise-address="$API_ADDRESS" \
    --bind-address="$API_ADDRESS" \
    --secure-port="$api_port" \
    --etcd-servers="$etcd_url" \
    --cert-dir="$STATE_DIR/apiserver-certs" \
    --tls-cert-file="$c/apiserver.crt" \
    --tls-private-key-file="$c/apiserver.key" \
    --client-ca-file="$c/ca.crt" \
    --service-account-issuer="$api_url" \
    --service-account-key-file="$c/sa.pub" \
    --service-account-signing-key-file="$c/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=RBAC \
    --enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook,PodSecurity \
    ${DISABLE_ADMISSION:+--disable-admission-plugins="$DISABLE_ADMISSION"} \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    --profiling=false \
    ${E2E_APISERVER_ARGS:-}

  until readyz "$api_url"; do
    started_alive kube-apiserver || { dump_logs; die "kube-apiserver exited during start-up"; }
    ((SECONDS < deadline)) || { dump_logs; die "kube-apiserver not ready after ${READY_TIMEOUT}s"; }
    sleep 0.5
  done

  write_kubeconfig "$api_url"
  cat >"$STATE_DIR/env" <<EOF
export KUBECONFIG='$STATE_DIR/kubeconfig'
export E2E_STATE_DIR='$STATE_DIR'
export E2E_APISERVER_URL='$api_url'
export E2E_ETCD_URL='$etcd_url'
export E2E_CA_FILE='$c/ca.crt'
export KUBECTL_BIN='${KUBECTL_BIN:-}'
EOF
  start_watchdog env E2E_STATE_DIR="$STATE_DIR" "$e2e_dir/controlplane.sh" stop
  started=1
  trap - EXIT INT TERM
  log "ready in $((SECONDS - t0)) s: $api_url (etcd $etcd_url), kubeconfig $STATE_DIR/kubeconfig"
}

cmd_env() {
  [[ -f "$STATE_DIR/env" ]] || die "not started ($STATE_DIR/env missing)"
  cat "$STATE_DIR/env"
}

cmd_status() {
  local url
  pid_alive etcd >/dev/null || { log "etcd not running"; return 1; }
  pid_alive kube-apiserver >/dev/null || { log "kube-apiserver not running"; return 1; }
  url="$(sed -n "s/^export E2E_APISERVER_URL='\(.*\)'$/\1/p" "$STATE_DIR/env" 2>/dev/null)"
  if [[ -z "$url" ]] || ! readyz "$url"; then log "kube-apiserver not ready"; return 1; fi
  log "running: $url"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
