#!/usr/bin/env bash
# tls.sh — TLS echo on the reactor (the shipped example examples/reactor_tls_echo.rs,
# `Builder::tls`) against the goroutine-per-connection TLS echo (examples/tls_echo.rs, rustls's
# StreamOwned over gonet::net::TcpStream). Both run pinned to CPU 0 with one worker
# (GONET_PROCS=1), with the same rustls and the same self-signed ECDSA P-256 certificate
# kind; the client is bench/src/bin/tls_loadgen.rs pinned to CPU 1 (TLS 1.3 with
# AES-128-GCM only, one blocking thread per connection), at 64 B and 4 KiB messages over 1
# and 100 connections, after the handshake. Servers alternate for ROUNDS rounds, each run on
# a fresh server; the report gives the medians of req/s and server CPU µs per request, and
# the reactor's ratios. Then resident memory per idle TLS connection (IDLE_CONNS connections
# that each completed the handshake and one echo). Results go to bench/results/tls-latest.txt.
#
# The client does as much crypto per request as the server, so on two CPUs req/s is often
# bounded by the client; server CPU per request is the figure that compares the servers.
#
# Environment: DURATION (5 s measured), WARMUP (1 s), ROUNDS (3), SERVERS ("reactor
# goroutine"), SCENARIOS ("1x64 1x4096 100x64 100x4096"), IDLE_CONNS (2000, 0 skips the
# memory part), PORT_BASE (19500), PROFILE (release; `ci` reuses the test build's optimized
# profile for a quick look, and the report says which).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"reactor goroutine"}
SCENARIOS=${SCENARIOS:-"1x64 1x4096 100x64 100x4096"}
IDLE_CONNS=${IDLE_CONNS:-2000}
PORT_BASE=${PORT_BASE:-19500}
PROFILE=${PROFILE:-release}
BIN=$TARGET_DIR/$PROFILE
one_server_at_a_time
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
ulimit -n 20000 2>/dev/null || true

log "building tls_loadgen and the TLS examples (release)"
# The load generator needs neither gonet nor jemalloc.
(cd "$ROOT" && cargo build --profile "$PROFILE" -p gonet-bench --no-default-features --bin tls_loadgen)
(cd "$ROOT" && cargo build --profile "$PROFILE" -p gonet --features rustls \
    --example reactor_tls_echo --example tls_echo)

PORT=$PORT_BASE
# Starts server $1 on a fresh port; sets SERVER_PID and CA (its certificate file).
start_server() {
    PORT=$((PORT + 1))
    local cert
    case $1 in
    reactor)
        cert=$TMP/reactor
        mkdir -p "$cert"
        TMPDIR=$cert taskset -c 0 env GONET_PROCS=1 "$BIN/examples/reactor_tls_echo" \
            "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
        CA=$cert/gonet-reactor_tls_echo-cert.pem
        ;;
    goroutine)
        cert=$TMP/goroutine
        mkdir -p "$cert"
        TMPDIR=$cert taskset -c 0 env GONET_PROCS=1 "$BIN/examples/tls_echo" server \
            "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
        CA=$cert/gonet-tls_echo-cert.pem
        ;;
    esac
    SERVER_PID=$!
    await_listening "$1" "$PORT"
}

SAMPLES=$TMP/samples
: >"$SAMPLES"
for round in $(seq 1 "$ROUNDS"); do
    for sc in $SCENARIOS; do
        conns=${sc%x*}
        size=${sc#*x}
        for srv in $SERVERS; do
            start_server "$srv" || { stop_server; continue; }
            log "round $round: $srv, $conns connections, $size B"
            if taskset -c 1 "$BIN/tls_loadgen" --addr "127.0.0.1:$PORT" --ca "$CA" \
                --conns "$conns" --size "$size" --duration "$DURATION" --warmup "$WARMUP" \
                --server-pid "$SERVER_PID" >"$TMP/out" 2>"$TMP/err"; then
                awk -v g="$srv/$sc" -v r="$round" '{ print g, $1, $2; print g "@" r, $1, $2 }' \
                    "$TMP/out" >>"$SAMPLES"
            else
                log "WARNING: tls_loadgen failed against $srv: $(cat "$TMP/err")"
            fi
            stop_server
        done
    done
done

IDLE=$TMP/idle
: >"$IDLE"
if [ "$IDLE_CONNS" -gt 0 ]; then
    for srv in $SERVERS; do
        start_server "$srv" || { stop_server; continue; }
        log "idle: $srv, $IDLE_CONNS TLS connections"
        if taskset -c 1 "$BIN/tls_loadgen" --addr "127.0.0.1:$PORT" --ca "$CA" \
            --idle "$IDLE_CONNS" --server-pid "$SERVER_PID" >"$TMP/out" 2>"$TMP/err"; then
            awk -v g="$srv" '{ print g, $1, $2 }' "$TMP/out" >>"$IDLE"
        else
            log "WARNING: idle measurement failed against $srv: $(cat "$TMP/err")"
        fi
        stop_server
    done
fi

MED=$TMP/medians
grep -v '@' "$SAMPLES" | medians >"$MED" || true
# Per-round ratios reactor/goroutine (same round, so slow drift cancels), then their median.
RAT=$TMP/ratios
: >"$RAT"
for sc in $SCENARIOS; do
    for round in $(seq 1 "$ROUNDS"); do
        for k in rps server_cpu_us_per_req; do
            a=$(awk -v g="reactor/$sc@$round" -v k="$k" '$1 == g && $2 == k { print $3 }' "$SAMPLES")
            b=$(awk -v g="goroutine/$sc@$round" -v k="$k" '$1 == g && $2 == k { print $3 }' "$SAMPLES")
            r=$(ratio "${a:-n/a}" "${b:-n/a}")
            [ "$r" = n/a ] || echo "$sc $k $r" >>"$RAT"
        done
    done
done
RMED=$TMP/ratio-medians
medians <"$RAT" >"$RMED" || true

OUT=$RESULTS/tls-latest.txt
{
    results_header "bench/tls.sh: TLS echo, reactor (Builder::tls) vs goroutine-per-connection tls_echo" "$START_LOAD"
    echo "# one worker on CPU 0, tls_loadgen on CPU 1; TLS 1.3, TLS13_AES_128_GCM_SHA256, ECDSA P-256"
    echo "# profile: $PROFILE"
    echo "# ROUNDS=$ROUNDS DURATION=${DURATION}s WARMUP=${WARMUP}s; medians; ratios: median of per-round reactor/goroutine"
    echo
    printf '%-10s %12s %12s %14s %14s %10s %12s\n' scenario "reactor r/s" "gorout. r/s" "reactor µs/req" "gorout. µs/req" "r/s ratio" "cpu/req ratio"
    for sc in $SCENARIOS; do
        printf '%-10s %12s %12s %14s %14s %10s %12s\n' "$sc" \
            "$(fmt "$(lookup "$MED" "reactor/$sc" rps)" 0)" \
            "$(fmt "$(lookup "$MED" "goroutine/$sc" rps)" 0)" \
            "$(fmt "$(lookup "$MED" "reactor/$sc" server_cpu_us_per_req)" 2)" \
            "$(fmt "$(lookup "$MED" "goroutine/$sc" server_cpu_us_per_req)" 2)" \
            "$(lookup "$RMED" "$sc" rps)" \
            "$(lookup "$RMED" "$sc" server_cpu_us_per_req)"
    done
    if [ "$IDLE_CONNS" -gt 0 ]; then
        echo
        echo "# resident bytes per idle TLS connection ($IDLE_CONNS connections, each after the handshake and one echo)"
        for srv in $SERVERS; do
            printf '%-10s %s\n' "$srv" "$(lookup "$IDLE" "$srv" idle_conn_bytes)"
        done
    fi
} >"$OUT"
cat "$OUT"
