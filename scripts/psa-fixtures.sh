#!/usr/bin/env bash
# Fetches Pod Security Admission's own `restricted` fixtures (pods that pass or fail each check)
# for the Kubernetes minor version of the e2e control plane, and prints the directory holding
# their pass/ and fail/ on stdout (nothing else goes to stdout).
#
# Source: the Go module k8s.io/pod-security-admission (Apache-2.0), at the version the control
# plane's go.mod pins (e2e/controlplane/kube-apiserver: v0.36.x for kube-apiserver v1.36.x),
# downloaded through the Go module proxy and checked against that go.sum. Its test/testdata/
# <level>/v1.<minor>/ holds the complete set for one version (upstream's TestFixtures,
# test/fixtures_test.go, writes every fixture of every check into every version's directory, so a
# directory is not a delta). TestFixtures writes directories up to `newestMinorVersionToTest`
# (test/run.go) and fails unless that is at least the newest minor in which a check changed, so a
# later minor evaluates exactly as that one: its set is that directory (upstream resolves checks
# and fixtures the same way, by the newest registration at or below the version asked for). This
# script checks that premise against the module's policy/ and test/ sources before using it.
#
# Cached by module version under ${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/psa-fixtures/;
# a cache hit needs neither go nor the network.
#
# Usage: scripts/psa-fixtures.sh      fetch if missing, print <cache>/.../restricted-v1.<minor>
# Env:   KUBE_HARDEN_CACHE            cache root (default $HOME/.cache/kube-harden)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kmod="$repo/e2e/controlplane/kube-apiserver"
module=k8s.io/pod-security-admission
level=restricted

log() { echo "psa-fixtures: $*" >&2; }
fail() { log "$*"; exit 1; }

# The version the control plane pins: `replace k8s.io/pod-security-admission => ... vX.Y.Z`.
version="$(awk -v m="$module" '$1 == m && $2 == "=>" { print $4; exit }' "$kmod/go.mod")"
[[ "$version" =~ ^v0\.([0-9]+)\.[0-9]+$ ]] ||
  fail "cannot read the $module version from $kmod/go.mod (got '$version')"
minor="${BASH_REMATCH[1]}"

cache="${KUBE_HARDEN_CACHE:-$HOME/.cache/kube-harden}/psa-fixtures/pod-security-admission-$version"
out="$cache/$level-v1.$minor"
if [[ -d "$out/pass" && -d "$out/fail" ]]; then
  echo "$out"
  exit 0
fi

export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
command -v go >/dev/null || fail "go not found: it fetches $module $version through the Go module proxy"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
log "downloading $module $version (go mod download, checked against $kmod/go.sum)"
# Inside the control plane's module, so go resolves its replace directive and verifies go.sum.
field() { sed -n 's/^[[:space:]]*"'"$1"'": "\(.*\)",\{0,1\}$/\1/p' <<<"$json" | head -1; }
json="$(cd "$kmod" && GOFLAGS=-mod=readonly go mod download -json "$module")" ||
  fail "go mod download $module failed: $(field Error)"
[[ "$(field Version)" == "$version" ]] ||
  fail "go mod download gave version '$(field Version)', go.mod pins $version"
dir="$(field Dir)"
[[ -d "$dir/test/testdata" ]] || fail "no test/testdata in $dir"

# Which generated directory is the v1.<minor> set (see the header).
newest="$(sed -n 's/^[[:space:]]*newestMinorVersionToTest[[:space:]]*=[[:space:]]*\([0-9]\{1,\}\).*/\1/p' \
  "$dir/test/run.go" | head -1)"
[[ -n "$newest" ]] || fail "cannot read newestMinorVersionToTest from $dir/test/run.go"
from=$((minor < newest ? minor : newest))
# The premise: nothing in the module's checks (policy/) or fixture definitions (test/) is
# registered for a version after v1.<from>.
changed="$(find "$dir/policy" "$dir/test" -maxdepth 1 -name '*.go' ! -name '*_test.go' \
  -exec grep -ho 'MajorMinorVersion(1, *[0-9]*)' {} + | sed 's/.*, *\([0-9]*\))/\1/' | sort -n | tail -1)"
[[ -n "$changed" ]] || fail "cannot read the checks' versions from $dir/policy"
if ((minor > from && changed > from)); then
  fail "$module $version changes checks or fixtures in v1.$changed but has fixtures only up to v1.$from"
fi
src="$dir/test/testdata/$level/v1.$from"
[[ -d "$src/pass" && -d "$src/fail" ]] || fail "no pass/ and fail/ in $src"

mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.tmp.XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
cp -R "$src/pass" "$src/fail" "$tmp/"
chmod -R u+w "$tmp" # the module cache is read-only; the cache must stay removable
# Atomic: a concurrent run that finished first wins, and this copy is dropped.
mv -T "$tmp" "$out" 2>/dev/null || [[ -d "$out/pass" ]] || fail "cannot create $out"
cat >"$cache/README" <<EOF
$(basename "$out"): $module $version ($(field Sum)), test/testdata/$level/v1.$from:
the set for v1.$minor (the newest generated directory at or below it, as upstream's TestFixtures
resolves versions; no check changes after v1.$changed). Apache License 2.0, The Kubernetes Authors.
Written by kube-harden's scripts/psa-fixtures.sh.
EOF
log "$(find "$out/pass" -name '*.yaml' | wc -l) pass/ and $(find "$out/fail" -name '*.yaml' | wc -l) fail/ fixtures from $src"
echo "$out"
