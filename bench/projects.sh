#!/usr/bin/env bash
# bench/projects.sh: what projects (issue 11) cost at 1,000 containers, in
# two layouts of the same containers: A, 100 projects of 10; B, the default
# project holding 1,000 (see bench/projects/main.go). Markdown on stdout,
# for bench/RESULTS.md; progress on stderr.
#
#   bash bench/projects.sh [RUNS]        default 40 (rebuilds per measure)
#
# 1. go test ./api -bench Authorization: the in-process cost of
#    authorization per request (authorize, the readable-projects filter,
#    the whole of wrap) for actors with 1, 10 and 100 memberships;
# 2. a throwaway PostgreSQL (scripts/pg.sh, fsync off) with two databases,
#    one per layout, which bench/projects migrates and seeds through the
#    lifecycle service and the store (about a minute), then measures the
#    DNS and Traefik full rebuilds, GET of a project's containers through
#    the API, and the authenticating query with 0 to 100 memberships.
#
# Needs Go and PostgreSQL server binaries (no Docker). Leaves nothing
# running and no files behind. BENCH_PROJECTS_FLAGS passes flags to the Go
# program (go run ./bench/projects -h).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-40}

work=$(mktemp -d "${TMPDIR:-/tmp}/moor-bench-projects.XXXXXX")
cleanup() {
	scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
	[ -f "$work/pg/datadir" ] && rm -rf "$(cat "$work/pg/datadir")"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "### Authorization in process (go test ./api -run '^\$' -bench Authorization -benchtime 1000000x)"
echo
echo '```'
go test ./api -run '^$' -bench Authorization -benchtime 1000000x | grep -E '^(Benchmark|cpu)'
echo '```'
echo

go build -o "$work/bench" ./bench/projects
url=$(scripts/pg.sh start "$work/pg" --fast)
for db in moor_projects_a moor_projects_b; do
	psql -q -v ON_ERROR_STOP=1 "$url" -c "CREATE DATABASE $db" >/dev/null
done
"$work/bench" -db-a "$(scripts/pg.sh url "$work/pg" moor_projects_a)" -db-b "$(scripts/pg.sh url "$work/pg" moor_projects_b)" \
	-runs "$runs" ${BENCH_PROJECTS_FLAGS:-}
