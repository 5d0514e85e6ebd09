#!/bin/sh
# pigz_roundtrip.sh WEFT_RUN — a real threaded program from Debian, unmodified,
# on weft: pigz (parallel gzip) compresses with a pthread per block and
# checksums in parallel, with mutexes and condition variables between its
# threads.  Compress and decompress 17 MB through weft-run, then check the
# round trip byte for byte, that gzip reads pigz's output, and that the
# layer was active (WEFT_VERBOSE's line).
set -eu
run=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Compressible but not trivial: numbered lines with random words.
awk 'BEGIN { srand(42); for (i = 0; i < 400000; i++) {
	printf "%08d", i; for (j = 0; j < 6; j++) printf " w%d", int(rand() * 5000); print "" } }' \
	> "$dir/data"
WEFT_VERBOSE=1 "$run" pigz -p 8 -b 128 -k "$dir/data" 2> "$dir/err"
grep -q "weft: pthread layer active" "$dir/err"
mv "$dir/data" "$dir/orig"
gzip -t "$dir/data.gz"
"$run" pigz -d -p 8 "$dir/data.gz"
cmp "$dir/orig" "$dir/data"
echo "pigz round trip on weft: $(wc -c < "$dir/orig") bytes, identical"
