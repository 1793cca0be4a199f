//! System-wide figures for the admin dashboard, over the last `days` days (UTC): users (new,
//! active), calls and minutes, credits sold and used, revenue by day and by package, and the
//! tenants that used the most. Calls and credits come from the daily rollups the processor keeps.
//!
//! Requests are answered from a snapshot of their period's figures ([`cached`]) while it is
//! under [`MAX_AGE`], and the reconciler re-reads the periods admins look at ([`warm`]) before
//! their snapshots expire. Reading them adds each tenant's rollups of today (and, until 02:00
//! UTC, yesterday) to its sums over the period's older days, which are read once
//! ([`sum_closed_days`], V0028).

use crate::db::statements::Cached;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Client, GenericClient};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_postgres::{
    types::{Json, ToSql},
    IsolationLevel, Row,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SystemAnalytics {
    pub days: i32,
    /// When the figures were read: a snapshot answers requests for up to five minutes.
    pub generated_at: DateTime<Utc>,
    pub users: UserFigures,
    pub calls: CallFigures,
    pub credits: CreditFigures,
    pub revenue: Revenue,
    pub top_tenants: Vec<TopTenant>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserFigures {
    pub total: i64,
    pub new: i64,
    /// Users with at least one call or chat in the period.
    pub active: i64,
    pub suspended: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CallFigures {
    pub calls: i64,
    pub chats: i64,
    /// Talk time, in whole minutes (rounded down over the period).
    pub minutes: i64,
    /// Minutes as billed: each call's started minutes (= credits used by calls).
    pub billed_minutes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreditFigures {
    pub sold: i64,
    pub used: i64,
    pub bonus: i64,
    pub refunded: i64,
    pub admin_adjustments: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Revenue {
    /// Minor units, net of refunds, per currency.
    pub total: Vec<Amount>,
    pub by_day: Vec<DayRevenue>,
    pub by_package: Vec<PackageRevenue>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Amount {
    pub currency: String,
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DayRevenue {
    pub day: NaiveDate,
    pub currency: String,
    pub amount: i64,
    pub purchases: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackageRevenue {
    pub package_id: String,
    pub currency: String,
    pub amount: i64,
    pub purchases: i64,
    pub credits: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopTenant {
    pub user_id: Uuid,
    pub email: Option<String>,
    pub credits_used: i64,
    pub calls: i64,
}

/// The period a request names none: the dashboard's default.
pub const DEFAULT_DAYS: i32 = 30;

/// How old a period's snapshot may be and still answer a request. The reconciler re-reads the
/// periods asked for every two minutes (template.yaml), so a snapshot is rarely older than that.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// How many of the periods asked for in the last day [`warm`] re-reads, besides the default:
/// each is up to 0.4 s of the database's time at ten million calls (365 days).
const WARMED_PERIODS: i64 = 8;

pub mod sql {
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
    /// [`last_closed_day!`], an expression of `now()`.
    pub const LAST_CLOSED_DAY: &str = last_closed_day!();
    /// The period's closed days have their sums, read since the last late change (V0028).
    macro_rules! closed_days_summed {
        () => {
            concat!(
                "SELECT FROM closed_day_periods p JOIN closed_day_changes c ON c.late = p.late
                WHERE p.days = $1 AND p.through = ",
                last_closed_day!()
            )
        };
    }
    /// The period's first instant, evaluated once per statement: compared with many rows, the
    /// expression itself is evaluated for each (its time zone conversions, 1 ms over the
    /// 10,000 users of the bench, as much over a year of ledger hours).
    macro_rules! since {
        () => {
            "(SELECT ((now() AT TIME ZONE 'UTC')::date - ($1::int - 1))::timestamp AT TIME ZONE 'UTC')"
        };
    }
    macro_rules! paid {
        () => {
            concat!("status = 'paid' AND paid_at >= ", since!())
        };
    }

    /// The first hour whose ledger totals may still change: the hours before it ended over an
    /// hour ago (V0026).
    macro_rules! open_hour {
        () => {
            "date_trunc('hour', now() - interval '1 hour', 'UTC')"
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
        /// The period's snapshot while it is under $2 seconds old. A request moves the period's
        /// `requested_at` forward once an hour at most, so [`WARMED`] knows what admins look at.
        pub const SNAPSHOT = "WITH requested AS (
                UPDATE system_analytics SET requested_at = now()
                WHERE days = $1 AND requested_at < now() - interval '1 hour')
            SELECT figures FROM system_analytics
            WHERE days = $1 AND generated_at > now() - make_interval(secs => $2)";
        /// Keeps the figures read in a snapshot as their period's, unless a later snapshot's
        /// are kept already (two requests may read a period at once).
        pub const KEEP = "INSERT INTO system_analytics (days, generated_at, figures, requested_at)
            VALUES ($1, $2, $3, now())
            ON CONFLICT (days) DO UPDATE SET generated_at = EXCLUDED.generated_at,
                figures = EXCLUDED.figures
            WHERE system_analytics.generated_at < EXCLUDED.generated_at";
        /// The periods asked for in the last day, the most recently asked first, $1 at most.
        pub const WARMED = "SELECT days FROM system_analytics
            WHERE requested_at > now() - interval '1 day'
            ORDER BY requested_at DESC, days LIMIT $1";
        pub const USERS = concat!(
            "SELECT now() AS generated_at, count(*) AS total,
            count(*) FILTER (WHERE created_at >= ", since!(), ") AS new,
            count(*) FILTER (WHERE status = 'suspended') AS suspended
            FROM users"
        );
        /// Totals the ledger's closed hours of the period that `ledger_hours` lacks, oldest
        /// first, those of one span at most (`closing_span!`), in one read of their entries. Hours
        /// with no entry get their zeros too. Answers the first hour of the period from which
        /// [`CREDITS`] must read the entries themselves: every hour before it has its totals
        /// now. That is the first open hour once the period is caught up, and a request never
        /// reads more of the ledger to total it than a span's entries. A caught-up period is
        /// told by its count of totalled hours alone, without looking each hour up (0.9 ms for
        /// a year's, against 2.5).
        pub const CLOSE_LEDGER_HOURS = concat!(
            "WITH missing AS MATERIALIZED (
                SELECT h AS hour
                FROM generate_series(", since!(), ", ", open_hour!(), " - interval '1 hour',
                    interval '1 hour') h
                WHERE (SELECT count(*) FROM ledger_hours
                       WHERE hour >= ", since!(), " AND hour < ", open_hour!(), ")
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
        /// from their totals, the rest from the ledger. The entries' two bounds are two
        /// conditions, not the `greatest` of them, so that Postgres judges how many entries
        /// follow $2 by its value: it cannot judge a bound only known when the statement runs,
        /// and takes it for a third of the ledger (a parallel scan, 11 ms).
        pub const CREDITS = concat!(
            "WITH closed AS (
                SELECT sum(purchase) AS purchase, sum(usage) AS usage, sum(bonus) AS bonus,
                    sum(refund) AS refund, sum(admin_adjustment) AS admin_adjustment
                FROM ledger_hours WHERE hour >= ", since!(), " AND hour < $2),
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
        pub const CLOSED_DAYS_SUMMED = concat!("SELECT EXISTS (", closed_days_summed!(), ") AS summed");
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
        /// keeps the count of late changes they were read with: read in the same snapshot, a
        /// change either is in the sums or made the count move on.
        pub const SUM_CLOSED_DAYS = concat!(
            "WITH summed AS (
                INSERT INTO closed_day_sums
                    (days, user_id, calls, chats, duration_seconds, credits_used)
                SELECT $1, user_id, sum(calls), sum(chats), sum(duration_seconds::int),
                    sum(credits_used::int)
                FROM daily_agent_stats
                WHERE day >= ", since_day!(), " AND day <= ", last_closed_day!(), "
                GROUP BY user_id
                RETURNING 1)
            UPDATE closed_day_periods
            SET through = ", last_closed_day!(), ", late = (SELECT late FROM closed_day_changes)
            WHERE days = $1
            RETURNING (SELECT count(*) FROM summed) AS tenants"
        );
        /// One pass over the period's rollups, summed per tenant: the call totals, the active
        /// tenants and the top ten, all from the same sums (the ten picked before their e-mails
        /// are joined: 2 ms, against 7 to 15 for every tenant's). Every row carries the totals;
        /// a period without calls has one row, with no tenant. While the closed days' sums hold
        /// in this snapshot, a tenant's sums are those plus its rows of the days after them;
        /// else its rows of the whole period (each branch runs only under its one-time
        /// condition). The closed days' sums are joined, not summed again, and a tenant's sums
        /// are `bigint`: Postgres sums `bigint` as `numeric`, and `int` into a `bigint`, so
        /// each rollup's figures are summed as `int` (an agent's day would need 24,855 calls at
        /// once, all day, to pass it). 17 ms at ten million calls with the closed days' sums
        /// `bigint`, against 22.5 with both sorts of row summed as `numeric`; 2 to 4 ms less
        /// with the open days' rows summed as `int` too.
        pub const TENANTS = concat!(
            "WITH summed AS MATERIALIZED (", closed_days_summed!(), "),
            unclosed AS (
                SELECT user_id, sum(calls) AS calls, sum(chats) AS chats,
                    sum(duration_seconds::int) AS duration_seconds,
                    sum(credits_used::int) AS credits_used
                FROM (SELECT user_id, calls, chats, duration_seconds, credits_used
                      FROM daily_agent_stats
                      WHERE day > ", last_closed_day!(), " AND day >= ", since_day!(), "
                          AND EXISTS (SELECT FROM summed)
                      UNION ALL
                      SELECT user_id, calls, chats, duration_seconds, credits_used
                      FROM daily_agent_stats
                      WHERE day >= ", since_day!(), " AND NOT EXISTS (SELECT FROM summed)) rollups
                GROUP BY user_id),
            closed AS (
                SELECT user_id, calls, chats, duration_seconds, credits_used
                FROM closed_day_sums WHERE days = $1 AND EXISTS (SELECT FROM summed)),
            tenants AS MATERIALIZED (
                SELECT user_id,
                    COALESCE(c.calls, 0) + COALESCE(o.calls, 0) AS calls,
                    COALESCE(c.chats, 0) + COALESCE(o.chats, 0) AS chats,
                    COALESCE(c.duration_seconds, 0) + COALESCE(o.duration_seconds, 0)
                        AS duration_seconds,
                    COALESCE(c.credits_used, 0) + COALESCE(o.credits_used, 0) AS credits_used
                FROM closed c FULL JOIN unclosed o USING (user_id)),
            totals AS (
                SELECT count(*) FILTER (WHERE calls + chats > 0) AS active,
                    COALESCE(sum(calls), 0)::bigint AS calls, COALESCE(sum(chats), 0)::bigint AS chats,
                    COALESCE(sum(duration_seconds), 0)::bigint / 60 AS minutes,
                    COALESCE(sum(credits_used), 0)::bigint AS billed_minutes
                FROM tenants),
            top AS (
                SELECT t.user_id, u.email, t.credits_used::bigint AS tenant_credits_used,
                    (t.calls + t.chats)::bigint AS tenant_calls
                FROM (SELECT * FROM tenants
                      ORDER BY credits_used DESC, calls + chats DESC, user_id LIMIT 10) t
                JOIN users u ON u.id = t.user_id)
            SELECT totals.*, top.* FROM totals LEFT JOIN top ON true
            ORDER BY top.tenant_credits_used DESC, top.tenant_calls DESC, top.user_id"
        );
        pub const REVENUE_TOTAL = concat!(
            "SELECT currency, sum(amount - amount_refunded)::bigint AS amount
            FROM purchases WHERE ", paid!(), " GROUP BY currency ORDER BY currency"
        );
        pub const REVENUE_BY_DAY = concat!(
            "SELECT (paid_at AT TIME ZONE 'UTC')::date AS day, currency,
            sum(amount - amount_refunded)::bigint AS amount, count(*) AS purchases
            FROM purchases WHERE ", paid!(), " GROUP BY 1, 2 ORDER BY 1, 2"
        );
        pub const REVENUE_BY_PACKAGE = concat!(
            "SELECT package_id, currency, sum(amount - amount_refunded)::bigint AS amount,
            count(*) AS purchases, sum(credits - credits_refunded)::bigint AS credits
            FROM purchases WHERE ", paid!(), " GROUP BY 1, 2 ORDER BY amount DESC"
        );
    }
}

/// The period's figures: its snapshot while that is under [`MAX_AGE`] (unless `afresh`), else
/// read now and kept as its snapshot.
pub async fn cached(db: &mut Client, days: i32, afresh: bool) -> AppResult<SystemAnalytics> {
    if !afresh {
        let snapshot = db
            .cached_query_opt(sql::SNAPSHOT, &[&days, &MAX_AGE.as_secs_f64()])
            .await?;
        if let Some(row) = snapshot {
            match row.try_get::<_, Json<SystemAnalytics>>("figures") {
                Ok(Json(analytics)) => return Ok(analytics),
                // Kept by a release whose figures had another shape: read them again.
                Err(err) => {
                    tracing::warn!(error = %err, days, "system analytics snapshot unreadable")
                }
            }
        }
    }
    refresh(db, days).await
}

/// What [`warm`] re-read.
#[derive(Debug, Serialize)]
pub struct Warmed {
    pub periods: Vec<i32>,
}

/// Re-reads the periods asked for in the last day (the most recent [`WARMED_PERIODS`]) and the
/// default one, so that requests find their snapshots fresh, and drops the closed days' sums of
/// every other period: a period asked for again sums them again.
pub async fn warm(db: &mut Client) -> AppResult<Warmed> {
    let mut periods = db
        .cached_query(sql::WARMED, &[&WARMED_PERIODS])
        .await?
        .iter()
        .map(|row| row.try_get("days"))
        .collect::<Result<Vec<i32>, _>>()?;
    if !periods.contains(&DEFAULT_DAYS) {
        periods.push(DEFAULT_DAYS);
    }
    for &days in &periods {
        refresh(db, days).await?;
    }
    db.cached_execute(sql::FORGET_CLOSED_DAYS, &[&periods])
        .await?;
    Ok(Warmed { periods })
}

async fn refresh(db: &mut Client, days: i32) -> AppResult<SystemAnalytics> {
    let analytics = system(db, days).await?;
    db.cached_execute(
        sql::KEEP,
        &[&days, &analytics.generated_at, &Json(&analytics)],
    )
    .await?;
    Ok(analytics)
}

/// Reads every figure from one snapshot, so a call landing mid-request is counted everywhere or
/// nowhere (the top tenants never show a call the totals miss). The ledger's newly closed hours
/// are totalled and the rollups' closed days summed first, in transactions of their own: the
/// snapshot itself only reads.
pub async fn system(db: &mut Client, days: i32) -> AppResult<SystemAnalytics> {
    // One round trip: both go out together.
    let (read_from, summed) = tokio::try_join!(
        close_ledger_hours(&*db, days),
        closed_days_summed(&*db, days),
    )?;
    if !summed {
        sum_closed_days(db, days).await?;
    }
    let snapshot = db
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let analytics = read(&snapshot, days, read_from).await?;
    snapshot.commit().await?;
    Ok(analytics)
}

/// Sums each tenant's rollups over the period's closed days (up to [`sql::LAST_CLOSED_DAY`]), unless
/// they are summed since the last late change to one of them. Two readers take turns; the
/// second finds them summed.
pub async fn sum_closed_days(db: &mut Client, days: i32) -> AppResult<()> {
    let tx = db.transaction().await?;
    tx.cached_execute(sql::TAKE_CLOSED_DAYS, &[&days]).await?;
    // Read after the turn was taken: what a reader before us summed, if any.
    if closed_days_summed(&tx, days).await? {
        // Nothing to write: the turn's own update of the row is dropped.
        tx.rollback().await?;
        return Ok(());
    }
    tx.cached_execute(sql::CLEAR_CLOSED_DAYS, &[&days]).await?;
    let tenants: i64 = tx
        .cached_query_one(sql::SUM_CLOSED_DAYS, &[&days])
        .await?
        .try_get("tenants")?;
    tx.commit().await?;
    tracing::info!(days, tenants, "closed days summed");
    Ok(())
}

async fn closed_days_summed(client: &impl GenericClient, days: i32) -> AppResult<bool> {
    let row = client
        .cached_query_one(sql::CLOSED_DAYS_SUMMED, &[&days])
        .await?;
    Ok(row.try_get("summed")?)
}

/// Totals the period's closed ledger hours not totalled yet, a span at most
/// ([`sql::CLOSE_LEDGER_HOURS`]), and answers the first hour whose entries [`sql::CREDITS`]
/// must still read one by one.
pub async fn close_ledger_hours(
    client: &impl GenericClient,
    days: i32,
) -> AppResult<DateTime<Utc>> {
    let row = client
        .cached_query_one(sql::CLOSE_LEDGER_HOURS, &[&days])
        .await?;
    let closed: i64 = row.try_get("closed")?;
    if closed > 0 {
        tracing::info!(closed, "ledger hours totalled");
    }
    Ok(row.try_get("read_from")?)
}

async fn read(
    client: &impl GenericClient,
    days: i32,
    read_from: DateTime<Utc>,
) -> AppResult<SystemAnalytics> {
    // One round trip: prepared first, the statements go out together and Postgres answers
    // them in turn.
    client
        .prepare_all(&[
            sql::USERS,
            sql::TENANTS,
            sql::CREDITS,
            sql::REVENUE_TOTAL,
            sql::REVENUE_BY_DAY,
            sql::REVENUE_BY_PACKAGE,
        ])
        .await?;
    let period: &[&(dyn ToSql + Sync)] = &[&days];
    let ledger: &[&(dyn ToSql + Sync)] = &[&days, &read_from];
    let (users, tenants, credits, total, by_day, by_package) = tokio::try_join!(
        client.cached_query_one(sql::USERS, period),
        client.cached_query(sql::TENANTS, period),
        client.cached_query_one(sql::CREDITS, ledger),
        client.cached_query(sql::REVENUE_TOTAL, period),
        client.cached_query(sql::REVENUE_BY_DAY, period),
        client.cached_query(sql::REVENUE_BY_PACKAGE, period),
    )?;
    let total = total
        .iter()
        .map(|row| {
            Ok(Amount {
                currency: row.try_get("currency")?,
                amount: row.try_get("amount")?,
            })
        })
        .collect::<AppResult<_>>()?;
    let by_day = by_day
        .iter()
        .map(|row| {
            Ok(DayRevenue {
                day: row.try_get("day")?,
                currency: row.try_get("currency")?,
                amount: row.try_get("amount")?,
                purchases: row.try_get("purchases")?,
            })
        })
        .collect::<AppResult<_>>()?;
    let by_package = by_package
        .iter()
        .map(|row| {
            Ok(PackageRevenue {
                package_id: row.try_get("package_id")?,
                currency: row.try_get("currency")?,
                amount: row.try_get("amount")?,
                purchases: row.try_get("purchases")?,
                credits: row.try_get("credits")?,
            })
        })
        .collect::<AppResult<_>>()?;
    let top_tenants = tenants
        .iter()
        .filter_map(|row| top_tenant(row).transpose())
        .collect::<AppResult<_>>()?;
    let calls = tenants
        .first()
        .ok_or_else(|| AppError::internal("the period's totals came without a row"))?;
    Ok(SystemAnalytics {
        days,
        generated_at: users.try_get("generated_at")?,
        users: UserFigures {
            total: users.try_get("total")?,
            new: users.try_get("new")?,
            active: calls.try_get("active")?,
            suspended: users.try_get("suspended")?,
        },
        calls: CallFigures {
            calls: calls.try_get("calls")?,
            chats: calls.try_get("chats")?,
            minutes: calls.try_get("minutes")?,
            billed_minutes: calls.try_get("billed_minutes")?,
        },
        credits: CreditFigures {
            sold: credits.try_get("sold")?,
            used: credits.try_get("used")?,
            bonus: credits.try_get("bonus")?,
            refunded: credits.try_get("refunded")?,
            admin_adjustments: credits.try_get("adjustments")?,
        },
        revenue: Revenue {
            total,
            by_day,
            by_package,
        },
        top_tenants,
    })
}

/// A row of [`sql::TENANTS`]' top ten, if it has one.
fn top_tenant(row: &Row) -> AppResult<Option<TopTenant>> {
    let Some(user_id) = row.try_get("user_id")? else {
        return Ok(None);
    };
    Ok(Some(TopTenant {
        user_id,
        email: row.try_get("email")?,
        credits_used: row.try_get("tenant_credits_used")?,
        calls: row.try_get("tenant_calls")?,
    }))
}
