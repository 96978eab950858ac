# shellcheck shell=bash
# Shell helpers shared by the e2e scripts (controlplane.sh, cluster.sh, build-controlplane.sh,
# build-registry.sh source it).
#
# The process helpers keep one file per background process, $PID_DIR/<name>.pid, and its log,
# $PID_DIR/logs/<name>.log. The sourcing script sets PID_DIR to its state dir (whose path the
# command line of every process it starts mentions) and defines log and die.

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

# is_ours <pid>: the process's command line mentions $PID_DIR, so a recycled PID is never
# taken for one of ours.
is_ours() {
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$PID_DIR"
}

# pid_alive <name>: the PID in $PID_DIR/<name>.pid runs and is ours; prints it.
pid_alive() {
  local f="$PID_DIR/$1.pid" pid
  [[ -s "$f" ]] || return 1
  pid="$(<"$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  is_ours "$pid" || return 1
  echo "$pid"
}

# started_alive <name>: the process just started in the background still runs. Not pid_alive:
# right after the fork, until the exec, the child's command line is the script's, which does
# not name the state dir (a loaded machine makes that window long enough to be hit).
started_alive() {
  kill -0 "$(<"$PID_DIR/$1.pid")" 2>/dev/null
}

wait_gone() { # <pid> <tenths of a second>
  local i
  for ((i = 0; i < $2; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

stop_one() { # <name>: TERM, 15 s grace, KILL
  local name="$1" pid
  if pid="$(pid_alive "$name")"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 150; then
      log "$name (pid $pid) did not exit on TERM, sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 50 || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$PID_DIR/$name.pid"
}

# start_bg <name> <command...>: runs it in the background, logging to $PID_DIR/logs/<name>.log.
start_bg() {
  local name="$1"
  shift
  "$@" </dev/null >"$PID_DIR/logs/$name.log" 2>&1 &
  echo $! >"$PID_DIR/$name.pid"
}

# start_watchdog <stop command...>: with E2E_WATCH_PID, a process in its own session (a signal to
# the caller's process group does not reach it) that runs the stop command, with
# E2E_FROM_WATCHDOG=1 (the stop must not signal its own watchdog), once that PID is gone.
# Removing $PID_DIR/watchdog.pid disarms it. If the script that started it ($$) still runs
# then, it is killed first, so that a start cut short and the stop never race.
start_watchdog() {
  [[ -n "${E2E_WATCH_PID:-}" ]] || return 0
  kill -0 "$E2E_WATCH_PID" 2>/dev/null || die "E2E_WATCH_PID=$E2E_WATCH_PID is not a running process"
  local starter
  starter="$(tr '\0' ' ' 2>/dev/null <"/proc/$$/cmdline")"
  # shellcheck disable=SC2016
  setsid bash -c 'while kill -0 "$2" 2>/dev/null && [[ -f "$1/watchdog.pid" ]]; do sleep 1; done
    [[ -f "$1/watchdog.pid" ]] || exit 0
    echo "$(date -u +%FT%TZ) watched process $2 is gone: running ${*:5}"
    if [[ "$(tr "\0" " " 2>/dev/null <"/proc/$3/cmdline")" == "$4" ]]; then
      kill -KILL "$3" 2>/dev/null
    fi
    shift 4
    E2E_FROM_WATCHDOG=1 exec "$@"' \
    "$(basename "$0" .sh)-watchdog" "$PID_DIR" "$E2E_WATCH_PID" "$$" "$starter" "$@" \
    </dev/null >>"$PID_DIR/logs/watchdog.log" 2>&1 &
  echo $! >"$PID_DIR/watchdog.pid"
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
