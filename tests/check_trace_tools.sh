#!/usr/bin/env bash
# The trace tools (tools/trace/check_trace.py, trace_to_svg.py) on real
# traces (the `trace-tools` tests): a whole run, a run whose rings wrapped
# (WEFT_TRACE_MAX_EVENTS), a run ended by SIGTERM; and the checker rejects
# overlapping slices and events before the window.  Without python3 the
# test reports itself skipped (exit 77).
#   check_trace_tools.sh <tools/trace directory> <trace_target program>
set -u
tools=$1 target=$2
command -v python3 >/dev/null || { echo "python3 not found: trace tools not tested"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "trace-tools: $*" >&2; exit 1; }
checker() { python3 "$tools/check_trace.py" "$@"; }

export WEFT_WORKERS=2 WEFT_QUANTUM_US=1000

# A whole run: accepted, and drawn.
WEFT_TRACE=$dir/whole.json "$target" run || fail "trace_target run failed"
checker "$dir/whole.json" >"$dir/out" || fail "the checker rejects a whole run: $(cat "$dir/out")"
grep -q '^ended by: exit$' "$dir/out" || fail "no 'ended by: exit': $(cat "$dir/out")"
python3 "$tools/trace_to_svg.py" "$dir/whole.json" "$dir/whole.svg" || fail "trace_to_svg failed"
grep -q '<svg' "$dir/whole.svg" || fail "no SVG drawn"
grep -q 'spinner-a' "$dir/whole.svg" || fail "the SVG does not name spinner-a"

# The last 64 records (on one worker, where every yield switches): a
# window, accepted, and drawn from its start.
WEFT_WORKERS=1 WEFT_TRACE=$dir/ring.json WEFT_TRACE_MAX_EVENTS=64 "$target" run 2>"$dir/err" ||
	fail "trace_target run (ring) failed"
grep -q 'events dropped' "$dir/err" || fail "no report of dropped events: $(cat "$dir/err")"
checker "$dir/ring.json" >"$dir/out" || fail "the checker rejects a window: $(cat "$dir/out")"
grep -q '^window: the last ' "$dir/out" || fail "the checker does not report the window: $(cat "$dir/out")"
python3 "$tools/trace_to_svg.py" "$dir/ring.json" "$dir/ring.svg" || fail "trace_to_svg failed on a window"
grep -q 'older events were dropped' "$dir/ring.svg" || fail "the SVG's title does not say events were dropped"

# Ended by SIGTERM: the process dies of it (status 143), the file is whole.
WEFT_TRACE=$dir/term.json "$target" forever >"$dir/ready" &
pid=$!
for _ in $(seq 100); do
	grep -q running "$dir/ready" && break
	sleep 0.05
done
sleep 0.1
kill -TERM "$pid"
wait "$pid"
status=$?
[ "$status" -eq 143 ] || fail "after SIGTERM: exit status $status, not 143"
checker "$dir/term.json" >"$dir/out" || fail "the checker rejects a trace ended by SIGTERM: $(cat "$dir/out")"
grep -q '^ended by: SIGTERM$' "$dir/out" || fail "no 'ended by: SIGTERM': $(cat "$dir/out")"

# Broken traces are rejected: overlapping slices, an event before the window.
cat >"$dir/overlap.json" <<'JSON'
{"traceEvents":[
{"ph":"X","pid":1,"tid":0,"ts":0.000,"dur":10.000,"name":"a"},
{"ph":"X","pid":1,"tid":0,"ts":9.000,"dur":5.000,"name":"b"}
],"displayTimeUnit":"ns"}
JSON
checker --quiet "$dir/overlap.json" >/dev/null 2>&1
[ $? -eq 1 ] || fail "the checker accepts overlapping slices"
cat >"$dir/early.json" <<'JSON'
{"traceEvents":[
{"ph":"i","pid":1,"tid":0,"ts":50.000,"s":"g","name":"trace window starts"},
{"ph":"X","pid":1,"tid":0,"ts":10.000,"dur":5.000,"name":"a"},
{"ph":"X","pid":1,"tid":0,"ts":60.000,"dur":5.000,"name":"b"}
],"displayTimeUnit":"ns",
"otherData":{"start_ns":1000000,"window_start_ns":1050000,"end_ns":1070000}}
JSON
checker --quiet "$dir/early.json" >/dev/null 2>&1
[ $? -eq 1 ] || fail "the checker accepts an event before the window"
exit 0
