#!/usr/bin/env bash
# Time `ckpt2core diff` on a synthetic pair of checkpoints: A is
# synth.Large(SIZE), B the same with every CHANGE-th page marked
# (synth.LargeChanged). Reports the best of RUNS wall times of the diff,
# its peak RSS (GNU time), and the time of reading both pages files with
# cat (the disk's, or page cache's, speed) for comparison.
#
# Usage: scripts/bench-diff.sh        Environment: SIZE (default 1GiB),
# CHANGE (default 1000), RUNS (default 3), BENCH_DIR (default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1GiB}
CHANGE=${CHANGE:-1000}
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench-diff.sh: $TIME (GNU time) is needed for peak RSS" >&2; exit 1; }
WORK=$(mktemp -d "$BENCH_DIR/ckpt2core-bench-diff.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
go build -o "$WORK/ckpt2core" ./cmd/ckpt2core
go build -o "$WORK/gencheckpoint" ./scripts/gencheckpoint
"$WORK/gencheckpoint" -shape large -size "$SIZE" -o "$WORK/a"
"$WORK/gencheckpoint" -shape large -size "$SIZE" -change "$CHANGE" -o "$WORK/b"
cat "$WORK"/a/pages-*.img "$WORK"/b/pages-*.img >/dev/null
best() { sort -n | head -1; }
diffs=() cats=() rss=()
for _ in $(seq "$RUNS"); do
	sync; sleep 1
	s=$(date +%s.%N)
	cat "$WORK"/a/pages-*.img "$WORK"/b/pages-*.img >/dev/null
	cats+=("$(echo "$(date +%s.%N) - $s" | bc)")
	sync; sleep 1
	s=$(date +%s.%N)
	set +e
	"$TIME" -f '%M' -o "$WORK/rss" "$WORK/ckpt2core" diff "$WORK/a" "$WORK/b" -n 5 >"$WORK/out"
	rc=$?
	set -e
	diffs+=("$(echo "$(date +%s.%N) - $s" | bc)")
	rss+=("$(tail -1 "$WORK/rss")")
	[ "$rc" = 1 ] || { echo "bench-diff.sh: diff exited $rc, want 1" >&2; cat "$WORK/out" >&2; exit 1; }
done
tail -1 "$WORK/out"
bytes=$(cat "$WORK"/a/pages-*.img "$WORK"/b/pages-*.img | wc -c)
d=$(printf '%s\n' "${diffs[@]}" | best)
c=$(printf '%s\n' "${cats[@]}" | best)
r=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
echo "pages of A and B: $bytes bytes"
echo "diff: best of $RUNS ${d}s ($(echo "$bytes / $d / 1000000000" | bc -l | cut -c1-5) GB/s), peak RSS ${r} KiB"
echo "cat of both pages files: best ${c}s; diff/cat: $(echo "$d / $c" | bc -l | cut -c1-5)"
