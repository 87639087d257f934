#!/usr/bin/env bash
# scale.sh — how echo servers use N cores: each server pinned to CPUs 0..N-1 with N workers,
# driven by K single-thread load generators (one `loadgen` process, one generator thread per
# CPU of N..nproc-1, connections split evenly, a common measured window), 64-byte closed-loop
# echo at C = N, 4N, 100 and 1000 connections. Servers, each fresh for every run, alternating
# within a round:
#
#   floor    echo_epoll --threads N: N raw edge-triggered epoll loops, each with its own
#            SO_REUSEPORT listener and epoll, nothing shared (the physical limit)
#   echo     the shipped examples/echo.rs, GONET_PROCS=N (a goroutine per connection)
#   reactor  the shipped examples/reactor_echo.rs, GONET_PROCS=N (gonet::reactor)
#   go       bench/go/echo, GOMAXPROCS=N (a goroutine per connection)
#   netpoll  bench/go/netpoll_echo, N loops, GOMAXPROCS=N (CloudWeGo netpoll)
#   tokio    echo_tokio --workers N (multi-thread runtime, a task per connection)
#
# Per point (N, C, server): req/s, p99 latency, server CPU µs per request (user + system
# ticks of the whole process over the window / requests), CPU utilisation, and the CPU of
# each server thread over the window (/proc/PID/task/*/stat): the
# number of busy threads (> 10 % of a core) and the share of every thread above 1 %. The
# table goes to results/scale-latest.txt, with a consistency check of every run.
#
# In the source tree it builds what it runs (cargo, Go; netpoll as bench/reactor.sh does). In
# a folder made by bench/scale-pack.sh (static binaries in bin/, a PACKED manifest) it builds
# nothing and needs only bash, coreutils, awk and taskset: copy the folder to a many-core
# machine and run `bash scale.sh` there.
#
# Environment: NS (worker counts; default "1" below 8 CPUs, else those of "4 8" that leave at
# least as many CPUs to the load), CONNS ("N 4N 100 1000": numbers, or kN for k times N),
# SERVERS ("floor echo reactor go netpoll tokio"; `echo@S`/`reactor@S`: with GONET_SPIN_US=S), DURATION (3 s measured), WARMUP (1 s),
# ROUNDS (2), LOADGENS (generator threads; default one per load CPU, at most C), SIZE (64),
# PORT_BASE (19600), NICE (a niceness for servers and load, as in reactor.sh), NETPOLL_SRC
# (see bench/netpoll/setup.sh; an echo_netpoll built earlier is used when unset).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

PACKED=no
if [ -f "$HERE/PACKED" ]; then
    PACKED=yes
    BIN=$HERE/bin
    RESULTS=$HERE/results
    BENCH_COMMIT=$(awk '$1 == "commit" { print $2; exit }' "$HERE/PACKED")
    export BENCH_COMMIT
fi

NCPU=$(nproc)
if [ -z "${NS:-}" ]; then
    NS=
    if [ "$NCPU" -ge 8 ]; then
        for n in 4 8; do
            [ $((2 * n)) -gt "$NCPU" ] || NS="$NS $n"
        done
    fi
    NS=${NS:-1}
fi
CONNS=${CONNS:-"N 4N 100 1000"}
SERVERS=${SERVERS:-"floor echo reactor go netpoll tokio"}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-2}
SIZE=${SIZE:-64}
PORT_BASE=${PORT_BASE:-19600}
PRIO=()
[ -z "${NICE:-}" ] || PRIO=(nice -n "$NICE")
command -v taskset >/dev/null || { echo "scale.sh: taskset (util-linux) is needed" >&2; exit 1; }

fresh_server_per_run

# The binary of server $1 (the same names in target/release and in a pack's bin/).
server_bin() {
    case ${1%@*} in
        floor) echo "$BIN/echo_epoll" ;;
        echo) echo "$BIN/examples/echo" ;;
        reactor) echo "$BIN/examples/reactor_echo" ;;
        go) echo "$BIN/echo_go" ;;
        netpoll) echo "$BIN/echo_netpoll" ;;
        tokio) echo "$BIN/echo_tokio" ;;
        *) echo "unknown server $1" >&2; return 1 ;;
    esac
}

# --- build (source tree) or check (pack) ----------------------------------------------------
NETPOLL_VERSION=
if [ "$PACKED" = no ]; then
    log "building loadgen, echo_epoll, echo_tokio (release)"
    (cd "$ROOT" && cargo build --release -p gonet-bench --bin loadgen --bin echo_epoll --bin echo_tokio)
    for ex in echo reactor; do
        case " $SERVERS " in *" $ex "* | *" $ex@"*) ;; *) continue ;; esac
        name=$(basename "$(server_bin "$ex")")
        if [ ! -f "$ROOT/examples/$name.rs" ]; then
            skip "$ex" "examples/$name.rs is not in this tree"
        else
            log "building the $name example (release)"
            (cd "$ROOT" && cargo build --release -p gonet --example "$name") ||
                skip "$ex" "the $name example does not build"
        fi
    done
    if wanted go; then
        build_go echo echo_go || skip go "bench/go/echo does not build"
    fi
    if wanted netpoll; then
        if [ -n "${NETPOLL_SRC:-}" ]; then
            bash "$BENCH_DIR/netpoll/setup.sh" "$NETPOLL_SRC" ||
                skip netpoll "bench/netpoll/setup.sh $NETPOLL_SRC failed (its message is above)"
        elif [ ! -x "$BIN/echo_netpoll" ]; then
            skip netpoll "its sources are not set up: run 'bash bench/netpoll/setup.sh DIR' or set NETPOLL_SRC=DIR (see bench/README.md)"
        fi
        [ ! -f "$TARGET_DIR/netpoll/VERSIONS" ] || NETPOLL_VERSION=$(head -1 "$TARGET_DIR/netpoll/VERSIONS")
    fi
else
    log "packed run: binaries from $BIN ($(awk '$1 == "commit" || $1 == "built" { printf "%s %s  ", $1, $2 }' "$HERE/PACKED"))"
    NETPOLL_VERSION=$(awk '$1 == "netpoll" { $1 = ""; print substr($0, 2); exit }' "$HERE/PACKED")
fi
[ -x "$BIN/loadgen" ] || { echo "scale.sh: $BIN/loadgen is missing" >&2; exit 1; }
for srv in $SERVERS; do
    server_bin "$srv" >/dev/null || exit 2
    if [ -z "${SKIP[$srv]:-}" ] && [ ! -x "$(server_bin "$srv")" ]; then
        skip "$srv" "$(server_bin "$srv") is missing"
    fi
done

# 1000 connections: the server and loadgen each hold one descriptor per connection.
if [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n 4096 2>/dev/null || log "WARNING: ulimit -n is $(ulimit -n); 1000 connections may not fit"
fi

# Starts server $1 with $2 workers pinned to CPUs 0..$2-1 on a free port; sets SERVER_PID
# and PORT. gonet's servers run as shipped (default idle spin); `echo@S` or `reactor@S` runs
# them with GONET_SPIN_US=S (e.g. `echo@0`: spin off, `echo@20`: a fixed 20 µs window).
start_server() {
    local n=$2 args=() spin=()
    free_port
    case $1 in
        floor) args=(--threads "$n") ;;
        tokio) args=(--workers "$n") ;;
        *@*) spin=(GONET_SPIN_US="${1#*@}") ;;
    esac
    # taskset and env exec into the server, so $! is the server's own pid.
    taskset -c "0-$((n - 1))" "${PRIO[@]}" env "${spin[@]}" GONET_PROCS="$n" GOMAXPROCS="$n" NETPOLL_LOOPS="$n" \
        "$(server_bin "$1")" "${args[@]}" "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    await_listening "$1" "$PORT"
}

# The connection counts for $1 workers: CONNS with N and kN evaluated, sorted, deduplicated.
conns_for() {
    local c
    for c in $CONNS; do
        case $c in
            N) echo "$1" ;;
            *N) echo $((${c%N} * $1)) ;;
            *) echo "$c" ;;
        esac
    done | sort -n -u | tr '\n' ' '
}

# Microseconds so far in which some runnable task waited for a CPU (/proc/pressure/cpu), or
# nothing without PSI: how much else the machine ran meanwhile.
cpu_pressure_us() {
    awk '$1 == "some" { sub("total=", "", $5); print $5 }' /proc/pressure/cpu 2>/dev/null || true
}

mkdir -p "$RESULTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
PSI_START=$(cpu_pressure_us)
T_START=$(date +%s.%N)
# Lines "N C server round metric value".
samples=$TMP/samples
: >"$samples"
NUMERIC="rps p50_us p99_us server_cpu_us_per_req server_cpu_util server_writes_per_req server_busy_threads server_threads server_cpu_ticks server_thread_ticks_sum requests"
TEXT="server_thread_cpu gen_requests threads"
RUN_NS=

for n in $NS; do
    if [ "$n" -lt 1 ] || [ "$n" -ge "$NCPU" ]; then
        log "SKIPPING N=$n: it leaves no CPU of the $NCPU for the load generators"
        continue
    fi
    RUN_NS="$RUN_NS $n"
    load_cpus="$n-$((NCPU - 1))"
    k=${LOADGENS:-$((NCPU - n))}
    for c in $(conns_for "$n"); do
        for round in $(seq 1 "$ROUNDS"); do
            for srv in $SERVERS; do
                [ -z "${SKIP[$srv]:-}" ] || continue
                log "N=$n, $c conns, round $round/$ROUNDS: $srv"
                if ! start_server "$srv" "$n"; then
                    stop_server
                    continue
                fi
                if taskset -c "$load_cpus" "${PRIO[@]}" "$BIN/loadgen" --addr "127.0.0.1:$PORT" \
                    --conns "$c" --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" \
                    --threads "$k" --cpus "$load_cpus" --server-pid "$SERVER_PID" >"$TMP/load.out"; then
                    awk -v p="$n $c $srv $round" -v keys="$NUMERIC $TEXT" '
                        BEGIN { split(keys, k, " "); for (i in k) want[k[i]] = 1 }
                        ($1 in want) { print p, $1, $2 }' "$TMP/load.out" >>"$samples"
                    awk '$1 ~ /^(rps|p99_us|server_cpu_us_per_req|server_busy_threads|server_thread_cpu)$/ { printf "%s %s  ", $1, $2 }
                        END { print "" }' "$TMP/load.out" >&2
                else
                    log "WARNING: loadgen failed against $srv"
                fi
                stop_server
            done
        done
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
PSI_END=$(cpu_pressure_us)
T_END=$(date +%s.%N)

# Medians over the rounds: "N/C/server metric median".
med=$TMP/med
awk -v keys="$NUMERIC" 'BEGIN { split(keys, k, " "); for (i in k) num[k[i]] = 1 }
    ($5 in num) { print $1 "/" $2 "/" $3, $5, $6 }' "$samples" | medians >"$med"
val() { lookup "$med" "$1/$2/$3" "$4"; }

# Busy threads over the rounds: "a" or "min-max".
busy_range() {
    awk -v p="$1 $2 $3" '$1 " " $2 " " $3 == p && $5 == "server_busy_threads" {
            if (n == 0 || $6 < lo) lo = $6; if (n == 0 || $6 > hi) hi = $6; n++ }
        END { if (n == 0) print "n/a"; else if (lo == hi) print lo; else print lo "-" hi }' "$samples"
}

# Per round, the % of a core of each thread above 1 % (busiest first), rounds separated by |.
thread_lists() {
    awk -v p="$1 $2 $3" '$1 " " $2 " " $3 == p && $5 == "server_thread_cpu" {
            n = split($6, t, ","); s = ""
            for (i = 1; i <= n; i++) { sub(/@.*/, "", t[i]); s = s (i > 1 ? "," : "") t[i] }
            out = out (out == "" ? "" : " | ") s }
        END { print (out == "" ? "n/a" : out) }' "$samples"
}

# Consistency of every run: the threads' ticks add up to the process's; a server pinned to N
# CPUs uses at most N of them; the floor answers each request with one write(2), so its
# write calls over the window (syscw; send(2), which the others use, is not counted there)
# count on the server side the requests the load generators counted; the floor has at most
# N busy threads.
checks() {
    awk '{ v[$1 " " $2 " " $3 " " $4, $5] = $6; run[$1 " " $2 " " $3 " " $4] = 1 }
        END {
            bad = 0; total = 0
            for (r in run) {
                total++
                split(r, f, " ")
                t = v[r, "server_cpu_ticks"]; s = v[r, "server_thread_ticks_sum"]
                th = v[r, "server_threads"]; u = v[r, "server_cpu_util"]
                d = t - s; if (d < 0) d = -d
                if (t == "") { print "#   " r ": no server CPU figures"; bad++; continue }
                if (d > th + 0.02 * t) { printf "#   %s: thread ticks %d vs process ticks %d\n", r, s, t; bad++ }
                if (u > f[1] * 1.02 + 0.02) { printf "#   %s: cpu util %.3f above N=%d\n", r, u, f[1]; bad++ }
                if (f[3] == "floor") {
                    w = v[r, "server_writes_per_req"]
                    if (w < 0.98 || w > 1.02) { printf "#   %s: floor made %.3f writes per request counted\n", r, w; bad++ }
                    if (v[r, "server_busy_threads"] > f[1]) { printf "#   %s: floor has %d busy threads\n", r, v[r, "server_busy_threads"]; bad++ }
                }
            }
            printf "# checks: %d runs, %s\n", total, (bad ? bad " inconsistencies (above)" : "all consistent")
        }' "$samples"
}

{
    results_header "scaling benchmark (bench/scale.sh): server on CPUs 0..N-1 with N workers, load generators on the other CPUs, ${SIZE}-byte echo, medians of $ROUNDS alternating rounds of ${DURATION} s (+${WARMUP} s warm-up)" "$LOAD_START"
    echo "# load average at end: $LOAD_END"
    if [ -n "$PSI_START" ] && [ -n "$PSI_END" ]; then
        echo "# CPU pressure over the run: some task waited for a CPU $(awk -v a="$PSI_START" -v b="$PSI_END" -v t0="$T_START" -v t1="$T_END" 'BEGIN { printf "%.0f", (b - a) / 1e4 / (t1 - t0) }') % of the time (/proc/pressure/cpu; near 0 on a quiet machine)"
    fi
    [ "$PACKED" = no ] || echo "# packed binaries ($(awk '$1 == "built" { print "built", $2; exit }' "$HERE/PACKED")), static"
    [ -z "${NICE:-}" ] || echo "# servers and load generators ran at niceness $NICE"
    echo "# netpoll: ${NETPOLL_VERSION:-n/a}"
    for srv in $SERVERS; do
        [ -z "${SKIP[$srv]:-}" ] || echo "# SKIPPED $srv: ${SKIP[$srv]}"
    done
    for n in $RUN_NS; do
        k=${LOADGENS:-$((NCPU - n))}
        for c in $(conns_for "$n"); do
            echo
            echo "== N=$n (server on CPU$([ "$n" -eq 1 ] && echo " 0" || echo "s 0-$((n - 1))")), $c conns x $SIZE B, $([ "$k" -lt "$c" ] && echo "$k" || echo "$c") load generator thread(s) on CPU$([ "$n" -eq $((NCPU - 1)) ] && echo " $n" || echo "s $n-$((NCPU - 1))")"
            printf "%-8s %10s %6s %9s %10s %6s %6s %5s  %s\n" server "req/s" "/floor" "p99 us" "cpu us/req" "/floor" "util" busy "threads >1% (% of a core; rounds |)"
            for srv in $SERVERS; do
                [ -z "${SKIP[$srv]:-}" ] || continue
                printf "%-8s %10s %6s %9s %10s %6s %6s %5s  %s\n" "$srv" \
                    "$(fmt "$(val "$n" "$c" "$srv" rps)" 0)" \
                    "$(ratio "$(val "$n" "$c" "$srv" rps)" "$(val "$n" "$c" floor rps)")" \
                    "$(fmt "$(val "$n" "$c" "$srv" p99_us)" 1)" \
                    "$(fmt "$(val "$n" "$c" "$srv" server_cpu_us_per_req)" 2)" \
                    "$(ratio "$(val "$n" "$c" "$srv" server_cpu_us_per_req)" "$(val "$n" "$c" floor server_cpu_us_per_req)")" \
                    "$(fmt "$(val "$n" "$c" "$srv" server_cpu_util)" 2)" \
                    "$(busy_range "$n" "$c" "$srv")" \
                    "$(thread_lists "$n" "$c" "$srv")"
            done
        done
    done
    echo
    echo "# req/s: higher is better; p99 and cpu us/req: lower is better; /floor: ratio to the floor's median"
    echo "# cpu us/req: server user+system CPU over the window (all threads) per request; util: CPU-seconds per second (at most N)"
    echo "# busy: threads with > 10 % of a core over the window (range over the rounds); then every thread above 1 %"
    checks
    echo "# samples (N conns server round metric value):"
    sed 's/^/#   /' "$samples"
} | tee "$RESULTS/scale-latest.txt"
