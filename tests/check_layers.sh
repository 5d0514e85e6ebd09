#!/usr/bin/env bash
# check_layers.sh SRC OBJECT... — the layer rule of docs/design.md
# ("Layers"), checked on the sources under SRC and on the library's object
# files (OBJECT..., any order; each is told apart by its path):
#  1. dependencies point down: src/context includes nothing of the other
#     layers, src/kthreads nothing of src/sched, src/sync or src/io,
#     src/sched nothing of src/sync or src/io, src/sync and src/io (side
#     by side) nothing of each other, and of src/sched only park.h;
#  2. every symbol an object of src/sync or src/io takes from an object of
#     src/sched is defined in park.c (which implements park.h, and only
#     park.h) and declared in park.h; the one table src/sched takes from
#     src/sync (wf_block_owner_at, for the thread dump) is declared in
#     park.h too; src/sched takes nothing from src/io, and src/sync and
#     src/io take nothing from each other;
#  3. nothing outside src/context (and src/kthreads' kt_syscall.h, the
#     system call instruction) names a machine register or the layout of a
#     signal's ucontext (docs/design.md, "Layers").
# Exit status 0 when both hold; otherwise each breach is named on stderr.
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 SRC OBJECT..." >&2
  exit 2
fi
src=$1
shift
failed=0
fail() {
  echo "FAIL: $*" >&2
  failed=1
}

# --- 1. includes ----------------------------------------------------------
# includes DIR PATTERN: the #include lines of DIR's files that match PATTERN.
includes() {
  grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' -r "$src/src/$1" |
    grep -E "$2"
}
check_includes() {   # check_includes DIR PATTERN WHAT
  local hits
  hits=$(includes "$1" "$2")
  [ -z "$hits" ] || fail "$3:"$'\n'"$hits"
}
check_includes context '"[^"]*(kthreads|sched|sync|io)/' "src/context includes an upper layer"
check_includes kthreads '"[^"]*(sched|sync|io)/' "src/kthreads includes an upper layer"
check_includes sched '"[^"]*(sync|io)/' "src/sched includes src/sync or src/io"
check_includes sync '"[^"]*io/' "src/sync includes src/io"
check_includes io '"[^"]*sync/' "src/io includes src/sync"
for layer in sync io; do
  hits=$(includes $layer '"[^"]*(sched|kthreads)/' | grep -vE '"\.\./sched/park\.h"')
  [ -z "$hits" ] || fail "src/$layer includes src/sched or src/kthreads beyond park.h:"$'\n'"$hits"
done

# --- 3. ISA details -------------------------------------------------------
isa=$(grep -rnE '\b(gregs|REG_[A-Z0-9]+|uc_mcontext)\b' "$src/src" --include='*.c' --include='*.h' |
  grep -v "^$src/src/context/" | grep -v '/kt_syscall\.h:')
[ -z "$isa" ] || fail "machine registers or ucontext layout outside src/context:"$'\n'"$isa"

# --- 2. symbols -----------------------------------------------------------
sync_objs=() io_objs=() sched_objs=() park_obj=
for o in "$@"; do
  case $o in
    */src/sync/*) sync_objs+=("$o") ;;
    */src/io/*) io_objs+=("$o") ;;
    */src/sched/park.c.o | */src/sched/park.c.obj) park_obj=$o; sched_objs+=("$o") ;;
    */src/sched/*) sched_objs+=("$o") ;;
  esac
done
if [ ${#sync_objs[@]} -eq 0 ] || [ ${#io_objs[@]} -eq 0 ] || [ ${#sched_objs[@]} -eq 0 ] ||
   [ -z "$park_obj" ]; then
  fail "object files of src/sync, src/io, src/sched or park.c not among the arguments"
  exit 1
fi
defined() { nm -g --defined-only "$@" | awk 'NF == 3 { print $3 }' | sort -u; }
undefined() { nm -u "$@" | awk 'NF == 2 { print $2 }' | sort -u; }
for layer in sync io; do
  if [ $layer = sync ]; then objs=("${sync_objs[@]}"); else objs=("${io_objs[@]}"); fi
  taken=$(comm -12 <(defined "${sched_objs[@]}") <(undefined "${objs[@]}"))
  [ -n "$taken" ] || fail "src/$layer takes nothing from src/sched: is this the right build?"
  outside=$(comm -23 <(echo "$taken") <(defined "$park_obj"))
  [ -z "$outside" ] || fail "src/$layer uses src/sched symbols not defined in park.c:"$'\n'"$outside"
  # What it takes from park.c must be declared in park.h.
  for sym in $taken; do
    grep -qE "\\b$sym\\b" "$src/src/sched/park.h" || fail "$sym (used by src/$layer) is not declared in park.h"
  done
done
# And the other way: only what park.h declares for the observers, and
# nothing at all of src/io.
up=$(comm -12 <(defined "${sync_objs[@]}") <(undefined "${sched_objs[@]}"))
for sym in $up; do
  grep -qE "\\b$sym\\b" "$src/src/sched/park.h" ||
    fail "src/sched uses $sym of src/sync, which park.h does not declare"
done
up=$(comm -12 <(defined "${io_objs[@]}") <(undefined "${sched_objs[@]}"))
[ -z "$up" ] || fail "src/sched uses symbols of src/io:"$'\n'"$up"
side=$(comm -12 <(defined "${io_objs[@]}") <(undefined "${sync_objs[@]}"))
side+=$(comm -12 <(defined "${sync_objs[@]}") <(undefined "${io_objs[@]}"))
[ -z "$side" ] || fail "src/sync and src/io use each other's symbols:"$'\n'"$side"
exit $failed
