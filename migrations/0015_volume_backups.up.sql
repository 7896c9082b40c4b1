-- Volume backups (issue 12): one row per volume archived. A row is written
-- 'running' before the copy starts and becomes 'done' (with the content's
-- checksum and sizes) or 'failed' (with the error); a row a killed moor left
-- 'running' is marked failed at the next start. The row outlives its
-- container: the archive does.
CREATE TABLE volume_backups (
    id             uuid PRIMARY KEY,
    container_id   uuid REFERENCES containers (id) ON DELETE SET NULL,
    project        text NOT NULL,
    container_name text NOT NULL,
    volume         text NOT NULL, -- the volume's name in the type, or a dump's file name
    kind           text NOT NULL DEFAULT 'volume' CHECK (kind IN ('volume', 'dump')),
    target         text NOT NULL,
    object_key     text NOT NULL,
    status         text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    error          text NOT NULL DEFAULT '',
    sha256         text NOT NULL DEFAULT '',
    tar_bytes      bigint NOT NULL DEFAULT 0,
    stored_bytes   bigint NOT NULL DEFAULT 0,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX volume_backups_container ON volume_backups (project, container_name, created_at DESC);
CREATE INDEX volume_backups_running ON volume_backups (status) WHERE status = 'running';

-- Restores of a backup into its container. A restore is recorded 'running'
-- (with the container's lock held) before the container's replicas are
-- removed; a row a killed moor left running is taken up again at the next
-- start (the archive checked again, the volume replaced, the replicas
-- recreated by the reconciler).
CREATE TABLE volume_restores (
    id             uuid PRIMARY KEY,
    backup_id      uuid NOT NULL REFERENCES volume_backups (id) ON DELETE CASCADE,
    container_id   uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    status         text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    error          text NOT NULL DEFAULT '',
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE UNIQUE INDEX volume_restores_one_running ON volume_restores (container_id) WHERE status = 'running';
