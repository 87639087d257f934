#!/usr/bin/env bash
# scale-pack.sh — packs bench/scale.sh for a machine with no network and no toolchain: builds
# every binary it runs as a static executable into one folder, with scale.sh and lib.sh, so
# that folder alone can be copied to a many-core machine and run there (`bash scale.sh`;
# results in its results/). Then checks that the packed binaries are static and run here (a
# one-second scale.sh over every server, N=1, unless PACK_SMOKE=0).
#
#   bash bench/scale-pack.sh [DIR]        (default DIR: target/scale-pack)
#
# Rust: RUSTFLAGS="-C target-feature=+crt-static" with an explicit --target (the host
# triple), so the flag reaches the binaries but not the build scripts and proc macros, which
# cannot be static; the output is target/TRIPLE/release. Go: CGO_ENABLED=0 (its net package
# then resolves names in Go, no libc). netpoll: built from the GOPATH bench/netpoll/setup.sh
# laid out (target/netpoll/gopath), or from NETPOLL_SRC (as setup.sh takes it), else left
# out with a note. Go is installed with apt when missing; without it the Go peers are left out.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

OUT=${1:-$TARGET_DIR/scale-pack}
TRIPLE=$(rustc -vV | awk '$1 == "host:" { print $2 }')
SBIN=$TARGET_DIR/$TRIPLE/release

rm -rf "$OUT"
mkdir -p "$OUT/bin/examples" "$OUT/results"
manifest=$OUT/PACKED
{
    echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "target $TRIPLE"
    echo "rustc $(rustc -V)"
} >"$manifest"

log "building loadgen, echo_epoll, echo_tokio, examples echo and reactor_echo: static, --target $TRIPLE"
export RUSTFLAGS="-C target-feature=+crt-static"
(cd "$ROOT" && cargo build --release --target "$TRIPLE" -p gonet-bench \
    --bin loadgen --bin echo_epoll --bin echo_tokio)
cp "$SBIN/loadgen" "$SBIN/echo_epoll" "$SBIN/echo_tokio" "$OUT/bin/"
for ex in echo reactor_echo; do
    if [ -f "$ROOT/examples/$ex.rs" ] &&
        (cd "$ROOT" && cargo build --release --target "$TRIPLE" -p gonet --example "$ex"); then
        cp "$SBIN/examples/$ex" "$OUT/bin/examples/"
    else
        log "WARNING: the $ex example is not in this tree or does not build: left out"
    fi
done
unset RUSTFLAGS

ensure_go || true
if command -v go >/dev/null; then
    echo "go $(go version)" >>"$manifest"
    log "building bench/go/echo (CGO_ENABLED=0)"
    (cd "$BENCH_DIR/go" && CGO_ENABLED=0 go build -o "$OUT/bin/echo_go" ./echo) ||
        log "WARNING: bench/go/echo does not build: left out"
    gopath=
    if [ -n "${NETPOLL_SRC:-}" ]; then
        bash "$BENCH_DIR/netpoll/setup.sh" "$NETPOLL_SRC"
        # Layout (b) of setup.sh is a GOPATH used in place; layout (a) is extracted here.
        gopath=$TARGET_DIR/netpoll/gopath
        [ ! -d "$NETPOLL_SRC/src/github.com/cloudwego/netpoll" ] || gopath=$NETPOLL_SRC
    elif [ -d "$TARGET_DIR/netpoll/gopath/src/github.com/cloudwego/netpoll" ]; then
        gopath=$TARGET_DIR/netpoll/gopath
    fi
    if [ -n "$gopath" ]; then
        log "building bench/go/netpoll_echo (GOPATH $gopath, CGO_ENABLED=0)"
        (cd "$BENCH_DIR/go/netpoll_echo" &&
            GO111MODULE=off GOPATH="$gopath" GOFLAGS='' CGO_ENABLED=0 go build -o "$OUT/bin/echo_netpoll" .)
        [ ! -f "$TARGET_DIR/netpoll/VERSIONS" ] || echo "netpoll $(head -1 "$TARGET_DIR/netpoll/VERSIONS")" >>"$manifest"
    else
        log "NOTE: netpoll is not set up (bench/netpoll/setup.sh DIR, or NETPOLL_SRC=DIR): left out"
    fi
else
    log "NOTE: no Go toolchain: the go and netpoll servers are left out"
fi

cp "$BENCH_DIR/scale.sh" "$BENCH_DIR/lib.sh" "$OUT/"

# The release profile keeps line tables (debug = 1): drop them from the copies (symbols stay,
# for perf), a quarter of the size to carry.
if command -v strip >/dev/null; then
    for f in "$OUT"/bin/* "$OUT"/bin/examples/*; do
        [ ! -f "$f" ] || strip --strip-debug "$f"
    done
fi

# Every packed binary must be static: the other machine may have another libc, or none.
status=0
for f in "$OUT"/bin/* "$OUT"/bin/examples/*; do
    [ -f "$f" ] || continue
    # ldd names the libraries of a dynamic executable ("libc.so.6 => ..."); of a static one
    # it says "not a dynamic executable" or "statically linked".
    if ldd "$f" 2>&1 | grep -q '=>'; then
        log "ERROR: $f is dynamically linked: $(ldd "$f" | tr -s '\n\t ' ' ')"
        status=1
    fi
    echo "file ${f#"$OUT"/} $(sha256sum "$f" | cut -c1-16)" >>"$manifest"
done
[ "$status" -eq 0 ] || exit "$status"
log "packed into $OUT ($(du -sh "$OUT" | cut -f1)): copy the folder, run 'bash scale.sh' in it"

if [ "${PACK_SMOKE:-1}" != 0 ]; then
    log "smoke test: the packed scale.sh, N=1, 2 connections, 1 s per server"
    servers=
    for s in floor:echo_epoll echo:examples/echo reactor:examples/reactor_echo go:echo_go \
        netpoll:echo_netpoll tokio:echo_tokio; do
        [ ! -x "$OUT/bin/${s#*:}" ] || servers="$servers ${s%%:*}"
    done
    SERVERS=$servers NS=1 CONNS=2 DURATION=1 WARMUP=0.2 ROUNDS=1 bash "$OUT/scale.sh" >"$OUT/results/smoke.txt"
    # Every packed server must have a row with a request rate.
    missing=$(awk '/^server / { t = 1; next } t && NF && $1 !~ /^#/ && $2 !~ /^[0-9]+$/ { print $1 } /^$/ { t = 0 }' \
        "$OUT/results/smoke.txt")
    grep -q "SKIPPED" "$OUT/results/smoke.txt" && missing="$missing $(grep SKIPPED "$OUT/results/smoke.txt")"
    if [ -n "${missing// /}" ]; then
        log "ERROR: smoke test: no figures for: $missing (see $OUT/results/smoke.txt)"
        exit 1
    fi
    log "smoke test passed: every packed server answered ($OUT/results/smoke.txt)"
    rm -f "$OUT/results/scale-latest.txt"
fi
