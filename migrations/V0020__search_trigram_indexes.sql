-- A search box finds the few contacts or leads holding a fragment (any case) through these
-- trigram indexes instead of reading every one of the tenant's rows. Each indexes the text a
-- search looks in, exactly as `db::filter::searched_text` renders it for the list's columns:
-- Postgres uses an index on an expression only for that same expression. Not partial, so
-- ANALYZE keeps statistics of the expression to judge a pattern by. pg_trgm is a trusted
-- extension: Neon's roles may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX contacts_search_trgm_idx ON contacts USING gin (
    (coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n' || coalesce(email, '')
        || E'\n' || coalesce(company, '')) gin_trgm_ops);

CREATE INDEX leads_search_trgm_idx ON leads USING gin (
    (coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n' || coalesce(email, '')
        || E'\n' || coalesce(company, '')) gin_trgm_ops);
