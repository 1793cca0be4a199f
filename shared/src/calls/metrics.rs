//! `GET /analytics/calls`: per-conversation metrics (duration, status, score, calls to action)
//! over a range, with the call list's filters and paging.

use crate::db::filter::Total;
use crate::db::statements::PlannedPerRun;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::{types::Json, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    event::CallStatus,
    read::{self, sql, CallCursor, CallFilter, CallKind, Counted},
};
use crate::{
    error::{AppError, AppResult},
    leads::analytics::CtaInteractions,
    tenant::TenantId,
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallMetrics {
    pub call_id: Uuid,
    pub agent_id: Uuid,
    pub agent_name: String,
    #[serde(rename = "type")]
    pub kind: CallKind,
    pub status: CallStatus,
    #[schema(required = true)]
    pub direction: Option<String>,
    pub duration_seconds: i32,
    pub credits_charged: i64,
    /// ElevenLabs' verdict: success, failure or unknown.
    #[schema(required = true)]
    pub call_successful: Option<String>,
    /// Null while the conversation has no analysis.
    #[schema(required = true)]
    pub total_score: Option<i32>,
    #[schema(required = true)]
    pub lead_status_tag: Option<String>,
    #[schema(required = true)]
    pub cta_interactions: Option<CtaInteractions>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub completed_at: Option<DateTime<Utc>>,
}

impl CallMetrics {
    pub fn cursor(&self) -> CallCursor {
        (self.created_at, self.call_id)
    }
}

impl TryFrom<&Row> for CallMetrics {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        Ok(Self {
            call_id: row.try_get("id")?,
            agent_id: row.try_get("agent_id")?,
            agent_name: row.try_get("agent_name")?,
            kind: CallKind::parse(row.try_get("type")?),
            status: CallStatus::parse(row.try_get("status")?),
            direction: row.try_get("direction")?,
            duration_seconds: row.try_get("duration_seconds")?,
            credits_charged: row.try_get("credits_charged")?,
            call_successful: row.try_get("call_successful")?,
            total_score: row.try_get("total_score")?,
            lead_status_tag: row.try_get("lead_status_tag")?,
            cta_interactions: row
                .try_get::<_, Option<Json<CtaInteractions>>>("cta_interactions")?
                .map(|Json(cta)| cta),
            created_at: row.try_get("created_at")?,
            completed_at: row.try_get("completed_at")?,
        })
    }
}

/// A page of the metrics of the tenant's conversations matching `filter`, newest first, and
/// how many match. An `agent_id` that is not the tenant's answers 404.
pub async fn list(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    filter: &CallFilter,
    limit: i64,
    after: Option<CallCursor>,
) -> AppResult<(Vec<CallMetrics>, Total)> {
    read::matching_page(
        db,
        tenant,
        filter,
        (sql::METRICS_SELECT, Counted::Calls),
        limit,
        after,
    )
    .await
}
