DROP TABLE container_published_ports;
DROP FUNCTION moor_bind_scope(inet);
