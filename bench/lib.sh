# lib.sh — shell helpers shared by the bench scripts: building the Rust and Go binaries,
# raising vm.max_map_count, starting and stopping servers, and turning "group key value"
# sample lines into medians.
# Sourced, not run.
# shellcheck shell=bash disable=SC2034 # variables here are used by the scripts that source it

# Workspace root and binary directory.
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
RESULTS=$BENCH_DIR/results

# Set by build_all: "yes" when the gonet binaries were built.
HAVE_GONET=no

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# Builds gonet-bench in release. If the gonet crate does not build, says so and builds the
# peers and load generators alone (gonet's rows then read n/a).
build_rust() {
    log "building gonet-bench (release)"
    if (cd "$ROOT" && cargo build --release -p gonet-bench --bins); then
        HAVE_GONET=yes
    else
        log "WARNING: gonet-bench with gonet did not build; building the peers only"
        (cd "$ROOT" && cargo build --release -p gonet-bench --no-default-features --bins)
        HAVE_GONET=no
    fi
}

# Makes sure a Go toolchain exists (Debian's golang-go, Go 1.19 on Debian 12).
ensure_go() {
    if ! command -v go >/dev/null 2>&1; then
        log "go not found: installing Debian's golang-go"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >&2
    fi
}

# Builds bench/go/$1 (module gonetbench) as $BIN/$2.
build_go() {
    ensure_go
    log "building bench/go/$1 with $(go version)"
    (cd "$BENCH_DIR/go" && go build -o "$BIN/$2" "./$1")
}

# gonet and may map one stack plus a guard page per goroutine: 100k of them need more than
# the default 65530 memory mappings.
raise_max_map_count() {
    local want=1000000 cur
    cur=$(cat /proc/sys/vm/max_map_count)
    if [ "$cur" -lt "$want" ]; then
        echo "raising vm.max_map_count from $cur to $want (sysctl -w vm.max_map_count=$want):" \
            "gonet and may map one stack + guard page per goroutine"
        sysctl -qw vm.max_map_count=$want || echo "WARNING: could not raise vm.max_map_count"
    else
        echo "vm.max_map_count is $cur (>= $want)"
    fi
}

# stdin: lines "group key value" (any number of samples per group/key).
# stdout: lines "group key median" (mean of the two middle samples for an even count).
medians() {
    sort -k1,1 -k2,2 -k3,3g | awk '
        function flush() {
            if (n == 0) return
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            print g, k, m
            n = 0
        }
        { if ($1 != g || $2 != k) { flush(); g = $1; k = $2 } v[++n] = $3 }
        END { flush() }'
}

# Looks up "group key" in a medians file ($1); prints the value or n/a.
lookup() {
    awk -v g="$2" -v k="$3" '$1 == g && $2 == k { print $3; found = 1 } END { if (!found) print "n/a" }' "$1"
}

# Ratio a/b with 2 decimals, or n/a.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# Formats a number with the given decimals, passing n/a through.
fmt() {
    awk -v x="$1" -v d="${2:-1}" 'BEGIN { if (x == "n/a") print x; else printf("%." d "f\n", x) }'
}

# Header lines for a results file: what ($1), when, where, and the load average at start
# ($2 when given, for a report written at the end of the run; else the current one).
results_header() {
    echo "# $1"
    echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# commit: ${BENCH_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')}"
    echo "# machine: $(nproc) cpus, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
    echo "# load average at start: ${2:-$(cut -d' ' -f1-3 /proc/loadavg)}"
}

# GONET_SPIN_US for server $1: "gonet0" and "reactor0" are gonet and its reactor with the
# idle spin off, the rest get the shipped default, the adaptive policy ("auto"). (Until
# 2026-12-06 the rest got a fixed 20 µs window: echo.sh, http.sh and resp.sh results older
# than that are for it, not for the default.)
spin_us() {
    case $1 in gonet0 | reactor0) echo 0 ;; *) echo auto ;; esac
}

# The /proc/net files of TCP sockets that exist here.
tcp_tables() {
    local f
    for f in /proc/net/tcp /proc/net/tcp6; do
        [ ! -r "$f" ] || echo "$f"
    done
}

# Whether a TCP socket on this host uses local port $1: any state, or with $2 = 0A, listening
# (read from /proc/net/tcp*, so no `ss` is needed).
port_used() {
    # shellcheck disable=SC2046 # one file name per word
    awk -v p=":$(printf '%04X' "$1")" -v st="${2:-}" '
        FNR > 1 && substr($2, length($2) - 4) == p && (st == "" || $4 == st) { found = 1; exit }
        END { exit !found }' $(tcp_tables)
}

# Waits (5 s at most) until server $1, started as SERVER_PID with its output in
# $TMP/server.log, listens on port $2; on failure says so, shows the log and returns 1.
await_listening() {
    local i
    for i in $(seq 1 100); do
        if port_used "$2" 0A; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "WARNING: server $1 is not listening on port $2"
    cat "$TMP/server.log" >&2
    return 1
}

# Stops the server started as SERVER_PID (if any).
stop_server() {
    if [ -n "${SERVER_PID:-}" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}

# For scripts that run one server at a time: sets SERVER_PID (none yet) and TMP (a fresh
# directory), and on exit stops the server and removes TMP.
one_server_at_a_time() {
    SERVER_PID=
    TMP=$(mktemp -d)
    trap 'stop_server; rm -rf "$TMP"' EXIT
    trap 'exit 130' INT TERM
}

# For scripts that start a fresh server for each run (echo.sh, reactor.sh, scale.sh): sets
# SERVER_PID (none yet), SERVER_PIDS (every server started; all are stopped on exit), TMP (a
# fresh directory, removed on exit), SKIP (server -> why it is skipped) and next_port (from
# PORT_BASE, for free_port).
fresh_server_per_run() {
    SERVER_PID=
    SERVER_PIDS=()
    TMP=$(mktemp -d)
    declare -gA SKIP=()
    next_port=$PORT_BASE
    trap stop_every_server EXIT
    trap 'exit 130' INT TERM
}

# Stops every server in SERVER_PIDS and removes TMP (the exit trap of fresh_server_per_run).
stop_every_server() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}

# Marks server $1 as skipped for reason $2 and says so.
skip() {
    SKIP[$1]=$2
    log "SKIPPING $1: $2"
}

# Whether server $1 is in SERVERS.
wanted() {
    case " $SERVERS " in *" $1 "*) true ;; *) false ;; esac
}

# Sets PORT to the next local port from next_port that no TCP socket uses.
free_port() {
    while port_used "$next_port"; do
        next_port=$((next_port + 1))
    done
    PORT=$next_port
    next_port=$((next_port + 1))
}

# Callgrind, for the *_instructions.sh scripts.
# cg_functions FILE: "instructions<TAB>function" per function (self cost) of a callgrind output.
cg_functions() {
    callgrind_annotate --auto=no --inclusive=no --threshold=100 "$1" 2>/dev/null |
        awk '/^ *[0-9,]+ +\(/{v=$1; gsub(",","",v); $1=""; sub(/^ *\( *[0-9.]+%\) */,""); print v "\t" $0}'
}

# cg_top A B N TOP: the TOP functions whose instructions grew most from cg_functions list A to
# list B, per unit of N (the requests between the two runs).
cg_top() {
    python3 - "$@" <<'PY'
import re, sys
def read(path):
    d = {}
    for line in open(path):
        v, k = line.rstrip("\n").split("\t", 1)
        k = re.sub(r" \[.*\]$", "", re.sub(r"^.*/registry/src/[^/]+/", "", k.strip()))
        d[k] = d.get(k, 0) + int(v)
    return d
a, b, n, top = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = sorted(((b.get(k, 0) - a.get(k, 0)) / n, k) for k in set(a) | set(b) if "PROGRAM" not in k)[::-1]
for r, k in rows[:top]:
    print(f"  {r:8.1f}  {k[-110:]}")
PY
}

# A/B pairs (http_ab.sh, tls_ab.sh): the script defines `run_a` and `run_b`, one load run
# against server A or B each, printing "req/s ticks" (the server's CPU ticks over the run).

# proc_ticks PID: user + system CPU ticks of process PID (all its threads).
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# await_ports PORT...: waits until each port listens (5 s at most each).
await_ports() {
    local port
    for port in "$@"; do
        for _ in $(seq 100); do port_used "$port" 0A && break; sleep 0.05; done
    done
}

# ab_pairs PAIRS FILE: one warm-up run each, then PAIRS pairs of run_a and run_b in
# alternating order; prints (and writes to FILE) "A req/s, B req/s, A/B req/s, A/B CPU per
# request" per pair, then the medians of the two ratios.
ab_pairs() {
    local i ra ca rb cb
    run_a >/dev/null
    run_b >/dev/null
    echo "# pair: A req/s, B req/s, A/B req/s, A/B CPU per request"
    for i in $(seq "$1"); do
        if [ $((i % 2)) = 0 ]; then
            read -r ra ca < <(run_a); read -r rb cb < <(run_b)
        else
            read -r rb cb < <(run_b); read -r ra ca < <(run_a)
        fi
        python3 -c "print(f'{$ra:8.0f} {$rb:8.0f} {$ra / $rb:6.3f} {($ca / $ra) / ($cb / $rb):6.3f}')"
    done | tee "$2"
    python3 - "$2" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"median of {len(rows)} pairs: A/B req/s {statistics.median(float(r[2]) for r in rows):.3f}, "
      f"A/B CPU per request {statistics.median(float(r[3]) for r in rows):.3f}")
PY
}
