#!/usr/bin/env bash
# idle.sh — resident memory per idle connection of the echo servers users run, measured two
# ways with bench/src/bin/idleconns.rs (IDLE_CONNS connections, the server's VmRSS before and
# after, divided by the count):
#   fresh   connections that never sent a byte (the server parked in its first read);
#   served  connections that did one 64-byte echo round trip first, then went idle: the
#           server has read into its buffer once, so a buffer it allocated is now touched.
# Servers: "example" (examples/echo.rs as shipped, system allocator), "go4k" (Go's net with a
# 4 KiB buffer per connection), "go" (the same with 64 KiB), "reactor" (examples/reactor_echo.rs).
# Each runs with one worker (GONET_PROCS=1, GOMAXPROCS=1) on CPU 0, idleconns on CPU 1;
# servers alternate for ROUNDS rounds and the report gives medians and the ratios to go4k.
# Results go to bench/results/idle-latest.txt.
#
# Environment: ROUNDS (3), IDLE_CONNS (10000), SERVERS ("example go4k go reactor"),
# PORT_BASE (19800).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
IDLE_CONNS=${IDLE_CONNS:-10000}
SERVERS=${SERVERS:-"example go4k go reactor"}
PORT_BASE=${PORT_BASE:-19800}
MODES="fresh served"

one_server_at_a_time

log "building idleconns and the echo examples (release)"
(cd "$ROOT" && cargo build --release -p gonet-bench --bin idleconns)
(cd "$ROOT" && cargo build --release -p gonet --example echo --example reactor_echo)
build_go echo echo_go
raise_max_map_count >&2
# The server and idleconns each hold IDLE_CONNS descriptors (plus a few).
if [ "$(ulimit -n)" -lt $((IDLE_CONNS + 100)) ]; then
    ulimit -n $((IDLE_CONNS + 100)) 2>/dev/null ||
        log "WARNING: ulimit -n is $(ulimit -n); $IDLE_CONNS idle connections may not fit"
fi

# Starts server $1 pinned to CPU 0 on port $2; sets SERVER_PID.
start_server() {
    local argv
    case $1 in
        example) argv=("$BIN/examples/echo" "127.0.0.1:$2") ;;
        reactor) argv=("$BIN/examples/reactor_echo" "127.0.0.1:$2") ;;
        go4k) argv=("$BIN/echo_go" "127.0.0.1:$2" 4096) ;;
        go) argv=("$BIN/echo_go" "127.0.0.1:$2" 65536) ;;
        *) log "unknown server $1"; return 1 ;;
    esac
    taskset -c 0 env GONET_PROCS=1 GOMAXPROCS=1 "${argv[@]}" >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    await_listening "$1" "$2"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
samples=$TMP/samples
: >"$samples"
port=$PORT_BASE
for round in $(seq 1 "$ROUNDS"); do
    for mode in $MODES; do
        echo_first=0
        [ "$mode" = fresh ] || echo_first=1
        for srv in $SERVERS; do
            port=$((port + 1))
            log "round $round/$ROUNDS, $mode: $srv"
            if ! start_server "$srv" "$port"; then
                stop_server
                continue
            fi
            if taskset -c 1 "$BIN/idleconns" --addr "127.0.0.1:$port" --conns "$IDLE_CONNS" \
                --server-pid "$SERVER_PID" --echo-first "$echo_first" >"$TMP/idle.out"; then
                awk -v g="$mode" -v s="$srv" '$1 == "idle_conn_bytes" { print g, s, $2 }' \
                    "$TMP/idle.out" >>"$samples"
                log "$(tr '\n' ' ' <"$TMP/idle.out")"
            else
                log "WARNING: idleconns failed against $srv ($mode)"
            fi
            stop_server
        done
    done
done

med=$TMP/med
medians <"$samples" >"$med"
mkdir -p "$RESULTS"
{
    results_header "idle connections (bench/idle.sh): bytes of server RSS per idle connection, $IDLE_CONNS connections, median of $ROUNDS rounds" "$LOAD_START"
    echo "# fresh: connections that never sent a byte; served: one 64-byte echo round trip each, then idle"
    printf "%-8s" mode
    for srv in $SERVERS; do printf " %10s" "$srv"; done
    for srv in $SERVERS; do [ "$srv" = go4k ] || printf " %14s" "$srv/go4k"; done
    echo
    for mode in $MODES; do
        printf "%-8s" "$mode"
        for srv in $SERVERS; do printf " %10s" "$(fmt "$(lookup "$med" "$mode" "$srv")" 0)"; done
        for srv in $SERVERS; do
            [ "$srv" = go4k ] || printf " %14s" "$(ratio "$(lookup "$med" "$mode" "$srv")" "$(lookup "$med" "$mode" go4k)")"
        done
        echo
    done
    echo "# samples (mode server bytes):"
    sed 's/^/#   /' "$samples"
} | tee "$RESULTS/idle-latest.txt"
