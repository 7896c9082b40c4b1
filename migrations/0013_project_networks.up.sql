-- The subnets of each project's Docker network, as the engine gave them
-- (the reconciler records them whenever it ensures the network, and heals
-- them on every full pass). The DNS server picks a client's view by them:
-- a container of a project sees that project's names only.
ALTER TABLE projects ADD COLUMN subnets cidr[] NOT NULL DEFAULT '{}';

-- A change of subnets wakes every moor process's DNS server at commit (an
-- empty payload: re-read everything), so a new or changed view holds at
-- once rather than after the timed rebuild.
CREATE FUNCTION moor_dns_networks_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('moor_dns', '');
    RETURN NULL;
END $$;
CREATE TRIGGER projects_subnets_changed AFTER UPDATE OF subnets ON projects
    FOR EACH ROW WHEN (OLD.subnets IS DISTINCT FROM NEW.subnets)
    EXECUTE FUNCTION moor_dns_networks_changed();
CREATE TRIGGER projects_deleted_subnets AFTER DELETE ON projects
    FOR EACH ROW WHEN (OLD.subnets <> '{}')
    EXECUTE FUNCTION moor_dns_networks_changed();
