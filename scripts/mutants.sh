#!/usr/bin/env bash
# Mutation testing of gonet's concurrency core with cargo-mutants (not run in CI: a pass over
# every slice takes hours on two cores). Each mutant is built with the `ci` profile and tested
# with nextest against the library's unit tests and the integration tests that exercise that
# file (the table below), so a mutant costs one incremental build and a few test binaries.
# Survivors are listed in mutants.out/<file>/mutants.out/missed.txt; each must get a test or a
# line in docs/mutants.md saying why it is equivalent.
#
#   scripts/mutants.sh                              # every slice, smallest first
#   scripts/mutants.sh netpoll/state.rs chan/select.rs   # chosen files (under gonet/src)
#
# Environment: JOBS (parallel builds, default 1), TIMEOUT (seconds per test run, default 180),
# IN_PLACE=1 (mutate this tree instead of a copy: fastest, reuses target/ci; do not edit the
# tree meanwhile), SURVIVORS=1 (test again only the mutants the previous run of each file
# missed, matched by description so that moved lines still match: the "after" figures).
# Needs: cargo install cargo-mutants --locked; cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-1}
TIMEOUT=${TIMEOUT:-180}
command -v cargo-mutants >/dev/null || { echo "cargo install cargo-mutants --locked" >&2; exit 1; }

# file under gonet/src -> integration tests that exercise it (besides the unit tests)
tests_for() {
  case "$1" in
    netpoll/*) echo net_parked_elsewhere net_deadline net_close net_tcp net_thread net_faults idle ;;
    runtime/park.rs) echo runtime sync sync_shutdown chan select net_parked_elsewhere thread_interop ;;
    runtime/timer.rs) echo timers timing runtime thread_interop net_deadline ;;
    runtime/idle_policy.rs) echo spin idle placement runtime ;;
    chan/*) echo chan chan_close select select_syntax thread_interop timers soundness ;;
    sync/*) echo sync sync_more sync_shutdown thread_interop ;;
    net/fd.rs) echo net_tcp net_close net_deadline net_udp net_unix net_options net_faults net_splice net_parked_elsewhere ;;
    *) echo "no test slice for $1" >&2; exit 2 ;;
  esac
}

DEFAULT=(
  runtime/park.rs netpoll/state.rs sync/waitgroup.rs chan/waitq.rs sync/mutex.rs
  runtime/timer.rs chan/select.rs chan/token.rs chan/channel.rs netpoll/poll_desc.rs
  chan/mod.rs net/fd.rs sync/cond.rs sync/once.rs netpoll/mod.rs netpoll/epoll.rs
  chan/error.rs sync/semaphore.rs sync/rwlock.rs
)
FILES=("$@")
[ ${#FILES[@]} -eq 0 ] && FILES=("${DEFAULT[@]}")

sysctl -w vm.max_map_count=1000000 >/dev/null 2>&1 || true
ulimit -n 20000 || true
export CI=true
place=(-j "$JOBS")
[ "${IN_PLACE:-0}" = 1 ] && place=(--in-place)

for f in "${FILES[@]}"; do
  out="mutants.out/${f//\//_}"
  mkdir -p "$out"
  # -C reaches the build and the test phase, so only these test binaries are built
  args=(-C --lib)
  for t in $(tests_for "$f"); do args+=(-C --test -C "$t"); done
  if [ "${SURVIVORS:-0}" = 1 ]; then
    missed="$out/mutants.out/missed.txt"
    [ -s "$missed" ] || { echo "== gonet/src/$f: no survivors in $missed"; continue; }
    # "path:LINE:COL: description" -> a regex on the description, any line and column
    while IFS= read -r m; do
      args+=(-F "$(printf '%s' "${m#*: }" | sed 's/[][\\.^$*+?(){}|]/\\&/g; s/^/: /')")
    done <"$missed"
  fi
  echo "== gonet/src/$f (tests: ${args[*]})"
  cargo mutants -p gonet --file "gonet/src/$f" "${place[@]}" --baseline skip -E "tests::" \
    --test-tool nextest --profile ci --timeout "$TIMEOUT" --output "$out" "${args[@]}" \
    || true # cargo-mutants exits non-zero when mutants survive; the summary says how many
  for k in caught missed timeout unviable; do
    printf '%s %s\n' "$k" "$(wc -l <"$out/mutants.out/$k.txt" 2>/dev/null || echo 0)"
  done
done
