//! `GET /analytics/leads`: every scored conversation as the design's LeadAnalytics, with who
//! and which agent it was about, filtered and keyset-paginated like the other lists.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{analytics::LeadAnalytics, LeadStatus};
use crate::{
    agents::{self, AgentType},
    db::filter::{Filter, Keyset},
    error::{AppError, AppResult},
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
    pub kind: AgentType,
    /// When the conversation took place.
    pub conversation_at: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct ScoredFilter {
    pub agent_id: Option<Uuid>,
    /// call or chat.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<AgentType>,
    pub lead_status: Option<LeadStatus>,
    /// At least this total score (0 to 100).
    pub min_score: Option<i32>,
    /// Conversations at or after this time: an RFC 3339 time, or a day (from its 00:00 UTC).
    #[serde(default, deserialize_with = "crate::time::optional_time")]
    #[param(value_type = Option<String>)]
    pub from: Option<DateTime<Utc>>,
    /// Conversations before this time: an RFC 3339 time, or a day (included).
    #[serde(default, deserialize_with = "crate::time::optional_time_until")]
    #[param(value_type = Option<String>)]
    pub to: Option<DateTime<Utc>>,
}

/// Newest conversation first.
pub type ScoredCursor = (DateTime<Utc>, Uuid);

const NEWEST: Keyset = Keyset {
    time: "c.created_at",
    id: "c.id",
};

impl ScoredConversation {
    pub fn cursor(&self) -> ScoredCursor {
        (self.conversation_at, self.analytics.call_id)
    }
}

impl TryFrom<&Row> for ScoredConversation {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        Ok(Self {
            analytics: LeadAnalytics::try_from(row)?,
            lead_id: row.try_get("lead_id")?,
            lead_name: row.try_get("lead_name")?,
            phone_number: row.try_get("phone_number")?,
            agent_id: row.try_get("agent_id")?,
            agent_name: row.try_get("agent_name")?,
            kind: AgentType::from_db(row.try_get("conversation_type")?),
            conversation_at: row.try_get("conversation_at")?,
        })
    }
}

impl ScoredFilter {
    fn to_sql(&self, tenant: TenantId) -> AppResult<Filter> {
        if self.min_score.is_some_and(|s| !(0..=100).contains(&s)) {
            return Err(AppError::validation(
                "min_score",
                "must be between 0 and 100",
            ));
        }
        let mut filter = Filter::default();
        filter
            .and("c.user_id = $", vec![Box::new(*tenant.as_uuid())])
            .and_some("c.agent_id = $", self.agent_id)
            .and_some("c.type = $", self.kind.map(AgentType::as_str))
            .and_some(
                "la.lead_status_tag = $",
                self.lead_status.map(LeadStatus::as_str),
            )
            .and_some("la.total_score >= $", self.min_score)
            .and_some("c.created_at >= $", self.from)
            .and_some("c.created_at < $", self.to);
        Ok(filter)
    }
}

/// A page of the tenant's scored conversations, newest first, and how many match. An
/// `agent_id` that is not the tenant's answers 404.
pub async fn list(
    db: &impl GenericClient,
    tenant: TenantId,
    filter: &ScoredFilter,
    limit: i64,
    after: Option<ScoredCursor>,
) -> AppResult<(Vec<ScoredConversation>, i64)> {
    if let Some(agent) = filter.agent_id {
        agents::find_any(db, tenant, agent).await?;
    }
    let matching = filter.to_sql(tenant)?;
    let total = matching.count(db, sql::FROM).await?;
    let rows = matching
        .page(db, sql::SELECT, &NEWEST, after, limit)
        .await?;
    let page = rows
        .iter()
        .map(ScoredConversation::try_from)
        .collect::<AppResult<_>>()?;
    Ok((page, total))
}

pub mod sql {
    use chrono::Utc;
    use uuid::Uuid;

    use super::{ScoredFilter, NEWEST};
    use crate::{agents::AgentType, leads::LeadStatus, tenant::TenantId};

    pub const FROM: &str = "lead_analytics la JOIN calls c ON c.id = la.call_id";
    pub const SELECT: &str =
        "SELECT la.*, c.lead_id, l.name AS lead_name, c.phone_number, c.agent_id,
            a.name AS agent_name, c.type AS conversation_type, c.created_at AS conversation_at
        FROM lead_analytics la JOIN calls c ON c.id = la.call_id
        JOIN agents a ON a.id = c.agent_id
        LEFT JOIN leads l ON l.id = c.lead_id";

    crate::db::statements! {
        fullest {
            COUNT = || every_filter().count_statement(FROM),
            PAGE = || every_filter().page_statement(SELECT, &NEWEST, true),
        }
    }

    fn every_filter() -> crate::db::filter::Filter {
        ScoredFilter {
            agent_id: Some(Uuid::nil()),
            kind: Some(AgentType::Chat),
            lead_status: Some(LeadStatus::Hot),
            min_score: Some(50),
            from: Some(Utc::now()),
            to: Some(Utc::now()),
        }
        .to_sql(TenantId::from_trusted(Uuid::nil()))
        .expect("the fullest filter is valid")
    }
}
