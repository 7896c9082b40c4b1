#!/usr/bin/env bash
# bench/ws.sh: the websocket fan-out dashboards rely on. One `moor serve`
# with N clients on GET /api/v1/ws (default 1,000, 5,000 and 10,000, one
# run each, a fresh moor for each), then a burst of 200 events committed
# 5 ms apart: commit -> arrival at every client (p50/p99/max), events
# missed, moor's memory per idle client. Loopback; a throwaway PostgreSQL;
# nothing left behind.
#
# CPU time during the burst is split into moor's, the clients' (the bench
# process), PostgreSQL's, the kernel's softirq threads' (network work
# deferred when it piles up) and the rest (anything else on the machine:
# a figure with much there was measured on a busy machine); moor's write
# system calls per client say how many rounds the burst took. First it
# prints what one loopback TCP write and its read cost on this machine:
# the least one event to N clients can cost.
#
#   bash bench/ws.sh [CLIENTS [FLAGS]]    e.g. bash bench/ws.sh 1000,5000,10000
#                                         or   bash bench/ws.sh 10000 -events 20
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-1000,5000,10000}
shift || true
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d "${TMPDIR:-/tmp}/moor-bench-ws.XXXXXX")
moorpid=''
cleanup() {
	[ -n "$moorpid" ] && kill "$moorpid" 2>/dev/null && wait "$moorpid" 2>/dev/null || true
	scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
	[ -f "$work/pg/datadir" ] && rm -rf "$(cat "$work/pg/datadir")"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/moor" ./cmd/moor
go build -o "$work/bench" ./bench/ws
url=$(scripts/pg.sh start "$work/pg" --fast)
export MOOR_DATABASE_URL=$url
"$work/moor" migrate >/dev/null
key=$("$work/moor" apikey create --name bench --role viewer)
# A fresh moor for each client count: its memory before the clients is
# that of an idle moor, so the growth divided by N is the cost of one
# idle client (not blurred by the heap an earlier run left).
serve() {
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	dnsport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	# The limits a dashboard fleet of one key needs here (the defaults bound a
	# single caller; this is one caller standing for thousands of dashboards).
	MOOR_HTTP_ADDR=127.0.0.1:$port MOOR_DNS_ADDR=127.0.0.1:$dnsport MOOR_DATA_DIR=$work/data MOOR_LOG_LEVEL=warn \
	MOOR_WS_PER_KEY=100000 MOOR_HTTP_MAX_LONG=100000 MOOR_API_RATE=100000 MOOR_API_BURST=100000 \
		"$work/moor" serve >>"$work/moor.log" 2>&1 &
	moorpid=$!
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
	sleep 1 # moor settles (its first reconciliation, the hub's first read)
}
echo "machine: $(nproc) CPUs, load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$work/bench" -floor >&2
echo "| clients | events | p50 | p99 | max | missed | moor writes per client | burst wall | moor CPU | clients CPU | PostgreSQL CPU | ksoftirqd CPU | rest CPU | moor RSS | RSS per idle client |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for n in ${clients//,/ }; do
	serve
	"$work/bench" -url "http://127.0.0.1:$port" -key "$key" -pid "$moorpid" -clients "$n" "$@"
	kill "$moorpid" && wait "$moorpid" 2>/dev/null || true
	moorpid=''
done
