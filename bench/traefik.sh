#!/usr/bin/env bash
# bench/traefik.sh: moor's Traefik provider with N routed containers (default
# 10,000) in PostgreSQL.
#
#   bash bench/traefik.sh [N]
#
# 1. starts a throwaway PostgreSQL (scripts/pg.sh, fsync off), migrates it and
#    seeds N running containers with an HTTP port (every tenth with an alias,
#    basic auth and an IP allow list) straight in SQL;
# 2. runs bench/traefik (Go): rebuild time and memory, then 200 state changes
#    timed to the new bytes being served and to the provider plugin's channel
#    (the plugin loaded under Yaegi as Traefik loads it);
# 3. wrk against the endpoint (unchanged configuration) and against nginx
#    serving the very same bytes as a static file, interleaved, same machine,
#    same wrk settings. nginx is installed with apt-get when missing.
#
# Prints one JSON line of provider figures and the wrk figures; RESULTS.md
# keeps them. Leaves nothing running and no files behind.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-10000}
duration=${WRK_DURATION:-10s}
conns=${WRK_CONNECTIONS:-50}
rounds=${WRK_ROUNDS:-3}

work=$(mktemp -d "${TMPDIR:-/tmp}/moor-bench-traefik.XXXXXX")
benchpid='' nginxpid=''
cleanup() {
	[ -n "$benchpid" ] && kill "$benchpid" 2>/dev/null && wait "$benchpid" 2>/dev/null || true
	[ -n "$nginxpid" ] && kill "$nginxpid" 2>/dev/null && wait "$nginxpid" 2>/dev/null || true
	scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
	[ -f "$work/pg/datadir" ] && rm -rf "$(cat "$work/pg/datadir")"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v wrk >/dev/null || { echo "bench/traefik.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	echo "installing nginx-light for the comparison" >&2
	apt-get install -y -qq --no-install-recommends nginx-light </dev/null >/dev/null 2>&1 ||
		{ apt-get update -qq </dev/null >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends nginx-light </dev/null >/dev/null; }
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)

go build -o "$work/moor" ./cmd/moor
go build -o "$work/bench" ./bench/traefik
url=$(scripts/pg.sh start "$work/pg" --fast)
MOOR_DATABASE_URL=$url "$work/moor" migrate >/dev/null

echo "seeding $n containers" >&2
psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null <<SQL
INSERT INTO containers (id, name, type_id, image, spec, env, desired_state, status, replicas, created_by, observed_generation)
SELECT gen_random_uuid(), 'c' || lpad(i::text, 5, '0'), 'testapp', 'moor-testapp:latest',
	jsonb_build_object('id', 'testapp', 'title', 'Test app', 'image', 'moor-testapp:latest',
		'ports', jsonb_build_array(jsonb_build_object('name', 'http', 'port', 8080, 'protocol', 'tcp', 'http', true)))
	|| CASE WHEN i % 10 = 0 THEN jsonb_build_object('routing', jsonb_build_object(
		'aliases', jsonb_build_array('www' || i || '.example.com'),
		'basic_auth', jsonb_build_array('admin:\$apr1\$H6uskkkW\$IgXLP6ewTrSuBkTrqE8wj/'),
		'ip_allow_list', jsonb_build_array('10.0.0.0/8'))) ELSE '{}'::jsonb END,
	'{}', 'running', 'running', 1, 'bench', 1
FROM generate_series(0, $n - 1) i;
INSERT INTO container_ports (container_id, name, container_port, protocol, http)
SELECT id, 'http', 8080, 'tcp', true FROM containers;
INSERT INTO container_instances (container_id, replica, runtime_id, internal_ip, status, health)
SELECT id, 0, 'bench', '10.1.0.1'::inet + row_number() OVER (ORDER BY name), 'running', ''
FROM containers;
ANALYZE;
SQL

printf 'machine: %s CPUs, load average before: %s\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "rebuild and change latency" >&2
mkfifo "$work/hold"
"$work/bench" -db "$url" -body "$work/config.json" <"$work/hold" >"$work/result.json" &
benchpid=$!
exec 3>"$work/hold" # keeps the bench serving until closed
while [ ! -s "$work/result.json" ]; do
	kill -0 "$benchpid" 2>/dev/null || { echo "bench/traefik failed" >&2; exit 1; }
	sleep 0.2
done
cat "$work/result.json"
addr=$(sed -E 's/.*"addr":"([^"]+)".*/\1/' "$work/result.json")
token=$(sed -E 's/.*"token":"([^"]+)".*/\1/' "$work/result.json")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/www"
cp "$work/config.json" "$work/www/config.json"
# nginx's workers drop root: let them read the file.
chmod 755 "$work" "$work/www"
chmod 644 "$work/www/config.json"
cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 100000;
	client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
	uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
	server {
		listen 127.0.0.1:$port;
		location = /config.json { root $work/www; default_type application/json; }
	}
}
EOF
mkdir -p "$work/tmp"
"$nginx" -c "$work/nginx.conf" -p "$work" &
nginxpid=$!
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$port/config.json" && break; sleep 0.1; done
cmp <(curl -fs "http://127.0.0.1:$port/config.json") <(curl -fs -H "Authorization: Bearer $token" "http://$addr/api/v1/traefik/config") ||
	{ echo "nginx and moor serve different bytes" >&2; exit 1; }

rps() { wrk -t2 -c"$conns" -d"$duration" "$@" | awk '/Requests\/sec/ {print $2}'; }
echo "wrk -t2 -c$conns -d$duration, $rounds rounds interleaved ($(wc -c <"$work/config.json") bytes per response)" >&2
for r in $(seq "$rounds"); do
	m=$(rps -H "Authorization: Bearer $token" "http://$addr/api/v1/traefik/config")
	x=$(rps "http://127.0.0.1:$port/config.json")
	printf 'round %d: moor %s req/s, nginx %s req/s, ratio %s\n' "$r" "$m" "$x" "$(awk -v m="$m" -v x="$x" 'BEGIN {printf "%.2f", m / x}')"
done
printf 'load average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
