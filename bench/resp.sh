#!/usr/bin/env bash
# resp.sh — Redis-protocol benchmark: gonet's resp_kv example (GONET_PROCS=1; "gonet0" is the
# same with the idle spin off, GONET_SPIN_US=0) against
# redis-server (`--save '' --appendonly no`), each pinned to CPU 0, driven by
# `redis-benchmark -t ping,set,get -n REQUESTS -c CLIENTS -q` pinned to CPU 1, without
# pipelining and with `-P PIPELINE`. Servers alternate for ROUNDS rounds; the report gives
# median req/s and server CPU time per request for each test, and the ratios gonet/redis. Results go to bench/results/resp-latest.txt.
#
# Environment: ROUNDS (3), REQUESTS (200000), CLIENTS (50), PIPELINE (16),
# PORT_BASE (19600), NICE (a niceness, e.g. -20, for servers and load generator: on a
# machine shared with other jobs it keeps their CPU time out of the figures).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-16}
PORT_BASE=${PORT_BASE:-19600}
PRIO=()
[ -z "${NICE:-}" ] || PRIO=(nice -n "$NICE")
SERVERS="gonet gonet0 redis"
TESTS="PING_INLINE PING_MBULK SET GET"
MODES="P1 P$PIPELINE"

SERVER_PID=
TMP=$(mktemp -d)
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v redis-benchmark >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1; then
    log "redis-benchmark or redis-server not found: installing Debian's redis-tools and redis-server"
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools redis-server >&2
fi

log "building the resp_kv example (release)"
(cd "$ROOT" && cargo build --release -p gonet --example resp_kv)

# Starts server $1 pinned to CPU 0 on port $2; sets SERVER_PID.
start_server() {
    case $1 in
        gonet | gonet0)
            taskset -c 0 "${PRIO[@]}" env GONET_PROCS=1 GONET_SPIN_US="$(spin_us "$1")" \
                "$BIN/examples/resp_kv" "127.0.0.1:$2" >"$TMP/server.log" 2>&1 &
            ;;
        redis)
            taskset -c 0 "${PRIO[@]}" redis-server --port "$2" --bind 127.0.0.1 --save '' --appendonly no \
                --daemonize no --logfile '' >"$TMP/server.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    await_listening "$1" "$2"
}

# utime + stime of process $1, in clock ticks.
pid_cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# redis-benchmark's -t name of a test as it reports it.
test_name() {
    case $1 in
        PING_INLINE) echo ping_inline ;;
        PING_MBULK) echo ping_mbulk ;;
        *) echo "$1" | tr 'A-Z' 'a-z' ;;
    esac
}

samples=$TMP/samples
: >"$samples"
for round in $(seq 1 "$ROUNDS"); do
    port=$PORT_BASE
    for srv in $SERVERS; do
        port=$((port + 1))
        log "round $round/$ROUNDS: $srv"
        if ! start_server "$srv" "$port"; then
            stop_server
            continue
        fi
        for mode in $MODES; do
            pipe=${mode#P}
            # Pipelined runs go ~15x faster: more requests keep them long enough to time.
            n=$REQUESTS
            [ "$pipe" = 1 ] || n=$((REQUESTS * 8))
            for t in $TESTS; do
                cpu0=$(pid_cpu_ticks "$SERVER_PID")
                taskset -c 1 "${PRIO[@]}" redis-benchmark -h 127.0.0.1 -p "$port" \
                    -t "$(test_name "$t")" -n "$n" -c "$CLIENTS" -P "$pipe" -q 2>&1 |
                    tr '\r' '\n' | grep 'requests per second' | tail -1 >"$TMP/bench.out" || true
                cpu1=$(pid_cpu_ticks "$SERVER_PID")
                # Lines look like "SET: 123456.79 requests per second, p50=0.199 msec".
                rps=$(awk '{ print $2 }' "$TMP/bench.out")
                [ -n "$rps" ] || { log "WARNING: no result for $srv $mode $t"; continue; }
                echo "$mode/$srv $t $rps" >>"$samples"
                # Server CPU µs per request (clock ticks of 1/CLK_TCK s).
                echo "$mode/$srv cpu_$t $(awk -v d=$((cpu1 - cpu0)) -v n="$n" -v hz="$(getconf CLK_TCK)" \
                    'BEGIN { printf "%.3f", d * 1e6 / hz / n }')" >>"$samples"
                log "$srv $mode $t: $(cat "$TMP/bench.out")"
            done
        done
        stop_server
    done
done

med=$TMP/med
medians <"$samples" >"$med"
mkdir -p "$RESULTS"
{
    results_header "RESP benchmark (bench/resp.sh): servers on CPU 0 (one worker/thread), redis-benchmark -c $CLIENTS -n $REQUESTS on CPU 1, median of $ROUNDS rounds"
    [ -z "${NICE:-}" ] || echo "# servers and load generator ran at niceness $NICE"
    echo "# redis: $(redis-server --version | cut -d' ' -f1-3)"
    for mode in $MODES; do
        echo
        echo "== pipeline ${mode#P} (redis-benchmark -P ${mode#P})"
        printf "%-12s %12s %12s %12s %12s %12s %10s %10s %10s\n" test "gonet req/s" \
            "gonet0 req/s" "redis req/s" "gonet/redis" "gonet0/redis" "cpu gonet" "cpu gonet0" "cpu redis"
        for t in $TESTS; do
            g=$(lookup "$med" "$mode/gonet" "$t")
            g0=$(lookup "$med" "$mode/gonet0" "$t")
            r=$(lookup "$med" "$mode/redis" "$t")
            printf "%-12s %12s %12s %12s %12s %12s %10s %10s %10s\n" "$t" "$(fmt "$g" 0)" \
                "$(fmt "$g0" 0)" "$(fmt "$r" 0)" "$(ratio "$g" "$r")" "$(ratio "$g0" "$r")" \
                "$(fmt "$(lookup "$med" "$mode/gonet" "cpu_$t")" 3)" \
                "$(fmt "$(lookup "$med" "$mode/gonet0" "cpu_$t")" 3)" \
                "$(fmt "$(lookup "$med" "$mode/redis" "cpu_$t")" 3)"
        done
    done
    echo
    echo "# req/s: higher is better (ratio above 1.00: gonet ahead); cpu: the server's CPU time per"
    echo "# request in us, lower is better. gonet0: gonet with its idle spin off (GONET_SPIN_US=0)."
    echo "# samples (pipeline/server test req/s):"
    sed 's/^/#   /' "$samples"
} | tee "$RESULTS/resp-latest.txt"
