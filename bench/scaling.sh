#!/bin/sh
# scaling.sh — every workload on 1, 2 and 8 workers: the scaling table of
# docs/benchmarks.md, printed as Markdown.
#
#   bench/scaling.sh [BUILD_DIR] [--reps=N] [--workers=1,2,8] [--quick]
#                    [--only=WORKLOAD,...] [--impl=weft,pthread,go] [--csv=FILE]
#
# For each worker count W, each program runs its cases with --workers=W:
# weft with WEFT_WORKERS=W, Go with GOMAXPROCS=W, pthreads as the case
# defines them (a case ending in -1w pins them to one CPU; it is used for
# W=1, the case ending in -2w for W >= 2; a workload with one case uses it
# for every W).  Every program repeats each implementation N times (default
# 5), each a fresh process, and reports medians; the tables give those
# medians and the ratios weft/pthread, weft/Go, and each implementation's
# figure on W workers against the next smaller W of the list (2 workers /
# 1 worker, 8 workers / 2 workers).  Two more tables: skynet's whole run
# with the system share of the process's CPU time and its peak RSS (wait4's
# rusage of the child), and fib against the serial C and Go functions.
#
# --quick uses small sizes (bench/sizes.sh): a smoke run, not for figures.
# --only takes the workload keys of the list below (yield, create, cond,
# mutex, mutex64, skynet, fib, idle, shares, sleeper, compute, compute-off,
# trace-off, trace-devnull).  --csv=FILE keeps the raw CSV (with the worker
# count as a first column).  The Go column is "n/a" when bench/go was not
# built.  Progress goes to stderr, the tables to stdout.
set -eu

build=./build
reps=5
workers="1,2,8"
quick=0
only=""
pass=""
csvout=""
for a in "$@"; do
	case "$a" in
	--reps=*) reps=${a#--reps=} ;;
	--workers=*) workers=${a#--workers=} ;;
	--quick) quick=1 ;;
	--only=*) only=${a#--only=} ;;
	--csv=*) csvout=${a#--csv=} ;;
	--impl=* | --timeout=*) pass="$pass $a" ;;
	--*) echo "scaling.sh: unknown option $a" >&2; exit 64 ;;
	*) build=$a ;;
	esac
done
dir=$build/bench
if [ ! -x "$dir/bench_switch" ]; then
	echo "scaling.sh: no benchmarks in $dir (build with cmake first)" >&2
	exit 1
fi
# shellcheck source=bench/sizes.sh
. "$(dirname "$0")/sizes.sh"
workers=$(echo "$workers" | tr ',' ' ')

# The workloads: key, program, case for 1 worker, case for more, primary
# figure, label.  The label names the figure.
workloads='yield switch yield-pingpong yield-pingpong switch yield ping-pong, per switch
create create create-join-1w create-join-2w pair create+join, per pair
cond cond cond-pingpong-1w cond-pingpong-2w roundtrip cond ping-pong, per round trip
mutex mutex mutex-uncontended mutex-uncontended pair mutex lock+unlock, uncontended
mutex64 mutex mutex-contended mutex-contended op mutex, 64 threads, per operation
skynet skynet skynet skynet thread skynet, per thread
fib fib fib-1w fib-2w fib fib(n), a thread per call above the cutoff
idle idle idle-rss idle-rss rss/thread RSS per idle thread
shares preempt spinner-shares spinner-shares max-share-distance-pp 4 spinners, largest distance from a fair share (pp)
sleeper preempt sleeper-late sleeper-late median-late 2 ms sleep beside 4 spinners, median lateness
compute preempt compute-q10ms compute-q10ms ns-per-iteration compute loop, 10 ms quantum, per iteration
compute-off preempt compute-q-off compute-q-off ns-per-iteration compute loop, preemption off, per iteration
trace-off trace off off switch yield ping-pong (bench_trace), untraced
trace-devnull trace devnull devnull switch yield ping-pong, every switch traced to /dev/null'

selected() {
	[ -z "$only" ] && return 0
	case ",$only," in *",$1,"*) return 0 ;; esac
	return 1
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT INT TERM
status=0
start_load=$(cut -d' ' -f1 /proc/loadavg)
start_date=$(date -u '+%Y-%m-%d %H:%M UTC')

# One invocation per program and worker count, with the cases it needs.
programs=$(echo "$workloads" | while read -r key prog rest; do
	if selected "$key"; then echo "$prog"; fi
done | awk '!seen[$0]++')
for prog in $programs; do
	exe=$dir/bench_$prog
	if [ ! -x "$exe" ]; then
		echo "scaling.sh: $exe not built (skipped)" >&2
		continue
	fi
	for w in $workers; do
		cases=$(echo "$workloads" | while read -r key p c1 c2 rest; do
			if [ "$p" = "$prog" ] && selected "$key"; then
				if [ "$w" = 1 ]; then echo "$c1"; else echo "$c2"; fi
			fi
		done | awk '!seen[$0]++' | paste -sd, -)
		sizes=""
		if [ "$quick" = 1 ]; then sizes=$(quick_sizes "$prog"); fi
		echo "scaling.sh: bench_$prog --workers=$w --only=$cases" >&2
		# shellcheck disable=SC2086
		"$exe" --csv --reps="$reps" --workers="$w" --only="$cases" $sizes $pass |
			sed -e 1d -e "s/^/$w,/" >>"$tmp" || status=1
	done
done
if [ -n "$csvout" ]; then
	cp "$tmp" "$csvout"
fi

printf '<!-- bench/scaling.sh %s%s%s: %s, load %s at the start, %s at the end -->\n\n' \
	"$build" "$([ "$quick" = 1 ] && echo ' --quick')" " --reps=$reps --workers=$(echo "$workers" | tr ' ' ',')" \
	"$start_date" "$start_load" "$(cut -d' ' -f1 /proc/loadavg)"

# Where the programs look for the Go port (bench/harness.c): $WEFT_BENCH_GO
# when it is set, else go/ beside them.
if [ -n "${WEFT_BENCH_GO+set}" ]; then
	gofound=$([ -n "$WEFT_BENCH_GO" ] && [ -x "$WEFT_BENCH_GO" ] && echo 1 || echo 0)
else
	gofound=$([ -x "$dir/go/weft-bench-go" ] && echo 1 || echo 0)
fi
echo "$workloads" | awk -v workers="$workers" -v only="$only" -v reps="$reps" -v gofound="$gofound" -v csv="$tmp" '
function fmt(v, unit,    a) {
	if (v == "") return "–"
	a = v < 0 ? -v : v
	if (unit == "ns") {
		if (a >= 1e9) return num(v / 1e9) " s"
		if (a >= 1e6) return num(v / 1e6) " ms"
		if (a >= 1e3) return num(v / 1e3) " µs"
		return num(v) " ns"
	}
	if (unit == "bytes") {
		if (a >= 1073741824) return num(v / 1073741824) " GiB"
		if (a >= 1048576) return num(v / 1048576) " MiB"
		if (a >= 1024) return num(v / 1024) " KiB"
		return num(v) " B"
	}
	if (unit == "percent") return sprintf("%.1f %%", v)
	if (unit == "int") return sprintf("%.0f", v)
	return sprintf("%.3g", v)
}
function num(v,    a) {
	a = v < 0 ? -v : v
	if (a >= 100) return sprintf("%.0f", v)
	if (a >= 10) return sprintf("%.1f", v)
	return sprintf("%.2f", v)
}
function ratio(a, b) {
	if (a == "" || b == "" || b + 0 == 0) return "–"
	return sprintf("%.3g", a / b)
}
function cell(impl, v, unit) {
	if (v != "") return fmt(v, unit)
	if (impl == "go" && !gofound) return "n/a"
	return "–"
}
function get(w, cs, impl, fig) {
	return ((w SUBSEP cs SUBSEP impl SUBSEP fig) in val) ? val[w, cs, impl, fig] : ""
}
BEGIN {
	FS = ","
	while ((getline line < csv) > 0) {
		split(line, f, ",")
		# W,bench,case,impl,figure,unit,median,min,max,reps
		if (f[4] == "ratio") continue
		val[f[1], f[3], f[4], f[5]] = f[7]
		unit[f[3], f[5]] = f[6]
	}
	nw = split(workers, W, " ")
	FS = " "
}
{
	key = $1
	if (only != "" && index("," only ",", "," key ",") == 0) next
	n++
	K[n] = key; P[n] = $2; C1[n] = $3; C2[n] = $4; F[n] = $5
	label = $6
	for (i = 7; i <= NF; i++) label = label " " $i
	L[n] = label
}
END {
	print "| workload | workers | weft | pthread | Go | weft/pthread | weft/Go | weft scaling | Go scaling |"
	print "|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= n; i++) {
		prevw = ""; prevc = ""
		for (j = 1; j <= nw; j++) {
			w = W[j]; cs = (w == 1) ? C1[i] : C2[i]; u = unit[cs, F[i]]
			we = get(w, cs, "weft", F[i]); pt = get(w, cs, "pthread", F[i]); go = get(w, cs, "go", F[i])
			ws = prevw == "" ? "" : ratio(we, get(prevw, prevc, "weft", F[i]))
			gs = prevw == "" ? "" : ratio(go, get(prevw, prevc, "go", F[i]))
			printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", (j == 1 ? L[i] : ""), w,
				cell("weft", we, u), cell("pthread", pt, u), cell("go", go, u),
				ratio(we, pt), (go == "" && !gofound) ? "n/a" : ratio(we, go), ws, gs
			prevw = w; prevc = cs
		}
	}
	print ""
	print "Medians of " reps " runs per implementation and worker count, each a fresh process. " \
		"Workers: WEFT_WORKERS for weft, GOMAXPROCS for Go; pthreads are as each case defines " \
		"them (pinned to one CPU in the 1-worker cases of yield, create+join, cond, fib and the " \
		"preemption cases, free otherwise). Scaling: the figure on this many workers divided by " \
		"the one on the row above (2 workers / 1 worker, 8 workers / 2 workers). Sizes differ: " \
		"pthreads run fewer threads or operations where a figure is per thread or per operation. " \
		"On more than one worker the two yielding threads can run side by side, and a yield " \
		"with nothing else to run does not switch: those rows give the cost of a yield call, " \
		"not of a switch (bench_switch warns when yields did not switch)."
	for (i = 1; i <= n; i++) if (K[i] == "skynet") sk = i
	if (sk) {
		print ""
		print "| skynet | workers | whole run | CPU time | system share of CPU | peak RSS | threads |"
		print "|---|---|---|---|---|---|---|"
		split("weft pthread go", I, " ")
		for (k = 1; k <= 3; k++) for (j = 1; j <= nw; j++) {
			w = W[j]; cs = (w == 1) ? C1[sk] : C2[sk]
			t = get(w, cs, I[k], "time")
			if (t == "" && I[k] == "go" && !gofound) {
				if (j == 1) printf "| go | all | n/a | | | | |\n"
				continue
			}
			printf "| %s | %s | %s | %s | %s | %s | %s |\n", (j == 1 ? I[k] : ""), w,
				fmt(t, "ns"), fmt(get(w, cs, I[k], "cpu-time"), "ns"),
				fmt(get(w, cs, I[k], "sys-share"), "percent"),
				fmt(get(w, cs, I[k], "maxrss"), "bytes"), fmt(get(w, cs, I[k], "threads"), "int")
		}
		print ""
		print "Whole run: from creating the root thread to joining it. System share, peak RSS: " \
			"the whole child process (wait4), runtime start included. pthreads run a smaller tree."
	}
	for (i = 1; i <= n; i++) if (K[i] == "fib") fb = i
	if (fb) {
		print ""
		print "| fib | workers | weft | weft ÷ serial C | pthread ÷ serial C | Go | Go ÷ serial Go | serial C | serial Go |"
		print "|---|---|---|---|---|---|---|---|---|"
		for (j = 1; j <= nw; j++) {
			w = W[j]; cs = (w == 1) ? C1[fb] : C2[fb]
			printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", (j == 1 ? L[fb] : ""), w,
				fmt(get(w, cs, "weft", "fib"), "ns"), fmt(get(w, cs, "weft", "vs-serial"), "count"),
				fmt(get(w, cs, "pthread", "vs-serial"), "count"),
				cell("go", get(w, cs, "go", "fib"), "ns"), cell("go", get(w, cs, "go", "vs-serial"), "count"),
				fmt(get(w, cs, "weft", "serial"), "ns"), cell("go", get(w, cs, "go", "serial"), "ns")
		}
		print ""
		print "÷ serial: the median over processes of (threaded run ÷ serial function), both timed " \
			"in the same process."
	}
}'
exit $status
