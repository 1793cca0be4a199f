-- The admin's analytics read the ledger's closed totals an hour at a time (V0026): a year read
-- afresh summed 8,760 rows of `ledger_hours`, and told that its hours were all totalled by
-- counting them, about 2 ms of the read's 10 at ten million calls. Each day's hours are now
-- also summed in one row, with how many of its hours it holds: a period's whole days are read
-- from these rows, and only the hours of the day it reads up to from `ledger_hours`
-- (`admin::analytics::sql::CREDITS`); a period is caught up when its days hold as many hours
-- as it has closed (`CLOSE_LEDGER_HOURS`).
--
-- Kept by a trigger, as V0035's rows are: the release before this one totals hours too while
-- a deploy replaces it, and neither can forget the days. An hour is only ever inserted, once
-- (its statement skips the hours another inserted first), so each adds to its day once, under
-- the day row's lock, in the same transaction: a day's row always sums the hours stored.
CREATE TABLE ledger_days (
    day              date PRIMARY KEY,
    hours            int NOT NULL,
    purchase         bigint NOT NULL,
    usage            bigint NOT NULL,
    bonus            bigint NOT NULL,
    refund           bigint NOT NULL,
    admin_adjustment bigint NOT NULL
);

CREATE FUNCTION ledger_days_follow_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- In the days' order, so that two statements adding to the same days cannot deadlock.
    INSERT INTO ledger_days (day, hours, purchase, usage, bonus, refund, admin_adjustment)
    SELECT (hour AT TIME ZONE 'UTC')::date, count(*), sum(purchase), sum(usage), sum(bonus),
           sum(refund), sum(admin_adjustment)
    FROM closed_hours GROUP BY 1 ORDER BY 1
    ON CONFLICT (day) DO UPDATE SET hours = ledger_days.hours + EXCLUDED.hours,
        purchase = ledger_days.purchase + EXCLUDED.purchase,
        usage = ledger_days.usage + EXCLUDED.usage,
        bonus = ledger_days.bonus + EXCLUDED.bonus,
        refund = ledger_days.refund + EXCLUDED.refund,
        admin_adjustment = ledger_days.admin_adjustment + EXCLUDED.admin_adjustment;
    RETURN NULL;
END $$;

-- Writers wait until the hours below are summed, so that none is missed or counted twice.
LOCK TABLE ledger_hours IN SHARE MODE;
CREATE TRIGGER ledger_hours_days
    AFTER INSERT ON ledger_hours REFERENCING NEW TABLE AS closed_hours
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_days_follow_hours();
INSERT INTO ledger_days (day, hours, purchase, usage, bonus, refund, admin_adjustment)
SELECT (hour AT TIME ZONE 'UTC')::date, count(*), sum(purchase), sum(usage), sum(bonus),
       sum(refund), sum(admin_adjustment)
FROM ledger_hours GROUP BY 1;

ANALYZE ledger_days;
