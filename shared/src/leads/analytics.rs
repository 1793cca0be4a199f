//! The design's LeadAnalytics model, as stored per call.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadAnalytics {
    pub id: Uuid,
    pub call_id: Uuid,
    pub intent_level: Option<String>,
    pub intent_score: Option<i32>,
    pub urgency_level: Option<String>,
    pub urgency_score: Option<i32>,
    pub budget_constraint: Option<String>,
    pub budget_score: Option<i32>,
    pub fit_alignment: Option<String>,
    pub fit_score: Option<i32>,
    pub engagement_health: Option<String>,
    pub engagement_score: Option<i32>,
    /// 0 to 100: the sum of the five dimension scores (0 to 20 each).
    pub total_score: Option<i32>,
    /// hot, warm or cold.
    pub lead_status_tag: Option<String>,
    /// {intent, urgency, budget, fit, engagement, cta_behavior}: one sentence each.
    #[schema(value_type = Object)]
    pub reasoning: Value,
    /// {pricing_clicked, demo_clicked, followup_clicked, sample_clicked, escalated_to_human}.
    #[schema(value_type = Object)]
    pub cta_interactions: Value,
    pub created_at: DateTime<Utc>,
}

impl LeadAnalytics {
    /// From a `lead_analytics` row.
    pub fn from_row(row: &Row) -> Self {
        Self {
            id: row.get("id"),
            call_id: row.get("call_id"),
            intent_level: row.get("intent_level"),
            intent_score: row.get("intent_score"),
            urgency_level: row.get("urgency_level"),
            urgency_score: row.get("urgency_score"),
            budget_constraint: row.get("budget_constraint"),
            budget_score: row.get("budget_score"),
            fit_alignment: row.get("fit_alignment"),
            fit_score: row.get("fit_score"),
            engagement_health: row.get("engagement_health"),
            engagement_score: row.get("engagement_score"),
            total_score: row.get("total_score"),
            lead_status_tag: row.get("lead_status_tag"),
            reasoning: row.get("reasoning"),
            cta_interactions: row.get("cta_interactions"),
            created_at: row.get("created_at"),
        }
    }
}
