#!/usr/bin/env bash
# Builds the legacy-app zoo (e2e/images/<app>/) as OCI image archives from Debian packages, with
# no registry and no container engine: ctr -n k8s.io images import <archive> loads one.
#
#   e2e/images/build.sh [--list] [--print-dir] [APP...]   # default: every app; needs root
#
# Layers: one Debian bookworm minbase (mmdebstrap, shared by every image), then one layer per
# step of an app's PARENT chain (e.g. base -> python -> vendor-uid). A layer is the overlayfs
# upper directory of `apt-get install` + files + setup.sh run in a chroot over the layers below,
# packed by scripts/oci-image.py (reproducible digests).
#
# Cache (${KUBE_HARDEN_CACHE:-~/.cache/kube-harden}/images): the base rootfs and its package
# versions, apt lists and .debs, each layer's directory keyed by its inputs and the versions of
# the packages it installs, and the archives:
#   <cache>/archives/<app>.tar   (+ <app>.digest, <app>.key)
# A warm run resolves package versions from the cached apt lists (no network) and rebuilds only
# layers whose key changed. IMAGES_UPDATE=1 refreshes the apt lists (new package versions).
# Prints one timing line per step and "archive <app> <digest> <path>" per image.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ASSEMBLE="$ROOT/scripts/oci-image.py"
CACHE="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/images"
SUITE=bookworm
MIRRORS=(
  "deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main"
)
# Fixed timestamps in every layer and config (1 Jan 2024).
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}"
REGISTRY=kube-harden.local/legacy
TAG=1

say() { printf 'images: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }

apps() { for d in "$HERE"/*/; do [[ -f "$d/image.conf" ]] && basename "$d"; done; }

case "${1:-}" in
  --list) apps; exit 0 ;;
  --print-dir) echo "$CACHE/archives"; exit 0 ;;
  -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
esac

[[ $(id -u) == 0 ]] || die "needs root (chroot, overlayfs mounts); run as root or under sudo"
for tool in mmdebstrap unshare python3; do
  if ! command -v "$tool" >/dev/null; then
    [[ $tool == mmdebstrap ]] || die "$tool is missing"
    say "installing mmdebstrap (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap >/dev/null
  fi
done

mkdir -p "$CACHE"/{layers,archives,apt/lists,apt/archives}
exec 9>"$CACHE/.lock"
flock 9

# ---- base: Debian minbase, shared by every image -------------------------------------------
# Bump when the way the base or the layers are made changes (keys of every layer include it).
LAYOUT_REV=2
BASE_KEY=$(printf '%s\n' "$SUITE" minbase "${MIRRORS[@]}" "$SOURCE_DATE_EPOCH" "$LAYOUT_REV" |
  sha256sum | cut -c1-16)
BASE="$CACHE/layers/base-$BASE_KEY"
if [[ ! -f $BASE/.done ]]; then
  t=$(now)
  rm -rf "$BASE" "$BASE.tmp"
  mkdir -p "$BASE.tmp"
  # cleanup/apt/lists is skipped so the lists can move to the shared cache; the hook empties
  # logs and caches that would only make the layer differ from run to run.
  # shellcheck disable=SC2016 # the hook's $1 is mmdebstrap's (the rootfs)
  mmdebstrap --quiet --variant=minbase --mode=root --skip=cleanup/apt/lists \
    --customize-hook='rm -rf "$1"/var/log/apt/* "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/cache/ldconfig/aux-cache "$1"/var/cache/debconf/*-old "$1"/etc/machine-id "$1"/var/lib/dbus/machine-id; : > "$1"/etc/machine-id; : > "$1"/etc/resolv.conf; chown 0:0 "$1"/var/cache/apt/archives/partial' \
    "$SUITE" "$BASE.tmp/rootfs" "${MIRRORS[@]}"
  rm -rf "$CACHE/apt/lists"
  mv "$BASE.tmp/rootfs/var/lib/apt/lists" "$CACHE/apt/lists"
  mkdir -p "$BASE.tmp/rootfs/var/lib/apt/lists/partial"
  # shellcheck disable=SC2016 # dpkg-query's format
  chroot "$BASE.tmp/rootfs" dpkg-query -W -f '${Package}=${Version}\n' | sort >"$BASE.tmp/versions"
  mv "$BASE.tmp" "$BASE"
  touch "$BASE/.done"
  say "base: built in $(took "$t") ($(wc -l <"$BASE/versions") packages)"
else
  say "base: cached ($BASE)"
fi

# Runs "$@" (a shell snippet) in a chroot of an overlay of LOWER (colon-separated directories,
# top first) with UPPER as the writable layer, in a private mount namespace so nothing stays
# mounted when it ends.
in_overlay() {
  local lower=$1 upper=$2 snippet=$3 status=0
  local work="$upper.work" merged="$upper.merged"
  mkdir -p "$upper" "$work" "$merged"
  # shellcheck disable=SC2016 # the inner script reads its own arguments
  unshare --mount --propagation private bash -euo pipefail -c '
    lower=$1 upper=$2 work=$3 merged=$4 cache=$5 snippet=$6
    mount -t overlay overlay \
      -o "lowerdir=$lower,upperdir=$upper,workdir=$work,redirect_dir=off,metacopy=off,index=off" \
      "$merged"
    mount -t proc proc "$merged/proc"
    mount --rbind /dev "$merged/dev"
    mount -t tmpfs tmpfs "$merged/run"
    mount --bind "$cache/apt/lists" "$merged/var/lib/apt/lists"
    mount --bind "$cache/apt/archives" "$merged/var/cache/apt/archives"
    mount --bind /etc/resolv.conf "$merged/etc/resolv.conf"
    chroot "$merged" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \
      /bin/sh -ec "$snippet"
  ' in-overlay "$lower" "$upper" "$work" "$merged" "$CACHE" "$snippet" || status=$?
  rm -rf "$work" "$merged"
  # Callers run this under `||`, where set -e does not apply: the snippet's status is returned.
  return "$status"
}

# The apt-get install line of an app's layer, with no recommends and no service start.
install_snippet() {
  local packages=$1
  cat <<EOF
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
${packages:+apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confold $packages >/dev/null}
rm -f /usr/sbin/policy-rc.d
EOF
}

# Removes from a finished layer what differs between two builds of the same inputs.
scrub_layer() {
  local upper=$1
  rm -rf "$upper"/var/log/apt "$upper"/var/log/dpkg.log "$upper"/var/log/alternatives.log \
    "$upper"/var/cache/ldconfig/aux-cache "$upper"/var/cache/debconf/*-old \
    "$upper"/var/lib/dpkg/*-old "$upper"/var/cache/apt/*.bin
  # ucf keeps in debconf the mktemp name of the file it compared a kept config file with.
  local dc="$upper/var/cache/debconf/config.dat"
  if [[ -f $dc ]]; then sed -i -E 's#^( [A-Z]+ = /tmp/[A-Za-z0-9_-]+\.)[A-Za-z0-9]{6}$#\1XXXXXX#' "$dc"; fi
  # ca-certificates-java's JKS keystore records when each entry was added: fixed dates.
  local jks="$upper/etc/ssl/certs/java/cacerts"
  if [[ -f $jks && ! -L $jks ]]; then python3 "$HERE/jks-dates.py" "$jks"; fi
  # Directories the bind mounts created in the upper layer only because they were mount points.
  for d in run proc dev var/lib/apt/lists var/cache/apt/archives etc/resolv.conf; do
    [[ -e $upper/$d && ! -L $upper/$d ]] || continue
    if [[ -d $upper/$d ]] && [[ -z $(ls -A "$upper/$d") ]]; then rmdir "$upper/$d"; fi
  done
}

# Builds (or reuses) the layer of one app; echoes the lower-dir chain of that layer, top first.
declare -A LAYER_OF
build_layer() {
  local app=$1 dir="$HERE/$1"
  [[ -n ${LAYER_OF[$app]:-} ]] && { echo "${LAYER_OF[$app]}"; return; }
  local PARENT=base PACKAGES=""
  # shellcheck source=/dev/null
  source <(grep -E '^(PARENT|PACKAGES)=' "$dir/image.conf")
  local lower
  if [[ $PARENT == base ]]; then lower="$BASE/rootfs"; else lower=$(build_layer "$PARENT"); fi
  # Resolve the versions apt would install on top of the layers below (offline, simulated).
  # The resolution is cached by the apt lists' Release files, the layers below and the packages.
  local versions="" resolved
  resolved="$CACHE/resolved/$(printf '%s\n' "$lower" "$PACKAGES" "$(cat "$CACHE"/apt/lists/*Release 2>/dev/null)" |
    sha256sum | cut -c1-16)"
  if [[ -n $PACKAGES && -f $resolved ]]; then
    versions=$(cat "$resolved")
  elif [[ -n $PACKAGES ]]; then
    local sim="$CACHE/layers/.sim-$app"
    rm -rf "$sim"
    versions=$(in_overlay "$lower" "$sim" \
      "apt-get install -s -q --no-install-recommends $PACKAGES | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1=\2/p' | sort" 2>/dev/null) \
      || die "$app: apt-get cannot resolve $PACKAGES (stale lists? IMAGES_UPDATE=1)"
    rm -rf "$sim"
    mkdir -p "$CACHE/resolved"
    printf '%s\n' "$versions" >"$resolved"
  fi
  local key
  key=$( { echo "$lower"; echo "$versions"; echo "$LAYOUT_REV";
           declare -f scrub_layer; sha256sum "$HERE/jks-dates.py";
           (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum;
            find . -printf '%p %m\n' | sort); } | sha256sum | cut -c1-16)
  local layer="$CACHE/layers/$app-$key"
  if [[ ! -f $layer/.done ]]; then
    local t
    t=$(now)
    rm -rf "$layer"
    mkdir -p "$layer"
    local upper="$layer/upper"
    if [[ -d $dir/files ]]; then
      mkdir -p "$upper"
      cp -a "$dir/files/." "$upper/"
      chown -R 0:0 "$upper"
    fi
    local setup=""
    [[ -f $dir/setup.sh ]] && setup=$(cat "$dir/setup.sh")
    in_overlay "$lower" "$upper" "$(install_snippet "$PACKAGES")
$setup" >&2 || die "$app: building the layer failed"
    scrub_layer "$upper"
    printf '%s\n' "$versions" >"$layer/versions"
    touch "$layer/.done"
    say "$app: layer built in $(took "$t") ($(du -sh "$upper" | cut -f1), $(grep -c . "$layer/versions" || true) packages)"
  else
    say "$app: layer cached"
  fi
  LAYER_OF[$app]="$layer/upper:$lower"
  echo "$layer/upper:$lower"
}

# Packs a layer directory once (layer.tar.gz beside it, digests in layer.tar.gz.json); echoes
# the blob's path.
packed_layer() {
  local dir=$1 blob="${1%/*}/layer.tar.gz"
  if [[ ! -f $blob.json ]]; then
    local t
    t=$(now)
    python3 "$ASSEMBLE" layer -o "$blob" "$dir" >/dev/null
    say "${dir#"$CACHE"/layers/}: packed in $(took "$t") ($(du -h "$blob" | cut -f1))"
  fi
  echo "$blob"
}

# Assembles one app's archive from its layer chain and image.conf.
build_image() {
  local app=$1 dir="$HERE/$1"
  local chain
  chain=$(build_layer "$app")
  LAYER_OF[$app]=$chain
  local ENTRYPOINT="" CMD="" USER="" WORKDIR="" ENV=() EXPOSE=() VOLUMES=() LABELS=()
  # shellcheck source=/dev/null
  source "$dir/image.conf"
  local args=(build --name "$REGISTRY/$app:$TAG")
  local layers=() IFS=:
  for l in $chain; do layers=("$l" "${layers[@]}"); done
  unset IFS
  for l in "${layers[@]}"; do args+=(--layer-blob "$(packed_layer "$l")"); done
  [[ -n $ENTRYPOINT ]] && args+=(--entrypoint "$ENTRYPOINT")
  [[ -n $CMD ]] && args+=(--cmd "$CMD")
  [[ -n $USER ]] && args+=(--user "$USER")
  [[ -n $WORKDIR ]] && args+=(--workdir "$WORKDIR")
  for e in "${ENV[@]}"; do args+=(--env "$e"); done
  for p in "${EXPOSE[@]}"; do args+=(--expose "$p"); done
  for v in "${VOLUMES[@]}"; do args+=(--volume "$v"); done
  for l in "${LABELS[@]}"; do args+=(--label "$l"); done
  args+=(--label "org.opencontainers.image.title=legacy-$app")
  local key
  key=$(printf '%s\n' "$chain" "${args[@]}" "$(sha256sum "$ASSEMBLE")" | sha256sum | cut -c1-16)
  local out="$CACHE/archives/$app.tar"
  if [[ -f $out && "$(cat "$CACHE/archives/$app.key" 2>/dev/null)" == "$key" ]]; then
    say "$app: archive cached"
  else
    local t
    t=$(now)
    python3 "$ASSEMBLE" "${args[@]}" -o "$out.tmp" >"$CACHE/archives/$app.digest.tmp"
    mv "$out.tmp" "$out"
    mv "$CACHE/archives/$app.digest.tmp" "$CACHE/archives/$app.digest"
    echo "$key" >"$CACHE/archives/$app.key"
    say "$app: archive assembled in $(took "$t") ($(du -h "$out" | cut -f1))"
  fi
  echo "archive $app $(cat "$CACHE/archives/$app.digest") $out"
}

if [[ ${IMAGES_UPDATE:-0} == 1 ]]; then
  t=$(now)
  in_overlay "$BASE/rootfs" "$CACHE/layers/.update" "apt-get update -q >/dev/null"
  rm -rf "$CACHE/layers/.update"
  say "apt lists refreshed in $(took "$t")"
fi

total=$(now)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <(apps)
for app in "${targets[@]}"; do
  [[ -f $HERE/$app/image.conf ]] || die "unknown app $app (known: $(apps | tr '\n' ' '))"
  build_image "$app"
done
# A full build removes the layers no image uses any more (older package versions or inputs).
if [[ $# -eq 0 ]]; then
  used=$(printf '%s\n' "${LAYER_OF[@]}" | tr ':' '\n' | sed 's#/\(upper\|rootfs\)$##' | sort -u)
  for dir in "$CACHE"/layers/*/; do
    dir=${dir%/}
    grep -qxF "$dir" <<<"$used" || { say "pruning unused layer ${dir##*/}"; rm -rf "$dir"; }
  done
fi
say "all done in $(took "$total")"
