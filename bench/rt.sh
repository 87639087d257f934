#!/usr/bin/env bash
# rt.sh — runtime micro-benchmarks: spawn + join, unbuffered-channel ping-pong, resident
# memory per parked goroutine and spawn bursts (100k spawned, then all joined; rounds 1-3),
# for gonet, Go, tokio and may, each on one worker pinned to
# CPU 0. Builds everything, runs ROUNDS rounds (default 3) alternating the peers, prints a
# table of medians with the ratios gonet/Go, gonet/tokio, gonet/may, and writes it to
# bench/results/rt-latest.txt.
#
# Environment: ROUNDS (3), PEERS ("gonet go tokio may"), RT_ARGS (extra flags for every
# binary, e.g. "--spawn 10000 --pingpong 100000 --parked 10000" for a quick run).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-"gonet go tokio may"}
RT_ARGS=${RT_ARGS:-}
FIGURES="spawn_join_ns pingpong_ns parked_rss_bytes burst1_ns burst2_ns burst3_ns"

build_rust
build_go rt rt_go
raise_max_map_count

peer_cmd() {
    case $1 in
        gonet) echo "$BIN/rt_gonet" ;;
        go) echo "env GOMAXPROCS=1 $BIN/rt_go" ;;
        tokio) echo "$BIN/rt_tokio" ;;
        may) echo "$BIN/rt_may" ;;
        *) echo "unknown peer $1" >&2; return 1 ;;
    esac
}

mkdir -p "$RESULTS"
samples=$(mktemp)
out=$(mktemp)
trap 'rm -f "$samples" "$out" "$samples.med"' EXIT

for round in $(seq 1 "$ROUNDS"); do
    for peer in $PEERS; do
        if [ "$peer" = gonet ] && [ "$HAVE_GONET" != yes ]; then
            continue
        fi
        log "round $round/$ROUNDS: $peer"
        # shellcheck disable=SC2046,SC2086 # the command and RT_ARGS split into words on purpose
        if timeout 600 taskset -c 0 $(peer_cmd "$peer") $RT_ARGS >"$out"; then
            :
        else
            log "WARNING: $peer exited with status $? (round $round)"
        fi
        cat "$out" >&2
        for f in $FIGURES; do
            awk -v p="$peer" -v f="$f" '$1 == f { print p, f, $2 }' "$out" >>"$samples"
        done
    done
done

medians <"$samples" >"$samples.med"

{
    results_header "runtime micro-benchmarks (bench/rt.sh): one worker, pinned to CPU 0, median of $ROUNDS rounds"
    echo "# sizes: ${RT_ARGS:-100k spawns, 1M round trips, 100k parked, bursts of 100k}"
    echo
    printf "%-18s" "figure"
    for peer in $PEERS; do printf "%12s" "$peer"; done
    for peer in go tokio may; do printf "%14s" "gonet/$peer"; done
    echo
    for f in $FIGURES; do
        printf "%-18s" "$f"
        dec=1; [ "$f" = parked_rss_bytes ] && dec=0
        for peer in $PEERS; do printf "%12s" "$(fmt "$(lookup "$samples.med" "$peer" "$f")" "$dec")"; done
        g=$(lookup "$samples.med" gonet "$f")
        for peer in go tokio may; do
            printf "%14s" "$(ratio "$g" "$(lookup "$samples.med" "$peer" "$f")")"
        done
        echo
    done
    echo
    echo "# lower is better everywhere; a ratio below 1.00 means gonet is ahead"
    echo "# samples (peer figure value):"
    sed 's/^/#   /' "$samples"
} | tee "$RESULTS/rt-latest.txt"
