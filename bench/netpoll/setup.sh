#!/usr/bin/env bash
# setup.sh — builds the CloudWeGo netpoll peer of bench/reactor.sh: lays the pinned netpoll
# sources out in a GOPATH and builds bench/go/netpoll_echo in GOPATH mode (GO111MODULE=off;
# no Go module proxy is needed or used) as target/release/echo_netpoll.
#
# The third-party sources are not part of this repository. Give the script a directory that
# holds them, in either of two layouts:
#
#   (a) git mirrors, one per repository, named owner+name: each is a bare git directory, or
#       holds one in repo/ or .git/:
#         DIR/cloudwego+netpoll  DIR/bytedance+gopkg  DIR/cloudwego+gopkg  DIR/golang+sys
#       The pinned tags below are extracted with `git archive` into target/netpoll/gopath.
#       (Such mirrors are plain clones: `git clone --mirror https://github.com/cloudwego/netpoll
#       DIR/cloudwego+netpoll`, and the same for the other three.)
#   (b) a GOPATH that already holds them, used as is:
#         DIR/src/github.com/cloudwego/netpoll  DIR/src/github.com/bytedance/gopkg
#         DIR/src/github.com/cloudwego/gopkg    DIR/src/golang.org/x/sys
#
# Usage: bash bench/netpoll/setup.sh DIR       (or NETPOLL_SRC=DIR bash bench/netpoll/setup.sh)
# Exit status: 0 built; 1 no directory given, or the sources are missing or incomplete (the
# message says which and how to get them); other: the build failed.
#
# Pinned versions (netpoll's latest release and the versions its go.mod requires):
# netpoll v0.7.2, bytedance/gopkg v0.1.1, cloudwego/gopkg v0.1.4, golang.org/x/sys v0.19.0.
# netpoll itself does not import x/sys at v0.7.2; it is laid out because its go.mod requires it.
# Override a version with NETPOLL_REV, BYTEDANCE_GOPKG_REV, CLOUDWEGO_GOPKG_REV, XSYS_REV.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

SRC=${1:-${NETPOLL_SRC:-}}
OUT=$TARGET_DIR/netpoll
GOPATH_DIR=$OUT/gopath

# owner+name, GOPATH import path, revision.
REPOS=(
    "cloudwego+netpoll github.com/cloudwego/netpoll ${NETPOLL_REV:-v0.7.2}"
    "bytedance+gopkg github.com/bytedance/gopkg ${BYTEDANCE_GOPKG_REV:-v0.1.1}"
    "cloudwego+gopkg github.com/cloudwego/gopkg ${CLOUDWEGO_GOPKG_REV:-v0.1.4}"
    "golang+sys golang.org/x/sys ${XSYS_REV:-v0.19.0}"
)

missing() {
    echo "netpoll setup: $*" >&2
    echo "netpoll setup: the netpoll peer needs the sources of cloudwego/netpoll, bytedance/gopkg," \
        "cloudwego/gopkg and golang/sys; see the header of bench/netpoll/setup.sh and bench/README.md" >&2
    exit 1
}

if [ -z "$SRC" ]; then
    echo "usage: bash bench/netpoll/setup.sh DIR   (DIR: git mirrors owner+name/, or a GOPATH with src/)" >&2
    missing "no source directory given (argument or NETPOLL_SRC)"
fi
[ -d "$SRC" ] || missing "source directory $SRC does not exist"
SRC=$(cd "$SRC" && pwd)

# The git directory of mirror $1 under $SRC, or nothing.
mirror_git_dir() {
    local d
    for d in "$SRC/$1/repo" "$SRC/$1/.git" "$SRC/$1"; do
        if [ -d "$d" ] && git --git-dir="$d" rev-parse --git-dir >/dev/null 2>&1; then
            echo "$d"
            return
        fi
    done
}

mkdir -p "$OUT"
# Written as VERSIONS.tmp, renamed once the build succeeded.
versions=$OUT/VERSIONS.tmp
if [ -d "$SRC/src/github.com/cloudwego/netpoll" ]; then
    # Layout (b): a ready GOPATH.
    GOPATH_DIR=$SRC
    : >"$versions"
    for r in "${REPOS[@]}"; do
        read -r _ path _ <<<"$r"
        [ -d "$GOPATH_DIR/src/$path" ] || missing "$GOPATH_DIR/src/$path is missing"
        echo "$path (from GOPATH $GOPATH_DIR)" >>"$versions"
    done
else
    # Layout (a): mirrors; extract the pinned revisions into a fresh GOPATH.
    for r in "${REPOS[@]}"; do
        read -r name path rev <<<"$r"
        [ -n "$(mirror_git_dir "$name")" ] || missing "no git mirror $SRC/$name (nor a GOPATH $SRC/src/$path)"
    done
    rm -rf "$GOPATH_DIR"
    : >"$versions"
    for r in "${REPOS[@]}"; do
        read -r name path rev <<<"$r"
        git_dir=$(mirror_git_dir "$name")
        commit=$(git --git-dir="$git_dir" rev-parse --verify -q "$rev^{commit}") ||
            missing "$name: revision $rev is not in $git_dir (fetch the mirror again, with its tags)"
        mkdir -p "$GOPATH_DIR/src/$path"
        git --git-dir="$git_dir" archive "$commit" | tar -x -C "$GOPATH_DIR/src/$path"
        echo "$path $rev $commit" >>"$versions"
        log "netpoll setup: $path $rev ($commit)"
    done
fi

ensure_go
mkdir -p "$BIN"
log "netpoll setup: building bench/go/netpoll_echo in GOPATH mode ($(go version)) as $BIN/echo_netpoll"
(cd "$BENCH_DIR/go/netpoll_echo" &&
    GO111MODULE=off GOPATH="$GOPATH_DIR" GOFLAGS='' go build -o "$BIN/echo_netpoll" .)
go version >>"$versions"
mv "$versions" "$OUT/VERSIONS"
log "netpoll setup: done ($OUT/VERSIONS)"
