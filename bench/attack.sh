#!/usr/bin/env bash
# bench/attack.sh: the attack of issue 8 point 1 as a benchmark. One
# `moor serve` with its DEFAULT connection limits; an attacker without
# credentials holds DNS-over-TCP and HTTP connections far beyond the caps
# (default 20,000 of each, from 1,000 loopback addresses, and DNS also from
# one), re-dialing what moor closes; meanwhile a victim client measures
# /healthz, an API call with a key, a UDP and a TCP DNS query (p50/p99/max,
# failures), and moor's open descriptors, RSS, Go heap and CPU are followed
# (see bench/attack/main.go). Loopback; a throwaway PostgreSQL; nothing left
# behind. About three and a half minutes.
#
#   bash bench/attack.sh [FLAGS]     e.g. bash bench/attack.sh -dns-conns 5000 -attacks none,dns
#
# Only the attacker's descriptor limit is raised: moor runs with the
# shell's (the Go runtime lifts its soft limit to the hard one).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/moor-bench-attack.XXXXXX")
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
go build -o "$work/attack" ./bench/attack
url=$(scripts/pg.sh start "$work/pg" --fast)
export MOOR_DATABASE_URL=$url
"$work/moor" migrate >/dev/null
key=$("$work/moor" apikey create --name victim --role viewer)
mkey=$("$work/moor" apikey create --name metrics --role viewer)
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free)
dnsport=$(free)
# No MOOR_HTTP_MAX_*, MOOR_DNS_TCP_*: the defaults are what is measured.
MOOR_HTTP_ADDR=127.0.0.1:$port MOOR_DNS_ADDR=127.0.0.1:$dnsport MOOR_DATA_DIR=$work/data MOOR_LOG_LEVEL=warn \
	"$work/moor" serve >"$work/moor.log" 2>&1 &
moorpid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
{
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "moor's open files limit: $(awk '/Max open files/ {print $4 " soft, " $5 " hard"}' "/proc/$moorpid/limits")"
	echo "ephemeral ports: $(tr '\t' - </proc/sys/net/ipv4/ip_local_port_range); conntrack max: $(cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null || echo none)"
} >&2
# The attacker (and its victim child) alone get a large descriptor limit.
(
	ulimit -Hn 200000 2>/dev/null || true
	ulimit -Sn "$(ulimit -Hn)"
	exec "$work/attack" -http "127.0.0.1:$port" -dns "127.0.0.1:$dnsport" -key "$key" -metrics-key "$mkey" -pid "$moorpid" "$@"
)
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if grep -q . "$work/moor.log"; then
	echo "moor's log (warnings and errors; first 20 lines of $(wc -l <"$work/moor.log")):" >&2
	head -20 "$work/moor.log" >&2
fi
