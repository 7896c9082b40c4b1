-- Instances are a runtime's (Docker today, Swarm or another host later):
-- the id is the runtime's, and where the instance runs is recorded.
ALTER TABLE container_instances RENAME COLUMN docker_id TO runtime_id;
ALTER TABLE container_instances ADD COLUMN node text NOT NULL DEFAULT '';

-- Why a container has its status, in a form code tests (the reason says it
-- in words). Rows from before: a reason naming a stop behind moor's back
-- was the only case the code told apart.
ALTER TABLE containers ADD COLUMN status_cause text NOT NULL DEFAULT ''
    CHECK (status_cause IN ('', 'failed', 'stopped_outside'));
UPDATE containers SET status_cause = 'stopped_outside' WHERE status_reason LIKE '%outside moor%';
UPDATE containers SET status_cause = 'failed' WHERE status = 'failed' AND status_cause = '';
