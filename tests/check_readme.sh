#!/usr/bin/env bash
# The README's minimal program (the `readme` test): the C block under
# "A minimal program" in README.md is examples/minimal.c byte for byte, the
# program built from that file prints 285, and with a bad setting it fails
# with weft's one-line message instead of printing a sum.
#   check_readme.sh README.md examples/minimal.c <the built program>
set -u
readme=$1 source=$2 prog=$3
fail() { echo "readme: $*" >&2; exit 1; }

block=$(awk '/^## A minimal program/ { on = 1; next }
             on && /^```c$/ { code = 1; next }
             code && /^```$/ { exit }
             code { print }' "$readme")
[ -n "$block" ] || fail "no C block under '## A minimal program' in $readme"
diff <(printf '%s\n' "$block") "$source" >&2 || fail "$readme and $source differ"

out=$("$prog" 2>/dev/null) || fail "the program failed (status $?)"
[ "$out" = 285 ] || fail "the program printed '$out', not 285"

err=$(mktemp)
trap 'rm -f "$err"' EXIT
out=$(WEFT_WORKERS=abc "$prog" 2>"$err")
status=$?
[ "$status" -ne 0 ] || fail "WEFT_WORKERS=abc: exit status 0; stdout '$out'"
[ -z "$out" ] || fail "WEFT_WORKERS=abc: printed '$out' besides failing"
grep -q '^weft: WEFT_WORKERS=' "$err" || fail "WEFT_WORKERS=abc: no line naming the variable: $(cat "$err")"
grep -q '^weft_init: ' "$err" || fail "WEFT_WORKERS=abc: the program did not report weft_init's error: $(cat "$err")"
exit 0
