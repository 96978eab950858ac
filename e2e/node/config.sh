# Sourced by e2e/cluster.sh (docs/node.md): the images, certificates, kubeconfigs and the
# configuration files of containerd, the CNI network and the kubelet; the webhook registration.
# Uses cluster.sh's variables ($S, $NODE_IP, ...) and helpers (log, die, free_ports).
# shellcheck shell=bash disable=SC2154,SC2034

# ------------------------------------------------------------------- images --

# build_images: the pause and webcheck images (OCI archives), cached beside their binaries;
# sets IMAGE_ARCHIVES.
build_images() {
  local dir rootfs
  dir="$(dirname "$PAUSE_BIN")"
  if [[ ! -s "$dir/pause.oci.tar" || ! -s "$dir/webcheck.oci.tar" ]]; then
    rootfs="$(mktemp -d "$S/rootfs.XXXXXX")"
    install -D -m 0755 "$PAUSE_BIN" "$rootfs/pause/pause"
    python3 "$repo_dir/scripts/oci-image.py" build -o "$dir/pause.oci.tar.tmp" --name "$PAUSE_IMAGE" \
      --layer "$rootfs/pause" --entrypoint '["/pause"]' --user 65535:65535 >/dev/null
    install -D -m 0755 "$WEBCHECK_BIN" "$rootfs/webcheck/webcheck"
    install -d -m 1777 "$rootfs/webcheck/tmp"
    # A legacy image: no USER (root), writes temporary files under /tmp.
    python3 "$repo_dir/scripts/oci-image.py" build -o "$dir/webcheck.oci.tar.tmp" --name "$WEBCHECK_IMAGE" \
      --layer "$rootfs/webcheck" --entrypoint '["/webcheck"]' --expose 8080/tcp >/dev/null
    rm -rf "$rootfs"
    mv -f "$dir/pause.oci.tar.tmp" "$dir/pause.oci.tar"
    mv -f "$dir/webcheck.oci.tar.tmp" "$dir/webcheck.oci.tar"
  fi
  IMAGE_ARCHIVES=("$dir/pause.oci.tar" "$dir/webcheck.oci.tar")
}

ctr_() { "$CTR_BIN" --address "$S/containerd/containerd.sock" -n k8s.io "$@"; }

# ------------------------------------------------------------------ configs --

client_cert() { # <name> <CN> <O or ""> [serverAuth SAN]
  local name="$1" cn="$2" org="$3" san="${4:-}" ca="$S/controlplane/certs" subj
  subj="/CN=$cn"
  [[ -n "$org" ]] && subj="/O=$org$subj"
  (
    cd "$S/certs"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$name.csr" -subj "$subj"
    {
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      if [[ -n "$san" ]]; then
        echo "extendedKeyUsage=serverAuth"
        echo "subjectAltName=$san"
      else
        echo "extendedKeyUsage=clientAuth"
      fi
    } >"$name.ext"
    openssl x509 -req -sha256 -days 2 -in "$name.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" \
      -CAcreateserial -extfile "$name.ext" -out "$name.crt"
    rm -f "$name.csr" "$name.ext"
    chmod 600 "$name.key"
  ) >>"$S/logs/certs.log" 2>&1 || { cat "$S/logs/certs.log" >&2; die "openssl failed for $name"; }
}

kubeconfig() { # <file> <cert name>
  local c="$S/certs"
  umask 077
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-harden-node
  cluster:
    server: $E2E_APISERVER_URL
    certificate-authority: $S/controlplane/certs/ca.crt
users:
- name: $2
  user:
    client-certificate: $c/$2.crt
    client-key: $c/$2.key
contexts:
- name: kube-harden-node
  context:
    cluster: kube-harden-node
    user: $2
current-context: kube-harden-node
EOF
  umask 022
}

write_containerd_config() {
  mkdir -p "$S/containerd/certs.d" "$S/cni/net.d" "$S/cni/networks"
  # containerd 2.4's own config version 4: the sockets are plugin settings
  # ([plugins.'io.containerd.server.v1.grpc'] address). A top-level [grpc] section, as in
  # version 2/3 files, is silently ignored there and containerd listens on
  # /run/containerd/containerd.sock: `up` checks the socket it actually uses.
  cat >"$S/containerd/config.toml" <<EOF
version = 4
root = "$S/containerd/root"
state = "$S/containerd/state"
imports = []
# NRI would listen on /var/run/nri; /opt/containerd is not needed either.
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt"]

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = "$S/containerd/containerd.sock"
  [plugins.'io.containerd.server.v1.ttrpc']
    address = "$S/containerd/containerd.sock.ttrpc"
  [plugins.'io.containerd.server.v1.debug']
    address = ""
  [plugins.'io.containerd.server.v1.grpc-tcp']
    address = ""

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '$PAUSE_IMAGE'
    # Registry hosts (hosts.toml per registry, containerd's docs/hosts.md): the e2e suites write
    # <certs.d>/127.0.0.1:<port>/hosts.toml for their registry (e2e/src/registry.rs). Never the
    # host's /etc/containerd/certs.d (containerd's default).
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = '$S/containerd/certs.d'

  [plugins.'io.containerd.cri.v1.runtime']
    # The VM lacks CAP_SYS_RESOURCE: without this every sandbox fails with runc's
    # "can't get final child's PID from pipe".
    restrict_oom_score_adj = true
    # Network namespaces under containerd's state dir, not /var/run/netns.
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '$RUNC_BIN'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['$CNI_BIN_DIR']
      conf_dir = '$S/cni/net.d'
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
EOF
  # The bridge exists already (made by `up`, with the node address): the plugin attaches
  # veths to it. No gateway, masquerade or forwarding: the host reaches pods on-link.
  cat >"$S/cni/net.d/10-$CNI_NETWORK.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$S/cni/networks",
        "ranges": [[{ "subnet": "$SUBNET", "rangeStart": "$POD_FIRST", "rangeEnd": "$POD_LAST" }]]
      }
    }
  ]
}
EOF
}

write_kubelet_config() {
  local ports
  mapfile -t ports < <(free_ports 2)
  KUBELET_PORT="${ports[0]}" KUBELET_HEALTHZ_PORT="${ports[1]}"
  mkdir -p "$S/kubelet" "$S/pod-logs"
  cat >"$S/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $S/certs/kubelet-serving.crt
tlsPrivateKeyFile: $S/certs/kubelet-serving.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: $S/controlplane/certs/ca.crt
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://$S/containerd/containerd.sock
# This machine has cgroup v1 only, and no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
# No iptables chains on the host.
makeIPTablesUtilChains: false
podLogsDir: $S/pod-logs
resolvConf: ""
failSwapOn: false
rotateCertificates: false
serverTLSBootstrap: false
serializeImagePulls: false
# A shared CI machine: never evict or garbage-collect the imported images.
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
}

# register_webhook: manifests/base's MutatingWebhookConfiguration with each service reference
# replaced by https://127.0.0.1:<port><path> and our CA as caBundle.
register_webhook() {
  "$KUBECTL_BIN" kustomize "$repo_dir/manifests/base" >"$S/base.yaml"
  "$KUBECTL_BIN" create --dry-run=client -o json -f "$S/base.yaml" |
    python3 -c '
import base64, json, sys
url, ca = sys.argv[1], open(sys.argv[2], "rb").read()
text, docs, pos = sys.stdin.read(), [], 0
decoder = json.JSONDecoder()
while pos < len(text):
    if text[pos].isspace():
        pos += 1
        continue
    doc, pos = decoder.raw_decode(text, pos)
    docs.extend(doc["items"] if doc.get("kind") == "List" else [doc])
conf = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration" and d["metadata"]["name"] == "kube-harden"]
if len(conf) != 1:
    sys.exit("manifests/base renders no MutatingWebhookConfiguration named kube-harden")
conf = conf[0]
for w in conf["webhooks"]:
    svc = w["clientConfig"].pop("service")
    w["clientConfig"]["url"] = url + svc.get("path", "")
    w["clientConfig"]["caBundle"] = base64.b64encode(ca).decode()
json.dump(conf, sys.stdout)
' "https://127.0.0.1:$WEBHOOK_PORT" "$S/controlplane/certs/ca.crt" >"$S/webhook-configuration.json"
  "$KUBECTL_BIN" --kubeconfig "$S/kubeconfig" apply -f "$S/webhook-configuration.json" >&2
}

node_ready() {
  [[ "$("$KUBECTL_BIN" --kubeconfig "$S/kubeconfig" get node "$NODE_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# write_in_cluster_overlay: $S/kube-harden-overlay, e2e/node/overlay (the shipped manifests,
# the locally assembled image) plus the default overlay's one parameter, the API server's
# address for its egress NetworkPolicy (docs/install.md; the node address, port 6443), and the
# one thing kube-proxy would otherwise provide: the pods' way to the API server. The kubelet sets KUBERNETES_SERVICE_HOST/PORT to the
# `kubernetes` Service's ClusterIP, which nothing here routes (no kube-proxy, no gateway in the
# pods); the API server listens on the node address instead, on-link from every pod. Variables a
# container declares take precedence over the kubelet's, so the in-cluster client (kube-rs
# Config::incluster) connects there, and verifies the API server's certificate (which names the
# node address) with the service account's CA, as it would through the Service.
write_in_cluster_overlay() {
  local dir="$S/kube-harden-overlay" api="${E2E_APISERVER_URL#https://}" base
  base="$(python3 -c 'import os, sys; print(os.path.relpath(os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])))' \
    "$repo_dir/e2e/node/overlay" "$dir")"
  mkdir -p "$dir"
  cat >"$dir/kustomization.yaml" <<EOF
# Written by e2e/cluster.sh up (E2E_NODE_WEBHOOK=in-cluster). kubectl apply -k this directory.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $base
patches:
  - target:
      group: apps
      version: v1
      kind: Deployment
      name: kube-harden
    patch: |-
      - op: test
        path: /spec/template/spec/containers/0/name
        value: kube-harden
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value: {name: KUBERNETES_SERVICE_HOST, value: "${api%:*}"}
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value: {name: KUBERNETES_SERVICE_PORT, value: "${api##*:}"}
  - target: {kind: NetworkPolicy, name: kube-harden-apiserver}
    patch: |-
      - op: replace
        path: /spec/egress/0/to/0/ipBlock/cidr
        value: ${api%:*}/32
EOF
}
