-- Host ports a container publishes (docker run -p HOST_IP:HOST_PORT:PORT).
-- Two bindings of one protocol and host port clash when their addresses
-- overlap: the same address, or the wildcard of its family (0.0.0.0 holds
-- every IPv4 address, :: every IPv6 one). moor_bind_scope turns a wildcard
-- into the whole family (0.0.0.0/0), so inet's && (contains or is contained
-- by) says "overlaps"; the exclusion constraints then make PostgreSQL refuse
-- the second of two claims, however concurrent. GiST without btree_gist:
-- inet_ops and the range type's operator class are built in, and the
-- protocol is one constraint each.
CREATE FUNCTION moor_bind_scope(ip inet) RETURNS inet
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE WHEN ip = '0.0.0.0'::inet OR ip = '::'::inet THEN set_masklen(ip, 0) ELSE ip END $$;

CREATE TABLE container_published_ports (
    container_id   uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    port_name      text NOT NULL,
    container_port integer NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
    protocol       text NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    -- a single address: a network here would claim ports moor cannot bind
    host_ip        inet NOT NULL CHECK (masklen(host_ip) = CASE family(host_ip) WHEN 4 THEN 32 ELSE 128 END),
    host_port      integer NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
    CONSTRAINT container_published_ports_tcp EXCLUDE USING gist (
        moor_bind_scope(host_ip) inet_ops WITH &&, int4range(host_port, host_port, '[]') WITH &&) WHERE (protocol = 'tcp'),
    CONSTRAINT container_published_ports_udp EXCLUDE USING gist (
        moor_bind_scope(host_ip) inet_ops WITH &&, int4range(host_port, host_port, '[]') WITH &&) WHERE (protocol = 'udp')
);
CREATE INDEX container_published_ports_container ON container_published_ports (container_id);
