# Sourced by e2e/cluster.sh (docs/node.md): what a node changes on the host, saved before
# and restored after (sysctls, fixed directories, cgroups, mounts), and the host-wide lock.
# Uses cluster.sh's variables ($S, $BRIDGE, ...) and helpers (log, die; is_ours from e2e/common.sh).
# shellcheck shell=bash disable=SC2154

# ----------------------------------------------------------------- host state --

save_host_state() {
  local s d
  mkdir -p "$S/host-before"
  : >"$S/host-before/sysctl"
  for s in "${SYSCTLS[@]}"; do
    echo "$s=$(sysctl -n "$s")" >>"$S/host-before/sysctl"
  done
  : >"$S/host-before/absent-dirs"
  for d in "${FIXED_DIRS[@]}"; do
    [[ -e "$d" ]] || echo "$d" >>"$S/host-before/absent-dirs"
  done
}

cgroup_dirs() { # every /sys/fs/cgroup/<hierarchy>/$CGROUP_ROOT (v1) or /sys/fs/cgroup/$CGROUP_ROOT (v2)
  local m
  while read -r _ m fstype _; do
    [[ "$fstype" == cgroup || "$fstype" == cgroup2 ]] && echo "$m/$CGROUP_ROOT"
  done </proc/mounts
}

make_cgroups() {
  local d
  while read -r d; do
    mkdir -p "$d"
    # A new cpuset cgroup starts with no CPUs and no memory nodes; give it its parent's.
    if [[ -f "$d/cpuset.cpus" && -z "$(<"$d/cpuset.cpus")" ]]; then
      cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
      cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
    fi
  done < <(cgroup_dirs)
}

# kill_cgroup_procs: SIGKILL every process in our cgroups (the pods' containers), until none is
# left (a cgroup may vanish while it is read).
kill_cgroup_procs() {
  local pids
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pids="$(cgroup_dirs | while read -r d; do
      [[ -d "$d" ]] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
    done | sort -u)"
    [[ -n "$pids" ]] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.5
  done
  log "warning: processes left in the node's cgroups after 10 rounds: $pids"
}

# our_pids <pattern>: processes whose command line contains the state dir and <pattern>.
our_pids() {
  local p
  for p in /proc/[0-9]*; do
    is_ours "${p#/proc/}" || continue
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$1" || continue
    echo "${p#/proc/}"
  done
}

unmount_ours() { # <root>...: every mount at or below one of the roots
  local mp
  # Deepest first; lazily, so a busy mount never blocks the tear-down.
  python3 - "$@" <<'PY' | while IFS= read -r mp; do umount -l "$mp" 2>/dev/null || true; done
import sys
roots = [r.rstrip("/") for r in sys.argv[1:]]
mps = []
for line in open("/proc/self/mountinfo"):
    mp = line.split()[4].encode().decode("unicode_escape")
    if any(mp == r or mp.startswith(r + "/") for r in roots):
        mps.append(mp)
for mp in sorted(set(mps), key=len, reverse=True):
    print(mp)
PY
}

remove_cgroups() {
  local d
  while read -r d; do
    [[ -d "$d" ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ ! -d "$d" ]] || log "warning: cgroup $d not removed (processes left?)"
  done < <(cgroup_dirs)
}

restore_host_state() {
  local line d
  if [[ -f "$S/host-before/sysctl" ]]; then
    while IFS= read -r line; do
      [[ "$(sysctl -n "${line%%=*}")" == "${line#*=}" ]] || sysctl -qw "$line" || log "warning: cannot restore $line"
    done <"$S/host-before/sysctl"
  fi
  if [[ -f "$S/host-before/absent-dirs" ]]; then
    while IFS= read -r d; do
      if [[ -n "$d" && -e "$d" ]]; then rm -rf --one-file-system "$d"; fi
    done <"$S/host-before/absent-dirs"
  fi
}


# The host holds one node at a time (fixed paths, one cgroup root, one bridge name). The bridge
# is the lock: `ip link add` succeeds for one `up` only, and the bridge's alias names the owner's
# state dir, so a `down` never tears down host-wide state that another node's `up` set up.
bridge_owner() { cat "/sys/class/net/$BRIDGE/ifalias" 2>/dev/null || true; }

acquire_host() {
  local wait="${E2E_NODE_WAIT:-1800}" said=0 deadline
  deadline=$((SECONDS + wait))
  until ip link add "$BRIDGE" type bridge 2>/dev/null; do
    if ((!said)); then
      log "another node holds this host (bridge $BRIDGE of '$(bridge_owner)'): waiting up to ${wait}s"
      said=1
    fi
    ((SECONDS < deadline)) || die "the host was not free within ${wait}s (E2E_NODE_WAIT)"
    sleep 5
  done
  ip link set "$BRIDGE" alias "$S"
}
