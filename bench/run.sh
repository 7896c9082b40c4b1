#!/usr/bin/env bash
# bench/run.sh (make bench): deploy-to-running latency of the test image
# through moor against a plain `docker run`, side by side, and 50 concurrent
# deploys; writes bench/RESULTS.md. See bench/README.md.
#
# It builds bin/moor and the test image, starts a throwaway PostgreSQL
# (scripts/pg.sh --fast) and runs bench/deploy. Whatever happens, it stops the
# cluster and removes every Docker object the run made: moor's (label
# moor.owner=<installation id>), the bench's own (label moor.bench.run=<run
# id>, besides moor.bench=1) and the run's network (moor-bench-<run id>).
#
# Extra arguments go to the Go program, e.g. bash bench/run.sh -rounds 5
# -concurrent 10 -profile always (go run ./bench/deploy -h lists them).
# Exit status: non-zero when a deploy failed or was lost, or on trouble;
# missing the latency target is reported, not an error.
set -euo pipefail

cd "$(dirname "$0")/.."
# The command recorded in the results.
if [ -n "${MAKELEVEL:-}" ]; then command="make bench"; else command="bash bench/run.sh"; fi
if [ $# -gt 0 ]; then command="$command $*"; fi

run_id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
network=moor-bench-$run_id
work=$(mktemp -d "${TMPDIR:-/tmp}/moor-bench.XXXXXX")
chmod 0755 "$work"
pgdir=$work/pg

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	local inst f ids vols
	inst=$(cat "$work/installation" 2>/dev/null)
	for f in ${inst:+label=moor.owner=$inst} "label=moor.bench.run=$run_id"; do
		ids=$(docker ps -aq --filter "$f" 2>/dev/null)
		[ -n "$ids" ] && docker rm -f -v $ids >/dev/null 2>&1
		vols=$(docker volume ls -q --filter "$f" 2>/dev/null)
		[ -n "$vols" ] && docker volume rm -f $vols >/dev/null 2>&1
	done
	# The docker run side's image with the health check (bench/deploy).
	ids=$(docker image ls -q --filter "label=moor.bench.run=$run_id" 2>/dev/null)
	[ -n "$ids" ] && docker image rm -f $ids >/dev/null 2>&1
	if docker network inspect "$network" >/dev/null 2>&1 && ! docker network rm "$network" >/dev/null 2>&1; then
		# Engine 20.10 can keep a stale endpoint count after many concurrent
		# removals (moby/moby#42119): the network is empty but only a dockerd
		# restart frees it.
		echo "bench: warning: could not remove network $network: $(docker network rm "$network" 2>&1 | tail -n 1)" >&2
	fi
	scripts/pg.sh stop "$pgdir" >/dev/null 2>&1
	if [ -f "$pgdir/datadir" ]; then rm -rf "$(cat "$pgdir/datadir")"; fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "+ make build"
make --no-print-directory build
echo "+ go run ./testdata/images/build"
go run ./testdata/images/build

echo "+ scripts/pg.sh start $pgdir --fast"
db_url=$(scripts/pg.sh start "$pgdir" --fast)
pg_run_dir=$pgdir
if [ -f "$pgdir/datadir" ]; then pg_run_dir=$(cat "$pgdir/datadir"); fi

echo "+ go build -o $work/deploy ./bench/deploy"
go build -o "$work/deploy" ./bench/deploy

# Not exec: the trap must run after it.
"$work/deploy" \
	-moor bin/moor \
	-db "$db_url" \
	-network "$network" \
	-work "$work" \
	-run-id "$run_id" \
	-pg-log "$pg_run_dir/postgres.log" \
	-results bench/RESULTS.md \
	-command "$command" \
	"$@"
