//! The daily lead rollup (`daily_lead_stats`): what each stored analysis adds to its day, so
//! dashboards read a few rows per day instead of every call.

use crate::db::statements::Cached;
use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use crate::error::AppResult;

pub const SCORE_BUCKETS: usize = 10;

/// The CTA flags of `cta_interactions`, in the rollup's column order.
pub const CTA_FLAGS: [&str; 5] = [
    "pricing_clicked",
    "demo_clicked",
    "followup_clicked",
    "sample_clicked",
    "escalated_to_human",
];

/// One analysis, as the rollup counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    pub total_score: Option<i32>,
    pub tag: Option<String>,
    pub cta: [bool; 5],
}

impl Contribution {
    pub fn new(total_score: Option<i32>, tag: Option<String>, cta_interactions: &Value) -> Self {
        Self {
            total_score,
            tag,
            cta: CTA_FLAGS.map(|flag| cta_interactions[flag].as_bool().unwrap_or(false)),
        }
    }

    /// 0-9 is bucket 0, ..., 90-100 bucket 9.
    pub fn bucket(&self) -> Option<usize> {
        self.total_score.map(|s| {
            usize::try_from(s.clamp(0, 100) / 10)
                .unwrap_or(0)
                .min(SCORE_BUCKETS - 1)
        })
    }
}

/// Adds (`sign` 1) or removes (`sign` -1) one analysis on `day`.
pub async fn apply(
    tx: &impl GenericClient,
    tenant: Uuid,
    agent: Uuid,
    day: NaiveDate,
    contribution: &Contribution,
    sign: i32,
) -> AppResult<()> {
    let is = |yes: bool| if yes { sign } else { 0 };
    let tag = contribution.tag.as_deref();
    let mut buckets = vec![0_i32; SCORE_BUCKETS];
    if let Some(bucket) = contribution.bucket() {
        buckets[bucket] = sign;
    }
    let score_sum = i64::from(contribution.total_score.unwrap_or(0)) * i64::from(sign);
    let cta = contribution.cta.map(is);
    tx.cached_execute(
        sql::ADD_TO_DAY,
        &[
            &tenant,
            &agent,
            &day,
            &sign,
            &is(contribution.total_score.is_some()),
            &score_sum,
            &is(tag == Some("hot")),
            &is(tag == Some("warm")),
            &is(tag == Some("cold")),
            &buckets,
            &cta[0],
            &cta[1],
            &cta[2],
            &cta[3],
            &cta[4],
        ],
    )
    .await?;
    Ok(())
}

pub mod sql {
    crate::db::statements! {
        pub const ADD_TO_DAY = "INSERT INTO daily_lead_stats (user_id, agent_id, day, analyzed, scored, score_sum,
                hot, warm, cold, score_buckets, cta_pricing, cta_demo, cta_followup, cta_sample, cta_escalated)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            ON CONFLICT (user_id, agent_id, day) DO UPDATE SET
                analyzed = daily_lead_stats.analyzed + EXCLUDED.analyzed,
                scored = daily_lead_stats.scored + EXCLUDED.scored,
                score_sum = daily_lead_stats.score_sum + EXCLUDED.score_sum,
                hot = daily_lead_stats.hot + EXCLUDED.hot,
                warm = daily_lead_stats.warm + EXCLUDED.warm,
                cold = daily_lead_stats.cold + EXCLUDED.cold,
                score_buckets = (SELECT array_agg(old + new ORDER BY i)
                                 FROM unnest(daily_lead_stats.score_buckets, EXCLUDED.score_buckets)
                                      WITH ORDINALITY AS b(old, new, i)),
                cta_pricing = daily_lead_stats.cta_pricing + EXCLUDED.cta_pricing,
                cta_demo = daily_lead_stats.cta_demo + EXCLUDED.cta_demo,
                cta_followup = daily_lead_stats.cta_followup + EXCLUDED.cta_followup,
                cta_sample = daily_lead_stats.cta_sample + EXCLUDED.cta_sample,
                cta_escalated = daily_lead_stats.cta_escalated + EXCLUDED.cta_escalated";
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn buckets_and_flags() {
        let c = |score| Contribution::new(score, None, &json!({"demo_clicked": true}));
        assert_eq!(c(Some(0)).bucket(), Some(0));
        assert_eq!(c(Some(9)).bucket(), Some(0));
        assert_eq!(c(Some(10)).bucket(), Some(1));
        assert_eq!(c(Some(99)).bucket(), Some(9));
        assert_eq!(c(Some(100)).bucket(), Some(9));
        assert_eq!(c(None).bucket(), None);
        assert_eq!(c(None).cta, [false, true, false, false, false]);
    }
}
