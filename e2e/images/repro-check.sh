#!/usr/bin/env bash
# Checks that the zoo's images are reproducible: builds the apps twice, each time in a fresh,
# empty image cache, and compares the manifest digests; for an app whose digests differ, lists
# what differs in each layer (e2e/images/layer-diff.py). Exit 1 when any app differs.
#
#   e2e/images/repro-check.sh [--fresh-base] [APP...]    # default: every app; needs root
#
# The two caches start with the apt lists and .debs of the usual cache (no download; the same
# package versions) and, unless --fresh-base, its Debian base (mmdebstrap) too, so the check
# covers every app layer; --fresh-base also builds the base twice (mmdebstrap, slower).
# Leaves nothing behind (the caches live under a temporary directory).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/images"
say() { printf 'repro-check: %s\n' "$*" >&2; }

fresh_base=0
if [[ ${1:-} == --fresh-base ]]; then fresh_base=1; shift; fi
[[ $(id -u) == 0 ]] || { say "needs root (like build.sh)"; exit 2; }
[[ -d $CACHE/apt/lists ]] || "$HERE/build.sh" "${1:-cronjob}" >/dev/null

tmp=$(mktemp -d /tmp/kube-harden-repro.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for n in 1 2; do
  c="$tmp/$n/images"
  mkdir -p "$c/layers" "$c/apt"
  cp -a "$CACHE/apt/lists" "$c/apt/"
  cp -al "$CACHE/apt/archives" "$c/apt/"          # .debs read-only: hard links
  rm -f "$c/apt/archives/lock"                    # ... but apt's lock is per inode
  if [[ $fresh_base == 0 ]]; then
    for b in "$CACHE"/layers/base-*/; do [[ -f $b/.done ]] && cp -al "${b%/}" "$c/layers/"; done
  fi
  say "build $n"
  KUBE_HARDEN_CACHE="$tmp/$n" "$HERE/build.sh" "$@" >"$tmp/$n.out"
done

status=0
while read -r _ app digest archive; do
  other=$(awk -v a="$app" '$2 == a {print $3}' "$tmp/2.out")
  if [[ $digest == "$other" ]]; then
    echo "same     $app $digest"
    continue
  fi
  status=1
  echo "DIFFERS  $app $digest != $other"
  for layer in "$tmp"/1/images/layers/*/layer.tar.gz; do
    name=${layer%/layer.tar.gz}; name=${name##*/}
    [[ $name == "$app"-* || $name == base-* ]] || continue
    twins=("$tmp"/2/images/layers/"${name%-*}"-*/layer.tar.gz)
    twin=${twins[0]}
    if [[ ! -f $twin ]] || cmp -s "$layer" "$twin"; then continue; fi
    echo "  layer ${name%-*}:"
    python3 "$HERE/layer-diff.py" "$layer" "$twin" | sed 's/^/    /' || true
  done
  : "$archive"
done <"$tmp/1.out"
exit "$status"
