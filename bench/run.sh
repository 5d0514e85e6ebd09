#!/bin/sh
# run.sh — run every weft benchmark of a build tree, one after the other.
#
#   bench/run.sh [BUILD_DIR] [--quick] [--csv] [--reps=N] [--impl=...] [--verbose]
#
# BUILD_DIR is the CMake build directory (default: ./build).  Each program
# re-executes itself once per repetition and implementation (see
# bench/harness.h); this script only sequences them.  --quick uses small sizes
# (for a smoke run, not for figures); --csv prints one CSV table for all.
# Options other than --quick are passed to every program (--workers=N runs
# every case on N workers and GOMAXPROCS=N).  The environment is passed on
# too, so e.g. WEFT_QUANTUM_US=0 bench/run.sh compares a run without
# preemption, and WEFT_BENCH_GO= (empty) one without the Go column.  For
# the 1/2/8-worker table of docs/benchmarks.md see bench/scaling.sh.
set -eu

build=./build
quick=0
csv=0
pass=""
for a in "$@"; do
	case "$a" in
	--quick) quick=1 ;;
	--csv) csv=1; pass="$pass $a" ;;
	--*) pass="$pass $a" ;;
	*) build=$a ;;
	esac
done
dir=$build/bench
if [ ! -x "$dir/bench_switch" ]; then
	echo "run.sh: no benchmarks in $dir (build with cmake first)" >&2
	exit 1
fi

# shellcheck source=bench/sizes.sh
. "$(dirname "$0")/sizes.sh"
sizes() {
	if [ "$quick" = 1 ]; then
		quick_sizes "$1"
	fi
}

status=0
first=1
# The known programs in a fixed order, then any other bench_* of the tree.
# bench_idle goes last: its 10,000 short-lived runnable pthreads inflate the
# load average that the next programs would print in their headers.
list="switch create skynet fib mutex cond preempt idle"
for p in "$dir"/bench_*; do
	b=${p##*/bench_}
	if [ ! -f "$p" ] || [ ! -x "$p" ]; then continue; fi
	case " $list " in *" $b "*) ;; *) list="$list $b" ;; esac
done
for b in $list; do
	prog=$dir/bench_$b
	if [ ! -x "$prog" ]; then
		echo "run.sh: $prog not built (skipped)" >&2
		continue
	fi
	# shellcheck disable=SC2046,SC2086
	if [ "$csv" = 1 ] && [ "$first" = 0 ]; then
		"$prog" $pass $(sizes $b) | tail -n +2 || status=1
	else
		"$prog" $pass $(sizes $b) || status=1
	fi
	first=0
done
exit $status
