-- The values are gone for good; going down leaves the names in place (an
-- older moor shows them as they are).
SELECT 1;
