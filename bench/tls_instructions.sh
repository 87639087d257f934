#!/usr/bin/env bash
# tls_instructions.sh — user-space instructions per TLS echo request (callgrind), for the
# reactor (examples/reactor_tls_echo.rs) and tokio + tokio-rustls (bench tls_echo_tokio).
# On a shared VM the wall clock moves by 20 % between rounds; instruction counts do not.
# Each server runs under valgrind on CPU 0 with tls_loadgen on CPU 1, twice (SHORT and LONG
# seconds of load on a fresh server); the difference of the two totals divided by the
# difference of the request counts cancels start-up and the handshakes. Kernel time is not
# counted. Prints the per-request total and, with TOP=N, the N costliest functions.
#
# Environment: SERVERS ("reactor tokio"), CONNS (100), SIZE (64), HANDSHAKES (0; 1 = a new
# connection per request), SHORT (2), LONG (6), TOP (0).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
SERVERS=${SERVERS:-"reactor tokio"}
CONNS=${CONNS:-100}
SIZE=${SIZE:-64}
HANDSHAKES=${HANDSHAKES:-0}
SHORT=${SHORT:-2}
LONG=${LONG:-6}
TOP=${TOP:-0}
BIN=$TARGET_DIR/release
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
command -v valgrind >/dev/null || { echo "tls_instructions.sh: needs valgrind" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -p gonet-bench --no-default-features \
    --bin tls_loadgen --bin tls_echo_tokio)
(cd "$ROOT" && cargo build --release -p gonet --features rustls --example reactor_tls_echo)

# run NAME SECONDS: one callgrind run; prints "requests total_instructions", keeps cg.out.
run() {
    local name=$1 secs=$2 dir=$TMP/$1 port=$((19900 + RANDOM % 90)) bin ca pid rps
    mkdir -p "$dir"
    case $name in
    reactor) bin=$BIN/examples/reactor_tls_echo ca=gonet-reactor_tls_echo-cert.pem ;;
    tokio) bin=$BIN/tls_echo_tokio ca=gonet-tls_echo_tokio-cert.pem ;;
    *) echo "unknown server $name" >&2; exit 1 ;;
    esac
    TMPDIR=$dir GONET_PROCS=1 taskset -c 0 valgrind --tool=callgrind \
        --callgrind-out-file="$dir/cg.out" "$bin" "127.0.0.1:$port" >/dev/null 2>"$dir/err" &
    pid=$!
    sleep 6
    rps=$(taskset -c 1 "$BIN/tls_loadgen" --addr "127.0.0.1:$port" --ca "$dir/$ca" \
        --conns "$CONNS" --size "$SIZE" --duration "$secs" --warmup 0 \
        --handshakes "$HANDSHAKES" 2>&1 | awk '/^rps/{print $2}')
    sleep 0.5
    kill -INT "$pid" 2>/dev/null || true; sleep 1; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    echo "$(python3 -c "print(round($rps * $secs))") $(awk '/Collected/{print $4}' "$dir/err")"
}

echo "# TLS echo ${CONNS}x${SIZE} handshakes=$HANDSHAKES: user instructions per request (callgrind, ${SHORT}s vs ${LONG}s)"
for srv in $SERVERS; do
    read -r r1 i1 < <(run "$srv" "$SHORT"); cg_functions "$TMP/$srv/cg.out" >"$TMP/$srv.a"
    read -r r2 i2 < <(run "$srv" "$LONG"); cg_functions "$TMP/$srv/cg.out" >"$TMP/$srv.b"
    printf '%-8s %8.0f instructions/request (%s requests measured)\n' "$srv" \
        "$(python3 -c "print(($i2 - $i1) / ($r2 - $r1))")" "$((r2 - r1))"
    if [ "$TOP" -gt 0 ]; then
        cg_top "$TMP/$srv.a" "$TMP/$srv.b" "$((r2 - r1))" "$TOP"
    fi
done
