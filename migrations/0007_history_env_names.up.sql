-- History and events are for every viewer: a container's "created" entry
-- keeps the names of its variables, not their values (which operators read
-- from the container itself). Entries written before this keep an object of
-- values; turn it into the sorted list of names.
UPDATE deployment_history
   SET details = jsonb_set(details, '{env}',
       (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]'::jsonb) FROM jsonb_object_keys(details->'env') AS k))
 WHERE jsonb_typeof(details->'env') = 'object';

UPDATE events
   SET data = jsonb_set(data, '{env}',
       (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]'::jsonb) FROM jsonb_object_keys(data->'env') AS k))
 WHERE jsonb_typeof(data->'env') = 'object';
