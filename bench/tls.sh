#!/usr/bin/env bash
# tls.sh — TLS echo on the reactor (the shipped example examples/reactor_tls_echo.rs,
# `Builder::tls`) against its peers: Go crypto/tls (bench/go/tls_echo, goroutine per
# connection, GOMAXPROCS=1), tokio + tokio-rustls on a current_thread runtime
# (bench/src/bin/tls_echo_tokio.rs) and gonet's goroutine-per-connection TLS echo
# (examples/tls_echo.rs, rustls's StreamOwned over gonet::net::TcpStream). Every server runs
# pinned to CPU 0 with one worker, each with a self-signed ECDSA P-256 certificate made at
# start; the client is bench/src/bin/tls_loadgen.rs pinned to CPU 1 (TLS 1.3 with
# AES-128-GCM only, one blocking thread per connection).
#
# Scenarios: `CxS` is an echo of S bytes over C connections after the handshake; `hsC` is
# handshakes: C client threads each making a new connection per request (a full TLS 1.3
# handshake — the client resumes no session —, one 64 B echo, close_notify). Servers
# alternate within each scenario of each round, each run on a fresh server, so the ratios
# compare runs made back to back; the report gives the medians of req/s and server CPU µs
# per request, and the reactor's ratios to each peer (median of the per-round ratios). Then
# resident memory per idle TLS connection (IDLE_CONNS connections that each completed the
# handshake and one echo). Results go to bench/results/tls-latest.txt.
#
# The client does as much crypto per request as the server, so on two CPUs req/s is often
# bounded by the client; server CPU per request is the figure that compares the servers.
#
# Environment: DURATION (5 s measured), WARMUP (1 s), ROUNDS (3), SERVERS ("reactor go
# tokio goroutine"), SCENARIOS ("1x64 1x4096 100x64 100x4096 hs1 hs4"), IDLE_CONNS (2000, 0
# skips the memory part), PORT_BASE (19500), PROFILE (release; `ci` reuses the test build's
# optimized profile for a quick look, and the report says which), RESULT (the report's file
# name in bench/results, tls-latest.txt). A server named `reactorN` is the reactor with a
# GONET_SPIN_US=N idle spin window (e.g. SERVERS="reactor reactor200 go").
#
# The floor (not in the default SERVERS): bench/src/bin/tls_floor.rs, one thread, one
# edge-triggered epoll, rustls's unbuffered API, per request only one read, the decryption,
# the encryption of the echo and one write — what no TLS server on one CPU can beat. Servers
# `floor` (blocks in epoll_wait) and `floorspin` (FLOOR_SPIN=1: busy-polls epoll, never
# sleeps), and `floorbuf`/`floorbufspin` the same on rustls's buffered ServerConnection (the
# API the Rust peers use; the reactor has its own record layer), e.g. SERVERS="floor floorspin reactor go". When a
# floor runs, the report adds each other server's ratios to it (r/s: server / floor, at most
# about 1; cpu: server µs/req / floor's, at least about 1): a go/floor r/s ratio above 1/1.3
# = 0.77 means no server here can do 1.3x Go's requests/s.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"reactor go tokio goroutine"}
SCENARIOS=${SCENARIOS:-"1x64 1x4096 100x64 100x4096 hs1 hs4"}
IDLE_CONNS=${IDLE_CONNS:-2000}
PORT_BASE=${PORT_BASE:-19500}
PROFILE=${PROFILE:-release}
BIN=$TARGET_DIR/$PROFILE
one_server_at_a_time
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
ulimit -n 20000 2>/dev/null || true

log "building tls_loadgen, tls_echo_tokio, tls_floor, the TLS examples ($PROFILE) and bench/go/tls_echo"
# The load generator and the Rust peers need neither gonet nor jemalloc.
(cd "$ROOT" && cargo build --profile "$PROFILE" -p gonet-bench --no-default-features \
    --bin tls_loadgen --bin tls_echo_tokio --bin tls_floor)
(cd "$ROOT" && cargo build --profile "$PROFILE" -p gonet --features rustls \
    --example reactor_tls_echo --example tls_echo)
ensure_go
(cd "$BENCH_DIR/go" && CGO_ENABLED=0 go build -o "$BIN/tls_echo_go" ./tls_echo)

PORT=$PORT_BASE
# Starts server $1 on a fresh port; sets SERVER_PID and CA (its certificate file).
start_server() {
    PORT=$((PORT + 1))
    local cert
    case $1 in
    reactor | reactor[0-9]*)
        # reactorN: the reactor with an idle spin window of N µs (GONET_SPIN_US).
        cert=$TMP/$1
        mkdir -p "$cert"
        local spin=${1#reactor}
        TMPDIR=$cert taskset -c 0 env GONET_PROCS=1 ${spin:+GONET_SPIN_US=$spin} \
            "$BIN/examples/reactor_tls_echo" "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
        CA=$cert/gonet-reactor_tls_echo-cert.pem
        ;;
    goroutine)
        cert=$TMP/goroutine
        mkdir -p "$cert"
        TMPDIR=$cert taskset -c 0 env GONET_PROCS=1 "$BIN/examples/tls_echo" server \
            "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
        CA=$cert/gonet-tls_echo-cert.pem
        ;;
    go)
        cert=$TMP/go
        mkdir -p "$cert"
        TMPDIR=$cert taskset -c 0 env GOMAXPROCS=1 "$BIN/tls_echo_go" \
            "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
        CA=$cert/gonet-go_tls_echo-cert.pem
        ;;
    tokio)
        cert=$TMP/tokio
        mkdir -p "$cert"
        TMPDIR=$cert taskset -c 0 "$BIN/tls_echo_tokio" \
            "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
        CA=$cert/gonet-tls_echo_tokio-cert.pem
        ;;
    floor | floorspin | floorbuf | floorbufspin)
        # The floor: FLOOR_BUFFERED=1 for floorbuf*, FLOOR_SPIN=1 for *spin.
        cert=$TMP/$1
        mkdir -p "$cert"
        local buffered=0 spin=0
        case $1 in floorbuf*) buffered=1 ;; esac
        case $1 in *spin) spin=1 ;; esac
        TMPDIR=$cert taskset -c 0 env FLOOR_BUFFERED=$buffered FLOOR_SPIN=$spin \
            "$BIN/tls_floor" "127.0.0.1:$PORT" >"$TMP/server.log" 2>&1 &
        CA=$cert/gonet-tls_floor-cert.pem
        ;;
    *)
        log "unknown server $1"
        return 1
        ;;
    esac
    SERVER_PID=$!
    await_listening "$1" "$PORT"
}

SAMPLES=$TMP/samples
: >"$SAMPLES"
for round in $(seq 1 "$ROUNDS"); do
    for sc in $SCENARIOS; do
        case $sc in
        hs*) conns=${sc#hs} size=64 hs=1 ;;
        *) conns=${sc%x*} size=${sc#*x} hs=0 ;;
        esac
        for srv in $SERVERS; do
            start_server "$srv" || { stop_server; continue; }
            log "round $round: $srv, $sc"
            if taskset -c 1 "$BIN/tls_loadgen" --addr "127.0.0.1:$PORT" --ca "$CA" \
                --conns "$conns" --size "$size" --duration "$DURATION" --warmup "$WARMUP" \
                --handshakes "$hs" --server-pid "$SERVER_PID" >"$TMP/out" 2>"$TMP/err"; then
                awk -v g="$srv/$sc" -v r="$round" '{ print g, $1, $2; print g "@" r, $1, $2 }' \
                    "$TMP/out" >>"$SAMPLES"
            else
                log "WARNING: tls_loadgen failed against $srv: $(cat "$TMP/err")"
            fi
            stop_server
        done
    done
done

IDLE=$TMP/idle
: >"$IDLE"
if [ "$IDLE_CONNS" -gt 0 ]; then
    for srv in $SERVERS; do
        start_server "$srv" || { stop_server; continue; }
        log "idle: $srv, $IDLE_CONNS TLS connections"
        if taskset -c 1 "$BIN/tls_loadgen" --addr "127.0.0.1:$PORT" --ca "$CA" \
            --idle "$IDLE_CONNS" --server-pid "$SERVER_PID" >"$TMP/out" 2>"$TMP/err"; then
            awk -v g="$srv" '{ print g, $1, $2 }' "$TMP/out" >>"$IDLE"
        else
            log "WARNING: idle measurement failed against $srv: $(cat "$TMP/err")"
        fi
        stop_server
    done
fi

MED=$TMP/medians
grep -v '@' "$SAMPLES" | medians >"$MED" || true
# Per-round ratios reactor/peer (same round, back to back, so slow drift cancels), then
# their medians.
RAT=$TMP/ratios
: >"$RAT"
for sc in $SCENARIOS; do
    for peer in $SERVERS; do
        [ "$peer" != reactor ] || continue
        for round in $(seq 1 "$ROUNDS"); do
            for k in rps server_cpu_us_per_req; do
                a=$(awk -v g="reactor/$sc@$round" -v k="$k" '$1 == g && $2 == k { print $3 }' "$SAMPLES")
                b=$(awk -v g="$peer/$sc@$round" -v k="$k" '$1 == g && $2 == k { print $3 }' "$SAMPLES")
                r=$(ratio "${a:-n/a}" "${b:-n/a}")
                [ "$r" = n/a ] || echo "$peer/$sc $k $r" >>"$RAT"
            done
        done
    done
done
RMED=$TMP/ratio-medians
medians <"$RAT" >"$RMED" || true
# The same against each floor that ran: server/floor per round, then their medians.
FLOORS=$(for s in $SERVERS; do case $s in floor*) echo "$s" ;; esac; done)
FRAT=$TMP/floor-ratios
: >"$FRAT"
for fl in $FLOORS; do
    for sc in $SCENARIOS; do
        for srv in $SERVERS; do
            case $srv in floor*) continue ;; esac
            for round in $(seq 1 "$ROUNDS"); do
                for k in rps server_cpu_us_per_req; do
                    a=$(awk -v g="$srv/$sc@$round" -v k="$k" '$1 == g && $2 == k { print $3 }' "$SAMPLES")
                    b=$(awk -v g="$fl/$sc@$round" -v k="$k" '$1 == g && $2 == k { print $3 }' "$SAMPLES")
                    r=$(ratio "${a:-n/a}" "${b:-n/a}")
                    [ "$r" = n/a ] || echo "$srv:$fl/$sc $k $r" >>"$FRAT"
                done
            done
        done
    done
done
FMED=$TMP/floor-ratio-medians
medians <"$FRAT" >"$FMED" || true

OUT=$RESULTS/${RESULT:-tls-latest.txt}
{
    results_header "bench/tls.sh: TLS echo, reactor (Builder::tls) vs Go crypto/tls, tokio-rustls and gonet's goroutine tls_echo" "$START_LOAD"
    echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# one worker on CPU 0, tls_loadgen on CPU 1; TLS 1.3, TLS13_AES_128_GCM_SHA256, ECDSA P-256"
    echo "# profile: $PROFILE; $(go version 2>/dev/null || echo 'go: n/a')"
    echo "# ROUNDS=$ROUNDS DURATION=${DURATION}s WARMUP=${WARMUP}s; medians"
    echo "# CxS: echo of S bytes over C connections; hsC: new connection (full handshake) per request, C client threads"
    echo "# r/s ratio = reactor r/s / this server's (> 1: reactor faster); cpu ratio = reactor µs/req / this"
    echo "# server's (< 1: reactor cheaper); each the median of the per-round ratios (runs back to back)"
    echo
    printf '%-9s %-12s %10s %10s %10s %10s\n' scenario server "r/s" "µs/req" "r/s ratio" "cpu ratio"
    for sc in $SCENARIOS; do
        for srv in $SERVERS; do
            if [ "$srv" = reactor ]; then
                rr=- cr=-
            else
                rr=$(lookup "$RMED" "$srv/$sc" rps)
                cr=$(lookup "$RMED" "$srv/$sc" server_cpu_us_per_req)
            fi
            printf '%-9s %-12s %10s %10s %10s %10s\n' "$sc" "$srv" \
                "$(fmt "$(lookup "$MED" "$srv/$sc" rps)" 0)" \
                "$(fmt "$(lookup "$MED" "$srv/$sc" server_cpu_us_per_req)" 2)" "$rr" "$cr"
        done
    done
    if [ -n "$FLOORS" ]; then
        echo
        echo "# against the floor (bench/src/bin/tls_floor.rs: one read, decrypt, encrypt, one write per"
        echo "# request): r/s ratio = this server's r/s / the floor's (< 1: slower than the floor); cpu"
        echo "# ratio = this server's µs/req / the floor's (> 1: dearer); medians of the per-round ratios"
        printf '%-9s %-12s %-12s %10s %10s\n' scenario server floor "r/s ratio" "cpu ratio"
        for sc in $SCENARIOS; do
            for fl in $FLOORS; do
                for srv in $SERVERS; do
                    case $srv in floor*) continue ;; esac
                    printf '%-9s %-12s %-12s %10s %10s\n' "$sc" "$srv" "$fl" \
                        "$(lookup "$FMED" "$srv:$fl/$sc" rps)" \
                        "$(lookup "$FMED" "$srv:$fl/$sc" server_cpu_us_per_req)"
                done
            done
        done
    fi
    if [ "$IDLE_CONNS" -gt 0 ]; then
        echo
        echo "# resident bytes per idle TLS connection ($IDLE_CONNS connections, each after the handshake and one echo)"
        for srv in $SERVERS; do
            printf '%-12s %s\n' "$srv" "$(lookup "$IDLE" "$srv" idle_conn_bytes)"
        done
    fi
} >"$OUT"
cat "$OUT"
