-- Every change of a container or of its instances wakes the Traefik
-- providers at commit, with the container's id, even when no event is
-- recorded: a replica's address or health can change while the container's
-- status stays the same, and its route must follow at once. PostgreSQL sends
-- one notification per container and transaction (duplicates are folded).
CREATE FUNCTION moor_routes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'containers' THEN
        PERFORM pg_notify('moor_routes', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
    ELSE
        PERFORM pg_notify('moor_routes', (CASE WHEN TG_OP = 'DELETE' THEN OLD.container_id ELSE NEW.container_id END)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER containers_routes_changed AFTER INSERT OR UPDATE OR DELETE ON containers
    FOR EACH ROW EXECUTE FUNCTION moor_routes_changed();
CREATE TRIGGER container_instances_routes_changed AFTER INSERT OR UPDATE OR DELETE ON container_instances
    FOR EACH ROW EXECUTE FUNCTION moor_routes_changed();
