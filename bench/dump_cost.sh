#!/usr/bin/env bash
# dump_cost.sh — what the goroutine dump's bookkeeping costs when nobody dumps: gonet as it
# is against a copy of the same commit with that bookkeeping taken out (the wait reason every
# park records, the park time, the spawn site of the running goroutine), on the unbuffered
# channel ping-pong (bench/rt.sh's) and on echo at 100 connections x 64 B (bench/echo.sh's
# load generator). Both builds alternate for ROUNDS rounds; the report gives medians and the
# ratio with/without. Results go to bench/results/dump-cost-latest.txt.
#
# Environment: ROUNDS (5), DURATION (5 s per echo run), PINGPONG (1000000 round trips).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
PINGPONG=${PINGPONG:-1000000}
NODUMP=$ROOT/target/nodump-src
NODUMP_BIN=$ROOT/target/nodump/release
TMP=$(mktemp -d)
SERVER_PID=
trap 'stop_server; rm -rf "$TMP"' EXIT

build_rust
[ "$HAVE_GONET" = yes ] || { log "gonet does not build"; exit 1; }

# The same commit without the bookkeeping: no wait reason is recorded (`wait::reason`,
# `wait::io`, the reason `park_for` and the sleep commit store), and the worker no longer
# stores the park time or the running goroutine's spawn site.
log "building the copy without the dump's bookkeeping in $NODUMP"
rm -rf "$NODUMP"
mkdir -p "$NODUMP"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$NODUMP")
w=$NODUMP/gonet/src/runtime
perl -0pi -e 's/(pub\(crate\) fn reason\(w: Wait\) \{).*?\n\}/$1\n    let _ = w; \/\/ nodump\n}/s' "$w/wait.rs"
perl -0pi -e 's/(pub\(crate\) fn io\(g: &super::goroutine::G, fd: i32, write: bool\) \{).*?\n\}/$1\n    let _ = (g, fd, write); \/\/ nodump\n}/s' "$w/wait.rs"
perl -0pi -e 's/g\.wait\.set\(reason\);/let _ = reason; \/\/ nodump/' "$w/park.rs"
perl -0pi -e 's/\n\s*g\.wait\.set\(super::wait::Wait::Sleep\);/\n        \/\/ nodump/' "$w/worker.rs"
perl -0pi -e 's/\n\s*g\.parked_ms\.set\(super::wait::coarse_ms\(\)\);/\n                \/\/ nodump/' "$w/worker.rs"
perl -0pi -e 's/\n\s*self\.shared\s*\.running_site\s*\.store\([^;]*\);/\n        \/\/ nodump/' "$w/worker.rs"
for f in wait.rs:2 park.rs:1 worker.rs:3; do
    [ "$(grep -c '// nodump' "$w/${f%:*}")" = "${f#*:}" ] || { log "patching ${f%:*} failed"; exit 1; }
done
(cd "$NODUMP" && CARGO_TARGET_DIR=$ROOT/target/nodump cargo build --release -p gonet-bench \
    --bin rt_gonet --bin echo_gonet)

bin_of() { # $1 = with | without, $2 = binary name
    if [ "$1" = with ]; then echo "$BIN/$2"; else echo "$NODUMP_BIN/$2"; fi
}

samples=$TMP/samples
: >"$samples"
PORT=19500
for round in $(seq 1 "$ROUNDS"); do
    for v in with without; do
        log "round $round/$ROUNDS: $v bookkeeping"
        taskset -c 0 "$(bin_of $v rt_gonet)" --spawn 1 --warmup 10000 --parked 1 --burst 1 \
            --pingpong "$PINGPONG" >"$TMP/rt.out"
        awk -v v="$v" '$1 == "pingpong_ns" { print v, "pingpong_ns", $2 }' "$TMP/rt.out" >>"$samples"
        PORT=$((PORT + 1))
        taskset -c 0 env GONET_PROCS=1 "$(bin_of $v echo_gonet)" "127.0.0.1:$PORT" \
            >"$TMP/server.log" 2>&1 &
        SERVER_PID=$!
        await_listening "echo ($v)" "$PORT"
        taskset -c 1 "$BIN/loadgen" --addr "127.0.0.1:$PORT" --conns 100 --size 64 \
            --duration "$DURATION" --warmup 1 --server-pid "$SERVER_PID" >"$TMP/load.out"
        awk -v v="$v" '$1 == "rps" || $1 == "server_cpu_us_per_req" { print v, "echo_" $1, $2 }' \
            "$TMP/load.out" >>"$samples"
        stop_server
    done
done

# Instructions per round trip (deterministic, unlike time on a shared machine): callgrind's
# total at 300k minus at 100k round trips, over 200k. Stacks in separate mappings: valgrind
# does not know guard regions.
if command -v valgrind >/dev/null; then
    for v in with without; do
        ir() {
            GONET_STACK_SLABS=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                "$(bin_of $v rt_gonet)" --spawn 1 --warmup 10 --parked 1 --burst 1 --pingpong "$1" 2>&1 |
                awk '/Collected/ { print $NF }'
        }
        a=$(ir 100000)
        b=$(ir 300000)
        echo "$v pingpong_instructions $(( (b - a) / 200000 ))" >>"$samples"
    done
else
    log "valgrind not installed: no instruction counts"
fi

medians <"$samples" >"$samples.med"
mkdir -p "$RESULTS"
{
    results_header "cost of the goroutine dump's bookkeeping (bench/dump_cost.sh): one worker on CPU 0, median of $ROUNDS rounds"
    echo
    printf "%-30s%14s%14s%14s\n" figure with without with/without
    for f in pingpong_instructions pingpong_ns echo_rps echo_server_cpu_us_per_req; do
        a=$(lookup "$samples.med" with "$f")
        b=$(lookup "$samples.med" without "$f")
        printf "%-30s%14s%14s%14s\n" "$f" "$(fmt "$a" 2)" "$(fmt "$b" 2)" "$(ratio "$a" "$b")"
    done
    echo
    echo "# samples (build figure value):"
    sed 's/^/#   /' "$samples"
} | tee "$RESULTS/dump-cost-latest.txt"
