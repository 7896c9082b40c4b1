-- One row per moor installation: its id labels every Docker object moor
-- creates, so two installations sharing an engine never touch each other's.
CREATE TABLE installation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation DEFAULT VALUES;

CREATE TABLE containers (
    id            uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    type_id       text NOT NULL,
    image         text NOT NULL,
    spec          jsonb NOT NULL,
    env           jsonb NOT NULL DEFAULT '{}',
    secrets       bytea,
    desired_state text NOT NULL CHECK (desired_state IN ('running', 'stopped', 'removed')),
    status        text NOT NULL CHECK (status IN ('pending', 'creating', 'running', 'stopped', 'failed', 'removing')),
    status_reason text NOT NULL DEFAULT '',
    replicas      integer NOT NULL DEFAULT 1 CHECK (replicas BETWEEN 0 AND 100),
    keep_volumes  boolean NOT NULL DEFAULT false,
    -- a restart is level-triggered: every replica started before restart_at
    -- is restarted, so a crash half-way finishes the job on the next pass.
    restart_at    timestamptz,
    -- generation rises on every change of desired state or spec; the
    -- reconciler records the generation it last made real.
    generation    bigint NOT NULL DEFAULT 1,
    observed_generation bigint NOT NULL DEFAULT 0,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per replica: each is its own Docker container with its own IP.
CREATE TABLE container_instances (
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    replica      integer NOT NULL CHECK (replica >= 0),
    docker_id    text NOT NULL DEFAULT '',
    internal_ip  inet,
    status       text NOT NULL,
    health       text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (container_id, replica)
);

CREATE TABLE container_ports (
    container_id   uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name           text NOT NULL,
    container_port integer NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
    protocol       text NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    http           boolean NOT NULL DEFAULT false,
    PRIMARY KEY (container_id, name)
);

CREATE TABLE dns_entries (
    id           bigserial PRIMARY KEY,
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    zone         text NOT NULL CHECK (zone IN ('host', 'container')),
    name         text NOT NULL,
    record_type  text NOT NULL CHECK (record_type IN ('A', 'AAAA', 'CNAME', 'SRV', 'TXT')),
    value        text NOT NULL,
    replica      integer,
    ttl          integer NOT NULL DEFAULT 5 CHECK (ttl > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (zone, name, record_type, value)
);
CREATE INDEX dns_entries_container ON dns_entries (container_id);

-- History outlives the container: container_id is cleared on removal, the
-- name stays.
CREATE TABLE deployment_history (
    id             bigserial PRIMARY KEY,
    container_id   uuid REFERENCES containers (id) ON DELETE SET NULL,
    container_name text NOT NULL,
    action         text NOT NULL,
    actor          text NOT NULL,
    details        jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployment_history_name ON deployment_history (container_name, id);

-- Events are numbered by a sequence taken under a transaction-level advisory
-- lock, so seq order is commit order and a reader resuming from N misses
-- nothing.
CREATE TABLE events (
    seq            bigint PRIMARY KEY,
    created_at     timestamptz NOT NULL DEFAULT now(),
    kind           text NOT NULL,
    container_id   uuid,
    container_name text NOT NULL DEFAULT '',
    actor          text NOT NULL,
    data           jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    -- sha256 of the key: the key itself is shown once and never stored.
    hash         bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    hash       bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
