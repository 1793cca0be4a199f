-- Indexes for the read API at a million calls (scripts/bench-reads).
-- The lead list and its total: a tenant's leads in list order (newest contact first), so a
-- page reads 20 index entries and the count is an index-only scan instead of a scan of leads.
CREATE INDEX leads_user_sort_idx ON leads (user_id, (coalesce(last_contact_at, created_at)) DESC, id DESC);
-- A lead profile's timeline: the lead's newest calls straight from the index, no sort.
CREATE INDEX calls_lead_created_idx ON calls (lead_id, created_at DESC, id DESC);
DROP INDEX calls_lead_idx;
