DROP TABLE volume_restores;
DROP TABLE volume_backups;
