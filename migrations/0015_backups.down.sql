DROP TABLE backup_restores;
DROP TABLE backups;
