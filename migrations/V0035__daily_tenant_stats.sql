-- The admin's analytics read afresh summed the open days' rollups per tenant (V0033): at the
-- end of a busy day, with ten million calls, 13,057 rows of 8,703 tenants, grouped, then each
-- tenant's sums totalled, looked up in the closed days' bitmap and sorted for the top ten:
-- 21 ms for that statement alone. Each tenant's day is now one row, kept as its agents' rows
-- change, so a read groups only the few tenants that may be in the top ten
-- (`admin::analytics::sql::TENANTS`); the closed days' sums read these rows too.
--
-- Kept by a trigger, as V0018's mirrored column is: the processor (this release's and the one
-- before it, while a deploy replaces it), tests and the bench's seed all write the agents'
-- rows, and none can forget these. Deltas, so each writer's change adds to the tenant's row
-- under that row's lock; a change of day or tenant moves its figures.
--
-- No index on a figure: every call changes its tenant's day, and a change that moves no
-- indexed value, on a page with room for it, leaves no index entry behind (a heap-only
-- update). An index of the figures would gather a dead entry per call in the open day's range
-- until the next vacuum, which the reads of that range would step over. A day's rows are read
-- through an index of the day alone, whose entries of one day are in the rows' order on disk.
CREATE TABLE daily_tenant_stats (
    user_id          uuid NOT NULL REFERENCES users (id),
    day              date NOT NULL,
    -- The tenant's number (`users.seq`), its bit in the closed days' bitmap.
    tenant_seq       int NOT NULL,
    calls            int NOT NULL DEFAULT 0,
    chats            int NOT NULL DEFAULT 0,
    duration_seconds bigint NOT NULL DEFAULT 0,
    credits_used     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
) WITH (fillfactor = 70);

CREATE FUNCTION daily_tenant_stats_follow_agents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.user_id = NEW.user_id AND OLD.day = NEW.day THEN
        UPDATE daily_tenant_stats SET calls = calls + NEW.calls - OLD.calls,
            chats = chats + NEW.chats - OLD.chats,
            duration_seconds = duration_seconds + NEW.duration_seconds - OLD.duration_seconds,
            credits_used = credits_used + NEW.credits_used - OLD.credits_used
        WHERE user_id = NEW.user_id AND day = NEW.day;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE daily_tenant_stats SET calls = calls - OLD.calls, chats = chats - OLD.chats,
            duration_seconds = duration_seconds - OLD.duration_seconds,
            credits_used = credits_used - OLD.credits_used
        WHERE user_id = OLD.user_id AND day = OLD.day;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO daily_tenant_stats
            (user_id, day, tenant_seq, calls, chats, duration_seconds, credits_used)
        VALUES (NEW.user_id, NEW.day, (SELECT seq FROM users WHERE id = NEW.user_id), NEW.calls,
                NEW.chats, NEW.duration_seconds, NEW.credits_used)
        ON CONFLICT (user_id, day) DO UPDATE SET
            calls = daily_tenant_stats.calls + EXCLUDED.calls,
            chats = daily_tenant_stats.chats + EXCLUDED.chats,
            duration_seconds = daily_tenant_stats.duration_seconds + EXCLUDED.duration_seconds,
            credits_used = daily_tenant_stats.credits_used + EXCLUDED.credits_used;
    END IF;
    RETURN NULL;
END $$;

-- Writers wait until the rows below are summed, so that none of their changes is missed or
-- counted twice.
LOCK TABLE daily_agent_stats IN SHARE MODE;
CREATE TRIGGER daily_agent_stats_tenant_days
    AFTER INSERT OR UPDATE OR DELETE ON daily_agent_stats
    FOR EACH ROW EXECUTE FUNCTION daily_tenant_stats_follow_agents();
INSERT INTO daily_tenant_stats
    (user_id, day, tenant_seq, calls, chats, duration_seconds, credits_used)
SELECT d.user_id, d.day, u.seq, sum(d.calls), sum(d.chats), sum(d.duration_seconds),
       sum(d.credits_used)
FROM daily_agent_stats d JOIN users u ON u.id = d.user_id
GROUP BY d.user_id, d.day, u.seq
ORDER BY d.day;
CREATE INDEX daily_tenant_stats_day_idx ON daily_tenant_stats (day);

-- The agents' rows no longer carry their tenant's number (V0033): the tenants' days do. The
-- column stays for the release before this one, whose processor still writes it.
COMMENT ON COLUMN daily_agent_stats.tenant_seq IS
    'Not written since V0035 (daily_tenant_stats carries the number); kept for the release before';
CREATE OR REPLACE FUNCTION daily_agent_stats_recomputed(tenants uuid[])
RETURNS SETOF daily_agent_stats
LANGUAGE sql STABLE AS $$
    SELECT c.user_id, c.agent_id, (coalesce(c.started_at, c.created_at) AT TIME ZONE 'UTC')::date,
           (count(*) FILTER (WHERE c.type = 'call'))::integer,
           (count(*) FILTER (WHERE c.type = 'chat'))::integer,
           (count(*) FILTER (WHERE c.status = 'completed'))::integer,
           (count(*) FILTER (WHERE c.status = 'failed'))::integer,
           (count(*) FILTER (WHERE c.call_successful = 'success'))::integer,
           sum(c.duration_seconds)::bigint, sum(c.credits_charged)::bigint, NULL::int
    FROM calls c
    WHERE c.user_id = ANY (tenants) AND c.status IN ('completed', 'failed')
    GROUP BY 1, 2, 3
$$;

ANALYZE daily_tenant_stats;
