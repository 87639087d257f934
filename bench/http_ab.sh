#!/usr/bin/env bash
# http_ab.sh — two HTTP servers compared in interleaved pairs of short runs. On a shared
# VM the host moves a server's throughput by 20-30 % from one minute to the next, often more
# than the difference being measured; two runs a few seconds apart see the same host, so the
# median of the per-pair ratios is steadier than a ratio of per-server medians (bench/http.sh).
# Both servers run at once on CPU 0 (one worker each; the one not under load sleeps), the
# load on CPU 1 (HTTP/1.1: `wrk -t1 -c100`; H2=1: h2c prior knowledge, `h2load -c10 -m10`, 100
# streams over 10 connections), each pair in alternating order. CPU per request is the server's user +
# system ticks over its run (10 ms ticks: 0.5 % of a 2 s run).
#
# Environment: A (hello), B (hyper); names: hello (examples/hyper_hello.rs, the shipped hyper
# server), hgonet (bench's hyper on gonet, jemalloc), hyper (hyper on tokio, current_thread,
# jemalloc), hyper_sys (the same with the system allocator, as hello has), http_hello
# (examples/http_hello.rs). H2 (0), PAIRS (16), SECS (2), NICE (-20).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
A=${A:-hello}
B=${B:-hyper}
PAIRS=${PAIRS:-16}
SECS=${SECS:-2}
NICE=${NICE:--20}
H2=${H2:-0}
BIN=$TARGET_DIR/release
command -v wrk >/dev/null && command -v h2load >/dev/null || {
    log "installing Debian's wrk and nghttp2-client (h2load)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nghttp2-client >&2
}

# bin NAME: builds server NAME and prints its path.
bin() {
    case $1 in
    hello)
        (cd "$ROOT" && cargo build -q --release -p gonet --features hyper --example hyper_hello) >&2
        echo "$BIN/examples/hyper_hello" ;;
    http_hello)
        (cd "$ROOT" && cargo build -q --release -p gonet --example http_hello) >&2
        echo "$BIN/examples/http_hello" ;;
    hgonet)
        (cd "$ROOT" && cargo build -q --release -p gonet-bench --bin http_hyper_gonet) >&2
        echo "$BIN/http_hyper_gonet" ;;
    hyper)
        (cd "$ROOT" && cargo build -q --release -p gonet-bench --no-default-features \
            --features jemalloc --bin http_hyper) >&2
        echo "$BIN/http_hyper" ;;
    hyper_sys)
        (cd "$ROOT" && cargo build -q --release -p gonet-bench --no-default-features \
            --bin http_hyper --target-dir "$TARGET_DIR/sysalloc") >&2
        echo "$TARGET_DIR/sysalloc/release/http_hyper" ;;
    *) echo "unknown server $1" >&2; exit 1 ;;
    esac
}

BIN_A=$(bin "$A")
BIN_B=$(bin "$B")
PORT_A=$((19600 + RANDOM % 50))
PORT_B=$((PORT_A + 50))
taskset -c 0 nice -n "$NICE" env GONET_PROCS=1 "$BIN_A" "127.0.0.1:$PORT_A" >/dev/null 2>&1 &
PID_A=$!
taskset -c 0 nice -n "$NICE" env GONET_PROCS=1 "$BIN_B" "127.0.0.1:$PORT_B" >/dev/null 2>&1 &
PID_B=$!
TMP=$(mktemp -d)
trap 'kill $PID_A $PID_B 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"' EXIT
await_ports "$PORT_A" "$PORT_B"

# load PORT PID: one wrk (or h2load) run; prints "req/s ticks".
load() {
    local t0 rps
    t0=$(proc_ticks "$2")
    if [ "$H2" = 1 ]; then
        rps=$(taskset -c 1 nice -n "$NICE" h2load -c10 -m10 -D "$SECS" "http://127.0.0.1:$1/" \
            2>/dev/null | awk '/^finished in/ { sub(",", "", $4); print $4 }')
    else
        rps=$(taskset -c 1 nice -n "$NICE" wrk -t1 -c100 -d"${SECS}s" "http://127.0.0.1:$1/" \
            2>/dev/null | awk '/Requests\/sec/ { print $2 }')
    fi
    echo "$rps $(($(proc_ticks "$2") - t0))"
}
run_a() { load "$PORT_A" "$PID_A"; }
run_b() { load "$PORT_B" "$PID_B"; }

results_header "bench/http_ab.sh: A=$A B=$B H2=$H2, $PAIRS interleaved pairs of ${SECS} s runs, servers on CPU 0, one worker each"
ab_pairs "$PAIRS" "$TMP/pairs"
