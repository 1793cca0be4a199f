//! System-wide figures for the admin dashboard, over the last `days` days (UTC): users (new,
//! active), calls and minutes, credits sold and used, revenue by day and by package, and the
//! tenants that used the most. Calls and credits come from the daily rollups the processor keeps.
//!
//! Requests are answered from a snapshot of their period's figures ([`cached`]) while it is
//! under [`MAX_AGE`], and the reconciler re-reads the periods admins look at ([`warm`]) before
//! their snapshots expire. Reading them adds the rollups of today (and, until 02:00 UTC,
//! yesterday) to the period's sums over its older days, which are read once
//! ([`sum_closed_days`], V0028) with their totals (V0033).

use crate::db::statements::Cached;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Client, GenericClient};
use serde::Serialize;
use std::{sync::LazyLock, time::Duration};
use tokio_postgres::{types::ToSql, IsolationLevel, Row};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Serialize, ToSchema)]
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

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserFigures {
    pub total: i64,
    pub new: i64,
    /// Users with at least one call or chat in the period.
    pub active: i64,
    pub suspended: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallFigures {
    pub calls: i64,
    pub chats: i64,
    /// Talk time, in whole minutes (rounded down over the period).
    pub minutes: i64,
    /// Minutes as billed: each call's started minutes (= credits used by calls).
    pub billed_minutes: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreditFigures {
    pub sold: i64,
    pub used: i64,
    pub bonus: i64,
    pub refunded: i64,
    pub admin_adjustments: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Revenue {
    /// Minor units, net of refunds, per currency.
    pub total: Vec<Amount>,
    pub by_day: Vec<DayRevenue>,
    pub by_package: Vec<PackageRevenue>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Amount {
    pub currency: String,
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayRevenue {
    pub day: NaiveDate,
    pub currency: String,
    pub amount: i64,
    pub purchases: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PackageRevenue {
    pub package_id: String,
    pub currency: String,
    pub amount: i64,
    pub purchases: i64,
    pub credits: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
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

pub mod sql;

/// The period's figures as JSON: its snapshot while that is under [`MAX_AGE`] (unless
/// `afresh`), sent as kept, else read now and kept as its snapshot.
pub async fn cached(db: &mut Client, days: i32, afresh: bool) -> AppResult<String> {
    if !afresh {
        let snapshot = db
            .cached_query_opt(sql::SNAPSHOT, &[&days, &MAX_AGE.as_secs_f64(), &shape()])
            .await?;
        if let Some(row) = snapshot {
            return Ok(row.try_get("body")?);
        }
    }
    refresh(db, days, ReadFor::Request).await
}

/// A fingerprint of the JSON [`SystemAnalytics`] is sent as, from its schema and those of the
/// types it holds: a snapshot a release with other figures kept is read again, not sent.
fn shape() -> i64 {
    static SHAPE: LazyLock<i64> = LazyLock::new(|| {
        let mut schemas = vec![(
            SystemAnalytics::name().into_owned(),
            SystemAnalytics::schema(),
        )];
        SystemAnalytics::schemas(&mut schemas);
        let schemas = serde_json::to_vec(&schemas).expect("a schema serializes");
        i64::from_ne_bytes(xxh3_64(&schemas).to_ne_bytes())
    });
    *SHAPE
}

/// Who reads a period afresh: a request, which counts as asking for it (as one answered from
/// its snapshot does), or the reconciler's warming, which does not: else every period it
/// warms would stay asked for.
#[derive(Clone, Copy, PartialEq)]
enum ReadFor {
    Request,
    Warming,
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
        refresh(db, days, ReadFor::Warming).await?;
    }
    db.cached_execute(sql::FORGET_CLOSED_DAYS, &[&periods])
        .await?;
    Ok(Warmed { periods })
}

async fn refresh(db: &mut Client, days: i32, read_for: ReadFor) -> AppResult<String> {
    let analytics = system(db, days).await?;
    let body = serde_json::to_string(&analytics).map_err(AppError::internal)?;
    let requested = read_for == ReadFor::Request;
    db.cached_execute(
        sql::KEEP,
        &[&days, &analytics.generated_at, &body, &shape(), &requested],
    )
    .await?;
    Ok(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape changes with any field of the figures, nested ones included: each type they
    /// hold is in the schemas it is taken from.
    #[test]
    fn the_shape_is_taken_from_every_type_the_figures_hold() {
        let mut schemas = Vec::new();
        SystemAnalytics::schemas(&mut schemas);
        let mut names: Vec<&str> = schemas.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names,
            [
                "Amount",
                "CallFigures",
                "CreditFigures",
                "DayRevenue",
                "PackageRevenue",
                "Revenue",
                "TopTenant",
                "UserFigures"
            ]
        );
    }
}
