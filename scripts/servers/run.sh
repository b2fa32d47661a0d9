#!/usr/bin/env bash
# Checkpoints real servers with CRIU (>= 4.2; set CRIU to its binary) for
# testdata/x86_64/servers/: a JVM, node, nginx, redis, postgres and python,
# each started on loopback only, left to go idle, dumped with
# --leave-stopped, described (/proc maps, status, cmdline, versions) and
# killed. Run as root:
#
#	CRIU=/path/to/criu scripts/servers/run.sh OUT [NAME...]
#
# OUT/<name>/images is the raw checkpoint, OUT/<name>/info what /proc
# showed just before the dump; scripts/trimcheckpoint makes the testdata
# from them. NAMEs: jvm node nginx redis postgres python (default: all).
set -euo pipefail
CRIU=${CRIU:-criu}
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: run.sh OUT [NAME...]}
shift
mkdir -p "$out"
out=$(cd "$out" && pwd)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(jvm node nginx redis postgres python)

# pg_oracle DIR PID: the kernel's core of the checkpointer, frozen where
# CRIU left it: a core-dumping signal it does not catch, then SIGCONT
# (core_pattern "core": the kernel writes DATADIR/core).
pg_oracle() {
	local d=$1 c sig
	for c in $(cat /proc/"$2"/task/*/children); do
		grep -q '^postgres: checkpointer' /proc/"$c"/cmdline || continue
		for sig in ABRT SEGV BUS TRAP; do
			# SigCgt bit of the signal: caught signals run a handler.
			local n=$(kill -l "$sig")
			(( (0x$(awk '/^SigCgt/ {print $2}' /proc/"$c"/status) >> (n - 1)) & 1 )) || break
		done
		echo "signal=SIG$sig" >"$d/info/oracle-$c.txt"
		grep -E '^Sig(Cgt|Ign|Blk)' /proc/"$c"/status >>"$d/info/oracle-$c.txt"
		kill -"$sig" "$c"
		kill -CONT "$c"
		waitfor /proc/"$c"/status zombie || sleep 2
		sleep 2
		gzip -9 <"$work/pg/data/core" >"$d/core.$c.gz"
		rm -f "$work/pg/data/core"
		return 0
	done
	echo "run.sh: no checkpointer under $2" >&2
	return 1
}

# tree PID: PID and its descendants, parents first.
tree() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done
}

# waitfor FILE WORD: until FILE holds WORD (at most 120 s).
waitfor() {
	local i
	for i in $(seq 1 240); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.5
	done
	echo "run.sh: $2 never appeared in $1" >&2
	return 1
}

# describe NAME PID VERSION: what /proc shows of the tree, then the dump.
describe_and_dump() {
	local name=$1 pid=$2 version=$3 d=$out/$1 p
	sleep 3 # every thread parks
	mkdir -p "$d/info"
	rm -f "$d"/info/maps-*.txt "$d"/info/status-*.txt "$d"/info/cmdline-*.txt "$d"/info/exe-*.txt
	for p in $(tree "$pid"); do
		cp /proc/"$p"/maps "$d/info/maps-$p.txt"
		cp /proc/"$p"/status "$d/info/status-$p.txt"
		tr '\0' '\n' </proc/"$p"/cmdline >"$d/info/cmdline-$p.txt"
		readlink /proc/"$p"/exe >"$d/info/exe-$p.txt"
	done
	if [ -n "${IPCNS_PID:-}" ]; then
		nsenter --ipc --target "$IPCNS_PID" ipcs -m >"$d/info/ipcs-m.txt"
	fi
	{
		echo "program=$name"
		echo "version=$version"
		echo "root_pid=$pid"
		echo "criu=$("$CRIU" --version | tr '\n' ' ')"
		echo "kernel=$(uname -r)"
		echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
	} >"$d/info/versions.txt"
	rm -rf "$d/images"
	mkdir -p "$d/images"
	[ -z "${DUMP_USER:-}" ] || chown "$DUMP_USER" "$d/images"
	${DUMP_AS:-} "$CRIU" dump -D "$d/images" -t "$pid" --leave-stopped -v4 -o dump.log ${DUMP_OPTS:-}
	[ -z "${AFTER_DUMP:-}" ] || "$AFTER_DUMP" "$d" "$pid"
	kill -9 $(tree "$pid") 2>/dev/null || true
	echo "run.sh: $name (pid $pid) dumped into $d/images"
}

work=$(mktemp -d /tmp/servers-work.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

for name in "${names[@]}"; do
	log=$work/$name.log
	case $name in
	jvm)
		javac -d "$work" "$here/src/Hot.java"
		setsid java -Xmx128m -cp "$work" Hot </dev/null >"$log" 2>&1 &
		pid=$!
		waitfor "$log" ready
		sleep 2
		# Where HotSpot's code heaps are (the anonymous rwx mappings);
		# the attach leaves an "Attach Listener" thread and socket.
		mkdir -p "$out/jvm/info"
		jcmd "$pid" Compiler.codecache >"$out/jvm/info/codecache.txt"
		describe_and_dump jvm "$pid" "$(java -version 2>&1 | tr '\n' ' ')"
		;;
	node)
		setsid node "$here/src/hot.js" 18080 </dev/null >"$log" 2>&1 &
		pid=$!
		waitfor "$log" ready
		curl -s http://127.0.0.1:18080/ >/dev/null
		describe_and_dump node "$pid" "node $(node --version)"
		;;
	python)
		setsid /usr/bin/python3 "$here/src/idle.py" 18081 </dev/null >"$log" 2>&1 &
		pid=$!
		waitfor "$log" ready
		curl -s http://127.0.0.1:18081/ >/dev/null
		describe_and_dump python "$pid" "$(/usr/bin/python3 --version)"
		;;
	nginx)
		mkdir -p "$work/nginx/tmp"
		cp "$here/nginx.conf" "$work/nginx/"
		setsid nginx -p "$work/nginx/" -c nginx.conf -g 'daemon off;' </dev/null >"$log" 2>&1 &
		pid=$!
		sleep 2
		curl -s http://127.0.0.1:18082/ >/dev/null
		describe_and_dump nginx "$pid" "$(nginx -v 2>&1)"
		;;
	redis)
		mkdir -p "$work/redis"
		setsid redis-server --port 18083 --bind 127.0.0.1 --save '' --appendonly no \
			--daemonize no --dir "$work/redis" </dev/null >"$log" 2>&1 &
		pid=$!
		waitfor "$log" "Ready to accept"
		redis-cli -p 18083 set greeting hello >/dev/null
		redis-cli -p 18083 get greeting >/dev/null
		describe_and_dump redis "$pid" "$(redis-server --version)"
		;;
	postgres)
		# In an IPC namespace of its own: CRIU dumps SysV shared memory
		# (ipcns-shm-*.img) only with the IPC namespace.
		pg=/usr/lib/postgresql/15/bin
		mkdir -p "$work/pg/sock"
		chown -R postgres:postgres "$work/pg"
		chmod 755 "$work"
		setpriv --reuid postgres --regid postgres --init-groups "$pg/initdb" -D "$work/pg/data" >"$work/initdb.log" 2>&1
		[ -z "${PG_ORACLE:-}" ] || ulimit -c unlimited
		setsid unshare --ipc -- setpriv --reuid postgres --regid postgres --init-groups \
			"$pg/postgres" -D "$work/pg/data" -p 18084 -k "$work/pg/sock" \
			-c listen_addresses=127.0.0.1 </dev/null >"$log" 2>&1 &
		waitfor "$log" "ready to accept"
		pid=$(head -1 "$work/pg/data/postmaster.pid")
		setpriv --reuid postgres --regid postgres --init-groups psql -h 127.0.0.1 -p 18084 -d postgres \
			-c 'CREATE TABLE t(k int, v text)' -c "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g" \
			-c 'SELECT count(*) FROM t' >/dev/null
		# CRIU reads each task's rlimits (prlimit), which needs the
		# task's uid or CAP_SYS_RESOURCE; where CRIU lacks the latter,
		# it runs as postgres with every other capability (ambient).
		caps=$(capsh --decode="$(awk '/^CapEff/ {print $2}' /proc/self/status)" | cut -d= -f2 | sed 's/cap_//g; s/^/+/; s/,/,+/g')
		oracle=
		[ -z "${PG_ORACLE:-}" ] || oracle=pg_oracle
		AFTER_DUMP=$oracle IPCNS_PID=$pid DUMP_OPTS=--unprivileged DUMP_USER=postgres \
			DUMP_AS="setpriv --reuid postgres --regid postgres --init-groups --inh-caps=$caps --ambient-caps=$caps" \
			describe_and_dump postgres "$pid" "$("$pg/postgres" --version)"
		;;
	*)
		echo "run.sh: unknown server $name" >&2
		exit 2
		;;
	esac
done
