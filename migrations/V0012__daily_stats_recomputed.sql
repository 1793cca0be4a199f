-- The dashboard rollups recomputed from the rows they count, for the given tenants: what the
-- processor's incremental upkeep must add up to. Finished calls count on the UTC day they
-- started (or were created, for a call without a start); analyses on the UTC day they were
-- made. The lead rollup is V0004's backfill query, kept here as the one definition: the read
-- benchmark seeds its rollups with these functions, and the integration tests hold the
-- processor's rollups to them.

CREATE FUNCTION daily_agent_stats_recomputed(tenants uuid[]) RETURNS SETOF daily_agent_stats
LANGUAGE sql STABLE AS $$
    SELECT c.user_id, c.agent_id, (coalesce(c.started_at, c.created_at) AT TIME ZONE 'UTC')::date,
           (count(*) FILTER (WHERE c.type = 'call'))::integer,
           (count(*) FILTER (WHERE c.type = 'chat'))::integer,
           (count(*) FILTER (WHERE c.status = 'completed'))::integer,
           (count(*) FILTER (WHERE c.status = 'failed'))::integer,
           (count(*) FILTER (WHERE c.call_successful = 'success'))::integer,
           sum(c.duration_seconds)::bigint, sum(c.credits_charged)::bigint
    FROM calls c
    WHERE c.user_id = ANY (tenants) AND c.status IN ('completed', 'failed')
    GROUP BY 1, 2, 3
$$;

CREATE FUNCTION daily_lead_stats_recomputed(tenants uuid[]) RETURNS SETOF daily_lead_stats
LANGUAGE sql STABLE AS $$
    SELECT c.user_id, c.agent_id, (la.analyzed_at AT TIME ZONE 'UTC')::date,
           count(*)::integer, count(la.total_score)::integer, coalesce(sum(la.total_score), 0)::bigint,
           (count(*) FILTER (WHERE la.lead_status_tag = 'hot'))::integer,
           (count(*) FILTER (WHERE la.lead_status_tag = 'warm'))::integer,
           (count(*) FILTER (WHERE la.lead_status_tag = 'cold'))::integer,
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
           (count(*) FILTER (WHERE (la.cta_interactions ->> 'pricing_clicked')::boolean))::integer,
           (count(*) FILTER (WHERE (la.cta_interactions ->> 'demo_clicked')::boolean))::integer,
           (count(*) FILTER (WHERE (la.cta_interactions ->> 'followup_clicked')::boolean))::integer,
           (count(*) FILTER (WHERE (la.cta_interactions ->> 'sample_clicked')::boolean))::integer,
           (count(*) FILTER (WHERE (la.cta_interactions ->> 'escalated_to_human')::boolean))::integer
    FROM lead_analytics la JOIN calls c ON c.id = la.call_id
    WHERE c.user_id = ANY (tenants)
    GROUP BY 1, 2, 3
$$;
