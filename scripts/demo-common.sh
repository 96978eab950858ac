# shellcheck shell=bash
# What scripts/demo.sh and scripts/demo-node.sh share (sourced by both, from the repository
# root): the binary and the state directory their environment names, titles, and the wait for the
# API server to call the webhook.
#
# Sets:  bin    KUBE_HARDEN_BIN (default target/release/kube-harden) as an absolute path; exits
#               when it is not an executable
#        state  DEMO_STATE_DIR (default target/demo), created, as an absolute path

bin=${KUBE_HARDEN_BIN:-target/release/kube-harden}
[[ -x "$bin" ]] || { echo "demo: no kube-harden binary at $bin (run: make build)" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
state=${DEMO_STATE_DIR:-target/demo}
mkdir -p "$state"
state=$(cd "$state" && pwd)
# shellcheck disable=SC2034 # (bin and state are the sourcing script's)
readonly bin state

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
  bold=$'\033[1m' dim=$'\033[2m' reset=$'\033[0m'
else
  bold='' dim='' reset=''
fi
title() { printf '\n%s=== %s%s\n' "$bold" "$*" "$reset"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$reset"; }

# wait_for_webhook <namespace> <image>: the API server picks a webhook configuration up within a
# second or so; waits (up to 30 s) until a server-side dry run of a pod in <namespace>, an opted-in
# one, comes back hardened. Uses the caller's k (kubectl).
wait_for_webhook() {
  local i
  for ((i = 0; i < 150; i++)); do
    if k run probe -n "$1" --image="$2" --dry-run=server -o yaml 2>/dev/null |
      grep -q 'kube-harden.io/hardened'; then
      return 0
    fi
    sleep 0.2
  done
  echo "demo: the webhook configuration did not take effect" >&2
  exit 1
}
