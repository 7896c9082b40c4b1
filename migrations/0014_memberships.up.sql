-- Roles per project. A user or API key holds an instance-wide role (users
-- may now hold none: 'none') and, per project, a membership role; its role
-- in a project is the higher of the two. A key limited to one project
-- (api_keys.project) holds its role there and nothing elsewhere: for CI or a
-- workflow engine.
CREATE TABLE memberships (
    project    text NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    user_id    uuid REFERENCES users (id) ON DELETE CASCADE,
    apikey_id  uuid REFERENCES api_keys (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (apikey_id IS NULL))
);
CREATE UNIQUE INDEX memberships_user ON memberships (user_id, project) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX memberships_apikey ON memberships (apikey_id, project) WHERE apikey_id IS NOT NULL;
CREATE INDEX memberships_project ON memberships (project);

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('none', 'viewer', 'operator', 'admin'));

-- A limited key goes with its project.
ALTER TABLE api_keys ADD COLUMN project text REFERENCES projects (name) ON DELETE CASCADE;
