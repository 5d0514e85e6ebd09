#!/bin/sh
# build.sh — build the Go ports of the benchmarks (bench/go) into OUTDIR.
#
#   bench/go/build.sh OUTDIR        (CMake runs it as OUTDIR=<build>/bench/go)
#
# Writes OUTDIR/weft-bench-go, which the C benchmarks run as their "go"
# implementation (they look for it in go/ beside themselves, or at
# $WEFT_BENCH_GO). Everything Go writes stays in OUTDIR: the build cache
# (GOCACHE) and GOPATH. Only the standard library is used, so the build
# needs no network: GOFLAGS=-mod=mod and GOPROXY=off make sure none is tried.
# The Go toolchain is $GO, else `go` from PATH (Debian 12: golang-go, 1.19).
set -eu
if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 64
fi
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
GO=${GO:-go}
cd "$src"
env GOCACHE="$out/cache" GOPATH="$out/gopath" GOFLAGS=-mod=mod GOPROXY=off \
	GO111MODULE=on GOENV=off CGO_ENABLED=0 GOTOOLCHAIN=local \
	"$GO" build -trimpath -o "$out/weft-bench-go" .
