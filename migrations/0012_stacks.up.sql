-- Compose stacks (issue 11, point 6): a compose file deployed into a
-- project, one container per service, named STACK-SERVICE.
CREATE TABLE stacks (
    -- a project goes with its stacks once their containers are gone
    project    text NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    name       text NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    compose    text NOT NULL,
    -- a DELETE was asked for: its containers are being removed, and the
    -- row goes with the last of them (the trigger below)
    removing   boolean NOT NULL DEFAULT false,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, name)
);

-- A stack's containers: stack and stack_service are both set or both NULL
-- (a container deployed alone); definition_hash is the service's hash
-- (stack.Service.Hash), depends_on its dependencies
-- ([{"service","condition"}]), which the reconciler waits for.
ALTER TABLE containers
    ADD COLUMN stack           text,
    ADD COLUMN stack_service   text,
    ADD COLUMN definition_hash text,
    ADD COLUMN depends_on      jsonb NOT NULL DEFAULT '[]',
    ADD CONSTRAINT containers_stack_fkey FOREIGN KEY (project, stack) REFERENCES stacks (project, name),
    ADD CONSTRAINT containers_stack_check CHECK ((stack IS NULL) = (stack_service IS NULL));
-- A service name is a bare name on the project's network (other services
-- reach it by it): two stacks of one project cannot both have one.
CREATE UNIQUE INDEX containers_stack_service ON containers (project, stack_service) WHERE stack_service IS NOT NULL;
CREATE INDEX containers_stack ON containers (project, stack) WHERE stack IS NOT NULL;

-- A stack being removed goes with its last container, in the transaction
-- that deletes that container's row: nothing is left half-done by a crash.
CREATE FUNCTION stacks_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM stacks s WHERE s.project = OLD.project AND s.name = OLD.stack AND s.removing
       AND NOT EXISTS (SELECT 1 FROM containers c WHERE c.project = OLD.project AND c.stack = OLD.stack);
    RETURN NULL;
END $$;
CREATE TRIGGER containers_stack_gone AFTER DELETE ON containers
    FOR EACH ROW WHEN (OLD.stack IS NOT NULL) EXECUTE FUNCTION stacks_gone();
