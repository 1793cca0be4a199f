-- The call list's search looks for a fragment in the call's number or in its contact's name,
-- two tables, so it is run as two lookups whose newest rows are merged (`Filter::
-- and_containing_any`): the calls whose number holds it, through a trigram index on the number
-- as `db::filter::searched_text` renders it (with the tenant, as V0020's); and the calls of the
-- contacts whose name holds it, found through V0020's contacts index, then their calls through
-- an index on the call's contact.
--
-- Built in the migration's transaction, they hold off writes to calls while they build; on a
-- large database, create them first with CREATE INDEX CONCURRENTLY and these definitions (and
-- check that both are valid), which this migration then finds.
CREATE INDEX IF NOT EXISTS calls_search_trgm_idx ON calls USING gin (user_id,
    (coalesce(phone_number, '')) gin_trgm_ops);

CREATE INDEX IF NOT EXISTS calls_contact_idx ON calls (contact_id);
