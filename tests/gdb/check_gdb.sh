#!/usr/bin/env bash
# check_gdb.sh GDB SCRIPT TARGET — test the gdb script tools/gdb/weft-gdb.py.
#
#  1. The script loads in a gdb with no program, `help weft` works, and the
#     commands say that there is no weft runtime.
#  2. TARGET (tests/gdb/gdb_target.c) runs under gdb up to gdb_all_parked,
#     where its green threads are parked in known functions.  `weft threads`
#     must show each one's state; `weft bt` must show each one's stack, by
#     register loading and by frame-pointer walk; the selected thread's
#     registers and frame must be the same afterwards; `continue` must let
#     the program finish with status 0.
#  3. Where the system writes core files, TARGET aborts at the same point
#     and the script must read the core (frame-pointer walk).  Skipped, with
#     a note, where no core file appears.
#
# The environment (WEFT_KTHREADS...) passes through to TARGET; WEFT_WORKERS
# defaults to 2, which the checks of the worker lines expect.
# Exit status 0 when every check passes; otherwise each failed check is
# named on stderr, followed by the gdb output it looked at.
#
# check_gdb.sh GDB SCRIPT TARGET EMULATOR... — the same for a TARGET built
# for another ISA (a cross build, GDB being gdb-multiarch): TARGET runs
# under EMULATOR (qemu-user) with its gdb stub, and gdb attaches with
# `target remote` instead of `run`.  Two things differ there, each said
# where it happens: the program runs without preemption (WEFT_QUANTUM_US=0),
# and the core file part is not run.
set -u
if [ $# -lt 3 ]; then
  echo "usage: $0 GDB SCRIPT TARGET [EMULATOR...]" >&2
  exit 2
fi
gdb=$1 script=$2 target=$3
shift 3
emulator=("$@")
export WEFT_WORKERS=${WEFT_WORKERS:-2}
if [ ${#emulator[@]} -gt 0 ]; then
  # qemu-user 7.2's gdb stub reports every signal to gdb as a stop, and
  # with the preemption ticks of two workers arriving together it loses
  # track of its packets ("Remote communication error.  Target
  # disconnected.", seen within a second of `continue`).  Nothing the
  # script shows depends on preemption: the threads are parked.
  export WEFT_QUANTUM_US=0
fi
# The callee-saved registers of the selected thread, compared before and
# after `weft bt` loads and restores a green thread's registers.
# The ISA from the ELF header's e_machine (bytes 18-19, little-endian).
case $(od -An -tx1 -j18 -N2 "$target" | tr -d ' \n') in
  b700) regs='info registers pc sp x19 x20 x21 x22 x23 x24 x25 x26 x27 x28 x29 x30' ;;  # EM_AARCH64
  *) regs='info registers rip rsp rbp rbx r12 r13 r14 r15' ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

fail() {
  echo "FAIL: $*" >&2
  failed=1
}

# section FILE NAME: the lines between the marker @@NAME and the next one.
section() {
  awk -v want="@@$2" '$0 ~ /^@@/ { on = ($0 == want); next } on' "$1"
}

# expect FILE NAME REGEX WHAT: a line of section NAME matches REGEX.
expect() {
  section "$1" "$2" | grep -qE -- "$3" ||
    fail "$4 (section $2 of $(basename "$1")): no line matches /$3/"
}

# expect_frames FILE NAME F1 F2...: functions F1, F2... appear in section
# NAME's backtrace as frames, innermost first, in this order.
expect_frames() {
  local file=$1 name=$2 prev=0 fn line
  shift 2
  for fn in "$@"; do
    line=$(section "$file" "$name" |
      grep -nE "^#[0-9]+ +(0x[0-9a-f]+ in )?$fn( |$)" | head -1 | cut -d: -f1)
    if [ -z "$line" ]; then
      fail "backtrace in section $name of $(basename "$file") has no frame $fn"
      return
    fi
    if [ "$line" -le "$prev" ]; then
      fail "backtrace in section $name of $(basename "$file"): frames not" \
        "in the order $*"
      return
    fi
    prev=$line
  done
}

run_gdb() {   # run_gdb LOG ARGS...: gdb in batch mode, bounded in time
  local log=$1
  shift
  timeout 120 "$gdb" -batch -nx -iex 'set pagination off' -iex 'set width 0' \
    -iex 'set confirm off' "$@" >"$log" 2>&1
  local rc=$?
  [ $rc -eq 124 ] && fail "gdb timed out after 120 s ($(basename "$log"))"
  return 0
}

# --- 1. no program ------------------------------------------------------------
nolog=$work/no-program.log
run_gdb "$nolog" -ex "source $script" \
  -ex 'echo @@help\n' -ex 'help weft' \
  -ex 'echo @@help-bt\n' -ex 'help weft bt' \
  -ex 'echo @@threads\n' -ex 'weft threads' \
  -ex 'echo @@bt\n' -ex 'weft bt 1'
expect "$nolog" help '^weft threads' "help weft lists weft threads"
expect "$nolog" help '^weft bt' "help weft lists weft bt"
expect "$nolog" help-bt '^Usage: weft bt' "help weft bt"
not_found='weft runtime not found \(is the program linked with weft and built with -g\?\)'
expect "$nolog" threads "$not_found" "weft threads without a program"
expect "$nolog" bt "$not_found" "weft bt without a program"
if grep -qE 'Traceback|Python Exception|Error occurred in Python' "$nolog"; then
  fail "Python errors in $(basename "$nolog")"
fi

# --- 2. live program ------------------------------------------------------------
log=$work/live.log
start=(-ex run)
if [ ${#emulator[@]} -gt 0 ]; then
  # The emulator's gdb stub on a free port (one in use makes it exit at
  # once); gdb retries its connection until the stub listens.
  emu_pid=
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 20000))
    timeout 150 "${emulator[@]}" -g "$port" "$target" >"$work/emulator.out" 2>&1 &
    emu_pid=$!
    sleep 0.5
    kill -0 "$emu_pid" 2>/dev/null && break
    wait "$emu_pid" 2>/dev/null
    emu_pid=
  done
  [ -n "$emu_pid" ] || fail "the emulator's gdb stub did not start: $(cat "$work/emulator.out")"
  start=(-ex "target remote :$port" -ex continue)
fi
run_gdb "$log" -ex "source $script" -ex 'break gdb_all_parked' "${start[@]}" \
  -ex 'echo @@threads\n' -ex 'weft threads' \
  -ex 'echo @@held\n' -ex 'printf "held=%#lx\n", &held' \
  -ex 'echo @@regs-before\n' -ex "$regs" \
  -ex 'echo @@up\n' -ex up \
  -ex 'echo @@bt-waiter\n' -ex 'weft bt gdb_mutex_waiter' \
  -ex 'echo @@frame-after\n' -ex frame \
  -ex 'echo @@down\n' -ex down \
  -ex 'echo @@bt-holder\n' -ex 'weft bt gdb_holder' \
  -ex 'echo @@bt-sleeper\n' -ex 'weft bt gdb_sleeper' \
  -ex 'echo @@bt-joiner\n' -ex 'weft bt gdb_joiner' \
  -ex 'echo @@bt-main\n' -ex 'weft bt gdb_main' \
  -ex 'echo @@bt-all\n' -ex 'weft bt all' \
  -ex 'echo @@bt-fp\n' -ex 'weft bt -fp gdb_mutex_waiter' \
  -ex 'echo @@bt-bad\n' -ex 'weft bt 99999' \
  -ex 'echo @@regs-after\n' -ex "$regs" \
  -ex 'echo @@bt-current\n' -ex bt \
  -ex 'echo @@continue\n' -ex continue \
  "$target"

# main may run on either worker: it migrates like any green thread.
main=$(section "$log" threads | sed -nE 's/^thread ([0-9]+) "main" \[main\]: running on worker .*/\1/p')
[ -n "$main" ] || fail "weft threads does not show main running"
expect "$log" threads "^worker [01] \(kernel tid [0-9]+, gdb thread [0-9]+\): running thread ${main:-X}; [0-9]+ queued\$" \
  "a worker runs main"
expect "$log" threads '^worker 0 \(kernel tid [0-9]+' "worker 0 is listed"
expect "$log" threads '^worker 1 \(kernel tid [0-9]+' "worker 1 is listed"
holder=$(section "$log" threads | sed -nE 's/^thread ([0-9]+) "gdb-holder".*/\1/p')
held=$(section "$log" held | sed -nE 's/^held=(0x[0-9a-f]+)$/\1/p')
if [ -z "$holder" ] || [ -z "$held" ]; then
  fail "no gdb-holder thread in weft threads, or no address of the mutex"
  holder=X held=X
fi
expect "$log" threads "^thread $holder \"gdb-holder\": blocked, waiting on cond 0x[0-9a-f]+, .*last on worker [0-9]+$" \
  "the holder waits on the cond"
expect "$log" threads "^thread [0-9]+ \"gdb-mutex-waiter\": blocked, waiting for mutex $held \(held by thread $holder\)" \
  "the waiter waits for the mutex the holder holds"
# Over `target remote` the script cannot know that the target shares this
# host's clock, so it prints the deadline itself rather than time left.
expect "$log" threads '^thread [0-9]+ "gdb-sleeper": blocked, sleeping, ((wakes in|deadline passed) [0-9]+\.[0-9]{3} s|deadline [0-9]+\.[0-9]{3} s \(CLOCK_MONOTONIC\))' \
  "the sleeper sleeps"
expect "$log" threads "^thread [0-9]+ \"gdb-joiner\": blocked, joining thread $holder," \
  "the joiner joins the holder"
expect "$log" threads '^weft: 5 threads$' "five green threads"

expect_frames "$log" bt-waiter weft_mutex_lock gdb_waits_for_mutex gdb_mutex_waiter_main \
  wf_thread_entry
expect "$log" bt-waiter '^thread [0-9]+ "gdb-mutex-waiter": blocked, waiting for mutex' \
  "weft bt names the thread"
expect "$log" frame-after '^#1 .* main \(\) at .*gdb_target\.c' \
  "the selected frame is still main's after weft bt"
expect_frames "$log" bt-holder weft_cond_wait gdb_waits_on_cond gdb_holds_mutex
expect_frames "$log" bt-sleeper weft_sleep_ns gdb_sleeps
expect_frames "$log" bt-joiner weft_join gdb_joins
expect "$log" bt-main "running: its stack is that of worker [0-9]+'s kernel thread: \`thread [0-9]+\` then \`bt\`" \
  "weft bt of the running main points to its kernel thread"
expect_frames "$log" bt-all weft_cond_wait gdb_waits_on_cond
expect_frames "$log" bt-all weft_mutex_lock gdb_waits_for_mutex
expect_frames "$log" bt-all weft_sleep_ns gdb_sleeps
expect_frames "$log" bt-all weft_join gdb_joins
expect_frames "$log" bt-fp weft_mutex_lock gdb_waits_for_mutex gdb_mutex_waiter_main
expect "$log" bt-bad 'weft bt: no green thread 99999' "weft bt of an unknown id"
before=$(section "$log" regs-before)
after=$(section "$log" regs-after)
if [ -z "$before" ] || [ "$before" != "$after" ]; then
  fail "registers of the selected thread differ after weft bt:" \
    "before: $before; after: $after"
fi
expect_frames "$log" bt-current gdb_all_parked main
if [ ${#emulator[@]} -eq 0 ]; then   # else its output is the emulator's, checked below
  expect "$log" continue '^gdb_target: all threads finished$' "the target finishes after continue"
fi
expect "$log" continue 'exited normally' "the target exits with status 0"
if grep -qE 'Traceback|Python Exception|Error occurred in Python' "$log"; then
  fail "Python errors in $(basename "$log")"
fi

if [ ${#emulator[@]} -gt 0 ] && [ -n "${emu_pid:-}" ]; then
  wait "$emu_pid" 2>/dev/null   # it ended with the program (`continue` above)
  # What the program printed goes to the emulator's output, not gdb's.
  grep -q '^gdb_target: all threads finished$' "$work/emulator.out" ||
    fail "the target did not finish after continue: $(cat "$work/emulator.out")"
fi

# --- 3. core file ------------------------------------------------------------------
# A core the kernel writes (gdb's gcore can miss green stacks: see the
# script's header).  Where it lands: core_pattern, relative to the cwd.
corelog=$work/core.log
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo '|')
core=
if [ ${#emulator[@]} -gt 0 ]; then
  # A core of an emulated program is written by the emulator, not the
  # kernel (qemu_<program>_<date>_<pid>.core).  qemu-user 7.2 writes no
  # NT_FILE note, and gdb 13 then does not find where the program (position
  # independent) was loaded: it reads weft's variables at their link-time
  # addresses ("weft runtime not initialized yet").
  echo "note: core file checks not run: the target runs under an emulator," \
    "whose core files gdb cannot relocate the program in"
elif [ "${pattern:0:1}" != '|' ] && (ulimit -c unlimited) 2>/dev/null; then
  (cd "$work" && ulimit -c unlimited && GDB_TARGET_ABORT=1 exec "$target") \
    >"$work/abort.out" 2>&1 &
  pid=$!
  { wait $pid; } 2>/dev/null   # no "Aborted (core dumped)" job notice
  status=$?
  if [ $status -ne 134 ]; then   # 128 + SIGABRT
    fail "the target run with GDB_TARGET_ABORT=1 exited with status $status," \
      "not by SIGABRT: $(cat "$work/abort.out")"
  fi
  glob=${pattern//%p/$pid}
  glob=${glob//%%/%}
  glob=$(sed -E 's/%[a-zA-Z]/*/g' <<<"$glob")
  [ "${glob:0:1}" = / ] || glob=$work/$glob
  # Without %p in the pattern, core_uses_pid=1 appends the pid.
  if [[ $pattern != *%p* ]] &&
    [ "$(cat /proc/sys/kernel/core_uses_pid 2>/dev/null)" = 1 ]; then
    glob=$glob.$pid
  fi
  # shellcheck disable=SC2086,SC2012  # the glob is meant to expand; newest
  core=$(ls -t $glob 2>/dev/null | head -1)
fi
if [ -n "$core" ] && [ -f "$core" ]; then
  run_gdb "$corelog" -ex "source $script" \
    -ex 'echo @@threads\n' -ex 'weft threads' \
    -ex 'echo @@bt-waiter\n' -ex 'weft bt gdb_mutex_waiter' \
    -ex 'echo @@bt-all\n' -ex 'weft bt all' \
    "$target" "$core"
  rm -f "$core"
  expect "$corelog" threads "^thread [0-9]+ \"gdb-mutex-waiter\": blocked, waiting for mutex 0x[0-9a-f]+ \(held by thread [0-9]+\)" \
    "core: the waiter waits for the mutex"
  expect "$corelog" threads '^thread [0-9]+ "gdb-sleeper": blocked, sleeping' "core: the sleeper"
  expect "$corelog" bt-waiter 'core file: registers cannot be loaded, frame-pointer walk' \
    "core: weft bt walks frame pointers"
  expect_frames "$corelog" bt-waiter weft_mutex_lock gdb_waits_for_mutex gdb_mutex_waiter_main
  expect_frames "$corelog" bt-all weft_sleep_ns gdb_sleeps
  expect_frames "$corelog" bt-all weft_join gdb_joins
  if grep -qE 'Traceback|Python Exception|Error occurred in Python' "$corelog"; then
    fail "Python errors in $(basename "$corelog")"
  fi
  echo "core file checks done"
elif [ ${#emulator[@]} -eq 0 ]; then
  echo "note: no core file from the aborting target (core_pattern '$pattern'," \
    "ulimit -c $(ulimit -Hc) hard): core file checks skipped (sanitizer builds disable core dumps)"
fi

# --- result ---------------------------------------------------------------------------
for f in "$nolog" "$log" "$corelog"; do
  [ -f "$f" ] || continue
  if [ $failed -ne 0 ] || [ -n "${WEFT_GDB_VERBOSE:-}" ]; then
    echo "----- $(basename "$f") -----"
    cat "$f"
  fi
done
if [ $failed -ne 0 ]; then
  echo "gdb script checks FAILED (WEFT_KTHREADS=${WEFT_KTHREADS:-default})" >&2
  exit 1
fi
echo "gdb script checks passed (WEFT_KTHREADS=${WEFT_KTHREADS:-default})"
