//! The audit log: who did what to which target, written in the transaction of the action
//! itself where there is one. Details never hold a secret value.

use crate::db::filter::Total;
use crate::db::statements::{Cached, PlannedPerRun};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{auth::AdminUser, db::filter::Filter, error::AppResult};

/// The admin acting.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Uuid,
    pub email: Option<String>,
}

impl From<&AdminUser> for Actor {
    fn from(admin: &AdminUser) -> Self {
        Self {
            id: admin.0.user.id,
            email: admin.0.user.email.clone(),
        }
    }
}

/// What happened, to what.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: String,
    pub details: Value,
}

pub mod sql {
    use super::{matching, AuditFilter};
    use crate::db::filter::Filter;

    crate::db::statements! {
        pub const RECORD = "INSERT INTO audit_log (actor_id, actor_email, action, target_type, target_id, details)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
        fullest {
            LIST_TOTAL = || every_filter().total_statement(LIST_FROM),
            LIST_PAGE = || every_filter().page_by_id_statement(LIST_SELECT, true),
        }
    }

    /// The rows the audit list counts and pages through.
    pub const LIST_FROM: &str = "audit_log";
    pub const LIST_SELECT: &str =
        "SELECT id, actor_id, actor_email, action, target_type, target_id, details, created_at
        FROM audit_log";

    fn every_filter() -> Filter {
        matching(&AuditFilter {
            actor_id: Some(uuid::Uuid::nil()),
            action: Some("a".into()),
            target_type: Some("a".into()),
            target_id: Some("a".into()),
            since: Some(chrono::DateTime::UNIX_EPOCH),
            until: Some(chrono::DateTime::UNIX_EPOCH),
        })
    }
}

pub async fn record(tx: &impl GenericClient, actor: &Actor, entry: Entry<'_>) -> AppResult<i64> {
    let id = tx
        .cached_query_one(
            sql::RECORD,
            &[
                &actor.id,
                &actor.email,
                &entry.action,
                &entry.target_type,
                &entry.target_id,
                &entry.details,
            ],
        )
        .await?
        .try_get(0)?;
    tracing::info!(actor = %actor.id, action = entry.action, target_type = entry.target_type, target_id = %entry.target_id, "admin action");
    Ok(id)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub actor_id: Option<Uuid>,
    pub actor_email: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Newest first, after the entry `before_id` when given.
pub async fn list(
    client: &impl PlannedPerRun,
    filter: &AuditFilter,
    before_id: Option<i64>,
    limit: i64,
) -> AppResult<(Vec<AuditEntry>, Total)> {
    let matching = matching(filter);
    let (rows, total) = matching
        .page_by_id_with_total(client, sql::LIST_FROM, sql::LIST_SELECT, before_id, limit)
        .await?;
    let entries = rows
        .iter()
        .map(|row| {
            Ok(AuditEntry {
                id: row.try_get::<_, i64>("id")?.to_string(),
                actor_id: row.try_get("actor_id")?,
                actor_email: row.try_get("actor_email")?,
                action: row.try_get("action")?,
                target_type: row.try_get("target_type")?,
                target_id: row.try_get("target_id")?,
                details: row.try_get("details")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect::<AppResult<_>>()?;
    Ok((entries, total))
}

fn matching(filter: &AuditFilter) -> Filter {
    let mut matching = Filter::default();
    matching
        .and_some("actor_id = $", filter.actor_id)
        .and_some("action = $", filter.action.clone())
        .and_some("target_type = $", filter.target_type.clone())
        .and_some("target_id = $", filter.target_id.clone())
        .and_some("created_at >= $", filter.since)
        .and_some("created_at < $", filter.until);
    matching
}
