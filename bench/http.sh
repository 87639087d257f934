#!/usr/bin/env bash
# http.sh — HTTP/1.1 hello-world benchmark: gonet's http_hello example, Go's net/http
# (bench/go/http) and tokio + hyper (bench/src/bin/http_hyper.rs), each pinned to CPU 0 with
# one worker/thread (GONET_PROCS=1, GOMAXPROCS=1, current_thread runtime), driven by
# `wrk -t1 -cCONNS -dDURATION --latency` pinned to CPU 1. Servers alternate (A B C A B C ...)
# for ROUNDS rounds, each run preceded by a short warm-up; the report gives median req/s,
# p50 and p99 latency, the server's CPU time per request (user + system of all its threads over
# the measured run, /proc/PID/stat), and gonet's ratios to Go and hyper. Then HTTP/2 (h2c,
# prior knowledge) for the hyper servers: `h2load -c10 -m10` (100 streams over 10 connections,
# Debian's nghttp2-client) for DURATION, same pinning and alternation. Results go to
# bench/results/http-latest.txt.
#
# Environment: ROUNDS (3), DURATION (10 s), WARMUP (2 s), CONNS (100),
# SERVERS ("gonet gonet0 hgonet go hyper"; gonet0 is gonet with its idle spin off,
# GONET_SPIN_US=0; hgonet is hyper on gonet, bench/src/bin/http_hyper_gonet.rs: the same
# hyper-util auto builder, service and allocator (jemalloc) as the tokio peer `hyper`; hello is
# the shipped examples/hyper_hello.rs), H2_SERVERS ("hgonet hyper";
# empty: no HTTP/2 runs), PORT_BASE (19500), HYPER_BIN (a prebuilt http_hyper binary;
# skips its cargo build), NICE (a niceness, e.g. -20, for servers and load generator: on a
# machine shared with other jobs it keeps their CPU time out of the figures).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-100}
SERVERS=${SERVERS:-"gonet gonet0 hgonet go hyper"}
H2_SERVERS=${H2_SERVERS-"hgonet hyper"}
PORT_BASE=${PORT_BASE:-19500}
PRIO=()
[ -z "${NICE:-}" ] || PRIO=(nice -n "$NICE")

one_server_at_a_time

if ! command -v wrk >/dev/null 2>&1; then
    log "wrk not found: installing Debian's wrk"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi

declare -A BINS
log "building the http_hello example (release)"
(cd "$ROOT" && cargo build --release -p gonet --example http_hello)
BINS[gonet]=$BIN/examples/http_hello
BINS[gonet0]=$BIN/examples/http_hello
if [ -n "$H2_SERVERS" ] && ! command -v h2load >/dev/null 2>&1; then
    log "h2load not found: installing Debian's nghttp2-client"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >&2
fi
log "building http_hyper_gonet (release): hyper on gonet"
(cd "$ROOT" && cargo build --release -p gonet-bench --bin http_hyper_gonet)
BINS[hgonet]=$BIN/http_hyper_gonet
log "building the hyper_hello example (release): the shipped hyper server, system allocator"
(cd "$ROOT" && cargo build --release -p gonet --features hyper --example hyper_hello)
BINS[hello]=$BIN/examples/hyper_hello
build_go http http_go
BINS[go]=$BIN/http_go
if [ -n "${HYPER_BIN:-}" ]; then
    BINS[hyper]=$HYPER_BIN
elif (cd "$ROOT" && cargo build --release -p gonet-bench --no-default-features --features jemalloc --bin http_hyper); then
    BINS[hyper]=$BIN/http_hyper
else
    log "WARNING: http_hyper did not build (hyper, hyper-util, http-body-util and bytes" \
        "must be dependencies of bench/Cargo.toml); its rows read n/a"
fi

# Starts server $1 pinned to CPU 0 on port $2; sets SERVER_PID.
start_server() {
    # taskset and env exec into the server, so $! is the server's own pid.
    taskset -c 0 "${PRIO[@]}" env GONET_PROCS=1 GOMAXPROCS=1 GONET_SPIN_US="$(spin_us "$1")" \
        "${BINS[$1]}" "127.0.0.1:$2" \
        >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    await_listening "$1" "$2"
}

# User + system CPU ticks of process $1 (all its threads).
# (empty if it has exited).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || true; }

# CPU µs per request from ticks $1 -> $2 over $3 requests (n/a when a reading is missing).
cpu_per_req() {
    if [ -z "$1" ] || [ -z "$2" ] || [ -z "$3" ]; then echo n/a; return; fi
    awk -v t="$(($2 - $1))" -v hz="$TCK" -v n="$3" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }'
}
TCK=$(getconf CLK_TCK)

# wrk's latency ("812.00us", "1.23ms", "2.00s") in microseconds.
to_us() {
    awk -v x="$1" 'BEGIN {
        if (x ~ /us$/) m = 1; else if (x ~ /ms$/) m = 1000; else if (x ~ /s$/) m = 1000000; else m = 1
        sub(/[a-z]+$/, "", x); print x * m }'
}

samples=$TMP/samples
: >"$samples"
for round in $(seq 1 "$ROUNDS"); do
    port=$PORT_BASE
    for srv in $SERVERS; do
        port=$((port + 1))
        [ -n "${BINS[$srv]:-}" ] || continue
        log "round $round/$ROUNDS: $srv"
        if ! start_server "$srv" "$port"; then
            stop_server
            continue
        fi
        url=http://127.0.0.1:$port/
        taskset -c 1 "${PRIO[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null
        t0=$(cpu_ticks "$SERVER_PID")
        taskset -c 1 "${PRIO[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$TMP/wrk.out"
        t1=$(cpu_ticks "$SERVER_PID")
        [ -n "$t1" ] || { log "WARNING: $srv exited during the run:"; cat "$TMP/server.log" >&2; }
        stop_server
        reqs=$(awk '/ requests in / { print $1 }' "$TMP/wrk.out")
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk.out")
        p50=$(awk '$1 == "50%" { print $2 }' "$TMP/wrk.out")
        p99=$(awk '$1 == "99%" { print $2 }' "$TMP/wrk.out")
        bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$TMP/wrk.out")
        errs=$(awk '/Socket errors:/ { print }' "$TMP/wrk.out")
        if [ -z "$rps" ]; then
            log "WARNING: no result from wrk against $srv"
            cat "$TMP/wrk.out" >&2
            continue
        fi
        [ -z "$bad" ] || log "WARNING: $srv answered $bad non-2xx responses"
        [ -z "$errs" ] || log "WARNING: $srv: $errs"
        echo "$srv rps $rps" >>"$samples"
        echo "$srv p50_us $(to_us "$p50")" >>"$samples"
        echo "$srv p99_us $(to_us "$p99")" >>"$samples"
        cpu=$(cpu_per_req "$t0" "$t1" "$reqs")
        [ "$cpu" = n/a ] || echo "$srv cpu_us $cpu" >>"$samples"
        log "$srv: $rps req/s, p50 $p50, p99 $p99, $cpu µs CPU/request"
    done
done

# HTTP/2: h2load, 100 streams over 10 connections (-c10 -m10), against the hyper servers.
for round in $(seq 1 "$ROUNDS"); do
    port=$((PORT_BASE + 50))
    for srv in $H2_SERVERS; do
        port=$((port + 1))
        [ -n "${BINS[$srv]:-}" ] || continue
        log "round $round/$ROUNDS: $srv (HTTP/2)"
        if ! start_server "$srv" "$port"; then
            stop_server
            continue
        fi
        url=http://127.0.0.1:$port/
        taskset -c 1 "${PRIO[@]}" h2load -c10 -m10 -D "$WARMUP" "$url" >/dev/null 2>&1
        t0=$(cpu_ticks "$SERVER_PID")
        taskset -c 1 "${PRIO[@]}" h2load -c10 -m10 -D "$DURATION" "$url" >"$TMP/h2.out" 2>&1
        t1=$(cpu_ticks "$SERVER_PID")
        stop_server
        rps=$(awk '/^finished in/ { print $4 }' "$TMP/h2.out")
        ok=$(awk '/^requests:/ { print $8 }' "$TMP/h2.out")
        if [ -z "$rps" ] || [ -z "$ok" ] || [ "$ok" = 0 ]; then
            log "WARNING: no result from h2load against $srv"
            cat "$TMP/h2.out" >&2
            continue
        fi
        cpu=$(cpu_per_req "$t0" "$t1" "$ok")
        echo "h2-$srv rps $rps" >>"$samples"
        [ "$cpu" = n/a ] || echo "h2-$srv cpu_us $cpu" >>"$samples"
        log "$srv HTTP/2: $rps req/s, $cpu µs CPU/request"
    done
done

med=$TMP/med
medians <"$samples" >"$med"
mkdir -p "$RESULTS"
{
    results_header "HTTP hello benchmark (bench/http.sh): servers on CPU 0 (one worker), wrk -t1 -c$CONNS on CPU 1, median of $ROUNDS rounds of ${DURATION} s (+${WARMUP} s warm-up)"
    [ -z "${NICE:-}" ] || echo "# servers and load generator ran at niceness $NICE"
    echo
    printf "%-12s %12s %10s %10s %12s\n" server "req/s" "p50 µs" "p99 µs" "CPU µs/req"
    for srv in $SERVERS; do
        printf "%-12s %12s %10s %10s %12s\n" "$srv" \
            "$(fmt "$(lookup "$med" "$srv" rps)" 0)" \
            "$(fmt "$(lookup "$med" "$srv" p50_us)" 0)" \
            "$(fmt "$(lookup "$med" "$srv" p99_us)" 0)" \
            "$(fmt "$(lookup "$med" "$srv" cpu_us)" 2)"
    done
    for p in $SERVERS; do
        [ "$p" != gonet ] || continue
        [ "$p" != hgonet ] || continue
        printf "%-12s %12s %10s %10s\n" "gonet/$p" \
            "$(ratio "$(lookup "$med" gonet rps)" "$(lookup "$med" "$p" rps)")" \
            "$(ratio "$(lookup "$med" gonet p50_us)" "$(lookup "$med" "$p" p50_us)")" \
            "$(ratio "$(lookup "$med" gonet p99_us)" "$(lookup "$med" "$p" p99_us)")"
    done
    if [[ " $SERVERS " == *" hgonet "* && " $SERVERS " == *" hyper "* ]]; then
        printf "%-12s %12s %10s %10s %12s\n" "hgonet/hyper" \
            "$(ratio "$(lookup "$med" hgonet rps)" "$(lookup "$med" hyper rps)")" \
            "$(ratio "$(lookup "$med" hgonet p50_us)" "$(lookup "$med" hyper p50_us)")" \
            "$(ratio "$(lookup "$med" hgonet p99_us)" "$(lookup "$med" hyper p99_us)")" \
            "$(ratio "$(lookup "$med" hgonet cpu_us)" "$(lookup "$med" hyper cpu_us)")"
    fi
    if [ -n "$H2_SERVERS" ]; then
        echo
        echo "# HTTP/2 (h2c prior knowledge): h2load -c10 -m10 -D $DURATION (100 streams over 10 connections)"
        printf "%-12s %12s %12s\n" server "req/s" "CPU µs/req"
        for srv in $H2_SERVERS; do
            printf "%-12s %12s %12s\n" "h2-$srv" \
                "$(fmt "$(lookup "$med" "h2-$srv" rps)" 0)" \
                "$(fmt "$(lookup "$med" "h2-$srv" cpu_us)" 2)"
        done
        if [[ " $H2_SERVERS " == *" hgonet "* && " $H2_SERVERS " == *" hyper "* ]]; then
            printf "%-12s %12s %12s\n" "hgonet/hyper" \
                "$(ratio "$(lookup "$med" h2-hgonet rps)" "$(lookup "$med" h2-hyper rps)")" \
                "$(ratio "$(lookup "$med" h2-hgonet cpu_us)" "$(lookup "$med" h2-hyper cpu_us)")"
        fi
    fi
    echo
    echo "# req/s: higher is better; latency and CPU time per request: lower is better"
    echo "# gonet/X rows are ratios (req/s above 1.00, latency below 1.00 mean gonet is ahead)"
    echo "# samples (server metric value):"
    sed 's/^/#   /' "$samples"
} | tee "$RESULTS/http-latest.txt"
