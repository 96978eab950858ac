#!/usr/bin/env bash
# Builds the statically linked kube-harden binary that the container image ships, with exactly
# the command the Dockerfile runs (the Dockerfile calls this script), then proves it is static:
#   - ldd: "not a dynamic executable" / "statically linked"
#   - readelf: no program interpreter, no NEEDED shared libraries
#   - it runs: `--version`, and `serve --help`, inside an empty chroot (nothing but the binary:
#     what a scratch/distroless-static image offers), when chroot is permitted
#
# Why static glibc rather than musl: rustup cannot download the musl target's standard library
# here, and Debian ships none for this toolchain; `-C target-feature=+crt-static` on the glibc
# target links glibc, and everything else, into one self-contained executable. The binary needs
# no name resolution through NSS plugins (it only binds addresses and, for certificate
# management, reaches the API server by the IP in KUBERNETES_SERVICE_HOST).
#
# Usage: scripts/static-build.sh [--no-build]   (--no-build: only check an existing binary)
# Env:   STATIC_TARGET_DIR  cargo --target-dir (default target/static, separate from
#                           target/release so the two builds do not invalidate each other)
# Prints the binary's path on the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-gnu
TARGET_DIR="${STATIC_TARGET_DIR:-target/static}"
BIN="$TARGET_DIR/$TARGET/release/kube-harden"
log() { echo "static-build: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# The checkout's and cargo's directories are remapped (panic locations embed source paths), so
# the binary, and with it the image's digest (scripts/image-build.sh), do not depend on where
# the repository or the cargo home happen to be: /src and /cargo, whatever the machine.
REMAP="--remap-path-prefix=$PWD=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"

if [[ "${1:-}" != "--no-build" ]]; then
  log "cargo build --release --locked --target $TARGET (crt-static, paths remapped) into $TARGET_DIR"
  RUSTFLAGS="-C target-feature=+crt-static $REMAP" \
    cargo build --release --locked -p kube-harden --bin kube-harden \
    --target "$TARGET" --target-dir "$TARGET_DIR" >&2
fi
[[ -x "$BIN" ]] || fail "$BIN was not built"

ldd_out="$(ldd "$BIN" 2>&1 || true)"
log "ldd: $ldd_out"
grep -Eq 'not a dynamic executable|statically linked' <<<"$ldd_out" \
  || fail "ldd does not report a static executable"

interp="$(readelf -l "$BIN" | grep -c 'Requesting program interpreter' || true)"
needed="$(readelf -d "$BIN" 2>/dev/null | grep -c '(NEEDED)' || true)"
[[ "$interp" == 0 ]] || fail "the binary requests a program interpreter (dynamic loader)"
[[ "$needed" == 0 ]] || fail "the binary needs $needed shared libraries"
log "readelf: no program interpreter, 0 NEEDED libraries"
if command -v file >/dev/null; then log "file: $(file -b "$BIN")"; fi

version="$("$BIN" --version)"
log "runs: $version"

# In an empty root: no /lib, no /etc, no shell. chroot needs CAP_SYS_CHROOT (root in CI).
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
cp "$BIN" "$root/kube-harden"
if chroot "$root" /kube-harden --version >/dev/null 2>&1; then
  chroot "$root" /kube-harden serve --help >/dev/null \
    || fail "serve --help failed in an empty root"
  log "runs in an empty root (chroot, only the binary present): ok"
elif [[ "$(id -u)" == 0 ]]; then
  # root but chroot refused (no CAP_SYS_CHROOT, e.g. an unprivileged container build)
  log "empty-root run skipped: chroot not permitted here"
else
  log "empty-root run skipped: needs root for chroot"
fi

size="$(stat -c %s "$BIN")"
log "size: $size bytes ($((size / 1024 / 1024)) MiB)"
log "ok: $BIN is static"
echo "$BIN"
