-- The admin's system analytics read afresh (`admin::analytics`) summed every tenant's call
-- rollups over the period: 390,000 rows and 88 ms for 30 days at ten million calls, 2.4
-- million rows and 370 ms for 365. The active tenants and the top ten need each tenant's sum
-- over a rolling period, so no total kept per tenant could stand in for that sum. But a day's
-- rollups stop changing soon after it ends: a period's sums over its days before yesterday
-- (UTC) are read once, and a read adds the rows of yesterday and today to them.
--
-- A late event can still change an older day's rollup (a redelivery, a redriven batch). The
-- statement that changes a rollup counts such changes (`closed_day_changes.late`), and a
-- period's sums hold only while the count is the one they were read with; a read checks that
-- in its own snapshot and otherwise sums the rollups themselves, as before.

-- How many times a rollup of a day before yesterday was changed. One row.
CREATE TABLE closed_day_changes (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    late bigint NOT NULL
);
INSERT INTO closed_day_changes (late) VALUES (0);

-- Each period's sums over its closed days: through which day, and the count of late changes
-- they were read with (NULL: being read for the first time).
CREATE TABLE closed_day_periods (
    days    int PRIMARY KEY CHECK (days BETWEEN 1 AND 365),
    through date,
    late    bigint
);

-- The sums themselves, per period and tenant (tenants with a rollup row in those days).
CREATE TABLE closed_day_sums (
    days             int NOT NULL,
    user_id          uuid NOT NULL,
    calls            bigint NOT NULL,
    chats            bigint NOT NULL,
    duration_seconds bigint NOT NULL,
    credits_used     bigint NOT NULL,
    PRIMARY KEY (days, user_id)
);
