-- Events are pruned by age (MOOR_EVENT_RETENTION): the pruner finds the newest
-- event older than the cutoff through this index, one probe instead of a scan.
-- A plain (not CONCURRENTLY) build: migrations run in a transaction, and the
-- table is small enough to lock for the moment it takes.
CREATE INDEX events_created_at ON events (created_at);
