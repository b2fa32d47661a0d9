# Shell functions shared by the benchmark scripts (sourced).

# tmpuse PID DIR: bytes on disk of the files PID holds open under DIR
# (anonymous ones too) plus the files named under DIR.
tmpuse() {
	local pid=$1 dir=$2 sum=0 fd l b
	for fd in /proc/"$pid"/fd/*; do
		l=$(readlink "$fd" 2>/dev/null) || continue
		case $l in "$dir"/*)
			b=$(stat -L -c '%b %B' "$fd" 2>/dev/null | awk '{print $1 * $2}') || continue
			sum=$((sum + ${b:-0}))
			;;
		esac
	done
	b=$(du -s -B1 "$dir" 2>/dev/null | cut -f1)
	echo $((sum + ${b:-0}))
}
