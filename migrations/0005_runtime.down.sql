ALTER TABLE containers DROP COLUMN status_cause;
ALTER TABLE container_instances DROP COLUMN node;
ALTER TABLE container_instances RENAME COLUMN runtime_id TO docker_id;
