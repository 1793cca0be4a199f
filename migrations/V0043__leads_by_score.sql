-- A period report's best-scored leads (`leads::read::top_scored`): the tenant's leads by score,
-- then by latest contact, so each score's leads of a period are one range of the index. Without
-- it the report sorted every lead of the period: 227 ms for the 112,534 leads a million-call
-- tenant contacted in 30 days. The agent is included so a report narrowed to agents reads the
-- index alone.
CREATE INDEX IF NOT EXISTS leads_user_score_idx
    ON leads (user_id, total_score DESC, last_contact_at DESC, id) INCLUDE (agent_id)
    WHERE total_score IS NOT NULL;
