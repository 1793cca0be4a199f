//! Users seen by the admin: search, one user's whole picture, credit adjustments, suspension.

use crate::db::filter::Total;
use crate::db::statements::{Cached, PlannedPerRun};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, Actor, Entry};
use crate::{
    agents::AgentType,
    billing::{self, Purchase},
    credits::{self, CreditChange, CreditKind, CreditTransaction},
    db::filter::{Filter, Keyset, Search},
    error::{AppError, AppResult},
    tenant::TenantId,
    users::{AuthProvider, Role, User, UserStatus},
};

/// A user as the admin lists them: design.md's User model (nullable `email` and `name` as in
/// the profile), with the role, the account status and any reason to review it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminUserSummary {
    pub id: Uuid,
    #[schema(required = true)]
    pub email: Option<String>,
    #[schema(required = true)]
    pub name: Option<String>,
    pub role: Role,
    pub status: UserStatus,
    /// False while suspended.
    pub is_active: bool,
    pub credits: i64,
    pub auth_provider: AuthProvider,
    /// Why an administrator should look at this tenant (a disputed payment); null otherwise.
    pub review_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn summary(row: &tokio_postgres::Row) -> AppResult<AdminUserSummary> {
    let user = User::try_from(row)?;
    Ok(AdminUserSummary {
        id: user.id,
        email: user.email,
        name: user.name,
        role: user.role,
        status: user.status,
        is_active: user.status == UserStatus::Active,
        credits: user.credits,
        auth_provider: user.auth_provider,
        review_reason: row.try_get("review_reason")?,
        created_at: user.created_at,
        updated_at: user.updated_at,
    })
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Part of the email or name, case-insensitive.
    pub search: Option<Search>,
    pub status: Option<UserStatus>,
}

pub mod sql {
    use super::{matching, UserFilter, NEWEST};
    use crate::users::UserStatus;

    macro_rules! summary_columns {
        () => {
            "id, email, name, role, status, credits, stats_version, auth_provider, auth_provider_checked_at,
             review_reason, created_at, updated_at"
        };
    }

    /// The rows the user list counts and pages through.
    pub const LIST_FROM: &str = "users";
    pub const LIST_SELECT: &str = concat!("SELECT ", summary_columns!(), " FROM users");

    crate::db::statements! {
        pub const SUMMARY_BY_ID = concat!("SELECT ", summary_columns!(), " FROM users WHERE id = $1");
        pub const AGENTS_OF_USER = "SELECT id, user_id, elevenlabs_agent_id, name, type, is_active, created_at, updated_at
            FROM agents WHERE user_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC";
        /// From the tenant's days (`daily_tenant_stats`, V0035) and its purchases in the ledger
        /// (an index of those alone, V0041): a tenant with a million calls has a million usage
        /// entries, which a request cannot sum.
        pub const USAGE = "SELECT COALESCE(sum(calls + chats), 0)::bigint AS calls,
                (COALESCE(sum(duration_seconds), 0) / 60)::bigint AS minutes,
                COALESCE(sum(credits_used), 0)::bigint AS used,
                (SELECT COALESCE(sum(amount), 0)::bigint FROM credit_transactions
                 WHERE user_id = $1 AND type = 'purchase') AS purchased,
                (SELECT COALESCE(started_at, created_at) FROM calls WHERE user_id = $1
                 ORDER BY created_at DESC, id DESC LIMIT 1) AS last_call_at
            FROM daily_tenant_stats WHERE user_id = $1";
        pub const SET_STATUS =
            "UPDATE users SET status = $2, updated_at = now() WHERE id = $1 AND status <> $2";
        pub const EXISTS = "SELECT 1 FROM users WHERE id = $1";
        pub const ROLE = "SELECT role FROM users WHERE id = $1";
        fullest {
            LIST_TOTAL = || every_filter().total_statement(LIST_FROM),
            LIST_PAGE = || every_filter().page_statement(LIST_SELECT, &NEWEST, true),
        }
    }

    fn every_filter() -> crate::db::filter::Filter {
        matching(&UserFilter {
            search: Some(crate::db::filter::Search::parse("a").expect("a search")),
            status: Some(UserStatus::Active),
        })
    }
}

const NEWEST: Keyset = Keyset::CREATED;

/// Newest first; the cursor is the last row's (created_at, id).
pub async fn list(
    client: &impl PlannedPerRun,
    filter: &UserFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> AppResult<(Vec<AdminUserSummary>, Total)> {
    let matching = matching(filter);
    let (rows, total) = matching
        .page_with_total(
            client,
            sql::LIST_FROM,
            sql::LIST_SELECT,
            &NEWEST,
            after,
            limit,
        )
        .await?;
    let users = rows.iter().map(summary).collect::<AppResult<_>>()?;
    Ok((users, total))
}

fn matching(filter: &UserFilter) -> Filter {
    let mut matching = Filter::default();
    matching.and_containing(&["email", "name"], filter.search.as_ref());
    matching.and_some(
        "status = $",
        filter.status.map(|s| match s {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
        }),
    );
    matching
}

/// One of a user's agents: design.md's Agent model and its type.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminAgentSummary {
    pub id: Uuid,
    pub user_id: Uuid,
    pub elevenlabs_agent_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AgentType,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a tenant has used, all time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Usage {
    /// Its finished calls and chats (completed or failed).
    pub calls: i64,
    /// Their length in whole minutes, as the system analytics' `minutes`.
    pub minutes: i64,
    /// The credits charged for them (a credit per started minute of each).
    pub credits_used: i64,
    /// The credits its purchases added.
    pub credits_purchased: i64,
    /// When its latest call started (or was placed, until it starts).
    pub last_call_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminUserDetail {
    #[serde(flatten)]
    pub user: AdminUserSummary,
    pub agents: Vec<AdminAgentSummary>,
    pub usage: Usage,
    pub purchases: Vec<Purchase>,
    pub recent_transactions: Vec<CreditTransaction>,
}

pub async fn detail(client: &impl PlannedPerRun, id: Uuid) -> AppResult<AdminUserDetail> {
    let user = client
        .cached_query_opt(sql::SUMMARY_BY_ID, &[&id])
        .await?
        .as_ref()
        .map(summary)
        .transpose()?
        .ok_or_else(|| AppError::not_found("user"))?;
    let tenant = TenantId::from_trusted(id);
    let agents = client
        .cached_query(sql::AGENTS_OF_USER, &[&id])
        .await?
        .iter()
        .map(|row| {
            Ok(AdminAgentSummary {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                elevenlabs_agent_id: row.try_get("elevenlabs_agent_id")?,
                name: row.try_get("name")?,
                kind: AgentType::from_db(row.try_get("type")?),
                is_active: row.try_get("is_active")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect::<AppResult<_>>()?;
    let usage = client.cached_query_one(sql::USAGE, &[&id]).await?;
    let (recent_transactions, _) = credits::history(client, tenant, None, None, 20).await?;
    Ok(AdminUserDetail {
        user,
        agents,
        usage: Usage {
            calls: usage.try_get("calls")?,
            minutes: usage.try_get("minutes")?,
            credits_used: usage.try_get("used")?,
            credits_purchased: usage.try_get("purchased")?,
            last_call_at: usage.try_get("last_call_at")?,
        },
        purchases: billing::list(client, tenant, 50, None).await?.0,
        recent_transactions,
    })
}

/// An admin's credit adjustment: an `admin_adjustment` ledger entry carrying the reason, and an
/// audit entry, in one transaction. `request_id` makes a retried request apply once.
pub async fn adjust_credits(
    tx: &impl GenericClient,
    actor: &Actor,
    user: Uuid,
    amount: i64,
    reason: &str,
    request_id: &str,
) -> AppResult<credits::Applied> {
    exists(tx, user).await?;
    let applied = credits::apply(
        tx,
        &CreditChange {
            tenant: TenantId::from_trusted(user),
            kind: CreditKind::AdminAdjustment,
            amount,
            reference: format!("admin:{request_id}"),
            description: reason.to_owned(),
            stripe_payment_id: None,
        },
    )
    .await?;
    if let credits::Applied::Duplicate(entry) = &applied {
        if entry.user_id != user || entry.amount != amount || entry.description != reason {
            return Err(AppError::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different adjustment",
            ));
        }
    }
    if let credits::Applied::New(entry) = &applied {
        audit::record(
            tx,
            actor,
            Entry {
                action: "user.credits_adjusted",
                target_type: "user",
                target_id: user.to_string(),
                details: json!({
                    "amount": amount, "reason": reason,
                    "balance_after": entry.balance_after, "transaction_id": entry.id,
                }),
            },
        )
        .await?;
    }
    Ok(applied)
}

/// Suspends or reactivates; returns false when the user already had that status.
pub async fn set_status(
    tx: &impl GenericClient,
    actor: &Actor,
    user: Uuid,
    status: UserStatus,
    reason: Option<&str>,
) -> AppResult<bool> {
    let role: String = tx
        .cached_query_opt(sql::ROLE, &[&user])
        .await?
        .ok_or_else(|| AppError::not_found("user"))?
        .try_get(0)?;
    if status == UserStatus::Suspended && user == actor.id {
        return Err(AppError::conflict(
            "cannot_suspend_self",
            "an admin cannot suspend their own account",
        ));
    }
    // One admin must not lock the others out (there is no route to make an admin again).
    if status == UserStatus::Suspended && role == "admin" {
        return Err(AppError::conflict(
            "cannot_suspend_admin",
            "an admin's account cannot be suspended",
        ));
    }
    let (value, action) = match status {
        UserStatus::Suspended => ("suspended", "user.suspended"),
        UserStatus::Active => ("active", "user.reactivated"),
    };
    let changed = tx.cached_execute(sql::SET_STATUS, &[&user, &value]).await? == 1;
    if changed {
        audit::record(
            tx,
            actor,
            Entry {
                action,
                target_type: "user",
                target_id: user.to_string(),
                details: json!({ "reason": reason }),
            },
        )
        .await?;
    }
    Ok(changed)
}

/// A suspended tenant's batches that could still place calls are cancelled at ElevenLabs.
pub async fn cancel_open_batches(state: &crate::AppState, user: Uuid) -> AppResult<usize> {
    crate::calls::batches::cancel_open(state, TenantId::from_trusted(user)).await
}

async fn exists(client: &impl GenericClient, user: Uuid) -> AppResult<()> {
    client
        .cached_query_opt(sql::EXISTS, &[&user])
        .await?
        .map(|_| ())
        .ok_or_else(|| AppError::not_found("user"))
}
