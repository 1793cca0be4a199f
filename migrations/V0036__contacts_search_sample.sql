-- A search's total counts its matches to a bound (1,000), but a lookup in a GIN index cannot
-- stop there: it gathers every match into a bitmap first. A fragment that one contact in 14 of
-- the 10M bench's largest tenant holds (`globex 1`) gathers 21,782 contacts, 7 to 19 ms, to
-- count the calls of 141 of them. This index holds the same entries (V0024's expression) for
-- a sixteenth of the contacts, picked by their id, so a total looks the fragment up among those
-- first (1,360 entries, 0.7 to 0.9 ms) and in the whole index only while they hold fewer matches than
-- its bound (`db::filter::Searched::sampled_by`). Planned as its own branch of the count, a
-- lookup Postgres reaches only then.
--
-- A sixteenth: a fragment whose matches the sample holds fewer than the bound of is cheap to
-- gather in the whole index anyway, and one more small lookup costs about 0.5 ms of planning.
-- The id's last byte is random (v4 ids, and the seeds' random ones).
--
-- Built here, in the migration's transaction, the index holds off writes to contacts while it
-- builds (26 s for the bench's 2.9 million contacts); where that is too long, create it first
-- with CREATE INDEX CONCURRENTLY and this definition, and this migration finds it.
CREATE OR REPLACE FUNCTION search_sampled(id uuid) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT get_byte(uuid_send(id), 15) < 16 $$;

CREATE INDEX IF NOT EXISTS contacts_search_sample_idx ON contacts USING gin (tenant_trigrams(user_id,
    lower_trigrams(coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n'
        || coalesce(email, '') || E'\n' || coalesce(company, ''))))
    WHERE search_sampled(id);
