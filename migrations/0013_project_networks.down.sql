DROP TRIGGER projects_deleted_subnets ON projects;
DROP TRIGGER projects_subnets_changed ON projects;
DROP FUNCTION moor_dns_networks_changed();
ALTER TABLE projects DROP COLUMN subnets;
