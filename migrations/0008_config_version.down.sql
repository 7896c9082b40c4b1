ALTER TABLE containers DROP COLUMN config_version;
