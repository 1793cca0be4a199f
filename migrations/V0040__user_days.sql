-- The admin's analytics counted a period's users by reading every user: 1.9 ms of a read afresh
-- at 10,000 tenants, and growing with them. Each UTC day's sign-ups are now counted in a row,
-- the users counted from the days (`admin::analytics::sql::USERS`); the suspended ones are
-- few, counted from an index of them alone.
--
-- Kept by a trigger: the release before this one provisions users too while a deploy replaces
-- it. A user is inserted once (provisioning skips a subject already stored) and its creation
-- time never changes, so each adds one to its day (and a user deleted by hand takes it off),
-- under the day row's lock, in the provisioning's own transaction. That lock is held to the transaction's end, so
-- concurrent sign-ups of one day take turns there, each for the few milliseconds of the rest
-- of its provisioning: far from the rate sign-ups come at.
CREATE TABLE user_days (
    day     date PRIMARY KEY,
    created bigint NOT NULL
);

CREATE FUNCTION user_days_follow_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_days AS d (day, created)
        VALUES ((NEW.created_at AT TIME ZONE 'UTC')::date, 1)
        ON CONFLICT (day) DO UPDATE SET created = d.created + 1;
    ELSE
        UPDATE user_days SET created = created - 1
        WHERE day = (OLD.created_at AT TIME ZONE 'UTC')::date;
    END IF;
    RETURN NULL;
END $$;

CREATE INDEX users_suspended_idx ON users (id) WHERE status = 'suspended';

-- Writers wait until the users below are counted, so that none is missed or counted twice.
LOCK TABLE users IN SHARE MODE;
CREATE TRIGGER users_user_days
    AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION user_days_follow_users();
INSERT INTO user_days (day, created)
SELECT (created_at AT TIME ZONE 'UTC')::date, count(*) FROM users GROUP BY 1;

ANALYZE user_days;
