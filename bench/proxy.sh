#!/usr/bin/env bash
# proxy.sh — CPU per GiB of a TCP proxy: examples/proxy.rs with splice (gonet), the same
# example copying through a user buffer (PROXY_COPY=rw), and a Go io.Copy proxy
# (bench/go/proxy). Each proxy runs pinned to CPU 0 on one worker (GONET_PROCS=1 /
# GOMAXPROCS=1); a Go sender pushes BYTES (1 GiB) through it to a Go sink, both on CPU 1.
# Proxies alternate for ROUNDS rounds; the report gives the median CPU seconds (user + system,
# from /proc/PID/stat) the proxy spent per GiB, its wall time, and gonet's ratios.
#
# Environment: BYTES (1073741824), ROUNDS (5), PROFILE (release; "ci" for the faster-building
# profile), PORT_BASE (19500).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BYTES=${BYTES:-1073741824}
ROUNDS=${ROUNDS:-5}
PROFILE=${PROFILE:-release}
PORT_BASE=${PORT_BASE:-19500}
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building examples/proxy ($PROFILE) and the Go proxy and sender"
(cd "$ROOT" && cargo build -q -p gonet --profile "$PROFILE" --example proxy)
PROXY_RS=$TARGET_DIR/$PROFILE/examples/proxy
(cd "$BENCH_DIR/go" && go build -o "$TMP/proxy_go" ./proxy && go build -o "$TMP/blast" ./blast)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

SINK=127.0.0.1:$PORT_BASE
taskset -c 1 "$TMP/blast" sink "$SINK" >/dev/null &
PIDS+=($!)

declare -A PORT PID
port=$((PORT_BASE + 1))
for p in gonet gonet_rw go; do
    PORT[$p]=$port
    case $p in
        gonet) GONET_PROCS=1 taskset -c 0 "$PROXY_RS" "127.0.0.1:$port" "$SINK" 2>/dev/null & ;;
        gonet_rw) PROXY_COPY=rw GONET_PROCS=1 taskset -c 0 "$PROXY_RS" "127.0.0.1:$port" "$SINK" 2>/dev/null & ;;
        go) GOMAXPROCS=1 taskset -c 0 "$TMP/proxy_go" "127.0.0.1:$port" "$SINK" & ;;
    esac
    PID[$p]=$!
    PIDS+=($!)
    port=$((port + 1))
done
sleep 1

SAMPLES=$TMP/samples
for r in $(seq "$ROUNDS"); do
    for p in gonet gonet_rw go; do
        before=$(ticks "${PID[$p]}")
        t0=$(date +%s.%N)
        taskset -c 1 "$TMP/blast" send "127.0.0.1:${PORT[$p]}" "$BYTES"
        t1=$(date +%s.%N)
        after=$(ticks "${PID[$p]}")
        cpu=$(awk -v a="$after" -v b="$before" -v hz="$HZ" -v by="$BYTES" \
            'BEGIN { printf "%.4f", (a - b) / hz * 1073741824 / by }')
        wall=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.4f", a - b }')
        echo "$p cpu_s_per_gib $cpu" >>"$SAMPLES"
        echo "$p wall_s $wall" >>"$SAMPLES"
        log "round $r $p: cpu ${cpu}s/GiB wall ${wall}s"
    done
done

mkdir -p "$RESULTS"
{
    echo "# proxy.sh $(date -u +%FT%TZ): $BYTES bytes per run, $ROUNDS rounds, medians"
    medians <"$SAMPLES"
    m() { medians <"$SAMPLES" | awk -v p="$1" '$1 == p && $2 == "cpu_s_per_gib" { print $3 }'; }
    awk -v a="$(m gonet)" -v b="$(m gonet_rw)" -v c="$(m go)" 'BEGIN {
        printf "gonet splice / gonet read-write CPU: %.2f\n", a / b
        printf "gonet splice / Go io.Copy CPU: %.2f\n", a / c }'
} | tee "$RESULTS/proxy-latest.txt"
