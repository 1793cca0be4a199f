-- The admin's system analytics, as last read for each period (`admin::analytics::cached`).
-- Reading them sums every tenant's call rollups over the period: about 90 ms for 30 days and
-- 400 ms for 365 at ten million calls, and no per-tenant total kept by the processor could give
-- a rolling period's top ten without the same sum. The product's rule for dashboard analytics
-- is a cache with a time to live and warming: a request is answered from its period's snapshot
-- while it is under five minutes old, the reconciler re-reads the periods asked for in the last
-- day every two minutes, and `Cache-Control: no-cache` on a request reads them afresh.
CREATE TABLE system_analytics (
    days         int PRIMARY KEY CHECK (days BETWEEN 1 AND 365),
    -- The time of the snapshot the figures were read in: what the answer says they are as of.
    generated_at timestamptz NOT NULL,
    figures      jsonb NOT NULL,
    -- Moved forward at most once an hour, so that a read of a fresh snapshot rarely writes.
    requested_at timestamptz NOT NULL
);
