# shellcheck shell=bash
# Shell helpers shared by the e2e scripts (controlplane.sh, cluster.sh, build-controlplane.sh,
# build-registry.sh source it).

# free_ports <n>: n distinct free TCP ports on 127.0.0.1, one per line (all bound at once, so
# they differ, then released for the caller's servers to take).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
PY
}

now() { date +%s.%N; }
# elapsed <start from now>: seconds since then, one decimal.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# mod_version <go.mod> <module path>: the version a wrapper module requires.
mod_version() {
  awk -v m="$2" '($1 == m && $2 ~ /^v/) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' "$1"
}

# go_build_cached <module dir> <package> <output> [ldflags] [go build flags...]: builds a Go
# package of a wrapper module into <output> (stripped) unless it is there already (E2E_REBUILD=1
# rebuilds); prints how long it took through the caller's `log`. The caller sets GOFLAGS,
# GOTOOLCHAIN, CGO_ENABLED.
go_build_cached() {
  local dir="$1" pkg="$2" out="$3" ldflags="${4:-}"
  shift 4 2>/dev/null || shift $#
  if [[ -x "$out" && "${E2E_REBUILD:-0}" != 1 ]]; then
    log "cached: $out"
    return 0
  fi
  mkdir -p "$(dirname "$out")"
  local tmp="$out.tmp.$$" t0
  t0="$(now)"
  log "building $pkg -> $out"
  # Remove a half-written binary if the build is interrupted.
  trap 'rm -f "'"$tmp"'"' EXIT
  (cd "$dir" && nice -n 19 go build "$@" -o "$tmp" -ldflags "-s -w $ldflags" "$pkg")
  mv -f "$tmp" "$out"
  trap - EXIT
  log "built $(basename "$out") in $(elapsed "$t0") s"
}
