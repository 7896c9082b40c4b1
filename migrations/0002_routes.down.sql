DROP TRIGGER container_instances_routes_changed ON container_instances;
DROP TRIGGER containers_routes_changed ON containers;
DROP FUNCTION moor_routes_changed();
