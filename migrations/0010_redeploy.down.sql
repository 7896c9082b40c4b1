ALTER TABLE containers DROP COLUMN redeploy_at, DROP COLUMN pull_at;
