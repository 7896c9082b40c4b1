-- Without projects' roles, a limited key would hold its role everywhere
-- and a user without an instance-wide role would need one: neither may
-- gain access by a rollback. Limited keys are revoked; users without an
-- instance-wide role refuse the rollback, naming them.
DO $$
DECLARE
    held text;
BEGIN
    SELECT string_agg(username, ', ' ORDER BY username) INTO held FROM users WHERE role = 'none';
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'users without an instance-wide role: %; give them one or remove them before migrating down', held;
    END IF;
END $$;

UPDATE api_keys SET revoked_at = now() WHERE project IS NOT NULL AND revoked_at IS NULL;
ALTER TABLE api_keys DROP COLUMN project;
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('viewer', 'operator', 'admin'));
DROP TABLE memberships;
