-- Projects group containers: each has its own Docker network, DNS names,
-- members and quotas. Names go into Docker names ("moor-NAME.PROJECT-I"),
-- network names and host-zone labels ("NAME-PROJECT"), so they are short
-- DNS labels and never change (the name is the key).
CREATE TABLE projects (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$'),
    -- no route out of the host: Docker's internal network
    internal       boolean NOT NULL DEFAULT false,
    -- quotas, NULL: no limit
    max_containers integer CHECK (max_containers >= 0),
    max_memory_mb  bigint CHECK (max_memory_mb >= 0),
    max_cpus       numeric CHECK (max_cpus >= 0),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- The default project holds every container of an installation from before
-- projects; its containers keep their names, network and DNS names.
INSERT INTO projects (name, created_by) VALUES ('default', 'system:moor');

ALTER TABLE containers ADD COLUMN project text NOT NULL DEFAULT 'default' REFERENCES projects (name);
ALTER TABLE containers DROP CONSTRAINT containers_name_key;
ALTER TABLE containers ADD CONSTRAINT containers_project_name_key UNIQUE (project, name);

-- History and events name a container by project and name: a name reused
-- in another project never mixes histories.
ALTER TABLE deployment_history ADD COLUMN project text NOT NULL DEFAULT 'default';
DROP INDEX deployment_history_name;
CREATE INDEX deployment_history_name ON deployment_history (project, container_name, id);
-- '' for events about no container (instance-wide).
ALTER TABLE events ADD COLUMN project text NOT NULL DEFAULT '';
UPDATE events SET project = 'default' WHERE container_name <> '' OR container_id IS NOT NULL;

-- Host-zone names are one public namespace across projects: each host name
-- (a container's own and its aliases, fully qualified, without the final
-- dot) is held by one container at most, refused by this key rather than a
-- check in Go, so two concurrent creates cannot both win.
CREATE TABLE host_names (
    host         text PRIMARY KEY,
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE
);
CREATE INDEX host_names_container ON host_names (container_id);
