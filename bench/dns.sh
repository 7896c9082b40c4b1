#!/usr/bin/env bash
# bench/dns.sh: moor's DNS server against dnsmasq with dnsperf, and the
# change-to-answer latency (see bench/dns/main.go). Markdown on stdout, for
# bench/RESULTS.md. Loopback only.
#
#   bash bench/dns.sh [NAMES] [SECONDS] [ROUNDS]     defaults: 10000 15 2
#
# Needs dnsperf and dnsmasq (Debian: dnsperf dnsmasq-base) and PostgreSQL
# binaries; a throwaway cluster is started and removed (or MOOR_DATABASE_URL
# is used, and a database moor_bench_dns_<random> is created in it).
set -euo pipefail
cd "$(dirname "$0")/.."
names=${1:-10000}
seconds=${2:-15}
rounds=${3:-2}
for t in dnsperf dnsmasq psql; do
	command -v "$t" >/dev/null || { echo "bench/dns.sh: $t not found (Debian: dnsperf dnsmasq-base postgresql-client)" >&2; exit 1; }
done

pgdir=$(mktemp -d "${TMPDIR:-/tmp}/moor-bench-dns-pg.XXXXXX")
cleanup() { scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
scripts/pg.sh start "$pgdir" --fast >/dev/null
url=$(scripts/pg.sh url "$pgdir" moor)

go build -o "$pgdir/moor" ./cmd/moor
MOOR_DATABASE_URL=$url "$pgdir/moor" migrate >/dev/null
# The rows moor writes for N running containers of one replica each: the
# host name at create, the container names and the named port.
psql -q -v ON_ERROR_STOP=1 "$url" <<SQL
INSERT INTO containers (id, name, type_id, image, spec, desired_state, status, replicas, created_by)
SELECT gen_random_uuid(), 'c' || lpad(i::text, 5, '0'), 'testapp', 'moor-testapp:latest',
       '{"id":"testapp","ports":[{"name":"http","port":8080,"protocol":"tcp"}]}', 'running', 'running', 1, 'bench'
FROM generate_series(0, $names - 1) AS i;
INSERT INTO container_ports (container_id, name, container_port, protocol) SELECT id, 'http', 8080, 'tcp' FROM containers;
INSERT INTO container_instances (container_id, replica, status, internal_ip)
SELECT id, 0, 'running', ('10.' || (n / 62500) || '.' || (n / 250 % 250) || '.' || (n % 250 + 1))::inet
FROM (SELECT id, (substr(name, 2))::int AS n FROM containers) c;
INSERT INTO dns_entries (container_id, zone, name, record_type, value, replica, ttl)
SELECT id, 'host', name || '.moor.localhost', 'A', '127.0.0.1', NULL, 5 FROM containers;
INSERT INTO dns_entries (container_id, zone, name, record_type, value, replica, ttl)
SELECT c.id, 'container', p.prefix || c.name || '.moor.internal', 'A', host(i.internal_ip), 0, 5
FROM containers c JOIN container_instances i ON i.container_id = c.id, (VALUES (''), ('0.')) AS p(prefix);
SQL
go run ./bench/dns -db "$url" -names "$names" -seconds "$seconds" -rounds "$rounds" ${BENCH_DNS_FLAGS:-}
