-- The admin's system analytics (`admin::analytics`) at ten million calls took about 0.9 s: the
-- call rollups were read three times over, each time every row of `daily_agent_stats`, and the
-- ledger's totals read every entry of the period (1.4 million for 30 days of the bench's seed).
--
-- The rollups are now read once, through their day. A rollup row is written with its day and
-- its day never changes (a call moving to another day moves its figures to another row), so
-- this index gets one entry per row and the processor's later updates of the row stay HOT.
-- Built in the migration's transaction, it holds off the processor's rollup writes while it
-- builds (0.5 s at 2.4 million rows); on a large database, create it first with CREATE INDEX
-- CONCURRENTLY and this definition, which this migration then finds.
CREATE INDEX IF NOT EXISTS daily_agent_stats_day_idx ON daily_agent_stats (day);

-- The ledger's totals of each closed hour, by entry type (signed, as the entries' amounts).
-- The ledger is append-only and an entry's time is its transaction's start, so once every
-- transaction that began in an hour has ended, that hour's totals never change again: the
-- analytics total an hour once, the first time a period needs it, and read from the ledger
-- itself only the entries of the last hour or two. An hour counts as closed an hour after it
-- ends; no transaction here outlives its Lambda invocation, and none of those lasts over 15
-- minutes. Hours, not days: the entries of a whole open day would be read on every request
-- (a day of the bench's seed, about 30,000 entries, took 20 ms).
CREATE TABLE ledger_hours (
    hour             timestamptz PRIMARY KEY,
    purchase         bigint NOT NULL,
    usage            bigint NOT NULL,
    bonus            bigint NOT NULL,
    refund           bigint NOT NULL,
    admin_adjustment bigint NOT NULL
);
