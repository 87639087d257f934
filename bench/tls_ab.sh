#!/usr/bin/env bash
# tls_ab.sh — two TLS echo servers compared in interleaved pairs of short runs (the method of
# http_ab.sh: two runs seconds apart see the same host, so the median of per-pair ratios is
# steadier on a shared VM than a ratio of per-server medians, bench/tls.sh). Both servers run
# at once on CPU 0, one worker each; bench's tls_loadgen on CPU 1, each pair in alternating
# order. CPU per request is the server's user + system ticks over its run.
#
# Environment: A (reactor), B (tokio); names: reactor (examples/reactor_tls_echo.rs),
# reactorN (the same with GONET_SPIN_US=N), goroutine (examples/tls_echo.rs), tokio (tokio +
# tokio-rustls, current_thread), go (Go crypto/tls). CONNS (100), SIZE (64), HANDSHAKES (0;
# 1 = a new connection per request), PAIRS (16), SECS (2), NICE (-20).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
A=${A:-reactor}
B=${B:-tokio}
CONNS=${CONNS:-100}
SIZE=${SIZE:-64}
HANDSHAKES=${HANDSHAKES:-0}
PAIRS=${PAIRS:-16}
SECS=${SECS:-2}
NICE=${NICE:--20}
BIN=$TARGET_DIR/release
TMP=$(mktemp -d)
(cd "$ROOT" && cargo build -q --release -p gonet-bench --no-default-features \
    --bin tls_loadgen --bin tls_echo_tokio)
(cd "$ROOT" && cargo build -q --release -p gonet --features rustls \
    --example reactor_tls_echo --example tls_echo)
case "$A $B" in *go*) ensure_go
    (cd "$BENCH_DIR/go" && CGO_ENABLED=0 go build -o "$BIN/tls_echo_go" ./tls_echo) ;;
esac

# start NAME PORT: starts server NAME; prints "pid certificate".
start() {
    local dir=$TMP/$1-$2 spin=
    local -a cmd
    mkdir -p "$dir"
    case $1 in
    reactor | reactor[0-9]*)
        spin=${1#reactor}
        cmd=("$BIN/examples/reactor_tls_echo" "127.0.0.1:$2") cert=gonet-reactor_tls_echo-cert.pem ;;
    goroutine) cmd=("$BIN/examples/tls_echo" server "127.0.0.1:$2") cert=gonet-tls_echo-cert.pem ;;
    tokio) cmd=("$BIN/tls_echo_tokio" "127.0.0.1:$2") cert=gonet-tls_echo_tokio-cert.pem ;;
    go) cmd=("$BIN/tls_echo_go" "127.0.0.1:$2") cert=gonet-go_tls_echo-cert.pem ;;
    *) echo "unknown server $1" >&2; exit 1 ;;
    esac
    TMPDIR=$dir taskset -c 0 nice -n "$NICE" env GONET_PROCS=1 GOMAXPROCS=1 \
        ${spin:+GONET_SPIN_US=$spin} "${cmd[@]}" >"$dir/log" 2>&1 &
    echo "$! $dir/$cert"
}

PORT_A=$((19400 + RANDOM % 50))
PORT_B=$((PORT_A + 50))
read -r PID_A CA_A < <(start "$A" "$PORT_A")
read -r PID_B CA_B < <(start "$B" "$PORT_B")
trap 'kill $PID_A $PID_B 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"' EXIT
await_ports "$PORT_A" "$PORT_B"

# load PORT PID CA: one load run; prints "req/s ticks".
load() {
    local t0 rps
    t0=$(proc_ticks "$2")
    rps=$(taskset -c 1 nice -n "$NICE" "$BIN/tls_loadgen" --addr "127.0.0.1:$1" --ca "$3" \
        --conns "$CONNS" --size "$SIZE" --duration "$SECS" --warmup 0 \
        --handshakes "$HANDSHAKES" 2>&1 | awk '/^rps/ { print $2 }')
    echo "$rps $(($(proc_ticks "$2") - t0))"
}
run_a() { load "$PORT_A" "$PID_A" "$CA_A"; }
run_b() { load "$PORT_B" "$PID_B" "$CA_B"; }

results_header "bench/tls_ab.sh: A=$A B=$B, ${CONNS}x${SIZE} handshakes=$HANDSHAKES, $PAIRS interleaved pairs of ${SECS} s runs, servers on CPU 0, one worker each"
ab_pairs "$PAIRS" "$TMP/pairs"
