#!/usr/bin/env bash
# http_instructions.sh — user-space instructions per HTTP/1.1 request (callgrind) for hyper on
# gonet (bench's twin `hgonet`, bench/src/bin/http_hyper_gonet.rs, and the shipped
# examples/hyper_hello.rs, route `/`), hyper on tokio (current_thread, bench/src/bin/
# http_hyper.rs; `hyper_sys`: the same with the system allocator, as the shipped example has)
# and the hand-written examples/http_hello.rs.
# On a shared VM the wall clock moves by 20 % between rounds; instruction counts do not.
# Each server runs under valgrind on CPU 0, one worker, with `h2load --h1 -cCONNS` on CPU 1,
# twice (SHORT and LONG requests on a fresh server); the difference of the two totals divided
# by the difference of the request counts cancels start-up and the connections' setup. Kernel
# time is not counted. Prints the per-request total and, with TOP=N, the N costliest
# functions.
#
# Environment: SERVERS ("hgonet hello hyper hyper_sys http_hello"), CONNS (100), SHORT (10000),
# LONG (50000), TOP (0), H2 (0; 1: HTTP/2 prior knowledge, `h2load -c10 -m10`, 100 streams over
# 10 connections, instead of HTTP/1.1 over CONNS; not for http_hello).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
SERVERS=${SERVERS:-"hgonet hello hyper hyper_sys http_hello"}
CONNS=${CONNS:-100}
SHORT=${SHORT:-10000}
LONG=${LONG:-50000}
TOP=${TOP:-0}
H2=${H2:-0}
if [ "$H2" = 1 ]; then LOAD=(-c10 -m10) PROTO="HTTP/2 (h2c) GET / over 10 connections x 10 streams"
else LOAD=(--h1 -c"$CONNS") PROTO="HTTP/1.1 GET / over ${CONNS} connections"; fi
BIN=$TARGET_DIR/release
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
command -v valgrind >/dev/null || { echo "http_instructions.sh: needs valgrind" >&2; exit 1; }
if ! command -v h2load >/dev/null 2>&1; then
    log "h2load not found: installing Debian's nghttp2-client"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >&2
fi
(cd "$ROOT" && cargo build --release -p gonet-bench --bin http_hyper_gonet)
(cd "$ROOT" && cargo build --release -p gonet-bench --no-default-features --features jemalloc \
    --bin http_hyper)
(cd "$ROOT" && cargo build --release -p gonet-bench --no-default-features --bin http_hyper \
    --target-dir "$TARGET_DIR/sysalloc")
(cd "$ROOT" && cargo build --release -p gonet --features hyper --example hyper_hello \
    --example http_hello)

# run NAME REQUESTS: one callgrind run; prints "requests total_instructions", keeps cg.out.
run() {
    local name=$1 n=$2 dir=$TMP/$1 port=$((19700 + RANDOM % 90)) bin pid done
    mkdir -p "$dir"
    case $name in
    hgonet) bin=$BIN/http_hyper_gonet ;;
    hello) bin=$BIN/examples/hyper_hello ;;
    hyper) bin=$BIN/http_hyper ;;
    hyper_sys) bin=$TARGET_DIR/sysalloc/release/http_hyper ;;
    http_hello) bin=$BIN/examples/http_hello ;;
    *) echo "unknown server $name" >&2; exit 1 ;;
    esac
    GONET_PROCS=1 taskset -c 0 valgrind --tool=callgrind \
        --callgrind-out-file="$dir/cg.out" "$bin" "127.0.0.1:$port" >/dev/null 2>"$dir/err" &
    pid=$!
    sleep 6
    done=$(taskset -c 1 h2load "${LOAD[@]}" -n "$n" "http://127.0.0.1:$port/" 2>&1 |
        awk '/^requests:/{print $8}')
    sleep 0.5
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    echo "$done $(awk '/Collected/{print $4}' "$dir/err")"
}

echo "# $PROTO: user instructions per request (callgrind, ${SHORT} vs ${LONG} requests)"
for srv in $SERVERS; do
    read -r r1 i1 < <(run "$srv" "$SHORT"); cg_functions "$TMP/$srv/cg.out" >"$TMP/$srv.a"
    read -r r2 i2 < <(run "$srv" "$LONG"); cg_functions "$TMP/$srv/cg.out" >"$TMP/$srv.b"
    if [ -z "$i1" ] || [ -z "$i2" ] || [ "$r2" -le "$r1" ]; then
        echo "$srv: no measurement (requests $r1/$r2, instructions '$i1'/'$i2')" >&2
        continue
    fi
    printf '%-10s %8.0f instructions/request (%s requests measured)\n' "$srv" \
        "$(python3 -c "print(($i2 - $i1) / ($r2 - $r1))")" "$((r2 - r1))"
    if [ "$TOP" -gt 0 ]; then
        cg_top "$TMP/$srv.a" "$TMP/$srv.b" "$((r2 - r1))" "$TOP"
    fi
done
