//! Dashboards, read only from the daily rollups the processor keeps (`daily_agent_stats` by
//! call day, `daily_lead_stats` by analysis day), so their cost follows days and agents, not
//! calls. The HTTP layer tags every answer with the tenant's version (`User::stats_version` and
//! the balance), which the processor bumps with the rollups.

mod anomalies;
mod report;
mod scope;
mod totals;

use crate::db::statements::Cached;
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    agents::AgentType,
    error::{AppError, AppResult},
    leads::rollup::SCORE_BUCKETS,
    tenant::TenantId,
};

pub use anomalies::Anomaly;
pub use report::{report, Report, ReportFormat};
pub use scope::{Agents, Scope};
pub use totals::Totals;

use totals::{change, percent};

/// Longest range one request may cover.
pub const MAX_RANGE_DAYS: i64 = 366;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First day (YYYY-MM-DD, UTC; an RFC 3339 time means its day); defaults to `days` before
    /// `to`.
    #[serde(default, deserialize_with = "crate::time::optional_date")]
    #[param(value_type = Option<String>)]
    pub from: Option<NaiveDate>,
    /// Last day, included (a date or an RFC 3339 time); defaults to today.
    #[serde(default, deserialize_with = "crate::time::optional_date")]
    #[param(value_type = Option<String>)]
    pub to: Option<NaiveDate>,
    /// Length of the range when `from` is absent (default 30).
    pub days: Option<i64>,
    /// Only this agent (one of the tenant's, deleted ones included; 404 otherwise).
    pub agent_id: Option<Uuid>,
    /// Only agents of this type: call or chat.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<AgentType>,
}

/// Days `[from, to]`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Range {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl RangeQuery {
    pub fn scope(&self) -> Scope {
        Scope {
            agent_id: self.agent_id,
            kind: self.kind,
        }
    }

    pub fn range(&self) -> AppResult<Range> {
        let to = self.to.unwrap_or_else(|| Utc::now().date_naive());
        let days = self.days.unwrap_or(30);
        if !(1..=MAX_RANGE_DAYS).contains(&days) {
            return Err(AppError::validation(
                "days",
                format!("must be between 1 and {MAX_RANGE_DAYS}"),
            ));
        }
        let from = self.from.unwrap_or(to - Duration::days(days - 1));
        if from > to {
            return Err(AppError::validation("from", "must not be after to"));
        }
        if (to - from).num_days() >= MAX_RANGE_DAYS {
            return Err(AppError::validation(
                "from",
                format!("the range may cover at most {MAX_RANGE_DAYS} days"),
            ));
        }
        Ok(Range { from, to })
    }
}

impl Range {
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// From the first instant of `from` to the first instant after `to`, in UTC.
    pub fn instants(&self) -> std::ops::Range<DateTime<Utc>> {
        let end = self
            .to
            .succ_opt()
            .map_or(DateTime::<Utc>::MAX_UTC, crate::time::day_start);
        crate::time::day_start(self.from)..end
    }

    /// The range of the same length just before this one.
    pub fn previous(&self) -> Range {
        Range {
            from: self.from - Duration::days(self.days()),
            to: self.from - Duration::days(1),
        }
    }
}

/// One agent's totals for one day.
#[derive(Debug, Clone)]
struct DayRow {
    agent_id: Uuid,
    day: NaiveDate,
    totals: Totals,
    buckets: [i64; SCORE_BUCKETS],
}

/// Every rollup row of the tenant's agents in `scope` over `range`, both tables merged by
/// (agent, day).
async fn rows(
    db: &impl GenericClient,
    tenant: TenantId,
    range: Range,
    scope: &Scope,
    agents: &Agents,
) -> AppResult<Vec<DayRow>> {
    let rows = db
        .cached_query(sql::DAY_ROWS, &[tenant.as_uuid(), &range.from, &range.to])
        .await?;
    rows.iter()
        .filter(|row| {
            row.try_get("agent_id")
                .is_ok_and(|agent| scope.covers(agents, agent))
        })
        .map(|row| {
            let buckets: Vec<i32> = row.try_get("score_buckets")?;
            let mut fixed = [0_i64; SCORE_BUCKETS];
            for (slot, value) in fixed.iter_mut().zip(buckets) {
                *slot = i64::from(value);
            }
            Ok(DayRow {
                agent_id: row.try_get("agent_id")?,
                day: row.try_get("day")?,
                buckets: fixed,
                totals: Totals {
                    calls: row.try_get("calls")?,
                    chats: row.try_get("chats")?,
                    completed: row.try_get("completed")?,
                    failed: row.try_get("failed")?,
                    successful: row.try_get("successful")?,
                    duration_seconds: row.try_get("duration_seconds")?,
                    credits_used: row.try_get("credits_used")?,
                    analyzed: row.try_get("analyzed")?,
                    scored: row.try_get("scored")?,
                    score_sum: row.try_get("score_sum")?,
                    hot: row.try_get("hot")?,
                    warm: row.try_get("warm")?,
                    cold: row.try_get("cold")?,
                    cta_pricing: row.try_get("cta_pricing")?,
                    cta_demo: row.try_get("cta_demo")?,
                    cta_followup: row.try_get("cta_followup")?,
                    cta_sample: row.try_get("cta_sample")?,
                    cta_escalated: row.try_get("cta_escalated")?,
                },
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Kpi {
    pub value: f64,
    pub previous: f64,
    /// Percent change from the previous period of the same length; null when it was zero.
    pub change_percent: Option<f64>,
}

impl Kpi {
    fn new(value: f64, previous: f64) -> Self {
        Self {
            value,
            previous,
            change_percent: change(value, previous),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadsByTag {
    pub hot: i64,
    pub warm: i64,
    pub cold: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CtaRates {
    /// Percent of analyzed conversations where the CTA happened.
    pub pricing_clicked: f64,
    pub demo_clicked: f64,
    pub followup_clicked: f64,
    pub sample_clicked: f64,
    pub escalated_to_human: f64,
}

/// `GET /api/dashboard/overview`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overview {
    pub range: Range,
    pub previous_range: Range,
    pub calls: Kpi,
    pub chats: Kpi,
    pub minutes: Kpi,
    pub credits_used: Kpi,
    pub average_duration_seconds: Kpi,
    /// Percent.
    pub success_rate: Kpi,
    pub average_score: Kpi,
    pub leads_by_tag: LeadsByTag,
    pub cta_conversion: CtaRates,
    pub credits_left: i64,
}

/// The overview of `range` for the agents in `scope`; `credits_left` is the balance the caller
/// already read with the tenant's version.
pub async fn overview(
    db: &impl GenericClient,
    tenant: TenantId,
    range: Range,
    scope: &Scope,
    agents: &Agents,
    credits_left: i64,
) -> AppResult<Overview> {
    let previous_range = range.previous();
    let all = rows(
        db,
        tenant,
        Range {
            from: previous_range.from,
            to: range.to,
        },
        scope,
        agents,
    )
    .await?;
    let (mut now, mut before) = (Totals::default(), Totals::default());
    for row in &all {
        if row.day >= range.from {
            now.add(&row.totals);
        } else {
            before.add(&row.totals);
        }
    }
    let kpi = |f: fn(&Totals) -> f64| Kpi::new(f(&now), f(&before));
    Ok(Overview {
        range,
        previous_range,
        calls: kpi(|t| t.calls as f64),
        chats: kpi(|t| t.chats as f64),
        minutes: kpi(Totals::minutes),
        credits_used: kpi(|t| t.credits_used as f64),
        average_duration_seconds: kpi(Totals::average_duration_seconds),
        success_rate: kpi(Totals::success_rate),
        average_score: kpi(Totals::average_score),
        leads_by_tag: LeadsByTag {
            hot: now.hot,
            warm: now.warm,
            cold: now.cold,
        },
        cta_conversion: CtaRates {
            pricing_clicked: percent(now.cta_pricing, now.analyzed),
            demo_clicked: percent(now.cta_demo, now.analyzed),
            followup_clicked: percent(now.cta_followup, now.analyzed),
            sample_clicked: percent(now.cta_sample, now.analyzed),
            escalated_to_human: percent(now.cta_escalated, now.analyzed),
        },
        credits_left,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayPoint {
    pub day: NaiveDate,
    #[serde(flatten)]
    pub totals: Totals,
    pub minutes: f64,
    pub success_rate: f64,
    pub average_score: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentBreakdown {
    pub agent_id: Uuid,
    pub agent_name: String,
    /// call or chat.
    #[serde(rename = "type")]
    pub kind: AgentType,
    #[serde(flatten)]
    pub totals: Totals,
    pub minutes: f64,
    pub success_rate: f64,
    pub average_score: f64,
    /// The agent's own series: one point per day of the range, zeros included.
    pub daily: Vec<DayPoint>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScoreBucket {
    /// Lowest total score in the bucket (0, 10, ..., 90; the last one holds 90-100).
    pub from: i32,
    pub to: i32,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FunnelStep {
    pub step: &'static str,
    pub count: i64,
    /// Percent of analyzed conversations.
    pub rate: f64,
}

/// `GET /api/dashboard/analytics`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Analytics {
    pub range: Range,
    /// One point per day of the range, zeros included.
    pub daily: Vec<DayPoint>,
    pub by_agent: Vec<AgentBreakdown>,
    pub score_distribution: Vec<ScoreBucket>,
    pub cta_funnel: Vec<FunnelStep>,
    /// Agents whose daily calls or success rate left their trailing 14-day band (3 sigma).
    pub anomalies: Vec<Anomaly>,
}

/// The analytics of `range` for the agents in `scope`.
pub async fn analytics(
    db: &impl GenericClient,
    tenant: TenantId,
    range: Range,
    scope: &Scope,
    agents: &Agents,
) -> AppResult<Analytics> {
    let history = Range {
        from: range.from - Duration::days(anomalies::WINDOW_DAYS),
        to: range.to,
    };
    let all = rows(db, tenant, history, scope, agents).await?;
    let in_range: Vec<&DayRow> = all.iter().filter(|r| r.day >= range.from).collect();

    let mut by_day: BTreeMap<NaiveDate, Totals> = BTreeMap::new();
    let mut by_agent: BTreeMap<Uuid, (Totals, BTreeMap<NaiveDate, Totals>)> = BTreeMap::new();
    let mut buckets = [0_i64; SCORE_BUCKETS];
    let mut total = Totals::default();
    for row in &in_range {
        by_day.entry(row.day).or_default().add(&row.totals);
        let (agent_total, agent_days) = by_agent.entry(row.agent_id).or_default();
        agent_total.add(&row.totals);
        agent_days.entry(row.day).or_default().add(&row.totals);
        for (sum, value) in buckets.iter_mut().zip(row.buckets) {
            *sum += value;
        }
        total.add(&row.totals);
    }
    let daily = daily_points(range, &mut by_day);
    let by_agent = by_agent
        .into_iter()
        .map(|(agent_id, (totals, mut days))| AgentBreakdown {
            agent_id,
            agent_name: agents.name(agent_id),
            kind: agents.kind(agent_id).unwrap_or_default(),
            minutes: totals.minutes(),
            success_rate: totals.success_rate(),
            average_score: totals.average_score(),
            totals,
            daily: daily_points(range, &mut days),
        })
        .collect();
    let score_distribution = buckets
        .iter()
        .zip(0_i32..)
        .map(|(count, i)| ScoreBucket {
            from: i * 10,
            to: if i == 9 { 100 } else { i * 10 + 9 },
            count: *count,
        })
        .collect();
    let step = |step, count| FunnelStep {
        step,
        count,
        rate: percent(count, total.analyzed),
    };
    let cta_funnel = vec![
        step("analyzed", total.analyzed),
        step("pricing_clicked", total.cta_pricing),
        step("demo_clicked", total.cta_demo),
        step("sample_clicked", total.cta_sample),
        step("followup_clicked", total.cta_followup),
        step("escalated_to_human", total.cta_escalated),
    ];
    let series = all
        .iter()
        .map(|r| {
            (
                r.agent_id,
                r.day,
                r.totals.calls + r.totals.chats,
                r.totals.success_rate(),
            )
        })
        .collect::<Vec<_>>();
    Ok(Analytics {
        range,
        daily,
        by_agent,
        score_distribution,
        cta_funnel,
        anomalies: anomalies::find(&series, range, agents),
    })
}

/// One point per day of `range`, zeros where `by_day` has none.
fn daily_points(range: Range, by_day: &mut BTreeMap<NaiveDate, Totals>) -> Vec<DayPoint> {
    (0..range.days())
        .map(|i| {
            let day = range.from + Duration::days(i);
            let totals = by_day.remove(&day).unwrap_or_default();
            DayPoint {
                day,
                minutes: totals.minutes(),
                success_rate: totals.success_rate(),
                average_score: totals.average_score(),
                totals,
            }
        })
        .collect()
}

pub mod sql {
    crate::db::statements! {
        pub const DAY_ROWS = "SELECT coalesce(s.agent_id, l.agent_id) AS agent_id, coalesce(s.day, l.day) AS day,
            coalesce(s.calls, 0)::bigint AS calls, coalesce(s.chats, 0)::bigint AS chats,
            coalesce(s.completed, 0)::bigint AS completed, coalesce(s.failed, 0)::bigint AS failed,
            coalesce(s.successful, 0)::bigint AS successful,
            coalesce(s.duration_seconds, 0)::bigint AS duration_seconds,
            coalesce(s.credits_used, 0)::bigint AS credits_used,
            coalesce(l.analyzed, 0)::bigint AS analyzed, coalesce(l.scored, 0)::bigint AS scored,
            coalesce(l.score_sum, 0)::bigint AS score_sum,
            coalesce(l.hot, 0)::bigint AS hot, coalesce(l.warm, 0)::bigint AS warm,
            coalesce(l.cold, 0)::bigint AS cold,
            coalesce(l.score_buckets, array_fill(0, ARRAY[10])) AS score_buckets,
            coalesce(l.cta_pricing, 0)::bigint AS cta_pricing, coalesce(l.cta_demo, 0)::bigint AS cta_demo,
            coalesce(l.cta_followup, 0)::bigint AS cta_followup,
            coalesce(l.cta_sample, 0)::bigint AS cta_sample,
            coalesce(l.cta_escalated, 0)::bigint AS cta_escalated
            FROM (SELECT * FROM daily_agent_stats WHERE user_id = $1 AND day BETWEEN $2 AND $3) s
            FULL JOIN (SELECT * FROM daily_lead_stats WHERE user_id = $1 AND day BETWEEN $2 AND $3) l
            ON l.agent_id = s.agent_id AND l.day = s.day";
        pub const AGENTS = "SELECT id, name, type FROM agents WHERE user_id = $1";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_and_validate() {
        let to = NaiveDate::from_ymd_opt(2026, 3, 31).expect("date");
        let range = RangeQuery {
            to: Some(to),
            ..Default::default()
        }
        .range()
        .expect("ok");
        assert_eq!(range.days(), 30);
        assert_eq!(range.previous().to, range.from - Duration::days(1));
        assert_eq!(range.previous().days(), 30);
        assert!(RangeQuery {
            days: Some(0),
            ..Default::default()
        }
        .range()
        .is_err());
        assert!(RangeQuery {
            from: Some(to + Duration::days(1)),
            to: Some(to),
            ..Default::default()
        }
        .range()
        .is_err());
        assert!(RangeQuery {
            from: Some(to - Duration::days(400)),
            to: Some(to),
            ..Default::default()
        }
        .range()
        .is_err());
    }

    #[test]
    fn rates_and_changes() {
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(1, 0), 0.0);
        assert_eq!(change(15.0, 10.0), Some(50.0));
        assert_eq!(change(5.0, 0.0), None);
    }
}
