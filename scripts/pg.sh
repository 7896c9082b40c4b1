#!/usr/bin/env bash
# pg.sh: a local, throwaway-friendly PostgreSQL cluster for development and tests.
#
#   scripts/pg.sh start DIR [--fast]  start (or reuse) the cluster in DIR; print its URL
#   scripts/pg.sh stop DIR            stop it (no-op if it is not running)
#   scripts/pg.sh status DIR          exit 0 if running, 3 if not
#   scripts/pg.sh url DIR [DB]        print the URL of database DB (default moor)
#
# start: on first use it runs initdb (superuser "postgres", -A trust, UTF8, C
# locale), picks a free port (saved in DIR/port) and puts the unix socket in the
# cluster directory; it then starts the server on 127.0.0.1:PORT, creates database
# "moor" if missing and prints postgres://postgres@127.0.0.1:PORT/moor?sslmode=disable
# on stdout. Nothing else goes to stdout; progress and errors go to stderr.
# --fast (or MOOR_PG_FAST=1) on first use also sets fsync=off, full_page_writes=off:
# for test clusters only, a crash can corrupt such a cluster.
#
# Idempotent and safe to run concurrently for one DIR (flock). PostgreSQL refuses
# to run as root, so as root the server runs as the "postgres" OS user and DIR is
# chowned to it; if postgres cannot reach DIR (e.g. it is under /root), the cluster
# lives in /var/tmp/moor-pg.<hash> instead, recorded in DIR/datadir.
#
# Binaries: $MOOR_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else
# `pg_config --bindir`, else the directory of initdb on PATH.
set -euo pipefail

prog=${0##*/}
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
usage() { die "usage: $prog start DIR [--fast] | stop DIR | status DIR | url DIR [DB]"; }

[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2

find_bindir() {
	if [ -n "${MOOR_PG_BIN:-}" ]; then
		[ -x "$MOOR_PG_BIN/initdb" ] || die "MOOR_PG_BIN=$MOOR_PG_BIN has no initdb"
		printf '%s\n' "$MOOR_PG_BIN"
		return
	fi
	local d best='' bestv=0 v
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] || continue
		v=${d#/usr/lib/postgresql/}
		v=${v%%/*}
		case $v in *[!0-9]*) continue ;; esac
		if [ "$v" -gt "$bestv" ]; then best=$d bestv=$v; fi
	done
	if [ -n "$best" ]; then printf '%s\n' "$best"; return; fi
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
		if [ -n "$d" ] && [ -x "$d/initdb" ]; then printf '%s\n' "$d"; return; fi
	fi
	if d=$(command -v initdb 2>/dev/null); then
		printf '%s\n' "${d%/*}"
		return
	fi
	die "PostgreSQL server binaries not found (install postgresql-15, or set MOOR_PG_BIN to the directory holding initdb and pg_ctl)"
}

# as_pg CMD...: run CMD as the user that owns the cluster (postgres when we are root),
# from a working directory that user can enter (pg_ctl and initdb need one), without
# the lock descriptor (the server would otherwise hold the lock for its lifetime).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		if command -v runuser >/dev/null 2>&1; then
			(cd / && runuser -u postgres -- "$@") 9>&-
		else
			local q='' a
			for a in "$@"; do q="$q '$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'"; done
			(cd / && su postgres -s /bin/sh -c "exec $q") 9>&-
		fi
	else
		(cd / && "$@") 9>&-
	fi
}

# Absolute DIR (it may not exist yet).
case $dir in
/*) ;;
*) dir=$PWD/$dir ;;
esac
dir=${dir%/}
[ -n "$dir" ] || die "refusing to use / as the cluster directory"

url_for() { printf 'postgres://postgres@127.0.0.1:%s/%s?sslmode=disable\n' "$1" "${2:-moor}"; }

# run_dir: where the cluster (data/, postgres.log, the socket) lives.
run_dir() {
	if [ -f "$dir/datadir" ]; then
		cat "$dir/datadir"
	else
		printf '%s\n' "$dir"
	fi
}

is_running() { # exit 0 if the cluster in $1 is running
	[ -f "$1/data/PG_VERSION" ] || return 1
	as_pg "$bindir/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

# port_busy PORT: something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 10000))
		port_busy "$p" || { printf '%s\n' "$p"; return; }
	done
	die "could not find a free port"
}

sql_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

init_cluster() { # $1 = run dir
	local rd=$1 sockdir
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user to run PostgreSQL as"
		chown postgres: "$rd"
	fi
	chmod 0700 "$rd"
	say "initdb in $rd/data"
	if ! as_pg env LC_ALL=C "$bindir/initdb" -D "$rd/data" -U postgres -A trust -E UTF8 --no-locale -N \
		>"$rd/initdb.log" 2>&1; then
		cat "$rd/initdb.log" >&2
		rm -rf "$rd/data"
		die "initdb failed"
	fi
	# A unix socket path is limited to 107 bytes; without one, TCP still works.
	sockdir=$rd
	if [ $((${#rd} + 20)) -gt 107 ]; then
		say "path too long for a unix socket, listening on TCP only"
		sockdir=''
	fi
	{
		printf '\n# added by scripts/pg.sh\n'
		printf "listen_addresses = '127.0.0.1'\n"
		printf 'unix_socket_directories = %s\n' "$(sql_quote "$sockdir")"
		printf 'max_connections = 300\n'
		printf 'synchronous_commit = off\n'
		if [ "$fast" = 1 ]; then
			printf 'fsync = off\nfull_page_writes = off\n'
		fi
	} | as_pg tee -a "$rd/data/postgresql.conf" >/dev/null
}

start_server() { # $1 = run dir, $2 = port; exit status of pg_ctl
	as_pg "$bindir/pg_ctl" -D "$1/data" -l "$1/postgres.log" -w -t 60 -o "-p $2" start >&2
}

ensure_db() { # $1 = port
	local have
	have=$("$bindir/psql" -X -q -w -h 127.0.0.1 -p "$1" -U postgres -d postgres -tAc \
		"SELECT 1 FROM pg_database WHERE datname = 'moor'") || die "cannot connect to the cluster on port $1"
	if [ "$have" != 1 ]; then
		"$bindir/psql" -X -q -w -h 127.0.0.1 -p "$1" -U postgres -d postgres -c 'CREATE DATABASE moor' >&2 ||
			die "CREATE DATABASE moor failed"
	fi
}

lock() {
	if command -v flock >/dev/null 2>&1; then
		exec 9>>"$dir/.lock"
		flock -w 120 9 || die "timed out waiting for another $prog on $dir"
	fi
}

fast=${MOOR_PG_FAST:-0}
case $cmd in
start)
	for a in "$@"; do
		case $a in
		--fast) fast=1 ;;
		*) usage ;;
		esac
	done
	bindir=$(find_bindir)
	mkdir -p "$dir"
	lock
	rd=$(run_dir)
	if [ ! -f "$rd/data/PG_VERSION" ]; then
		# First use. As root, postgres must be able to reach the run directory.
		if [ "$(id -u)" -eq 0 ] && [ ! -f "$dir/datadir" ]; then
			id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user to run PostgreSQL as"
			chown postgres: "$dir"
			if ! as_pg test -w "$dir"; then
				rd=/var/tmp/moor-pg.$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
				say "the postgres user cannot reach $dir; keeping the cluster in $rd"
				mkdir -p "$rd"
				printf '%s\n' "$rd" >"$dir/datadir"
			fi
		fi
		mkdir -p "$rd"
		rm -f "$dir/port"
		init_cluster "$rd"
	fi
	if is_running "$rd"; then
		[ -f "$dir/port" ] || die "a cluster runs in $rd but $dir/port is missing; run '$prog stop $dir' first"
		port=$(cat "$dir/port")
		say "reusing the running cluster in $rd (port $port)"
	elif [ -f "$dir/port" ]; then
		port=$(cat "$dir/port")
		if port_busy "$port"; then
			die "port $port (from $dir/port) is taken by another program; free it, or delete $dir/port to pick a new one"
		fi
		start_server "$rd" "$port" || { tail -n 20 "$rd/postgres.log" >&2 || true; die "the server did not start (log: $rd/postgres.log)"; }
	else
		# No port yet: pick one; retry if another program grabs it first.
		ok=0
		for attempt in 1 2 3 4 5; do
			port=$(pick_port)
			if start_server "$rd" "$port"; then ok=1; break; fi
			if ! grep -q 'could not bind\|could not create listen socket\|already in use' "$rd/postgres.log" 2>/dev/null; then
				break
			fi
			say "port $port was taken, trying another"
		done
		[ "$ok" = 1 ] || { tail -n 20 "$rd/postgres.log" >&2 || true; die "the server did not start (log: $rd/postgres.log)"; }
		printf '%s\n' "$port" >"$dir/port"
	fi
	ensure_db "$port"
	url_for "$port" moor
	;;
stop)
	[ $# -eq 0 ] || usage
	if [ ! -d "$dir" ]; then
		say "no cluster in $dir"
		exit 0
	fi
	bindir=$(find_bindir)
	lock
	rd=$(run_dir)
	if is_running "$rd"; then
		as_pg "$bindir/pg_ctl" -D "$rd/data" -m fast -w -t 60 stop >&2
	else
		say "the cluster in $dir is not running"
	fi
	;;
status)
	[ $# -eq 0 ] || usage
	bindir=$(find_bindir)
	rd=$(run_dir)
	if is_running "$rd"; then
		say "running in $rd on port $(cat "$dir/port" 2>/dev/null || echo '?')"
		exit 0
	fi
	say "not running"
	exit 3
	;;
url)
	[ $# -le 1 ] || usage
	[ -f "$dir/port" ] || die "no cluster in $dir (no $dir/port)"
	url_for "$(cat "$dir/port")" "${1:-moor}"
	;;
*)
	usage
	;;
esac
