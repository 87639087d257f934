#!/usr/bin/env bash
# million.sh — one million parked goroutines at Linux's default vm.max_map_count (65530),
# gonet beside Go: resident bytes per parked goroutine. Sets the limit to its default for the
# run and restores the previous value on exit. gonet fits only with stack slabs (Linux >= 6.13,
# see docs/ARCHITECTURE.md); on older kernels its row reports the allocation error.
#
# Environment: N (1000000), PEERS ("gonet go").
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${N:-1000000}
PEERS=${PEERS:-"gonet go"}
SMALL="--spawn 1000 --pingpong 1000 --warmup 100 --burst 1000"

build_rust
build_go rt rt_go

prev=$(cat /proc/sys/vm/max_map_count)
trap 'sysctl -qw vm.max_map_count="$prev"' EXIT
sysctl -qw vm.max_map_count=65530
log "vm.max_map_count set to 65530 for this run (was $prev; restored on exit)"

mkdir -p "$RESULTS"
{
    results_header "one million parked goroutines at vm.max_map_count=65530 (bench/million.sh)"
    for peer in $PEERS; do
        case $peer in
            gonet) cmd="$BIN/rt_gonet" ;;
            go) cmd="env GOMAXPROCS=1 $BIN/rt_go" ;;
            *) echo "unknown peer $peer" >&2; exit 1 ;;
        esac
        # shellcheck disable=SC2086 # the command and sizes split into words on purpose
        if out=$(timeout 900 taskset -c 0 $cmd $SMALL --parked "$N" 2>&1); then
            printf "%-8s parked_rss_bytes %s\n" "$peer" "$(awk '$1 == "parked_rss_bytes" { print $2 }' <<<"$out")"
        else
            printf "%-8s FAILED: %s\n" "$peer" "$(tail -3 <<<"$out" | tr '\n' ' ')"
        fi
    done
} | tee "$RESULTS/million-latest.txt"
