#!/usr/bin/env bash
# check_layers.sh SRC FILE... — the layer rule of docs/design.md
# ("Layers"), checked on the sources under SRC, on the library's object
# files and on the two shared libraries (FILE..., any order; each is told
# apart by its path: objects of src/*, libweft.so, libweft-pthread.so):
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
#     signal's ucontext (docs/design.md, "Layers");
#  4. weft's own calls of libc's pthread_* and sem_* functions go through
#     WF_LIBC, and weft never calls the functions the pthread layer
#     replaces for green threads (sched_yield, the sleeps) by name
#     (docs/design.md, "weft's own calls of libc's pthread functions");
#  5. the pthread layer sits on top: its sources include nothing of weft
#     but weft.h, libweft-pthread.so takes nothing from libweft.so but
#     weft_* functions, and it defines none of the signal functions that
#     libweft takes over from libc (docs/design.md, "The pthread layer").
# Exit status 0 when all hold; otherwise each breach is named on stderr.
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 SRC FILE..." >&2
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
sync_objs=() io_objs=() sched_objs=() park_obj= lib_weft= lib_layer=
for o in "$@"; do
  case $o in
    */libweft-pthread.so*) lib_layer=$o ;;
    */libweft.so*) lib_weft=$o ;;
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

# --- 4. weft's calls of libc's pthread functions ----------------------------
# The sources below the pthread layer with comments and string literals
# removed; a call is a name followed by "(", except as the argument of
# WF_LIBC.
calls=$(find "$src/src/context" "$src/src/kthreads" "$src/src/sched" "$src/src/sync" \
             "$src/src/io" -name '*.[ch]' -print0 | xargs -0 perl -0777 -ne '
  s{/\*.*?\*/}{ }gs; s{//[^\n]*}{}g; s{"(?:\\.|[^"\\\n])*"}{""}g;
  while (/(?<!WF_LIBC\()\b((?:pthread|sem)_\w+|sched_yield|sleep|usleep|nanosleep|clock_nanosleep)\s*\(/g) {
    print "$ARGV: $1\n";
  }')
[ -z "$calls" ] || fail "weft calls libc's pthread, semaphore, yield or sleep functions by name (use WF_LIBC or the system call):"$'\n'"$calls"
# The check itself must see the calls that do go through WF_LIBC.
grep -rqE 'WF_LIBC\(pthread_create\)' "$src/src/kthreads" ||
  fail "no WF_LIBC(pthread_create) found: is this the right tree?"

# --- 5. the pthread layer on top ----------------------------------------------
hits=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' -r "$src/src/pthread" |
       grep -vE '"(weft\.h|pt_internal\.h)"')
[ -z "$hits" ] || fail "src/pthread includes weft's internals:"$'\n'"$hits"
if [ -n "$lib_weft" ] && [ -n "$lib_layer" ]; then
  dyn_defined() { nm -D --defined-only "$1" | awk 'NF == 3 { print $3 }' | sed 's/@.*//' | sort -u; }
  dyn_undef() { nm -D --undefined-only "$1" | awk '{ print $NF }' | sed 's/@.*//' | sort -u; }
  from_weft=$(comm -12 <(dyn_defined "$lib_weft") <(dyn_undef "$lib_layer"))
  echo "$from_weft" | grep -q '^weft_' || fail "the layer takes nothing from libweft: is this the right build?"
  other=$(echo "$from_weft" | grep -v '^weft_')
  [ -z "$other" ] || fail "libweft-pthread.so takes from libweft.so more than weft_* functions:"$'\n'"$other"
  both=$(comm -12 <(dyn_defined "$lib_weft" | grep -v '^weft_') <(dyn_defined "$lib_layer"))
  [ -z "$both" ] || fail "libweft-pthread.so defines what libweft.so defines for libc's callers:"$'\n'"$both"
elif [ -n "$lib_weft$lib_layer" ]; then
  fail "give both libweft.so and libweft-pthread.so, or neither"
fi
exit $failed
