#!/usr/bin/env bash
# Benchmark ckpt2core on synthetic checkpoints at scale.
#
# For each case (1 GiB and 4 GiB of captured pages in a few large VMAs,
# 60,000 small VMAs with scattered pages, 512 threads) it generates a
# checkpoint with scripts/gencheckpoint, then measures in one run on the
# same disk:
#   - conversion time and throughput (GB/s of captured pages, the size of
#     the pages files),
#   - peak RSS of the converter (/usr/bin/time -v "Maximum resident set
#     size"),
#   - the ratio of that throughput to `cp --sparse=always` of the same pages
#     files, the physical limit of this disk.
# Caches cannot be dropped, so both are warmed the same way: the pages files
# are read once (cat > /dev/null), `sync` and a pause of SETTLE seconds
# come before every timed run, conversion and copy alternate RUNS times
# (default 3) and the best time of each is kept. The targets (4 GiB at
# >= 0.8x cp, peak RSS <= 64 MiB, 60,000 VMAs in < 2 s) are checked at the
# end.
#
# Usage: scripts/bench.sh [CASE...]     CASE: 1g 4g vmas threads (all by default)
# Environment: BENCH_DIR (where to work, default /tmp), RUNS (default 3),
# SETTLE (seconds, default 1), JOBS (ckpt2core --jobs, default: CPUs).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=${BENCH_DIR:-/tmp}
RUNS=${RUNS:-3}
JOBS=${JOBS:-$(nproc)}
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(1g 4g vmas threads)

TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench.sh: $TIME (GNU time) is needed for peak RSS" >&2; exit 1; }

WORK=$(mktemp -d "$BENCH_DIR/ckpt2core-bench.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Bytes of disk a case needs: its pages (plus a few MiB of images), the
# core (sparse: about the pages) and the cp copy, with 10% to spare.
need_bytes() {
	local pages
	case $1 in
	1g) pages=$((1 << 30)) ;;
	4g) pages=$((4 << 30)) ;;
	*) pages=$((512 << 20)) ;; # small cases: generous
	esac
	echo $((pages * 3 + pages / 10 + (64 << 20)))
}
need=0
for c in "${CASES[@]}"; do
	n=$(need_bytes "$c")
	[ "$n" -gt "$need" ] && need=$n # cases run one after the other, each cleaned up
done
avail=$(df --output=avail -B1 "$WORK" | tail -1 | tr -d ' ')
if [ "$avail" -lt "$need" ]; then
	echo "bench.sh: $WORK has $((avail >> 20)) MiB free, the benchmark needs $((need >> 20)) MiB" >&2
	exit 1
fi

echo "building into $WORK/bin ..." >&2
go build -o "$WORK/bin/ckpt2core" ./cmd/ckpt2core
go build -o "$WORK/bin/gencheckpoint" ./scripts/gencheckpoint

now() { date +%s.%N; }

# timed CMD...: runs CMD under /usr/bin/time -v after `sync` and a short
# pause (so that writeback and discards of the previous run do not land in
# this one); sets secs (wall clock) and rss (peak RSS in KiB).
secs=0
rss=0
timed() {
	sync
	sleep "${SETTLE:-1}"
	local t0 t1
	t0=$(now)
	"$TIME" -v -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
		cat "$WORK/stderr.txt" >&2
		return 1
	}
	t1=$(now)
	secs=$(echo "$t1 - $t0" | bc -l)
	rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.txt")
}

# lower A B: the smaller of two decimal numbers ("" counts as infinite).
lower() {
	if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi
}

rows=()
misses=()
for c in "${CASES[@]}"; do
	case $c in
	1g) gen=(-shape large -size 1GiB) desc="1 GiB, 4 VMAs" ;;
	4g) gen=(-shape large -size 4GiB) desc="4 GiB, 4 VMAs" ;;
	vmas) gen=(-shape vmas -vmas 60000) desc="60,000 VMAs" ;;
	threads) gen=(-shape threads -threads 512) desc="512 threads" ;;
	*)
		echo "bench.sh: unknown case $c (1g 4g vmas threads)" >&2
		exit 2
		;;
	esac
	img=$WORK/$c/images out=$WORK/$c/out cpdir=$WORK/$c/cp
	mkdir -p "$img" "$out" "$cpdir"
	echo "== $desc: generating ..." >&2
	t0=$(now)
	"$WORK/bin/gencheckpoint" "${gen[@]}" -o "$img" >&2
	echo "   generated in $(printf %.1f "$(echo "$(now) - $t0" | bc -l)") s" >&2
	pages=$(cat "$img"/pages-*.img | wc -c)
	cat "$img"/pages-*.img >/dev/null # warm the page cache for both

	# Conversion and copy alternate, RUNS times each, so that both see the
	# same state of the machine; the best time of each is kept, and the
	# largest peak RSS of the conversions.
	conv_secs= cp_secs= conv_rss=0
	for ((i = 0; i < RUNS; i++)); do
		rm -f "$out"/core.*
		timed "$WORK/bin/ckpt2core" --quiet --jobs "$JOBS" "$img" -o "$out"
		conv_secs=$(lower "$conv_secs" "$secs")
		[ "$rss" -gt "$conv_rss" ] && conv_rss=$rss
		core_size=$(stat -c %s "$out"/core.* | awk '{s += $1} END {printf "%.0f", s}')
		core_alloc=$(du -B1 -c "$out"/core.* | tail -1 | cut -f1)
		rm -f "$out"/core.*

		rm -f "$cpdir"/*
		timed cp --sparse=always "$img"/pages-*.img "$cpdir"/
		cp_secs=$(lower "$cp_secs" "$secs")
		rm -f "$cpdir"/*
	done

	conv_gbs=$(echo "$pages / $conv_secs / 1000000000" | bc -l)
	cp_gbs=$(echo "$pages / $cp_secs / 1000000000" | bc -l)
	ratio=$(echo "$conv_gbs / $cp_gbs" | bc -l)
	rows+=("$(printf '%-16s %10.1f %9.3f %8.2f %9.3f %8.2f %6.2f %9.1f %10.1f %10.1f' \
		"$desc" "$(echo "$pages / 1048576" | bc -l)" "$conv_secs" "$conv_gbs" "$cp_secs" "$cp_gbs" "$ratio" \
		"$(echo "$conv_rss / 1024" | bc -l)" "$(echo "$core_size / 1048576" | bc -l)" "$(echo "$core_alloc / 1048576" | bc -l)")")
	echo "   ${rows[-1]}" >&2
	if [ "$conv_rss" -gt $((64 * 1024)) ]; then
		misses+=("$desc: peak RSS $((conv_rss / 1024)) MiB > 64 MiB")
	fi
	if [ "$c" = 4g ] && [ "$(echo "$ratio < 0.8" | bc -l)" = 1 ]; then
		misses+=("$desc: $(printf %.2f "$ratio")x the throughput of cp, < 0.8x")
	fi
	if [ "$c" = vmas ] && [ "$(echo "$conv_secs >= 2" | bc -l)" = 1 ]; then
		misses+=("$desc: $(printf %.2f "$conv_secs") s >= 2 s")
	fi
	rm -rf "${WORK:?}/$c"
done

echo
echo "ckpt2core benchmark: $(uname -r), $(nproc) CPUs, $(df --output=fstype "$WORK" | tail -1) on $(df --output=source "$WORK" | tail -1), best of $RUNS runs, --jobs $JOBS"
printf '%-16s %10s %9s %8s %9s %8s %6s %9s %10s %10s\n' case "pages MiB" "conv s" "GB/s" "cp s" "cp GB/s" ratio "RSS MiB" "core MiB" "disk MiB"
for r in "${rows[@]}"; do echo "$r"; done
if [ ${#misses[@]} -eq 0 ]; then
	echo "targets met (4 GiB >= 0.8x cp, peak RSS <= 64 MiB, 60,000 VMAs < 2 s; for the cases run)"
else
	printf 'target missed: %s\n' "${misses[@]}"
fi
