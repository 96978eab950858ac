#!/usr/bin/env bash
# fuzz/ is a workspace of its own (cargo-fuzz builds it with nightly and sanitizer flags), with
# its own Cargo.lock. Checks that this lock still resolves fuzz/Cargo.toml without a change
# (`--locked`), and that every crate it shares with the main workspace is pinned at a version the
# main Cargo.lock has: the fuzzers exercise the dependencies the binary ships with.
#
# To refresh it after the main workspace's dependencies changed, with the least change:
#   cargo update --manifest-path fuzz/Cargo.toml --workspace     (adds what is missing)
#   cargo update --manifest-path fuzz/Cargo.toml -p <crate> --precise <main's version>
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null ||
  { echo "fuzz-lock-check: fuzz/Cargo.lock is stale (see the header of $0 to refresh it)" >&2; exit 1; }
python3 - Cargo.lock fuzz/Cargo.lock <<'PY'
import sys, tomllib
def versions(path):
    out = {}
    for p in tomllib.load(open(path, "rb"))["package"]:
        out.setdefault(p["name"], set()).add(p["version"])
    return out
main, fuzz = versions(sys.argv[1]), versions(sys.argv[2])
drift = sorted(f"{n} {', '.join(sorted(v - main[n]))} (main: {', '.join(sorted(main[n]))})"
               for n, v in fuzz.items() if n in main and not v <= main[n])
if drift:
    sys.exit("fuzz-lock-check: fuzz/Cargo.lock pins other versions than Cargo.lock:\n  " + "\n  ".join(drift))
print(f"fuzz-lock-check: fuzz/Cargo.lock resolves, and its {sum(n in main for n in fuzz)} crates shared with Cargo.lock are at its versions")
PY
