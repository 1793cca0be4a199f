-- Dashboard rollup of lead analyses, by the day each analysis was made (its event time), kept
-- by the processor in the same transaction as the analysis: a replaced analysis is subtracted
-- from its day and the new one added to its own.
CREATE TABLE daily_lead_stats (
    user_id         uuid NOT NULL REFERENCES users (id),
    agent_id        uuid NOT NULL REFERENCES agents (id),
    day             date NOT NULL,
    analyzed        integer NOT NULL DEFAULT 0,
    scored          integer NOT NULL DEFAULT 0,
    score_sum       bigint NOT NULL DEFAULT 0,
    hot             integer NOT NULL DEFAULT 0,
    warm            integer NOT NULL DEFAULT 0,
    cold            integer NOT NULL DEFAULT 0,
    -- total_score 0-9, 10-19, ..., 90-100
    score_buckets   integer[] NOT NULL DEFAULT array_fill(0, ARRAY[10]),
    cta_pricing     integer NOT NULL DEFAULT 0,
    cta_demo        integer NOT NULL DEFAULT 0,
    cta_followup    integer NOT NULL DEFAULT 0,
    cta_sample      integer NOT NULL DEFAULT 0,
    cta_escalated   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, agent_id, day)
);

CREATE INDEX daily_agent_stats_user_day_idx ON daily_agent_stats (user_id, day);
CREATE INDEX daily_lead_stats_user_day_idx ON daily_lead_stats (user_id, day);

-- Analyses stored before this rollup existed.
INSERT INTO daily_lead_stats (user_id, agent_id, day, analyzed, scored, score_sum, hot, warm, cold,
                              score_buckets, cta_pricing, cta_demo, cta_followup, cta_sample, cta_escalated)
SELECT c.user_id, c.agent_id, (la.analyzed_at AT TIME ZONE 'UTC')::date,
       count(*), count(la.total_score), coalesce(sum(la.total_score), 0),
       count(*) FILTER (WHERE la.lead_status_tag = 'hot'),
       count(*) FILTER (WHERE la.lead_status_tag = 'warm'),
       count(*) FILTER (WHERE la.lead_status_tag = 'cold'),
       ARRAY[count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 0),
             count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 1),
             count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 2),
             count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 3),
             count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 4),
             count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 5),
             count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 6),
             count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 7),
             count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 8),
             count(*) FILTER (WHERE least(greatest(la.total_score, 0), 99) / 10 = 9)]::integer[],
       count(*) FILTER (WHERE (la.cta_interactions ->> 'pricing_clicked')::boolean),
       count(*) FILTER (WHERE (la.cta_interactions ->> 'demo_clicked')::boolean),
       count(*) FILTER (WHERE (la.cta_interactions ->> 'followup_clicked')::boolean),
       count(*) FILTER (WHERE (la.cta_interactions ->> 'sample_clicked')::boolean),
       count(*) FILTER (WHERE (la.cta_interactions ->> 'escalated_to_human')::boolean)
FROM lead_analytics la JOIN calls c ON c.id = la.call_id
GROUP BY 1, 2, 3;

-- Bumped by the processor whenever it changes a tenant's rollups: dashboards derive their ETag
-- from it (with the balance), so an unchanged dashboard is a 304 without touching the rollups.
ALTER TABLE users ADD COLUMN stats_version bigint NOT NULL DEFAULT 0;
