#!/usr/bin/env bash
# Assembles kube-harden's container image as an OCI archive without a container engine: the
# static binary of scripts/static-build.sh (the Dockerfile's build stage) on a distroless-style
# root filesystem, as the Dockerfile's final stage describes it:
#
#   /kube-harden            the binary, 0555 root:root (ENTRYPOINT ["/kube-harden"], CMD ["serve"])
#   /etc/passwd, /etc/group root, nobody and distroless's "nonroot" (65532:65532)
#   /etc/nsswitch.conf      "files" lookups, as distroless ships it
#   /home/nonroot           0700 65532:65532; /root 0700; /tmp 1777
#   USER 65532:65532, EXPOSE 8443 8080, the Dockerfile's org.opencontainers.image.* labels
#
# Left out of distroless/static: CA certificates and tzdata. The binary needs neither: its only
# TLS client is the Kubernetes one, which trusts exactly the cluster CA of its in-cluster
# configuration (the service account's ca.crt) or kubeconfig, never the system roots; its logs
# are UTC. Without them the image depends on nothing of the build host but the binary.
#
# Reproducible: scripts/oci-image.py writes sorted entries, numeric owners, mtimes and the
# image's `created` at SOURCE_DATE_EPOCH (default 0), so the same binary gives the same digest
# (scripts/image-test.sh builds twice and compares).
#
# Usage: scripts/image-build.sh [--no-build] [-o OUT.tar] [--name REF]
#   --no-build  take the existing static binary (still checked static by static-build.sh)
#   -o          the archive (default target/image/kube-harden-<version>.oci.tar)
#   --name      the image reference (default kube-harden.local/kube-harden:<version>; the
#               published one is ghcr.io/kube-harden/kube-harden:<version>)
# Env:   VERSION  the image's version (default: Cargo.toml's). Another version builds the binary
#                 with KUBE_HARDEN_VERSION=VERSION (its --version, build_info metric and label
#                 say so: a different binary, a different digest, e.g. for an upgrade test) in
#                 target/static-VERSION (seeded from target/static: only kube-harden recompiles)
#        KUBE_HARDEN_STATIC_BIN  use this static binary instead of building one (its version is
#                 checked all the same)
# Needs root (the files' owners are part of the image: root, and 65532 for /home/nonroot).
# Prints the archive's path, then its manifest digest, on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "image-build: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

build=1 out="" name=""
while (($#)); do
  case "$1" in
    --no-build) build=0 ;;
    -o) out="${2:?-o needs a path}"; shift ;;
    --name) name="${2:?--name needs a reference}"; shift ;;
    *) echo "usage: $0 [--no-build] [-o OUT.tar] [--name REF]" >&2; exit 2 ;;
  esac
  shift
done

[[ "$(id -u)" == 0 ]] || fail "must run as root: the image's files are owned by root and 65532, and only root can chown them"
version="${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}"
[[ "$version" =~ ^[0-9A-Za-z][0-9A-Za-z._+-]*$ ]] || fail "not a usable version: '$version'"
name="${name:-kube-harden.local/kube-harden:$version}"
out="${out:-target/image/kube-harden-$version.oci.tar}"

cargo_version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
if [[ "$version" != "$cargo_version" ]]; then
  export KUBE_HARDEN_VERSION="$version"
  if [[ -z "${STATIC_TARGET_DIR:-}" ]]; then
    export STATIC_TARGET_DIR="target/static-$version"
    [[ -d "$STATIC_TARGET_DIR" || ! -d target/static ]] || cp -a target/static "$STATIC_TARGET_DIR"
  fi
fi
if [[ -n "${KUBE_HARDEN_STATIC_BIN:-}" ]]; then
  bin="$KUBE_HARDEN_STATIC_BIN"
  [[ -x "$bin" ]] || fail "KUBE_HARDEN_STATIC_BIN=$bin is not an executable"
elif ((build)); then
  bin="$(scripts/static-build.sh | tail -n 1)"
else
  bin="$(scripts/static-build.sh --no-build | tail -n 1)"
fi
# The label must say what the binary is.
bin_version="$("$bin" --version | awk '{print $NF}')"
[[ "$bin_version" == "$version" ]] ||
  fail "$bin reports version '$bin_version', the image would be labelled '$version' (set VERSION or rebuild)"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
umask 022
install -d -m 0755 -o 0 -g 0 "$root/etc"
install -d -m 0700 -o 0 -g 0 "$root/root"
install -d -m 0755 -o 0 -g 0 "$root/home"
install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
install -d -m 1777 -o 0 -g 0 "$root/tmp"
install -m 0555 -o 0 -g 0 "$bin" "$root/kube-harden"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
ethers: files
rpc: files
EOF
chown 0:0 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"

mkdir -p "$(dirname "$out")"
digest="$(python3 scripts/oci-image.py build -o "$out" --name "$name" --layer "$root" \
  --entrypoint '["/kube-harden"]' --cmd '["serve"]' --user 65532:65532 \
  --expose 8443/tcp --expose 8080/tcp \
  --label org.opencontainers.image.title=kube-harden \
  --label "org.opencontainers.image.description=Kubernetes mutating admission webhook that adds missing security settings to workloads" \
  --label org.opencontainers.image.source=https://github.com/kube-harden/kube-harden \
  --label "org.opencontainers.image.version=$version" \
  --label org.opencontainers.image.licenses=Apache-2.0)"
log "$name: $out ($(stat -c %s "$out") bytes), $digest"
echo "$out"
echo "$digest"
