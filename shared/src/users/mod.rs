//! Users (tenants): created on their first authenticated request with the signup bonus,
//! exactly once however many first requests race.

use crate::db::statements::Cached;
use chrono::{DateTime, Utc};
use deadpool_postgres::Client;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    credits::{self, CreditChange, CreditKind},
    email::{self, Email},
    error::{AppError, AppResult},
    tenant::TenantId,
};

/// Free credits every new account starts with.
pub const SIGNUP_BONUS_CREDITS: i64 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Suspended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthProvider {
    Email,
    Google,
    Linkedin,
}

impl AuthProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Google => "google",
            Self::Linkedin => "linkedin",
        }
    }

    /// The account's sign-in, from the ids of its connected OAuth providers (the first
    /// social one, in the identity provider's order); email when it has none.
    pub fn from_oauth(providers: &[String]) -> Self {
        providers
            .iter()
            .find_map(|id| match id.as_str() {
                "google" => Some(Self::Google),
                "linkedin" => Some(Self::Linkedin),
                _ => None,
            })
            .unwrap_or(Self::Email)
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    pub auth_provider: AuthProvider,
    /// When `auth_provider` was last read from the identity provider.
    pub auth_provider_checked_at: Option<DateTime<Utc>>,
    pub role: Role,
    pub status: UserStatus,
    pub credits: i64,
    /// Bumped whenever the tenant's calls or rollups change: with `credits`, the dashboards'
    /// version, read here so that an unchanged dashboard costs no read of its own.
    pub stats_version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// The tenant this account is; a `User` only comes from the database.
    pub fn tenant(&self) -> TenantId {
        TenantId::from_trusted(self.id)
    }
}

/// The columns `User::try_from` reads.
macro_rules! user_columns {
    () => {
        "id, email, name, auth_provider, auth_provider_checked_at, role, status, credits, stats_version, created_at, updated_at"
    };
}

impl TryFrom<&Row> for User {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        Ok(User {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            auth_provider: match row.try_get::<_, &str>("auth_provider")? {
                "google" => AuthProvider::Google,
                "linkedin" => AuthProvider::Linkedin,
                _ => AuthProvider::Email,
            },
            auth_provider_checked_at: row.try_get("auth_provider_checked_at")?,
            role: match row.try_get::<_, &str>("role")? {
                "admin" => Role::Admin,
                _ => Role::User,
            },
            status: match row.try_get::<_, &str>("status")? {
                "suspended" => UserStatus::Suspended,
                _ => UserStatus::Active,
            },
            credits: row.try_get("credits")?,
            stats_version: row.try_get("stats_version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// Who the identity provider says is calling (from a verified token).
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The provider's user id.
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    /// The provider says the email is the user's.
    pub email_verified: bool,
}

/// Loads the user a verified identity names, creating it (and granting the signup bonus in the
/// same transaction) when this subject has never been seen.
pub async fn provision(client: &mut Client, identity: &Identity<'_>) -> AppResult<User> {
    if let Some(user) = by_subject(client, identity.subject).await? {
        return Ok(user);
    }
    // Concurrent first requests all reach this insert; the unique subject lets exactly one
    // through, the others wait for its commit and then find the row.
    let tx = client.transaction().await?;
    let email = identity.email.map(str::trim).filter(|e| !e.is_empty());
    let name = identity.name.map(str::trim).filter(|n| !n.is_empty());
    if let Some(row) = tx
        .cached_query_opt(sql::INSERT_ONCE, &[&identity.subject, &email, &name])
        .await?
    {
        let user = User::try_from(&row)?;
        let tenant = user.tenant();
        credits::apply(
            &tx,
            &CreditChange {
                tenant,
                kind: CreditKind::Bonus,
                amount: SIGNUP_BONUS_CREDITS,
                reference: format!("signup:{}", user.id),
                description: "Welcome bonus".into(),
                stripe_payment_id: None,
            },
        )
        .await?;
        if let Some(recipient) = &email {
            // Anyone can sign up with someone else's address: a name they chose is not sent
            // there until the address is shown to be theirs.
            let greeted = name.filter(|_| identity.email_verified);
            let welcome = Email::welcome(user.id, recipient, greeted, SIGNUP_BONUS_CREDITS);
            email::queue(&tx, &welcome).await?;
        }
        tx.commit().await?;
        tracing::info!(user_id = %user.id, "provisioned new user");
    } else {
        tx.rollback().await?;
    }
    let row = client
        .cached_query_one(sql::BY_SUBJECT, &[&identity.subject])
        .await?;
    User::try_from(&row)
}

/// What an account found suspended is answered, wherever it is found so (its request's
/// authentication, or a placement that waited for its lock).
pub fn suspended_refusal() -> AppError {
    AppError::forbidden(
        "account_suspended",
        "this account is suspended; contact support",
    )
}

/// Marks the tenant's dashboards stale (their ETag and cached answers carry `stats_version`):
/// for a change they show that no call event brings (a merge, an assignment, an agent renamed
/// or deleted). In a transaction, call it first: it takes the tenant's row lock, which call
/// events take before their call and lead.
pub async fn mark_stats_changed(
    db: &impl deadpool_postgres::GenericClient,
    tenant: TenantId,
) -> AppResult<()> {
    db.cached_execute(sql::MARK_STATS_CHANGED, &[tenant.as_uuid()])
        .await?;
    Ok(())
}

/// The account's email as the identity provider now verifies it (changed there, or added to an
/// account that signed in without one), so receipts and warnings reach it; `user` is updated.
/// An unverified address is never taken: it may be anyone's.
pub async fn keep_email_current(
    db: &impl deadpool_postgres::GenericClient,
    user: &mut User,
    identity: &Identity<'_>,
) -> AppResult<()> {
    let Some(email) = identity.email.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    if !identity.email_verified || user.email.as_deref() == Some(email) {
        return Ok(());
    }
    db.cached_execute(sql::SET_EMAIL, &[&user.id, &email])
        .await?;
    user.email = Some(email.to_owned());
    Ok(())
}

/// The user a token subject names, if any.
pub async fn by_subject(client: &Client, subject: &str) -> AppResult<Option<User>> {
    client
        .cached_query_opt(sql::BY_SUBJECT, &[&subject])
        .await?
        .map(|row| User::try_from(&row))
        .transpose()
}

pub async fn find(client: &Client, tenant: TenantId) -> AppResult<User> {
    let row = client
        .cached_query_opt(sql::BY_ID, &[tenant.as_uuid()])
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    User::try_from(&row)
}

pub async fn update_name(client: &Client, tenant: TenantId, name: &str) -> AppResult<User> {
    let row = client
        .cached_query_opt(sql::UPDATE_NAME, &[tenant.as_uuid(), &name])
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    User::try_from(&row)
}

/// Records the account's sign-in provider as just read from the identity provider.
pub async fn set_auth_provider(
    client: &Client,
    tenant: TenantId,
    provider: AuthProvider,
) -> AppResult<User> {
    let row = client
        .cached_query_opt(
            sql::SET_AUTH_PROVIDER,
            &[tenant.as_uuid(), &provider.as_str()],
        )
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    User::try_from(&row)
}

/// Dates the last check of the sign-in provider without changing the provider (a check that
/// failed: the profile's next one is then due an hour after `at`).
pub async fn set_auth_provider_checked_at(
    client: &Client,
    tenant: TenantId,
    at: DateTime<Utc>,
) -> AppResult<()> {
    client
        .cached_execute(sql::SET_AUTH_PROVIDER_CHECKED_AT, &[tenant.as_uuid(), &at])
        .await?;
    Ok(())
}

/// The account's Stack Auth user id (the subject of its tokens).
pub async fn auth_subject(client: &Client, tenant: TenantId) -> AppResult<String> {
    client
        .cached_query_opt(sql::AUTH_SUBJECT, &[tenant.as_uuid()])
        .await?
        .map(|row| row.try_get(0))
        .transpose()?
        .ok_or_else(|| AppError::not_found("user"))
}

pub mod sql {
    crate::db::statements! {
        pub const SET_EMAIL = "UPDATE users SET email = $2, updated_at = now() WHERE id = $1";
        pub const MARK_STATS_CHANGED =
            "UPDATE users SET stats_version = stats_version + 1 WHERE id = $1";
        pub const BY_SUBJECT = concat!("SELECT ", user_columns!(), " FROM users WHERE auth_subject = $1");
        pub const INSERT_ONCE = concat!(
            "INSERT INTO users (auth_subject, email, name) VALUES ($1, $2, $3)
            ON CONFLICT (auth_subject) DO NOTHING RETURNING ",
            user_columns!()
        );
        pub const BY_ID = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        pub const UPDATE_NAME = concat!("UPDATE users SET name = $2, updated_at = now() WHERE id = $1 RETURNING ", user_columns!());
        pub const SET_AUTH_PROVIDER_CHECKED_AT =
            "UPDATE users SET auth_provider_checked_at = $2 WHERE id = $1";
        pub const AUTH_SUBJECT = "SELECT auth_subject FROM users WHERE id = $1";
        pub const SET_AUTH_PROVIDER = concat!("UPDATE users SET auth_provider = $2, auth_provider_checked_at = now(),
                updated_at = CASE WHEN auth_provider = $2 THEN updated_at ELSE now() END
            WHERE id = $1 RETURNING ", user_columns!());
    }
}
