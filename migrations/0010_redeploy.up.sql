-- A redeploy asked for (POST .../redeploy) and not finished yet: the
-- reconciler replaces every replica (config_version rose with the request),
-- then clears redeploy_at and records container.redeployed. pull_at: the
-- image is to be pulled again first; cleared once pulled. Both are kept in
-- the row, so a moor killed half-way finishes the redeploy after a restart.
ALTER TABLE containers ADD COLUMN redeploy_at timestamptz, ADD COLUMN pull_at timestamptz;
