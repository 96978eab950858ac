#!/usr/bin/env bash
# make answers BASE=<commit>: are kube-harden's answers byte-identical to those of <commit>?
#
# Builds the answers tool (fuzz/src/bin/answers.rs) twice: against kube-harden at BASE (in a
# temporary git worktree, with the working tree's fuzz/ and podgen/ copied over it, so both sides decode the
# corpus the same way) and against the working tree. Each writes one digest per input of the fuzz
# corpus and the fixtures (read from the working tree); the two files are compared: how many
# inputs, how many differ, the first that do; then the same with each patch normalised
# (`answers shape`: the document it gives, the operations that write an empty object of the
# original as one marker), so that a change of patch shape shows it gives the same documents.
# `target/debug/answers show . <input>` prints one input's answers in full (target/answers/answers-base show for BASE's). Both builds share target/ (only kube-harden and the tool recompile).
set -euo pipefail
cd "$(dirname "$0")/.."
base="${BASE:?usage: make answers BASE=<commit>}"
root="$PWD"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/answers"
mkdir -p "$out"
tmp="$(mktemp -d)"
cleanup() {
  git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

git worktree add --quiet --detach "$tmp/base" "$base"
# The tool and its decoder (fuzz/, the pod spec generator podgen/) as they are now (tracked and
# new files), without the corpus.
rm -rf "$tmp/base/fuzz" "$tmp/base/podgen"
git ls-files -z --cached --others --exclude-standard -- fuzz podgen ':(exclude)fuzz/corpus' |
  while IFS= read -r -d '' f; do
    [[ -e "$f" ]] || continue
    mkdir -p "$tmp/base/$(dirname "$f")"
    cp "$f" "$tmp/base/$f"
  done

echo "answers: building the tool against $base" >&2
# Not --locked: the lock may list what only the working tree's kube-harden needs.
(cd "$tmp/base/fuzz" && CARGO_TARGET_DIR="$target" cargo build --quiet --bin answers)
cp "$target/debug/answers" "$out/answers-base"
echo "answers: building the tool against the working tree" >&2
(cd fuzz && CARGO_TARGET_DIR="$target" cargo build --quiet --locked --bin answers)

"$out/answers-base" write "$root" "$out/base.txt"
"$target/debug/answers" write "$root" "$out/new.txt"
status=0
"$target/debug/answers" compare "$out/base.txt" "$out/new.txt" || status=$?
# The same with each patch normalised (fuzz/src/shape.rs): where the answers differ, do they
# differ only in how the patches write the original's empty objects, giving the same documents?
"$out/answers-base" shape "$root" "$out/base-shape.txt"
"$target/debug/answers" shape "$root" "$out/new-shape.txt"
echo -n "patch shape normalised: " >&2
"$target/debug/answers" compare "$out/base-shape.txt" "$out/new-shape.txt" || status=$?
exit "$status"
