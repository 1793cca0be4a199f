-- A search's keys are the runs of three characters of the lowercased text, across blanks and
-- signs, instead of pg_trgm's trigrams, which stop at words. `ILIKE` compares the lowercased
-- text and fragment, so every run of the fragment is one of the text's. pg_trgm's keys for
-- "globex 1" asked only for a word starting with 1, which most phone numbers hold: the largest
-- tenant's lookup gathered all its 194,680 contacts at Globex (40 ms) to find the 21,852 that
-- hold "globex 1". The run "x 1" leaves only those.
--
-- Each index keeps V0023's form, one key per run and tenant (`tenant_trigrams`), on the text
-- as `db::filter::searched_text` renders it for the list's columns. Built here, in the
-- migration's transaction, they hold off writes to calls, contacts and leads while they build
-- (minutes for millions of rows); where that is too long, create them first with
-- CREATE INDEX CONCURRENTLY and these definitions, and this migration finds them.
CREATE OR REPLACE FUNCTION lower_trigrams(searched text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT ARRAY(SELECT substr(lowered, start, 3) FROM (SELECT lower(searched) AS lowered) AS lowered_text,
        generate_series(1, length(lowered) - 2) AS start) $$;

CREATE INDEX IF NOT EXISTS calls_search_runs_idx ON calls
    USING gin (tenant_trigrams(user_id, lower_trigrams(coalesce(phone_number, ''))));

CREATE INDEX IF NOT EXISTS contacts_search_runs_idx ON contacts USING gin (tenant_trigrams(user_id,
    lower_trigrams(coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n'
        || coalesce(email, '') || E'\n' || coalesce(company, ''))));

CREATE INDEX IF NOT EXISTS leads_search_runs_idx ON leads USING gin (tenant_trigrams(user_id,
    lower_trigrams(coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n'
        || coalesce(email, '') || E'\n' || coalesce(company, ''))));

DROP INDEX IF EXISTS calls_search_keys_idx, contacts_search_keys_idx, leads_search_keys_idx;
