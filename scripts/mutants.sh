#!/usr/bin/env bash
# Mutation testing of gonet's concurrency core with cargo-mutants (not run in CI: a full pass
# takes hours). Each mutant is built with the `ci` profile and tested with nextest; survivors
# are listed in mutants.out/<slice>/missed.txt and must get a test or a line in docs/mutants.md
# saying why they are equivalent.
#
#   scripts/mutants.sh                 # every slice, smallest first
#   scripts/mutants.sh netpoll/state.rs chan/select.rs   # chosen files (under gonet/src)
#
# Environment: JOBS (parallel builds, default 1), TIMEOUT (seconds per test run, default 300).
# Needs: cargo install cargo-mutants --locked; cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-1}
TIMEOUT=${TIMEOUT:-300}
command -v cargo-mutants >/dev/null || { echo "cargo install cargo-mutants --locked" >&2; exit 1; }

# Smallest, highest-value files first.
DEFAULT=(
  netpoll/state.rs runtime/park.rs chan/select.rs netpoll/poll_desc.rs chan/waitq.rs
  chan/channel.rs chan/token.rs runtime/timer.rs net/fd.rs sync/mutex.rs sync/waitgroup.rs
  chan/mod.rs sync/mod.rs
)
FILES=("$@")
[ ${#FILES[@]} -eq 0 ] && FILES=("${DEFAULT[@]}")

sysctl -w vm.max_map_count=1000000 >/dev/null 2>&1 || true
ulimit -n 20000 || true

for f in "${FILES[@]}"; do
  out="mutants.out/${f//\//_}"
  mkdir -p "$out"
  echo "== gonet/src/$f"
  cargo mutants -p gonet --file "gonet/src/$f" \
    --test-tool nextest --profile ci \
    -j "$JOBS" --timeout "$TIMEOUT" --output "$out" \
    || true # cargo-mutants exits non-zero when mutants survive; the summary says how many
  for k in caught missed timeout unviable; do
    printf '%s %s\n' "$k" "$(wc -l <"$out/mutants.out/$k.txt" 2>/dev/null || echo 0)"
  done
done
