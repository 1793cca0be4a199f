//! The design's LeadAnalytics model, as stored per call: reading it, and storing a call's
//! analysis with the lead rollup it moves.

use crate::db::statements::Cached;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::{types::Json, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    rollup,
    scoring::{Analysis, Collected, LeadScores},
};
use crate::{error::AppResult, tenant::TenantId};

/// The design's LeadAnalytics model. A dimension ElevenLabs' analysis did not assess has no
/// level or score (null), and a call with no score at all has no total or tag.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadAnalytics {
    pub id: Uuid,
    pub call_id: Uuid,
    #[schema(required = true)]
    pub intent_level: Option<String>,
    /// 0 to 20, as every dimension's score.
    #[schema(required = true)]
    pub intent_score: Option<i32>,
    #[schema(required = true)]
    pub urgency_level: Option<String>,
    #[schema(required = true)]
    pub urgency_score: Option<i32>,
    #[schema(required = true)]
    pub budget_constraint: Option<String>,
    #[schema(required = true)]
    pub budget_score: Option<i32>,
    #[schema(required = true)]
    pub fit_alignment: Option<String>,
    #[schema(required = true)]
    pub fit_score: Option<i32>,
    #[schema(required = true)]
    pub engagement_health: Option<String>,
    #[schema(required = true)]
    pub engagement_score: Option<i32>,
    /// 0 to 100: the sum of the five dimension scores.
    #[schema(required = true)]
    pub total_score: Option<i32>,
    /// hot, warm or cold.
    #[schema(required = true)]
    pub lead_status_tag: Option<String>,
    pub reasoning: Reasoning,
    pub cta_interactions: CtaInteractions,
    pub created_at: DateTime<Utc>,
}

/// Why each dimension scored as it did: one sentence each, empty when the analysis gave none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
// A stored object may lack keys (the column defaults to `{}`): they read as empty, and every
// key is always sent.
#[serde(default)]
pub struct Reasoning {
    #[schema(required = true)]
    pub intent: String,
    #[schema(required = true)]
    pub urgency: String,
    #[schema(required = true)]
    pub budget: String,
    #[schema(required = true)]
    pub fit: String,
    #[schema(required = true)]
    pub engagement: String,
    #[schema(required = true)]
    pub cta_behavior: String,
}

/// Which calls to action the person took during the conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
// A stored object may lack keys (the column defaults to `{}`): they read as false, and every
// key is always sent.
#[serde(default)]
pub struct CtaInteractions {
    #[schema(required = true)]
    pub pricing_clicked: bool,
    #[schema(required = true)]
    pub demo_clicked: bool,
    #[schema(required = true)]
    pub followup_clicked: bool,
    #[schema(required = true)]
    pub sample_clicked: bool,
    #[schema(required = true)]
    pub escalated_to_human: bool,
}

/// The columns [`LeadAnalytics::read`] reads, in its order, of `lead_analytics la`. Not
/// `la.*`: `raw_analysis` (ElevenLabs' whole analysis, kilobytes, kept for the record) is
/// never read back by a request.
macro_rules! analytics_columns {
    () => {
        "la.id, la.call_id, la.intent_level, la.intent_score, la.urgency_level, la.urgency_score,
        la.budget_constraint, la.budget_score, la.fit_alignment, la.fit_score,
        la.engagement_health, la.engagement_score, la.total_score, la.lead_status_tag,
        la.reasoning, la.cta_interactions, la.created_at"
    };
}
pub(crate) use analytics_columns;

/// How many columns [`analytics_columns`] names.
pub const ANALYTICS_COLUMNS: usize = 17;

impl LeadAnalytics {
    /// The analysis in `row`'s [`analytics_columns`], the first of them at index `first`. By
    /// position, not by name: a statement may carry other columns of the same names (the
    /// lead's `id` before them, in the lead list's).
    pub fn read(row: &Row, first: usize) -> AppResult<Self> {
        let column = |offset: usize| first + offset;
        Ok(Self {
            id: row.try_get(column(0))?,
            call_id: row.try_get(column(1))?,
            intent_level: row.try_get(column(2))?,
            intent_score: row.try_get(column(3))?,
            urgency_level: row.try_get(column(4))?,
            urgency_score: row.try_get(column(5))?,
            budget_constraint: row.try_get(column(6))?,
            budget_score: row.try_get(column(7))?,
            fit_alignment: row.try_get(column(8))?,
            fit_score: row.try_get(column(9))?,
            engagement_health: row.try_get(column(10))?,
            engagement_score: row.try_get(column(11))?,
            total_score: row.try_get(column(12))?,
            lead_status_tag: row.try_get(column(13))?,
            reasoning: row.try_get::<_, Json<Reasoning>>(column(14))?.0,
            cta_interactions: row.try_get::<_, Json<CtaInteractions>>(column(15))?.0,
            created_at: row.try_get(column(16))?,
        })
    }
}

/// What is kept of ElevenLabs' analysis (`raw_analysis`), written from the parsed event
/// without copying it.
#[derive(Debug, Serialize)]
struct StoredAnalysis<'a> {
    call_successful: &'a Option<String>,
    transcript_summary: &'a Option<String>,
    data_collection_results: Collected<'a>,
    evaluation_criteria_results: &'a Option<Value>,
}

/// Stores the analysis unless a newer one is already there, and moves the daily lead rollup
/// from the analysis it replaces (on that one's day) to this one; whether it is now the call's.
pub async fn store(
    tx: &impl GenericClient,
    tenant: TenantId,
    agent_id: Uuid,
    call_id: Uuid,
    scores: &LeadScores,
    analysis: &Analysis,
    analyzed_at: DateTime<Utc>,
) -> AppResult<bool> {
    let raw = Json(StoredAnalysis {
        call_successful: &analysis.call_successful,
        transcript_summary: &analysis.transcript_summary,
        data_collection_results: analysis.collected(),
        evaluation_criteria_results: &analysis.evaluation_criteria_results,
    });
    let tag = scores.lead_status_tag.map(|t| t.as_str());
    let outcome = tx
        .cached_query_one(
            sql::UPSERT_UNLESS_NEWER,
            &[
                &call_id,
                &scores.intent_level,
                &scores.intent_score,
                &scores.urgency_level,
                &scores.urgency_score,
                &scores.budget_constraint,
                &scores.budget_score,
                &scores.fit_alignment,
                &scores.fit_score,
                &scores.engagement_health,
                &scores.engagement_score,
                &scores.total_score,
                &tag,
                &scores.reasoning,
                &scores.cta_interactions,
                &raw,
                &analyzed_at,
                tenant.as_uuid(),
            ],
        )
        .await?;
    if !outcome.try_get::<_, bool>("stored")? {
        return Ok(false);
    }
    let tenant = *tenant.as_uuid();
    if let Some(old_day) = outcome.try_get::<_, Option<DateTime<Utc>>>("analyzed_at")? {
        let old = rollup::Contribution::new(
            outcome.try_get("total_score")?,
            outcome.try_get("lead_status_tag")?,
            &outcome.try_get::<_, Value>("cta_interactions")?,
        );
        let old_day = old_day.date_naive();
        rollup::apply(tx, tenant, agent_id, old_day, &old, -1).await?;
    }
    let new = rollup::Contribution::new(
        scores.total_score,
        tag.map(str::to_owned),
        &scores.cta_interactions,
    );
    rollup::apply(tx, tenant, agent_id, analyzed_at.date_naive(), &new, 1).await?;
    Ok(true)
}

pub mod sql {
    crate::db::statements! {
        /// The upsert, and the analysis it replaces as it was before (the statement's snapshot):
        /// its figures leave that one's day of the rollup. `user_id` is the call's tenant (a
        /// call never changes tenant, so an update leaves it).
        pub const UPSERT_UNLESS_NEWER = "WITH replaced AS (
                SELECT total_score, lead_status_tag, cta_interactions, analyzed_at
                FROM lead_analytics WHERE call_id = $1),
            stored AS (INSERT INTO lead_analytics (call_id, intent_level, intent_score, urgency_level, urgency_score,
                budget_constraint, budget_score, fit_alignment, fit_score, engagement_health, engagement_score,
                total_score, lead_status_tag, reasoning, cta_interactions, raw_analysis, analyzed_at, user_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
            ON CONFLICT (call_id) DO UPDATE SET
                intent_level = EXCLUDED.intent_level, intent_score = EXCLUDED.intent_score,
                urgency_level = EXCLUDED.urgency_level, urgency_score = EXCLUDED.urgency_score,
                budget_constraint = EXCLUDED.budget_constraint, budget_score = EXCLUDED.budget_score,
                fit_alignment = EXCLUDED.fit_alignment, fit_score = EXCLUDED.fit_score,
                engagement_health = EXCLUDED.engagement_health, engagement_score = EXCLUDED.engagement_score,
                total_score = EXCLUDED.total_score, lead_status_tag = EXCLUDED.lead_status_tag,
                reasoning = EXCLUDED.reasoning, cta_interactions = EXCLUDED.cta_interactions,
                raw_analysis = EXCLUDED.raw_analysis, analyzed_at = EXCLUDED.analyzed_at, updated_at = now()
            WHERE lead_analytics.analyzed_at <= EXCLUDED.analyzed_at
            RETURNING 1)
            SELECT EXISTS (SELECT FROM stored) AS stored, replaced.*
            FROM (VALUES (1)) AS one LEFT JOIN replaced ON true";
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reader_reads_as_many_columns_as_the_list_names() {
        let columns: Vec<&str> = analytics_columns!().split(',').map(str::trim).collect();
        assert_eq!(columns.len(), super::ANALYTICS_COLUMNS);
        assert!(columns.iter().all(|c| c.starts_with("la.")), "{columns:?}");
        assert_eq!(columns.first(), Some(&"la.id"), "read takes the id first");
    }
}
