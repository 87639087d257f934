#!/usr/bin/env bash
# reactor.sh — gonet's netpoll-style reactor (the shipped example examples/reactor_echo.rs)
# against CloudWeGo netpoll itself (bench/go/netpoll_echo), the raw epoll floor (echo_epoll),
# gonet's goroutine-per-connection echo (the shipped example examples/echo.rs) and tokio
# (echo_tokio). Every server runs pinned to CPU 0 with one worker / loop / thread
# (GONET_PROCS=1, NETPOLL_LOOPS=1, GOMAXPROCS=1), driven by the one-thread epoll load
# generator pinned to CPU 1, 64-byte messages at 1, 100 and 1000 connections. Servers
# alternate (A B C ... A B C ...) for ROUNDS rounds, each run on a fresh server; the report
# gives the medians of req/s, p50, p99 and server CPU µs per request, and the reactor's
# ratios to each peer as medians of the per-round ratios (each ratio taken between runs of
# the same round, so slow drift of a shared machine cancels). Then resident memory per idle
# connection (IDLE_CONNS connections, RSS delta, bench/src/bin/idleconns.rs), and the issue's
# targets, met or missed. Results go to bench/results/reactor-latest.txt.
#
# A peer that cannot run is skipped with its reason printed (on the terminal and in the
# report), never silently: netpoll needs its sources (bench/netpoll/setup.sh), the reactor
# needs examples/reactor_echo.rs in the tree.
#
# Environment: DURATION (5 s measured), WARMUP (1 s), ROUNDS (3),
# SERVERS ("reactor netpoll epoll gonet tokio"), SCENARIOS ("1x64 100x64 1000x64"),
# IDLE_CONNS (10000, 0 skips the memory part), IDLE_ROUNDS (1), PORT_BASE (19300),
# NETPOLL_SRC (the directory bench/netpoll/setup.sh builds netpoll from; when unset, an
# echo_netpoll built earlier by setup.sh is used if there is one), NICE (a niceness, e.g.
# -20, for servers and load generators: on a machine shared with other jobs it keeps their
# CPU time out of the figures, which otherwise favour servers with more runnable threads).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"reactor netpoll epoll gonet tokio"}
SCENARIOS=${SCENARIOS:-"1x64 100x64 1000x64"}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_ROUNDS=${IDLE_ROUNDS:-1}
PORT_BASE=${PORT_BASE:-19300}
METRICS="rps p50_us p99_us server_cpu_us_per_req server_cpu_util"
# The peers the reactor is compared with, in report order.
PEERS="netpoll epoll gonet tokio"
PRIO=()
[ -z "${NICE:-}" ] || PRIO=(nice -n "$NICE")

fresh_server_per_run

# --- build -----------------------------------------------------------------------------------
log "building loadgen, idleconns, echo_epoll, echo_tokio (release)"
(cd "$ROOT" && cargo build --release -p gonet-bench \
    --bin loadgen --bin idleconns --bin echo_epoll --bin echo_tokio)

if wanted gonet; then
    log "building the echo example (release)"
    (cd "$ROOT" && cargo build --release -p gonet --example echo) ||
        skip gonet "the echo example does not build"
fi

if wanted reactor; then
    if [ ! -f "$ROOT/examples/reactor_echo.rs" ]; then
        skip reactor "examples/reactor_echo.rs is not in this tree (it comes with gonet::reactor)"
    else
        log "building the reactor_echo example (release)"
        (cd "$ROOT" && cargo build --release -p gonet --example reactor_echo) ||
            skip reactor "the reactor_echo example does not build"
    fi
fi

NETPOLL_VERSION=
if wanted netpoll; then
    if [ -n "${NETPOLL_SRC:-}" ]; then
        bash "$BENCH_DIR/netpoll/setup.sh" "$NETPOLL_SRC" ||
            skip netpoll "bench/netpoll/setup.sh $NETPOLL_SRC failed (its message is above)"
    elif [ -x "$BIN/echo_netpoll" ]; then
        log "netpoll: NETPOLL_SRC is unset; using $BIN/echo_netpoll built earlier by bench/netpoll/setup.sh"
    else
        skip netpoll "its sources are not set up: NETPOLL_SRC is unset and $BIN/echo_netpoll does not exist; run 'bash bench/netpoll/setup.sh DIR' or set NETPOLL_SRC=DIR (see bench/README.md)"
    fi
    if [ -z "${SKIP[netpoll]:-}" ] && [ -f "$TARGET_DIR/netpoll/VERSIONS" ]; then
        NETPOLL_VERSION=$(head -1 "$TARGET_DIR/netpoll/VERSIONS")
    fi
fi

raise_max_map_count
# The server and idleconns each hold IDLE_CONNS descriptors (plus a few).
if [ "$(ulimit -n)" -lt $((IDLE_CONNS + 100)) ]; then
    ulimit -n $((IDLE_CONNS + 100)) 2>/dev/null ||
        log "WARNING: ulimit -n is $(ulimit -n); $IDLE_CONNS idle connections may not fit"
fi

server_bin() {
    case $1 in
        reactor) echo "$BIN/examples/reactor_echo" ;;
        netpoll) echo "$BIN/echo_netpoll" ;;
        epoll) echo "$BIN/echo_epoll" ;;
        gonet) echo "$BIN/examples/echo" ;;
        tokio) echo "$BIN/echo_tokio" ;;
        *) echo "unknown server $1" >&2; return 1 ;;
    esac
}

enabled() {
    [ -z "${SKIP[$1]:-}" ]
}


# Starts server $1 pinned to CPU 0 on a free port, one worker/loop/thread; sets SERVER_PID
# and PORT. gonet's servers run with their default idle spin, as shipped.
start_server() {
    free_port
    # taskset and env exec into the server, so $! is the server's own pid.
    taskset -c 0 "${PRIO[@]}" env GONET_PROCS=1 NETPOLL_LOOPS=1 GOMAXPROCS=1 "$(server_bin "$1")" "127.0.0.1:$PORT" \
        >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    await_listening "$1" "$PORT"
}

mkdir -p "$RESULTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Lines "round scenario server metric value".
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
            if taskset -c 1 "${PRIO[@]}" "$BIN/loadgen" --addr "127.0.0.1:$PORT" --conns "$conns" \
                --size "$size" --duration "$DURATION" --warmup "$WARMUP" \
                --server-pid "$SERVER_PID" >"$TMP/load.out"; then
                for m in $METRICS; do
                    awk -v r="$round" -v s="$scen" -v v="$srv" -v m="$m" \
                        '$1 == m { print r, s, v, m, $2 }' "$TMP/load.out" >>"$samples"
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

if [ "$IDLE_CONNS" -gt 0 ]; then
    for round in $(seq 1 "$IDLE_ROUNDS"); do
        for srv in $SERVERS; do
            enabled "$srv" || continue
            log "memory per idle connection ($IDLE_CONNS conns), round $round/$IDLE_ROUNDS: $srv"
            if ! start_server "$srv"; then
                stop_server
                continue
            fi
            if taskset -c 1 "${PRIO[@]}" "$BIN/idleconns" --addr "127.0.0.1:$PORT" --conns "$IDLE_CONNS" \
                --server-pid "$SERVER_PID" >"$TMP/idle.out"; then
                awk -v r="$round" -v v="$srv" '$1 == "idle_conn_bytes" { print r, "idle", v, "bytes", $2 }' \
                    "$TMP/idle.out" >>"$samples"
                tr '\n' ' ' <"$TMP/idle.out" >&2
                echo >&2
            else
                log "WARNING: idleconns failed against $srv"
            fi
            stop_server
        done
    done
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# Medians of the values: "scenario/server metric median".
med=$TMP/med
awk '{ print $2 "/" $3, $4, $5 }' "$samples" | medians >"$med"
# Medians of the per-round ratios reactor/peer: "scenario/peer metric median-ratio".
rmed=$TMP/rmed
awk -v peer_list="$PEERS" '{ v[$1, $2, $3, $4] = $5; key[$1, $2, $4] = 1 }
    END {
        np = split(peer_list, peers, " ")
        for (k in key) {
            split(k, f, SUBSEP)
            a = v[f[1], f[2], "reactor", f[3]]
            for (i = 1; i <= np; i++) {
                b = v[f[1], f[2], peers[i], f[3]]
                if (a != "" && b != "" && b + 0 != 0) print f[2] "/" peers[i], f[3], a / b
            }
        }
    }' "$samples" | medians >"$rmed"

val() { lookup "$med" "$1/$2" "$3"; }
rat() { lookup "$rmed" "$1/$2" "$3"; }

# "met" / "MISSED" / "n/a" for: value $1 compared with bound $3 by $2 (lt, le or ge).
verdict() {
    awk -v x="$1" -v op="$2" -v b="$3" 'BEGIN {
        if (x == "n/a" || b == "n/a") { print "n/a"; exit }
        ok = (op == "ge") ? (x + 0 >= b + 0) : (op == "lt") ? (x + 0 < b + 0) : (x + 0 <= b + 0)
        print (ok ? "met" : "MISSED")
    }'
}

{
    results_header "reactor benchmark (bench/reactor.sh): servers on CPU 0 (one worker/loop), loadgen on CPU 1, $ROUNDS alternating rounds of ${DURATION} s (+${WARMUP} s warm-up)" "$LOAD_START"
    echo "# load average at end: $LOAD_END (with other jobs on the machine the absolute figures are low; see NICE)"
    [ -z "${NICE:-}" ] || echo "# servers and load generators ran at niceness $NICE"
    echo "# reactor: $(server_bin reactor) (examples/reactor_echo.rs); gonet: $(server_bin gonet) (examples/echo.rs)"
    echo "# netpoll: ${NETPOLL_VERSION:-n/a} (bench/go/netpoll_echo, GOMAXPROCS=1, SetNumLoops(1))"
    for srv in $SERVERS; do
        [ -z "${SKIP[$srv]:-}" ] || echo "# SKIPPED $srv: ${SKIP[$srv]}"
    done
    for scen in $SCENARIOS; do
        conns=${scen%x*}
        size=${scen#*x}
        echo
        echo "== $conns conns x $size B (medians)"
        printf "%-16s %10s %9s %9s %11s %9s\n" server "req/s" "p50 us" "p99 us" "cpu us/req" "cpu util"
        for srv in $SERVERS; do
            printf "%-16s %10s %9s %9s %11s %9s\n" "$srv" \
                "$(fmt "$(val "$scen" "$srv" rps)" 0)" \
                "$(fmt "$(val "$scen" "$srv" p50_us)" 1)" \
                "$(fmt "$(val "$scen" "$srv" p99_us)" 1)" \
                "$(fmt "$(val "$scen" "$srv" server_cpu_us_per_req)" 2)" \
                "$(fmt "$(val "$scen" "$srv" server_cpu_util)" 2)"
        done
        for p in $PEERS; do
            wanted "$p" || continue
            printf "%-16s %10s %9s %9s %11s\n" "reactor/$p" \
                "$(fmt "$(rat "$scen" "$p" rps)" 2)" \
                "$(fmt "$(rat "$scen" "$p" p50_us)" 2)" \
                "$(fmt "$(rat "$scen" "$p" p99_us)" 2)" \
                "$(fmt "$(rat "$scen" "$p" server_cpu_us_per_req)" 2)"
        done
    done
    if [ "$IDLE_CONNS" -gt 0 ]; then
        echo
        echo "== resident memory per idle connection ($IDLE_CONNS idle conns, median of $IDLE_ROUNDS)"
        printf "%-16s %12s\n" server "bytes/conn"
        for srv in $SERVERS; do
            printf "%-16s %12s\n" "$srv" "$(fmt "$(val idle "$srv" bytes)" 0)"
        done
        for p in $PEERS; do
            wanted "$p" || continue
            printf "%-16s %12s\n" "reactor/$p" "$(fmt "$(rat idle "$p" bytes)" 2)"
        done
    fi
    echo
    echo "== targets (issue 8)"
    for c in 100 1000; do
        x=$(rat "${c}x64" netpoll rps)
        printf "%-46s %8s  %s\n" "req/s reactor/netpoll >= 1.30 at $c conns" "$(fmt "$x" 3)" "$(verdict "$x" ge 1.30)"
        x=$(rat "${c}x64" epoll rps)
        printf "%-46s %8s  %s\n" "req/s reactor/epoll >= 0.95 at $c conns" "$(fmt "$x" 3)" "$(verdict "$x" ge 0.95)"
    done
    x=$(awk -v a="$(val 1000x64 reactor p99_us)" -v b="$(val 1000x64 reactor p50_us)" \
        'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.3f\n", a / b }')
    printf "%-46s %8s  %s\n" "reactor p99/p50 <= 2.00 at 1000 conns" "$x" "$(verdict "$x" le 2.00)"
    for p in netpoll tokio; do
        x=$(rat 1x64 "$p" p99_us)
        printf "%-46s %8s  %s\n" "p99 reactor/$p < 1.00 at 1 conn" "$(fmt "$x" 3)" "$(verdict "$x" lt 1)"
    done
    x=$(val idle reactor bytes)
    printf "%-46s %8s  %s\n" "reactor bytes per idle conn <= 1024" "$(fmt "$x" 0)" "$(verdict "$x" le 1024)"
    echo
    echo "# req/s: higher is better; latency, cpu us/req and bytes/conn: lower is better"
    echo "# cpu util: server CPU seconds per second of window (below 1.00 the server had CPU to spare)"
    echo "# reactor/X rows: medians of the per-round ratios (req/s above 1.00, the others below 1.00"
    echo "# mean the reactor is ahead)"
    echo "# samples (round scenario server metric value):"
    sed 's/^/#   /' "$samples"
} | tee "$RESULTS/reactor-latest.txt"
