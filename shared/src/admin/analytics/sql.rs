//! The statements of the admin's analytics, and the SQL they share: the period's days (UTC),
//! its closed days (V0028) and the ledger's closed hours (V0026).

// Days are UTC days, like the rollups' and the revenue series'; $1 is the number of days.
macro_rules! since_day {
    () => {
        "((now() AT TIME ZONE 'UTC')::date - ($1::int - 1))"
    };
}
/// The last day whose rollups a period's sums hold ([`SUM_CLOSED_DAYS`]): yesterday (UTC)
/// from 02:00 UTC, the day before it until then. The processor counts a change to any day
/// this may be as a late one, an hour ahead
/// ([`LATE_BEFORE`](crate::calls::rollup::sql::LATE_BEFORE)); a call of yesterday's rarely
/// changes its day's rollup after 01:00.
macro_rules! last_closed_day {
    () => {
        "(((now() - interval '2 hours') AT TIME ZONE 'UTC')::date - 1)"
    };
}
/// `last_closed_day!`, an expression of `now()`.
pub const LAST_CLOSED_DAY: &str = last_closed_day!();
/// The period's closed days have their sums, from its first day through its last closed one,
/// read since the last late change (V0028), and their totals (V0033): its row of
/// `closed_day_periods`, `p`. Both days: the first moves on at midnight, the last at 02:00,
/// and sums read before midnight would count the day that left the period (V0029). The
/// totals' own days and count: sums read by the release before V0033 have none.
macro_rules! summed_period {
    () => {
        concat!(
            "closed_day_periods p JOIN closed_day_changes c ON c.late = p.late
            WHERE p.days = $1 AND p.since = ",
            since_day!(),
            " AND p.through = ",
            last_closed_day!(),
            " AND p.totals_since = p.since AND p.totals_through = p.through
                AND p.totals_late = p.late"
        )
    };
}
/// The period's first instant, evaluated once per statement: compared with many rows, the
/// expression itself is evaluated for each (its time zone conversions, 1 ms over the
/// 10,000 users of the bench, as much over a year of ledger hours).
macro_rules! since {
    () => {
        concat!("(SELECT ", since_day!(), "::timestamp AT TIME ZONE 'UTC')")
    };
}
/// The period's rows of the revenue's days (V0039): what its paid purchases brought in, a row
/// per day, currency and package. A row whose purchases all left the paid ones stays at zero,
/// so a group counts only while it holds a purchase.
macro_rules! revenue_days {
    () => {
        concat!("revenue_days WHERE day >= ", since_day!())
    };
}

/// The first hour whose ledger totals may still change: the hours before it ended over an
/// hour ago (V0026).
macro_rules! open_hour {
    () => {
        "date_trunc('hour', now() - interval '1 hour', 'UTC')"
    };
}
/// The day of [`open_hour!`] (UTC): the hours of the days before it are all closed.
macro_rules! open_day {
    () => {
        concat!("(", open_hour!(), " AT TIME ZONE 'UTC')::date")
    };
}
/// How much of the ledger one request totals at most ([`CLOSE_LEDGER_HOURS`]): the default
/// period's, so that its first request totals it whole. 1.6 s on the bench's 10M cluster.
macro_rules! closing_span {
    () => {
        "31 days"
    };
}
/// The ledger's totals by type, named after the types.
macro_rules! by_type {
    () => {
        concat!(
            of_type!("purchase"),
            " AS purchase, ",
            of_type!("usage"),
            " AS usage, ",
            of_type!("bonus"),
            " AS bonus, ",
            of_type!("refund"),
            " AS refund, ",
            of_type!("admin_adjustment"),
            " AS admin_adjustment"
        )
    };
}
/// The sum of the ledger's entries of one type.
macro_rules! of_type {
    ($type:literal) => {
        concat!("sum(amount) FILTER (WHERE type = '", $type, "')")
    };
}

crate::db::statements! {
    /// The period's snapshot while it is under $2 seconds old and of this release's shape
    /// ($3). A request moves the period's `requested_at` forward once an hour at most, so
    /// [`WARMED`] knows what admins look at. A row whose `figures` the release before kept
    /// (V0044) holds no snapshot of this one's.
    pub const SNAPSHOT = "WITH requested AS (
            UPDATE system_analytics SET requested_at = now()
            WHERE days = $1 AND requested_at < now() - interval '1 hour')
        SELECT body FROM system_analytics
        WHERE days = $1 AND generated_at > now() - make_interval(secs => $2)
            AND shape = $3 AND figures IS NULL";
    /// Keeps the figures read in a snapshot as their period's JSON ($3, of shape $4), unless a
    /// later snapshot's are kept already (two requests may read a period at once). Read for a
    /// request ($5), the period counts as asked for now: one only ever read afresh would
    /// otherwise leave [`WARMED`] after a day, and its closed days' sums be dropped at every
    /// warming.
    pub const KEEP = "INSERT INTO system_analytics (days, generated_at, body, shape, requested_at)
        VALUES ($1, $2, $3, $4, now())
        ON CONFLICT (days) DO UPDATE SET generated_at = EXCLUDED.generated_at,
            figures = NULL, body = EXCLUDED.body, shape = EXCLUDED.shape,
            requested_at = CASE WHEN $5 THEN EXCLUDED.requested_at
                ELSE system_analytics.requested_at END
        WHERE system_analytics.generated_at < EXCLUDED.generated_at";
    /// The periods asked for in the last day, the most recently asked first, $1 at most.
    pub const WARMED = "SELECT days FROM system_analytics
        WHERE requested_at > now() - interval '1 day'
        ORDER BY requested_at DESC, days LIMIT $1";
    /// The users from the sign-ups counted per day (V0040), the suspended ones from their
    /// index.
    pub const USERS = concat!(
        "SELECT now() AS generated_at,
            (SELECT COALESCE(sum(created), 0) FROM user_days)::bigint AS total,
            (SELECT COALESCE(sum(created), 0) FROM user_days
             WHERE day >= ", since_day!(), ")::bigint AS new,
            (SELECT count(*) FROM users WHERE status = 'suspended') AS suspended"
    );
    /// Totals the ledger's closed hours of the period that `ledger_hours` lacks, oldest
    /// first, those of one span at most (`closing_span!`), in one read of their entries. Hours
    /// with no entry get their zeros too. Answers the first hour of the period from which
    /// [`CREDITS`] must read the entries themselves: every hour before it has its totals
    /// now. That is the first open hour once the period is caught up, and a request never
    /// reads more of the ledger to total it than a span's entries. A caught-up period is
    /// told by the count of totalled hours its days hold (V0038), without looking each hour
    /// up: its hours are all closed ones, so its days hold as many as it has closed once
    /// every one is totalled (counting a year's hours themselves took 0.9 ms, looking each
    /// up 2.5).
    pub const CLOSE_LEDGER_HOURS = concat!(
        "WITH missing AS MATERIALIZED (
            SELECT h AS hour
            FROM generate_series(", since!(), ", ", open_hour!(), " - interval '1 hour',
                interval '1 hour') h
            WHERE (SELECT COALESCE(sum(hours), 0) FROM ledger_days
                   WHERE day >= ", since_day!(), " AND day <= ", open_day!(), ")
                < extract(epoch FROM ", open_hour!(), " - ", since!(), ") / 3600
                AND NOT EXISTS (SELECT FROM ledger_hours l WHERE l.hour = h)),
        span AS MATERIALIZED (
            SELECT min(hour) AS first, min(hour) + interval '", closing_span!(), "' AS past
            FROM missing),
        entries AS (
            SELECT date_trunc('hour', created_at, 'UTC') AS hour, ", by_type!(), "
            FROM credit_transactions
            WHERE created_at >= (SELECT first FROM span)
                AND created_at < (SELECT past FROM span)
            GROUP BY 1),
        closed AS (
            INSERT INTO ledger_hours (hour, purchase, usage, bonus, refund, admin_adjustment)
            SELECT hour, COALESCE(purchase, 0), COALESCE(usage, 0), COALESCE(bonus, 0),
                COALESCE(refund, 0), COALESCE(admin_adjustment, 0)
            FROM missing LEFT JOIN entries USING (hour)
            WHERE hour < (SELECT past FROM span)
            ON CONFLICT (hour) DO NOTHING
            RETURNING hour)
        SELECT COALESCE((SELECT min(hour) FROM missing WHERE hour >= (SELECT past FROM span)),
                ", open_hour!(), ") AS read_from,
            (SELECT count(*) FROM closed) AS closed"
    );
    /// $2 is the hour [`CLOSE_LEDGER_HOURS`] answers: the period's hours before it are read
    /// from their totals, the rest from the ledger; those of the days before its day from
    /// the days' totals (V0038), which hold all their hours, and those of its day from the
    /// hours'. Each pair of bounds is two conditions, not the `greatest` of them, so that
    /// Postgres judges how many rows follow $2 by its value: it cannot judge a bound only
    /// known when the statement runs, and takes it for a third of the ledger (a parallel
    /// scan, 11 ms).
    pub const CREDITS = concat!(
        "WITH closed AS (
            SELECT sum(purchase) AS purchase, sum(usage) AS usage, sum(bonus) AS bonus,
                sum(refund) AS refund, sum(admin_adjustment) AS admin_adjustment
            FROM (
                SELECT purchase, usage, bonus, refund, admin_adjustment FROM ledger_days
                WHERE day >= ", since_day!(), "
                    AND day < ($2::timestamptz AT TIME ZONE 'UTC')::date
                UNION ALL
                SELECT purchase, usage, bonus, refund, admin_adjustment FROM ledger_hours
                WHERE hour >= ", since!(), "
                    AND hour >= date_trunc('day', $2::timestamptz, 'UTC') AND hour < $2) totalled),
        open AS (
            SELECT ", by_type!(), " FROM credit_transactions
            WHERE created_at >= $2::timestamptz AND created_at >= ", since!(), ")
        SELECT (COALESCE(closed.purchase, 0) + COALESCE(open.purchase, 0))::bigint AS sold,
            (-COALESCE(closed.usage, 0) - COALESCE(open.usage, 0))::bigint AS used,
            (COALESCE(closed.bonus, 0) + COALESCE(open.bonus, 0))::bigint AS bonus,
            (-COALESCE(closed.refund, 0) - COALESCE(open.refund, 0))::bigint AS refunded,
            (COALESCE(closed.admin_adjustment, 0) + COALESCE(open.admin_adjustment, 0))::bigint
                AS adjustments
        FROM closed, open"
    );
    /// Whether the period's closed days have their sums ([`SUM_CLOSED_DAYS`]).
    pub const CLOSED_DAYS_SUMMED =
        concat!("SELECT EXISTS (SELECT FROM ", summed_period!(), ") AS summed");
    /// Takes the period's turn to sum its closed days (its row, locked by an update that
    /// changes nothing): a second reader waits here, then finds them summed.
    pub const TAKE_CLOSED_DAYS = "INSERT INTO closed_day_periods (days) VALUES ($1)
        ON CONFLICT (days) DO UPDATE SET days = EXCLUDED.days";
    pub const CLEAR_CLOSED_DAYS = "DELETE FROM closed_day_sums WHERE days = $1";
    /// Drops the closed days' sums of the periods but $1: a tenant's row for each period
    /// once asked for would otherwise stay.
    pub const FORGET_CLOSED_DAYS = "WITH periods AS (
            DELETE FROM closed_day_periods WHERE days <> ALL($1))
        DELETE FROM closed_day_sums WHERE days <> ALL($1)";
    /// Sums each tenant's rollups over the period's days up to the last closed one, and
    /// keeps those two days and the count of late changes they were read with: read in the
    /// same snapshot, a change either is in the sums or made the count move on. For
    /// [`TENANTS`], the period's row keeps the sums' totals too, the tenth highest use of
    /// credits among the tenants with a call or chat (NULL if fewer have one), and those
    /// tenants' bitmap (bit n: the tenant numbered n, `users.seq`).
    pub const SUM_CLOSED_DAYS = concat!(
        "WITH summed AS (
            INSERT INTO closed_day_sums
                (days, user_id, calls, chats, duration_seconds, credits_used)
            SELECT $1, user_id, sum(calls), sum(chats), sum(duration_seconds::int),
                sum(credits_used::int)
            FROM daily_tenant_stats
            WHERE day >= ", since_day!(), " AND day <= ", last_closed_day!(), "
            GROUP BY user_id
            RETURNING user_id, calls, chats, duration_seconds, credits_used),
        active AS (
            SELECT u.seq FROM summed s JOIN users u ON u.id = s.user_id
            WHERE s.calls + s.chats > 0),
        totals AS (
            SELECT count(*) AS tenants, count(*) FILTER (WHERE calls + chats > 0) AS active,
                COALESCE(sum(calls), 0)::bigint AS calls, COALESCE(sum(chats), 0)::bigint AS chats,
                COALESCE(sum(duration_seconds), 0)::bigint AS duration_seconds,
                COALESCE(sum(credits_used), 0)::bigint AS credits_used,
                (SELECT credits_used FROM summed WHERE calls + chats > 0
                 ORDER BY credits_used DESC OFFSET 9 LIMIT 1) AS tenth,
                (SELECT COALESCE(string_agg(CASE WHEN a.seq IS NULL THEN '0' ELSE '1' END, ''
                            ORDER BY n), '')::varbit
                 FROM generate_series(0, (SELECT max(seq) FROM active)) n
                     LEFT JOIN active a ON a.seq = n) AS active_tenants
            FROM summed)
        UPDATE closed_day_periods
        SET since = ", since_day!(), ", through = ", last_closed_day!(), ",
            late = (SELECT late FROM closed_day_changes), totals_since = ", since_day!(), ",
            totals_through = ", last_closed_day!(), ",
            totals_late = (SELECT late FROM closed_day_changes), active = t.active, calls = t.calls,
            chats = t.chats, duration_seconds = t.duration_seconds,
            credits_used = t.credits_used, tenth = t.tenth, active_tenants = t.active_tenants
        FROM totals t
        WHERE days = $1
        RETURNING t.tenants"
    );
    /// The period's call totals, its active tenants and its top ten, from its tenants' days
    /// (V0035). While the closed days' sums hold in this snapshot (`closed`), they are the
    /// closed days' totals and each tenant's sums are those plus its days after them, the open
    /// ones (`open_days`); else every day of the period is open (each branch runs only under
    /// its one-time condition). Every row carries the totals; a period without calls has one
    /// row, with no tenant.
    ///
    /// The open days' rows are read once (8,703 tenants at the end of a busy day at ten
    /// million calls) and grouped only for the top ten's few candidates, and the closed days'
    /// sums of every tenant (10,000) are never read: their totals are kept with them; a tenant
    /// of the open days is a newly active one if its bit in their bitmap is not set; and the
    /// top ten are found among few candidates. The tenth highest closed use (`tenth`, c) is a
    /// bound the tenth highest total reaches (those ten tenants' totals are no lower), and for
    /// any s, a tenant whose total reaches c used either more than s on the open days, so more
    /// than s / n on one of its days if there are n open days (`span`), or at least c - s on
    /// the closed ones. With s the tenth highest of the open days' rows, the first are few,
    /// and, c being far above s, so are the second: the closed sums just above c (an index
    /// range). A bound at or under 0 takes every open tenant. Sums are `bigint` and each day's
    /// figures are summed as `int`: Postgres sums `bigint` as `numeric` (a tenant's day would
    /// need 24,855 calls at once, all day, to pass an `int`). The open days' bounds are
    /// written out, not taken from `span`: Postgres judges how many rows they hold by their
    /// value only then.
    pub const TENANTS = concat!(
        "WITH closed AS MATERIALIZED (
            SELECT p.active, p.calls, p.chats, p.duration_seconds, p.credits_used, p.tenth,
                p.active_tenants
            FROM ", summed_period!(), "),
        span AS MATERIALIZED (
            SELECT greatest((SELECT max(day) FROM daily_tenant_stats) - first + 1, 1) AS days
            FROM (SELECT CASE WHEN EXISTS (SELECT FROM closed)
                      THEN greatest(", last_closed_day!(), " + 1, ", since_day!(), ")
                      ELSE ", since_day!(), " END AS first) open),
        open_days AS MATERIALIZED (
            SELECT user_id, tenant_seq, calls, chats, duration_seconds, credits_used
            FROM daily_tenant_stats
            WHERE day > ", last_closed_day!(), " AND day >= ", since_day!(), "
                AND EXISTS (SELECT FROM closed)
            UNION ALL
            SELECT user_id, tenant_seq, calls, chats, duration_seconds, credits_used
            FROM daily_tenant_stats
            WHERE day >= ", since_day!(), " AND NOT EXISTS (SELECT FROM closed)),
        open AS (
            SELECT COALESCE(sum(t.calls), 0)::bigint AS calls,
                COALESCE(sum(t.chats), 0)::bigint AS chats,
                COALESCE(sum(t.duration_seconds::int), 0)::bigint AS duration_seconds,
                COALESCE(sum(t.credits_used::int), 0)::bigint AS credits_used,
                count(DISTINCT t.user_id) FILTER (WHERE t.calls + t.chats > 0
                    AND NOT COALESCE(t.tenant_seq < bit_length(c.bits)
                        AND get_bit(c.bits, t.tenant_seq) = 1, false)) AS newly_active
            FROM open_days t, (SELECT (SELECT active_tenants FROM closed) AS bits) c),
        totals AS (
            SELECT COALESCE(c.active, 0) + o.newly_active AS active,
                COALESCE(c.calls, 0) + o.calls AS calls, COALESCE(c.chats, 0) + o.chats AS chats,
                (COALESCE(c.duration_seconds, 0) + o.duration_seconds) / 60 AS minutes,
                COALESCE(c.credits_used, 0) + o.credits_used AS billed_minutes
            FROM open o LEFT JOIN closed c ON true),
        bounds AS MATERIALIZED (
            SELECT s, COALESCE((SELECT tenth FROM closed), 0) - s AS closed_from
            FROM (SELECT COALESCE((SELECT credits_used FROM open_days WHERE calls + chats > 0
                      ORDER BY credits_used DESC OFFSET 9 LIMIT 1), 0) AS s
                  OFFSET 0) open_tenth),
        closed_sums AS NOT MATERIALIZED (
            SELECT user_id, credits_used, calls + chats AS calls
            FROM closed_day_sums
            WHERE days = $1 AND calls + chats > 0 AND EXISTS (SELECT FROM closed)),
        named AS (
            SELECT user_id FROM closed_sums
            WHERE credits_used >= (SELECT closed_from FROM bounds)
            UNION
            SELECT user_id FROM open_days
            WHERE credits_used > (SELECT s FROM bounds) / (SELECT days FROM span)
                OR (SELECT closed_from FROM bounds) <= 0),
        candidates AS (
            SELECT n.user_id, COALESCE(s.credits_used, 0) + COALESCE(o.credits_used, 0)
                    AS credits_used,
                COALESCE(s.calls, 0) + COALESCE(o.calls, 0) AS calls
            FROM named n
                LEFT JOIN LATERAL (
                    SELECT credits_used, calls FROM closed_sums s
                    WHERE s.user_id = n.user_id OFFSET 0) s ON true
                LEFT JOIN (
                    SELECT user_id, sum(calls + chats) AS calls, sum(credits_used) AS credits_used
                    FROM open_days WHERE user_id IN (SELECT user_id FROM named)
                    GROUP BY user_id) o USING (user_id)),
        top AS (
            SELECT t.user_id, u.email, t.credits_used::bigint AS tenant_credits_used,
                t.calls::bigint AS tenant_calls
            FROM (SELECT * FROM candidates WHERE calls > 0
                  ORDER BY credits_used DESC, calls DESC, user_id LIMIT 10) t
            JOIN users u ON u.id = t.user_id)
        SELECT totals.*, top.* FROM totals LEFT JOIN top ON true
        ORDER BY top.tenant_credits_used DESC, top.tenant_calls DESC, top.user_id"
    );
    pub const REVENUE_TOTAL = concat!(
        "SELECT currency, sum(amount)::bigint AS amount
        FROM ", revenue_days!(), " GROUP BY currency HAVING sum(purchases) > 0 ORDER BY currency"
    );
    pub const REVENUE_BY_DAY = concat!(
        "SELECT day, currency, sum(amount)::bigint AS amount, sum(purchases)::bigint AS purchases
        FROM ", revenue_days!(), " GROUP BY 1, 2 HAVING sum(purchases) > 0 ORDER BY 1, 2"
    );
    pub const REVENUE_BY_PACKAGE = concat!(
        "SELECT package_id, currency, sum(amount)::bigint AS amount,
        sum(purchases)::bigint AS purchases, sum(credits)::bigint AS credits
        FROM ", revenue_days!(), " GROUP BY 1, 2 HAVING sum(purchases) > 0
        ORDER BY amount DESC, package_id, currency"
    );
}
