#!/usr/bin/env bash
# resp.sh — Redis-protocol benchmark: gonet's resp_kv example (GONET_PROCS=1; "gonet0" is the
# same with the idle spin off, GONET_SPIN_US=0), the RESP server on gonet's reactor
# ("reactor", GONET_PROCS=1; "reactor0" with the idle spin off), and redis-server (`--save '' --appendonly no`), each pinned to
# CPU 0, driven by
# `redis-benchmark -t ping,set,get -n REQUESTS -c CLIENTS -q` pinned to CPU 1, without
# pipelining and with `-P PIPELINE`. Servers alternate for ROUNDS rounds; the report gives
# median req/s and server CPU time per request for each test, and each server's ratio to
# redis. Results go to bench/results/resp-latest.txt. A server that cannot run (the reactor's
# RESP example not in the tree, or not building) is skipped with its reason printed.
#
# CLIENT=loadgen drives the same tests with bench's one-thread epoll load generator instead
# (`loadgen --resp TEST --pipeline P`, CLIENTS connections, DURATION s per test after a
# 0.5 s warm-up; every reply checked byte for byte). Without pipelining redis-benchmark
# saturates its core before any of these servers does, so its req/s mostly measure itself;
# loadgen spends less per request than the servers, so the server is the bottleneck and the
# req/s compare servers. Results then go to bench/results/resp-loadgen-latest.txt. With
# loadgen, SERVERS may also name "epoll": bench's raw-epoll echo server, sent each test's
# command and expected to echo it, i.e. one read and one write per request and nothing else —
# the floor any RESP server on one core is measured against.
#
# Environment: ROUNDS (3), REQUESTS (200000), CLIENTS (50), PIPELINE (16), CLIENT
# (redis-benchmark or loadgen), DURATION (loadgen's seconds per test, 2), MODES ("P1 P16"),
# PORT_BASE (19600), NICE (a niceness, e.g. -20, for servers and load generator: on a
# machine shared with other jobs it keeps their CPU time out of the figures),
# SERVERS ("gonet gonet0 reactor redis"), REACTOR_RESP (the reactor's RESP server as
# "EXAMPLE ARG...", where an ARG {addr} is replaced by the listening address; default
# "resp_kv {addr} --reactor" when examples/resp_kv.rs has that flag).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-16}
CLIENT=${CLIENT:-redis-benchmark}
DURATION=${DURATION:-2}
MODES=${MODES:-"P1 P$PIPELINE"}
case $CLIENT in
    redis-benchmark) OUT=resp ;;
    loadgen) OUT=resp-loadgen ;;
    *) echo "CLIENT is redis-benchmark or loadgen, not $CLIENT" >&2; exit 2 ;;
esac
# A run of chosen modes only (MODES=P1) gets its own file.
[ "$MODES" = "P1 P$PIPELINE" ] || OUT=$OUT-${MODES// /-}
OUT=$OUT-latest.txt
PORT_BASE=${PORT_BASE:-19600}
PRIO=()
[ -z "${NICE:-}" ] || PRIO=(nice -n "$NICE")
SERVERS=${SERVERS:-"gonet gonet0 reactor redis"}
TESTS="PING_INLINE PING_MBULK SET GET"

one_server_at_a_time
declare -A SKIP=()

if ! command -v redis-benchmark >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1; then
    log "redis-benchmark or redis-server not found: installing Debian's redis-tools and redis-server"
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools redis-server >&2
fi

# Marks server $1 as skipped for reason $2 and says so.
skip() {
    SKIP[$1]=$2
    log "SKIPPING $1: $2"
}
wanted() {
    case " $SERVERS " in *" $1 "*) true ;; *) false ;; esac
}

log "building the resp_kv example (release)"
(cd "$ROOT" && cargo build --release -p gonet --example resp_kv)
if [ "$CLIENT" = loadgen ]; then
    log "building loadgen and echo_epoll (release)"
    (cd "$ROOT" && cargo build --release -p gonet-bench --bin loadgen --bin echo_epoll)
elif wanted epoll; then
    skip epoll "the raw-epoll floor runs with CLIENT=loadgen only (redis-benchmark needs RESP replies)"
fi

# The reactor's RESP server: REACTOR_ARGV is its command line with {addr} in place of the address.
REACTOR_ARGV=()
if wanted reactor || wanted reactor0; then
    if [ -n "${REACTOR_RESP:-}" ]; then
        read -r -a REACTOR_ARGV <<<"$REACTOR_RESP"
    elif grep -q '"--reactor"' "$ROOT/examples/resp_kv.rs"; then
        REACTOR_ARGV=(resp_kv "{addr}" --reactor)
    fi
    if [ ${#REACTOR_ARGV[@]} -eq 0 ]; then
        skip reactor "no RESP server on the reactor in this tree (examples/resp_kv.rs has no --reactor flag; set REACTOR_RESP=\"EXAMPLE ARG...\" for another one)"
    else
        log "building the ${REACTOR_ARGV[0]} example (release)"
        (cd "$ROOT" && cargo build --release -p gonet --example "${REACTOR_ARGV[0]}") ||
            skip reactor "the ${REACTOR_ARGV[0]} example does not build"
    fi
fi

# Starts server $1 pinned to CPU 0 on port $2; sets SERVER_PID.
start_server() {
    case $1 in
        gonet | gonet0)
            taskset -c 0 "${PRIO[@]}" env GONET_PROCS=1 GONET_SPIN_US="$(spin_us "$1")" \
                "$BIN/examples/resp_kv" "127.0.0.1:$2" >"$TMP/server.log" 2>&1 &
            ;;
        reactor | reactor0)
            local argv=("$BIN/examples/${REACTOR_ARGV[0]}") a
            for a in "${REACTOR_ARGV[@]:1}"; do
                argv+=("${a//\{addr\}/127.0.0.1:$2}")
            done
            taskset -c 0 "${PRIO[@]}" env GONET_PROCS=1 GONET_SPIN_US="$(spin_us "$1")" "${argv[@]}" \
                >"$TMP/server.log" 2>&1 &
            ;;
        epoll)
            taskset -c 0 "${PRIO[@]}" "$BIN/echo_epoll" "127.0.0.1:$2" >"$TMP/server.log" 2>&1 &
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
        *) echo "$1" | tr '[:upper:]' '[:lower:]' ;;
    esac
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
samples=$TMP/samples
: >"$samples"
for round in $(seq 1 "$ROUNDS"); do
    port=$PORT_BASE
    for srv in $SERVERS; do
        [ -z "${SKIP[$srv]:-}" ] || continue
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
                if [ "$CLIENT" = loadgen ]; then
                    echo=0
                    [ "$srv" != epoll ] || echo=1 # the floor echoes the command back
                    taskset -c 1 "${PRIO[@]}" "$BIN/loadgen" --addr "127.0.0.1:$port" --conns "$CLIENTS" \
                        --resp "$t" --echo "$echo" --pipeline "$pipe" --duration "$DURATION" --warmup 0.5 \
                        --server-pid "$SERVER_PID" >"$TMP/bench.out" 2>&1 || true
                    rps=$(awk '$1 == "rps" { print $2 }' "$TMP/bench.out")
                    cpu=$(awk '$1 == "server_cpu_us_per_req" { print $2 }' "$TMP/bench.out")
                    [ -n "$rps" ] || { log "WARNING: no result for $srv $mode $t: $(tail -2 "$TMP/bench.out")"; continue; }
                    echo "$mode/$srv $t $rps" >>"$samples"
                    echo "$mode/$srv cpu_$t $cpu" >>"$samples"
                    log "$srv $mode $t: $rps req/s, $cpu us CPU per request"
                    continue
                fi
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
# The servers compared with redis.
others=
for srv in $SERVERS; do
    [ "$srv" = redis ] || others="$others $srv"
done
{
    if [ "$CLIENT" = loadgen ]; then
        results_header "RESP benchmark (CLIENT=loadgen bash bench/resp.sh): servers on CPU 0 (one worker/thread), loadgen --resp TEST --conns $CLIENTS, ${DURATION} s per test on CPU 1, median of $ROUNDS rounds" "$LOAD_START"
    else
        results_header "RESP benchmark (bench/resp.sh): servers on CPU 0 (one worker/thread), redis-benchmark -c $CLIENTS -n $REQUESTS on CPU 1, median of $ROUNDS rounds" "$LOAD_START"
    fi
    echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ -z "${NICE:-}" ] || echo "# servers and load generator ran at niceness $NICE"
    echo "# redis: $(redis-server --version | cut -d' ' -f1-3)"
    [ ${#REACTOR_ARGV[@]} -eq 0 ] || echo "# reactor: examples/${REACTOR_ARGV[0]}.rs ${REACTOR_ARGV[*]:1}"
    for srv in $SERVERS; do
        [ -z "${SKIP[$srv]:-}" ] || echo "# SKIPPED $srv: ${SKIP[$srv]}"
    done
    if wanted epoll && [ -z "${SKIP[epoll]:-}" ]; then
        echo "# epoll: bench's raw-epoll echo server sent each test's command and echoing it (the floor)"
    fi
    for mode in $MODES; do
        echo
        echo "== pipeline ${mode#P} ($CLIENT, ${mode#P} per round trip): req/s, and ratios to redis"
        printf "%-12s" test
        for srv in $SERVERS; do printf " %10s" "$srv"; done
        for srv in $others; do printf " %14s" "$srv/redis"; done
        echo
        for t in $TESTS; do
            printf "%-12s" "$t"
            for srv in $SERVERS; do printf " %10s" "$(fmt "$(lookup "$med" "$mode/$srv" "$t")" 0)"; done
            for srv in $others; do
                printf " %14s" "$(ratio "$(lookup "$med" "$mode/$srv" "$t")" "$(lookup "$med" "$mode/redis" "$t")")"
            done
            echo
        done
        echo "-- server CPU us per request"
        printf "%-12s" test
        for srv in $SERVERS; do printf " %10s" "$srv"; done
        for srv in $others; do printf " %14s" "$srv/redis"; done
        echo
        for t in $TESTS; do
            printf "%-12s" "$t"
            for srv in $SERVERS; do printf " %10s" "$(fmt "$(lookup "$med" "$mode/$srv" "cpu_$t")" 3)"; done
            for srv in $others; do
                printf " %14s" "$(ratio "$(lookup "$med" "$mode/$srv" "cpu_$t")" "$(lookup "$med" "$mode/redis" "cpu_$t")")"
            done
            echo
        done
    done
    echo
    echo "# req/s: higher is better (X/redis above 1.00: X ahead); cpu: the server's CPU time per"
    echo "# request in us, lower is better (X/redis below 1.00: X ahead). gonet: resp_kv, one goroutine"
    echo "# per connection; gonet0: the same with its idle spin off (GONET_SPIN_US=0); reactor: the"
    echo "# RESP server on gonet::reactor (reactor0: spin off). Ratios are ratios of the medians."
    echo "# samples (pipeline/server test req/s, and cpu_test us/req):"
    sed 's/^/#   /' "$samples"
} | tee "$RESULTS/$OUT"
