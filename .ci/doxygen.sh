#!/usr/bin/env bash
# Build weft's reference documentation from include/weft.h with doxygen and
# fail on any warning: an undocumented public name, parameter or return
# value, or a malformed doc comment.  doxygen must already be installed
# (the CI script installs it); nothing is installed here.
#
# The HTML goes to $WEFT_DOXYGEN_OUT when set (and is kept), otherwise to a
# temporary directory that is removed afterwards.  A relative path is taken
# from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v doxygen >/dev/null 2>&1; then
  echo "doxygen: not installed" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=${WEFT_DOXYGEN_OUT:-$tmp/out}
mkdir -p "$out"
log=$tmp/stderr

# docs/Doxyfile, with only the output directory replaced (a later setting
# overrides an earlier one).  WARN_AS_ERROR makes doxygen itself fail on a
# warning; any output on stderr fails the check as well.
rc=0
{ cat docs/Doxyfile; printf 'OUTPUT_DIRECTORY = "%s"\n' "$out"; } |
  doxygen - 2>"$log" || rc=$?

if [ "$rc" -ne 0 ] || [ -s "$log" ]; then
  cat "$log" >&2
  n=$(sort -u "$log" | grep -c -E '(warning|error):' || true)
  echo "doxygen: FAILED (exit $rc, $n warnings)" >&2
  exit 1
fi

pages=$(find "$out/html" -maxdepth 1 -name '*.html' | wc -l)
echo "doxygen $(doxygen --version): $pages pages, 0 warnings"
