-- Each analysis' tenant (its call's), so a tenant's analyses are counted from an index of their
-- own: `/analytics/leads`' total joined the tenant's calls to lead_analytics, one probe per call
-- (about 30 ms for the 10,000 it counts of a million-call tenant; about 2 ms from this index).
-- The tag and score are in the index so that the list's filters on them count from it too.
-- A call never changes tenant; the analysis upsert writes the column with its call's.
ALTER TABLE lead_analytics ADD COLUMN user_id uuid;
UPDATE lead_analytics la SET user_id = c.user_id FROM calls c WHERE c.id = la.call_id;
ALTER TABLE lead_analytics ALTER COLUMN user_id SET NOT NULL;
CREATE INDEX lead_analytics_user_idx ON lead_analytics (user_id, lead_status_tag, total_score);
