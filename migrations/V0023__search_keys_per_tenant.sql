-- A search looks a fragment's trigrams up among its tenant's own rows. V0020's and V0021's
-- indexes held the tenant and each trigram as separate keys, so a lookup read the fragment's
-- trigrams' entries of every tenant and the tenant's entry, as long as all its rows: 10 ms for
-- seven digits of a number in a tenant of a million calls, where these indexes take 0.9 ms.
-- Each indexes the tenant's trigrams of the text a search looks in, spelled exactly as
-- `db::filter::searched_text` renders it for the list's columns (Postgres uses an index on an
-- expression only for that same expression): one key per trigram and tenant,
-- `tenant_trigrams`. Two keys that collide only widen a lookup, which the search's own ILIKE
-- and tenant conditions narrow again.
--
-- Built here, in the migration's transaction, the indexes hold off writes to calls, contacts
-- and leads while they build: on the bench cluster, 3.5 minutes for ten million calls, 2 to 5
-- for 2.9 million contacts or leads. Where that is too long, create them first with
-- CREATE INDEX CONCURRENTLY and these definitions (and check that all three are valid); this
-- migration then finds them.
CREATE OR REPLACE FUNCTION tenant_trigrams(tenant uuid, trigrams text[]) RETURNS int4[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT ARRAY(SELECT hashtext(tenant::text || trigram) FROM unnest(trigrams) trigram) $$;

CREATE INDEX IF NOT EXISTS calls_search_keys_idx ON calls
    USING gin (tenant_trigrams(user_id, show_trgm(coalesce(phone_number, ''))));

CREATE INDEX IF NOT EXISTS contacts_search_keys_idx ON contacts USING gin (tenant_trigrams(user_id,
    show_trgm(coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n'
        || coalesce(email, '') || E'\n' || coalesce(company, ''))));

CREATE INDEX IF NOT EXISTS leads_search_keys_idx ON leads USING gin (tenant_trigrams(user_id,
    show_trgm(coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n'
        || coalesce(email, '') || E'\n' || coalesce(company, ''))));

DROP INDEX IF EXISTS calls_search_trgm_idx, contacts_search_trgm_idx, leads_search_trgm_idx;
