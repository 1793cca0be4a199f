//! `GET /analytics/leads`: every scored conversation as the design's LeadAnalytics, with who
//! and which agent it was about, filtered and keyset-paginated as the call list is.

use crate::db::filter::Total;
use crate::db::statements::PlannedPerRun;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::read::{self, sql, CallCursor, CallFilter, CallKind, Counted};
use crate::{
    error::{AppError, AppResult},
    leads::analytics::LeadAnalytics,
    tenant::TenantId,
};

/// One conversation's analysis with its context.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScoredConversation {
    #[serde(flatten)]
    pub analytics: LeadAnalytics,
    /// Null until the conversation is matched to a lead.
    #[schema(required = true)]
    pub lead_id: Option<Uuid>,
    #[schema(required = true)]
    pub lead_name: Option<String>,
    #[schema(required = true)]
    pub phone_number: Option<String>,
    pub agent_id: Uuid,
    pub agent_name: String,
    /// call or chat.
    #[serde(rename = "type")]
    pub kind: CallKind,
    /// When the conversation took place.
    pub conversation_at: DateTime<Utc>,
}

impl ScoredConversation {
    pub fn cursor(&self) -> CallCursor {
        (self.conversation_at, self.analytics.call_id)
    }
}

impl TryFrom<&Row> for ScoredConversation {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        Ok(Self {
            analytics: LeadAnalytics::read(row, 0)?,
            lead_id: row.try_get("lead_id")?,
            lead_name: row.try_get("lead_name")?,
            phone_number: row.try_get("phone_number")?,
            agent_id: row.try_get("agent_id")?,
            agent_name: row.try_get("agent_name")?,
            kind: CallKind::parse(row.try_get("conversation_type")?),
            conversation_at: row.try_get("conversation_at")?,
        })
    }
}

/// A page of the tenant's analyzed calls and chats matching the call list's `filter`, newest
/// first, and how many match. An `agent_id` that is not the tenant's answers 404.
pub async fn list(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    filter: &CallFilter,
    limit: i64,
    after: Option<CallCursor>,
) -> AppResult<(Vec<ScoredConversation>, Total)> {
    read::matching_page(
        db,
        tenant,
        filter,
        (sql::SCORED_SELECT, Counted::Analyzed),
        limit,
        after,
    )
    .await
}
