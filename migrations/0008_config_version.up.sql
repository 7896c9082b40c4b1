-- A container's configuration version: raised when its environment or image
-- changes (PATCH). Each replica carries the version it was created with (the
-- moor.config label); the reconciler replaces, one at a time, those behind.
ALTER TABLE containers ADD COLUMN config_version integer NOT NULL DEFAULT 1;
