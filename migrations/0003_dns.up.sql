-- The SOA serial of moor's DNS zones. It rises when the zones' content
-- changes: a DNS server that builds content with another hash than the stored
-- one bumps the serial, so every moor process serves the same serial for the
-- same content and the serial survives restarts.
CREATE TABLE dns_serial (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    serial       bigint NOT NULL DEFAULT 1 CHECK (serial > 0),
    content_hash bytea NOT NULL DEFAULT ''
);
INSERT INTO dns_serial DEFAULT VALUES;

-- Every change of DNS rows or named ports wakes the DNS servers at commit
-- with the container's id (PostgreSQL sends one notification per distinct
-- payload and transaction), even when no event is recorded (an instance's
-- address changing while its status stays the same). The servers then
-- re-read that container alone.
CREATE FUNCTION moor_dns_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('moor_dns', OLD.container_id::text);
    ELSE
        PERFORM pg_notify('moor_dns', NEW.container_id::text);
        IF TG_OP = 'UPDATE' AND OLD.container_id <> NEW.container_id THEN
            PERFORM pg_notify('moor_dns', OLD.container_id::text);
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER dns_entries_changed AFTER INSERT OR UPDATE OR DELETE ON dns_entries
    FOR EACH ROW EXECUTE FUNCTION moor_dns_changed();
CREATE TRIGGER container_ports_changed AFTER INSERT OR UPDATE OR DELETE ON container_ports
    FOR EACH ROW EXECUTE FUNCTION moor_dns_changed();
