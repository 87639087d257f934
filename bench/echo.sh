#!/usr/bin/env bash
# echo.sh — netpoll benchmark: echo servers (gonet, Go, tokio, may, raw epoll, std threads),
# each pinned to CPU 0 with one worker/thread, driven by the one-thread epoll load generator
# pinned to CPU 1. Scenarios: 1 conn x 64 B, 100 x 64 B, 1000 x 64 B, 100 x 4 KiB; servers
# alternate (A B C ... A B C ...) for ROUNDS rounds and the report gives medians of req/s,
# p50, p99, server CPU µs per request, and gonet's ratios to Go, tokio, may and raw epoll.
# Then resident memory per idle connection (IDLE_CONNS idle connections) for each server.
# Results go to bench/results/echo-latest.txt.
#
# Environment: DURATION (5 s measured), WARMUP (1 s), ROUNDS (2),
# SERVERS ("gonet gonet0 example go tokio may epoll std"; gonet0 is gonet with its idle spin
# off, GONET_SPIN_US=0; example is the shipped examples/echo.rs, system allocator), SCENARIOS ("1x64 100x64 1000x64 100x4096"),
# IDLE_CONNS (10000, 0 skips the memory part), PORT_BASE (19000).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-2}
SERVERS=${SERVERS:-"gonet gonet0 example go tokio may epoll std"}
SCENARIOS=${SCENARIOS:-"1x64 100x64 1000x64 100x4096"}
IDLE_CONNS=${IDLE_CONNS:-10000}
PORT_BASE=${PORT_BASE:-19000}
METRICS="rps p50_us p99_us server_cpu_us_per_req server_cpu_util"

fresh_server_per_run

build_rust
# The README's echo server as shipped (examples/echo.rs: system allocator).
(cd "$ROOT" && cargo build --release -p gonet --example echo)
build_go echo echo_go
raise_max_map_count
# The server and idleconns each hold IDLE_CONNS descriptors (plus a few).
if [ "$(ulimit -n)" -lt $((IDLE_CONNS + 100)) ]; then
    ulimit -n $((IDLE_CONNS + 100)) 2>/dev/null ||
        log "WARNING: ulimit -n is $(ulimit -n); $IDLE_CONNS idle connections may not fit"
fi

server_bin() {
    case $1 in
        gonet | gonet0) echo "$BIN/echo_gonet" ;;
        example) echo "$BIN/examples/echo" ;;
        go) echo "$BIN/echo_go" ;;
        tokio) echo "$BIN/echo_tokio" ;;
        may) echo "$BIN/echo_may" ;;
        epoll) echo "$BIN/echo_epoll" ;;
        std) echo "$BIN/echo_std" ;;
        *) echo "unknown server $1" >&2; return 1 ;;
    esac
}

enabled() {
    case $1 in gonet | gonet0) [ "$HAVE_GONET" = yes ] ;; *) true ;; esac
}



# Starts server $1 pinned to CPU 0 on a free port; sets SERVER_PID and PORT.
start_server() {
    free_port
    # taskset and env exec into the server, so $! is the server's own pid.
    taskset -c 0 env GONET_PROCS=1 GOMAXPROCS=1 GONET_SPIN_US="$(spin_us "$1")" "$(server_bin "$1")" "127.0.0.1:$PORT" \
        >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    await_listening "$1" "$PORT"
}

mkdir -p "$RESULTS"
samples=$TMP/samples
: >"$samples"

for scen in $SCENARIOS; do
    conns=${scen%x*}
    size=${scen#*x}
    for round in $(seq 1 "$ROUNDS"); do
        for srv in $SERVERS; do
            enabled "$srv" || continue
            log "$conns conns x $size B, round $round/$ROUNDS: $srv"
            if ! start_server "$srv"; then
                stop_server
                continue
            fi
            if taskset -c 1 "$BIN/loadgen" --addr "127.0.0.1:$PORT" --conns "$conns" \
                --size "$size" --duration "$DURATION" --warmup "$WARMUP" \
                --server-pid "$SERVER_PID" >"$TMP/load.out"; then
                for m in $METRICS; do
                    awk -v g="$scen/$srv" -v m="$m" '$1 == m { print g, m, $2 }' \
                        "$TMP/load.out" >>"$samples"
                done
                tr '\n' ' ' <"$TMP/load.out" >&2
                echo >&2
            else
                log "WARNING: loadgen failed against $srv"
            fi
            stop_server
        done
    done
done

idle=$TMP/idle
: >"$idle"
if [ "$IDLE_CONNS" -gt 0 ]; then
    for srv in $SERVERS; do
        enabled "$srv" || continue
        [ "$srv" != gonet0 ] || continue # the spin changes nothing at rest
        log "memory per idle connection ($IDLE_CONNS conns): $srv"
        if ! start_server "$srv"; then
            stop_server
            continue
        fi
        if taskset -c 1 "$BIN/idleconns" --addr "127.0.0.1:$PORT" --conns "$IDLE_CONNS" \
            --server-pid "$SERVER_PID" >"$TMP/idle.out"; then
            awk -v s="$srv" '$1 == "idle_conn_bytes" { print s, $2 }' "$TMP/idle.out" >>"$idle"
            tr '\n' ' ' <"$TMP/idle.out" >&2
            echo >&2
        else
            log "WARNING: idleconns failed against $srv"
        fi
        stop_server
    done
fi

med=$TMP/med
medians <"$samples" >"$med"
peers="gonet0 go tokio may epoll"

{
    results_header "echo benchmark (bench/echo.sh): servers on CPU 0 (one worker), loadgen on CPU 1, median of $ROUNDS rounds of ${DURATION} s (+${WARMUP} s warm-up)"
    for scen in $SCENARIOS; do
        conns=${scen%x*}
        size=${scen#*x}
        echo
        echo "== $conns conns x $size B"
        printf "%-12s %12s %10s %10s %14s %10s\n" server "req/s" "p50 us" "p99 us" "cpu us/req" "cpu util"
        for srv in $SERVERS; do
            printf "%-12s %12s %10s %10s %14s %10s\n" "$srv" \
                "$(fmt "$(lookup "$med" "$scen/$srv" rps)" 0)" \
                "$(fmt "$(lookup "$med" "$scen/$srv" p50_us)" 1)" \
                "$(fmt "$(lookup "$med" "$scen/$srv" p99_us)" 1)" \
                "$(fmt "$(lookup "$med" "$scen/$srv" server_cpu_us_per_req)" 2)" \
                "$(fmt "$(lookup "$med" "$scen/$srv" server_cpu_util)" 2)"
        done
        for p in $peers; do
            printf "%-12s %12s %10s %10s %14s\n" "gonet/$p" \
                "$(ratio "$(lookup "$med" "$scen/gonet" rps)" "$(lookup "$med" "$scen/$p" rps)")" \
                "$(ratio "$(lookup "$med" "$scen/gonet" p50_us)" "$(lookup "$med" "$scen/$p" p50_us)")" \
                "$(ratio "$(lookup "$med" "$scen/gonet" p99_us)" "$(lookup "$med" "$scen/$p" p99_us)")" \
                "$(ratio "$(lookup "$med" "$scen/gonet" server_cpu_us_per_req)" "$(lookup "$med" "$scen/$p" server_cpu_us_per_req)")"
        done
    done
    if [ -s "$idle" ]; then
        echo
        echo "== resident memory per idle connection ($IDLE_CONNS idle conns)"
        printf "%-12s %14s\n" server "bytes/conn"
        for srv in $SERVERS; do
            printf "%-12s %14s\n" "$srv" "$(awk -v s="$srv" '$1 == s { v = $2 } END { print (v == "" ? "n/a" : v) }' "$idle")"
        done
        g=$(awk '$1 == "gonet" { print $2 }' "$idle")
        for p in $peers; do
            printf "%-12s %14s\n" "gonet/$p" "$(ratio "${g:-n/a}" "$(awk -v s="$p" '$1 == s { v = $2 } END { print (v == "" ? "n/a" : v) }' "$idle")")"
        done
    fi
    echo
    echo "# req/s: higher is better; latency, cpu us/req and bytes/conn: lower is better"
    echo "# cpu util: server CPU seconds per second of window (below 1.00 the server had CPU to spare)"
    echo "# gonet/X rows are ratios (req/s above 1.00, the others below 1.00 mean gonet is ahead)"
    echo "# samples (scenario/server metric value):"
    sed 's/^/#   /' "$samples"
} | tee "$RESULTS/echo-latest.txt"
