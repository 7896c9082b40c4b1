-- Folding projects back into one namespace is only safe while the default
-- project holds every container: refuse otherwise, naming what is in the way.
DO $$
DECLARE
    held text;
BEGIN
    SELECT string_agg(project || '/' || name, ', ' ORDER BY project, name) INTO held
      FROM containers WHERE project <> 'default';
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'containers outside the default project: %; remove them (or their projects) before migrating down', held;
    END IF;
END $$;

DROP TABLE host_names;
DROP INDEX deployment_history_name;
-- History of removed containers of other projects stays, under a name no
-- container can have ("NAME.PROJECT"), so it never mixes with another's.
UPDATE deployment_history SET container_name = container_name || '.' || project WHERE project <> 'default';
UPDATE events SET container_name = container_name || '.' || project WHERE project NOT IN ('default', '') AND container_name <> '';
ALTER TABLE deployment_history DROP COLUMN project;
CREATE INDEX deployment_history_name ON deployment_history (container_name, id);
ALTER TABLE events DROP COLUMN project;
ALTER TABLE containers DROP CONSTRAINT containers_project_name_key;
ALTER TABLE containers DROP COLUMN project;
ALTER TABLE containers ADD CONSTRAINT containers_name_key UNIQUE (name);
DROP TABLE projects;
