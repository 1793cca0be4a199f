-- A leads export pages in the leads' creation order, which never changes: in the list's order
-- (newest contact first) a lead contacted or merged while a job is written would move ahead of
-- the pages already written and be left out of the file.
CREATE INDEX leads_user_created_idx ON leads (user_id, created_at DESC, id DESC);
