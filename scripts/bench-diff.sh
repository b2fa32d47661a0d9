#!/usr/bin/env bash
# Time `ckpt2core diff` on a synthetic pair of checkpoints: A is
# synth.Large(SIZE), B the same with every CHANGE-th page marked
# (synth.LargeChanged). Reports the best of RUNS wall times of the diff,
# its peak RSS (GNU time), and the time of reading both pages files with
# cat (the disk's, or page cache's, speed) for comparison.
#
# With COMPRESS=zstd (or gzip) A and B are packed as Podman packs them
# (a tar of checkpoint/ with the names sorted: pstree.img after the
# pages), compressed (zstd -3, gzip -1), and the diff of the two archives
# is timed against decompressing both (zstd -dc / gzip -dc > /dev/null;
# every run's time is printed), with the peak of what it holds in TMPDIR (disk blocks of the files it
# has open there, anonymous ones included, plus what is named there,
# sampled every 20 ms).
#
# Usage: scripts/bench-diff.sh        Environment: SIZE (default 1GiB),
# CHANGE (default 1000), RUNS (default 3), BENCH_DIR (default /tmp),
# COMPRESS (default none), CKPT2CORE (a ckpt2core binary to time instead
# of building this tree's), BEFORE (with COMPRESS: another binary, timed
# in the same runs, interleaved, to compare with).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1GiB}
CHANGE=${CHANGE:-1000}
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp}
COMPRESS=${COMPRESS:-}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench-diff.sh: $TIME (GNU time) is needed for peak RSS" >&2; exit 1; }
WORK=$(mktemp -d "$BENCH_DIR/ckpt2core-bench-diff.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
CK=${CKPT2CORE:-$WORK/ckpt2core}
[ -n "${CKPT2CORE:-}" ] || go build -o "$WORK/ckpt2core" ./cmd/ckpt2core
go build -o "$WORK/gencheckpoint" ./scripts/gencheckpoint
"$WORK/gencheckpoint" -shape large -size "$SIZE" -o "$WORK/a"
"$WORK/gencheckpoint" -shape large -size "$SIZE" -change "$CHANGE" -o "$WORK/b"
bytes=$(cat "$WORK"/a/pages-*.img "$WORK"/b/pages-*.img | wc -c)
best() { sort -n | head -1; }

# tmpuse comes from benchlib.sh.
. scripts/benchlib.sh # (the working directory is the repository's)

if [ -n "$COMPRESS" ]; then
	for s in a b; do
		mkdir -p "$WORK/ck-$s"
		mv "$WORK/$s" "$WORK/ck-$s/checkpoint"
		tar --sort=name -C "$WORK/ck-$s" -cf "$WORK/$s.tar" checkpoint
		rm -rf "$WORK/ck-$s"
		case $COMPRESS in
		zstd) zstd -q -3 -T0 -f "$WORK/$s.tar" -o "$WORK/$s.tar.zst" && A_EXT=tar.zst ;;
		gzip) gzip -1 -c "$WORK/$s.tar" >"$WORK/$s.tar.gz" && A_EXT=tar.gz ;;
		*) echo "bench-diff.sh: COMPRESS=$COMPRESS: zstd or gzip" >&2; exit 1 ;;
		esac
		rm -f "$WORK/$s.tar"
	done
	# timed BIN: one diff of the archives by BIN; sets secs, rss, peak.
	timed() {
		rm -rf "$WORK/tmp" && mkdir -p "$WORK/tmp"
		sync; sleep 1
		local s tpid child u rc=0
		s=$(date +%s.%N)
		TMPDIR=$WORK/tmp "$TIME" -f '%M' -o "$WORK/rss" "$1" diff "$WORK/a.$A_EXT" "$WORK/b.$A_EXT" -n 5 >"$WORK/out" &
		tpid=$!
		peak=0
		while kill -0 "$tpid" 2>/dev/null; do
			child=$(pgrep -P "$tpid" | head -1 || true)
			if [ -n "$child" ]; then
				u=$(tmpuse "$child" "$WORK/tmp")
				[ "$u" -gt "$peak" ] && peak=$u
			fi
			sleep 0.02
		done
		wait "$tpid" || rc=$?
		secs=$(echo "$(date +%s.%N) - $s" | bc)
		rss=$(tail -1 "$WORK/rss")
		[ "$rc" = 1 ] || { echo "bench-diff.sh: $1 diff exited $rc, want 1" >&2; cat "$WORK/out" >&2; exit 1; }
	}
	diffs=() refs=() rsss=() peaks=() bdiffs=() brsss=() bpeaks=()
	for _ in $(seq "$RUNS"); do
		sync; sleep 1
		s=$(date +%s.%N)
		$COMPRESS -dc "$WORK/a.$A_EXT" >/dev/null
		$COMPRESS -dc "$WORK/b.$A_EXT" >/dev/null
		refs+=("$(echo "$(date +%s.%N) - $s" | bc)")
		timed "$CK"
		diffs+=("$secs") rsss+=("$rss") peaks+=("$peak")
		if [ -n "${BEFORE:-}" ]; then
			timed "$BEFORE"
			bdiffs+=("$secs") brsss+=("$rss") bpeaks+=("$peak")
		fi
	done
	tail -1 "$WORK/out"
	list() { printf '%s ' "$@"; }
	echo "pages of A and B: $bytes bytes, as $A_EXT: $(cat "$WORK/a.$A_EXT" "$WORK/b.$A_EXT" | wc -c) bytes"
	echo "$COMPRESS -dc of both: $(list "${refs[@]}")s"
	echo "diff: $(list "${diffs[@]}")s, peak RSS $(printf '%s\n' "${rsss[@]}" | sort -n | tail -1) KiB, TMPDIR peak $(($(printf '%s\n' "${peaks[@]}" | sort -n | tail -1) >> 20)) MiB"
	if [ -n "${BEFORE:-}" ]; then
		echo "BEFORE diff (interleaved): $(list "${bdiffs[@]}")s, peak RSS $(printf '%s\n' "${brsss[@]}" | sort -n | tail -1) KiB, TMPDIR peak $(($(printf '%s\n' "${bpeaks[@]}" | sort -n | tail -1) >> 20)) MiB"
	fi
	exit 0
fi

cat "$WORK"/a/pages-*.img "$WORK"/b/pages-*.img >/dev/null
diffs=() cats=() rss=()
for _ in $(seq "$RUNS"); do
	sync; sleep 1
	s=$(date +%s.%N)
	cat "$WORK"/a/pages-*.img "$WORK"/b/pages-*.img >/dev/null
	cats+=("$(echo "$(date +%s.%N) - $s" | bc)")
	sync; sleep 1
	s=$(date +%s.%N)
	set +e
	"$TIME" -f '%M' -o "$WORK/rss" "$CK" diff "$WORK/a" "$WORK/b" -n 5 >"$WORK/out"
	rc=$?
	set -e
	diffs+=("$(echo "$(date +%s.%N) - $s" | bc)")
	rss+=("$(tail -1 "$WORK/rss")")
	[ "$rc" = 1 ] || { echo "bench-diff.sh: diff exited $rc, want 1" >&2; cat "$WORK/out" >&2; exit 1; }
done
tail -1 "$WORK/out"
d=$(printf '%s\n' "${diffs[@]}" | best)
c=$(printf '%s\n' "${cats[@]}" | best)
r=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
echo "pages of A and B: $bytes bytes"
echo "diff: best of $RUNS ${d}s ($(echo "$bytes / $d / 1000000000" | bc -l | cut -c1-5) GB/s), peak RSS ${r} KiB"
echo "cat of both pages files: best ${c}s; diff/cat: $(echo "$d / $c" | bc -l | cut -c1-5)"
