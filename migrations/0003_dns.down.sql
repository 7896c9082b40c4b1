DROP TRIGGER IF EXISTS container_ports_changed ON container_ports;
DROP TRIGGER IF EXISTS dns_entries_changed ON dns_entries;
DROP FUNCTION IF EXISTS moor_dns_changed();
DROP TABLE IF EXISTS dns_serial;
