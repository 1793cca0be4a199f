-- The leads' own sample for a search's total (V0036 made the contacts'): the same entries as
-- V0024's leads index for the leads that `search_sampled` picks by their id, so a total of a
-- fragment that many of a tenant's leads hold stops in this small index instead of gathering
-- every match in the whole one (`leads::read::SEARCHED`).
--
-- Built here, in the migration's transaction, the index holds off writes to leads while it
-- builds (about half a minute for the bench's 2.9 million leads); where that is too long,
-- create it first with CREATE INDEX CONCURRENTLY and this definition, and this migration
-- finds it.
CREATE INDEX IF NOT EXISTS leads_search_sample_idx ON leads USING gin (tenant_trigrams(user_id,
    lower_trigrams(coalesce(name, '') || E'\n' || coalesce(phone_number, '') || E'\n'
        || coalesce(email, '') || E'\n' || coalesce(company, ''))))
    WHERE search_sampled(id);
