-- Containers of stacks stay, as containers deployed alone; the stacks'
-- compose files go.
DROP TRIGGER containers_stack_gone ON containers;
DROP FUNCTION stacks_gone();
ALTER TABLE containers
    DROP CONSTRAINT containers_stack_fkey,
    DROP CONSTRAINT containers_stack_check,
    DROP COLUMN stack,
    DROP COLUMN stack_service,
    DROP COLUMN definition_hash,
    DROP COLUMN depends_on;
DROP TABLE stacks;
