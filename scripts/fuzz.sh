#!/usr/bin/env bash
# make fuzz: runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for FUZZ_SECONDS each
# (default 60), starting from the committed corpus fuzz/corpus/<target> and growing the local
# one in fuzz/corpus-local/<target> (not committed). A crash, a hang (-timeout) or running out
# of memory (-rss_limit_mb) fails the run and leaves the input in fuzz/artifacts/<target>/.
#
# cargo-fuzz needs a nightly toolchain. Where there is none (rustup cannot download one without
# network access to the Rust release servers), the fallback is the property tests with many
# more cases: arbitrary pod specs through the rules, no sanitizer coverage guidance.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
targets=(review_bytes review_pod)

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain; falling back to the property tests with PROPTEST_CASES=20000" >&2
  PROPTEST_CASES=20000 cargo test --locked --release --test tests -- it::properties
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked
fi
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus-local/$target" "fuzz/corpus/$target"
  case "$target" in
    review_bytes) flags=(-dict=fuzz/review.dict -max_len=65536) ;;
    # Structure-aware inputs need room from the start: no slow growth of the length limit.
    review_pod) flags=(-len_control=0 -max_len=8192) ;;
    *) flags=() ;;
  esac
  echo "=== fuzz $target for ${seconds}s" >&2
  status=0
  cargo +nightly fuzz run -O "$target" "fuzz/corpus-local/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 "${flags[@]}" \
    >"fuzz/last-$target.log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb|.*SUMMARY)' \
    "fuzz/last-$target.log" >&2 || true
  if ((status != 0)); then
    tail -n 40 "fuzz/last-$target.log" >&2
    echo "fuzz: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzz: no crash, no hang, no out-of-memory" >&2
