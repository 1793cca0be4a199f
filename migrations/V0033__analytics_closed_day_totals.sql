-- The admin's analytics read afresh merged every tenant's closed days' sums (V0028) with its
-- rows of the open days, then totalled the merged rows and sorted them for the top ten: at ten
-- million calls, 10,000 sums joined with the 5,234 tenants of a day, 15 to 25 ms. Now a read
-- sums only the open days' rows (`admin::analytics::sql::TENANTS`):
-- - the period's row keeps its sums' totals;
-- - and which tenants had a call or chat on its closed days, as a bitmap of their numbers: a
--   tenant of the open days is a newly active one if its bit is not set, with no join;
-- - the top ten are looked up among few candidates, from the tenth highest use of credits of
--   the sums (kept with them) and an index of the sums by use.

-- A small number per tenant, its bit in such bitmaps.
ALTER TABLE users ADD COLUMN seq int GENERATED ALWAYS AS IDENTITY;

-- The number of the row's tenant, written with the row. NULL in rows written before this (and
-- by the processor of the release before, while a deploy replaces it): a read looks those up.
ALTER TABLE daily_agent_stats ADD COLUMN tenant_seq int;
CREATE OR REPLACE FUNCTION daily_agent_stats_recomputed(tenants uuid[])
RETURNS SETOF daily_agent_stats
LANGUAGE sql STABLE AS $$
    SELECT c.user_id, c.agent_id, (coalesce(c.started_at, c.created_at) AT TIME ZONE 'UTC')::date,
           (count(*) FILTER (WHERE c.type = 'call'))::integer,
           (count(*) FILTER (WHERE c.type = 'chat'))::integer,
           (count(*) FILTER (WHERE c.status = 'completed'))::integer,
           (count(*) FILTER (WHERE c.status = 'failed'))::integer,
           (count(*) FILTER (WHERE c.call_successful = 'success'))::integer,
           sum(c.duration_seconds)::bigint, sum(c.credits_charged)::bigint, u.seq
    FROM calls c JOIN users u ON u.id = c.user_id
    WHERE c.user_id = ANY (tenants) AND c.status IN ('completed', 'failed')
    GROUP BY 1, 2, 3, u.seq
$$;

ALTER TABLE closed_day_periods
    ADD COLUMN active           bigint NOT NULL DEFAULT 0,
    ADD COLUMN calls            bigint NOT NULL DEFAULT 0,
    ADD COLUMN chats            bigint NOT NULL DEFAULT 0,
    ADD COLUMN duration_seconds bigint NOT NULL DEFAULT 0,
    ADD COLUMN credits_used     bigint NOT NULL DEFAULT 0,
    -- NULL: fewer than ten tenants with a call or chat in the sums.
    ADD COLUMN tenth            bigint,
    -- Bit n set: the tenant numbered n had a call or chat in the sums.
    ADD COLUMN active_tenants   bit varying NOT NULL DEFAULT B'',
    -- The sums these totals are of: their first and last days and count of late changes. The
    -- release before this one sums the closed days too (while a deploy replaces it, or after
    -- a rollback) and moves `since`, `through` and `late` without the totals: the totals hold
    -- only while these are the same. NULL until the sums are read again, with their totals.
    ADD COLUMN totals_since     date,
    ADD COLUMN totals_through   date,
    ADD COLUMN totals_late      bigint;

-- The top ten's candidates among the sums: those with a call or chat, from a use of credits on.
CREATE INDEX closed_day_sums_by_use ON closed_day_sums (days, credits_used)
    WHERE calls + chats > 0;
