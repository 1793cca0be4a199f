//! System-wide figures for the admin dashboard, over the last `days` days (UTC): users (new,
//! active), calls and minutes, credits sold and used, revenue by day and by package, and the
//! tenants that used the most. Calls and credits come from the daily rollups the processor keeps.

use crate::db::statements::Cached;
use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use serde::Serialize;
use tokio_postgres::IsolationLevel;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::AppResult;
use crate::AppState;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemAnalytics {
    pub days: i32,
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

pub mod sql {
    // Days are UTC days, like the rollups' and the revenue series'; $1 is the number of days.
    macro_rules! since_day {
        () => {
            "((now() AT TIME ZONE 'UTC')::date - ($1::int - 1))"
        };
    }
    macro_rules! since {
        () => {
            "(((now() AT TIME ZONE 'UTC')::date - ($1::int - 1))::timestamp AT TIME ZONE 'UTC')"
        };
    }
    macro_rules! paid {
        () => {
            concat!("status = 'paid' AND paid_at >= ", since!())
        };
    }

    crate::db::statements! {
        pub const USERS = concat!(
            "SELECT count(*) AS total,
            count(*) FILTER (WHERE created_at >= ", since!(), ") AS new,
            count(*) FILTER (WHERE status = 'suspended') AS suspended,
            (SELECT count(DISTINCT user_id) FROM daily_agent_stats
            WHERE day >= ", since_day!(), " AND calls + chats > 0) AS active
            FROM users"
        );
        pub const CALLS = concat!(
            "SELECT COALESCE(sum(calls), 0)::bigint AS calls, COALESCE(sum(chats), 0)::bigint AS chats,
            COALESCE(sum(duration_seconds), 0)::bigint / 60 AS minutes,
            COALESCE(sum(credits_used), 0)::bigint AS billed_minutes
            FROM daily_agent_stats WHERE day >= ", since_day!()
        );
        pub const CREDITS = concat!(
            "SELECT COALESCE(sum(amount) FILTER (WHERE type = 'purchase'), 0)::bigint AS sold,
            COALESCE(-sum(amount) FILTER (WHERE type = 'usage'), 0)::bigint AS used,
            COALESCE(sum(amount) FILTER (WHERE type = 'bonus'), 0)::bigint AS bonus,
            COALESCE(-sum(amount) FILTER (WHERE type = 'refund'), 0)::bigint AS refunded,
            COALESCE(sum(amount) FILTER (WHERE type = 'admin_adjustment'), 0)::bigint AS adjustments
            FROM credit_transactions WHERE created_at >= ", since!()
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
        pub const TOP_TENANTS = concat!(
            "SELECT s.user_id, u.email, sum(s.credits_used)::bigint AS credits_used,
            sum(s.calls + s.chats)::bigint AS calls
            FROM daily_agent_stats s JOIN users u ON u.id = s.user_id
            WHERE s.day >= ", since_day!(), "
            GROUP BY s.user_id, u.email ORDER BY credits_used DESC, calls DESC LIMIT 10"
        );
    }
}

/// Reads every figure from one snapshot, so a call landing mid-request is counted everywhere or
/// nowhere (the top tenants never show a call the totals miss).
pub async fn system(state: &AppState, days: i32) -> AppResult<SystemAnalytics> {
    let mut db = state.db().get().await?;
    let snapshot = db
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let analytics = read(&snapshot, days).await?;
    snapshot.commit().await?;
    Ok(analytics)
}

async fn read(client: &impl GenericClient, days: i32) -> AppResult<SystemAnalytics> {
    let users = client.cached_query_one(sql::USERS, &[&days]).await?;
    let calls = client.cached_query_one(sql::CALLS, &[&days]).await?;
    let credits = client.cached_query_one(sql::CREDITS, &[&days]).await?;
    let total = client
        .cached_query(sql::REVENUE_TOTAL, &[&days])
        .await?
        .iter()
        .map(|row| {
            Ok(Amount {
                currency: row.try_get("currency")?,
                amount: row.try_get("amount")?,
            })
        })
        .collect::<AppResult<_>>()?;
    let by_day = client
        .cached_query(sql::REVENUE_BY_DAY, &[&days])
        .await?
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
    let by_package = client
        .cached_query(sql::REVENUE_BY_PACKAGE, &[&days])
        .await?
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
    let top_tenants = client
        .cached_query(sql::TOP_TENANTS, &[&days])
        .await?
        .iter()
        .map(|row| {
            Ok(TopTenant {
                user_id: row.try_get("user_id")?,
                email: row.try_get("email")?,
                credits_used: row.try_get("credits_used")?,
                calls: row.try_get("calls")?,
            })
        })
        .collect::<AppResult<_>>()?;
    Ok(SystemAnalytics {
        days,
        users: UserFigures {
            total: users.try_get("total")?,
            new: users.try_get("new")?,
            active: users.try_get("active")?,
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
