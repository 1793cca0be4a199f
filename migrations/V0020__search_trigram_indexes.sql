-- A search box finds the few contacts or leads holding a fragment (any case) through these
-- trigram indexes instead of reading every one of the tenant's rows. Each indexes the text a
-- search looks in, exactly as `db::filter::searched_text` renders it for the list's columns:
-- Postgres uses an index on an expression only for that same expression. The tenant is in
-- the index too (btree_gin), so a lookup reads the tenant's own entries, not every tenant's:
-- fragments of phone numbers are made of trigrams that most numbers hold. Not partial, so
-- ANALYZE keeps statistics of the expression to judge a pattern by. Both extensions are
-- trusted: Neon's roles may create them.
--
-- Built here, in the migration's transaction, the indexes hold off writes to contacts and
-- leads while they build: about a minute for 2.9 million of each on the bench cluster. Where
-- that is too long, create them first with CREATE INDEX CONCURRENTLY and these definitions
-- (and check that both are valid); this migration then finds them.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE INDEX IF NOT EXISTS contacts_search_trgm_idx ON contacts USING gin (user_id,
    (coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n' || coalesce(email, '')
        || E'\n' || coalesce(company, '')) gin_trgm_ops);

CREATE INDEX IF NOT EXISTS leads_search_trgm_idx ON leads USING gin (user_id,
    (coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n' || coalesce(email, '')
        || E'\n' || coalesce(company, '')) gin_trgm_ops);
