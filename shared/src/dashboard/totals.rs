//! Call and lead totals, summed from rollup rows, and the rates derived from them.

use serde::Serialize;
use utoipa::ToSchema;

/// Call and lead totals over a range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Totals {
    pub calls: i64,
    pub chats: i64,
    pub completed: i64,
    pub failed: i64,
    pub successful: i64,
    pub duration_seconds: i64,
    pub credits_used: i64,
    pub analyzed: i64,
    pub scored: i64,
    pub score_sum: i64,
    pub hot: i64,
    pub warm: i64,
    pub cold: i64,
    pub cta_pricing: i64,
    pub cta_demo: i64,
    pub cta_followup: i64,
    pub cta_sample: i64,
    pub cta_escalated: i64,
}

impl Totals {
    pub(super) fn add(&mut self, other: &Totals) {
        macro_rules! sum {
            ($($field:ident),*) => { $(self.$field += other.$field;)* };
        }
        sum!(
            calls,
            chats,
            completed,
            failed,
            successful,
            duration_seconds,
            credits_used,
            analyzed,
            scored,
            score_sum,
            hot,
            warm,
            cold,
            cta_pricing,
            cta_demo,
            cta_followup,
            cta_sample,
            cta_escalated
        );
    }

    pub fn minutes(&self) -> f64 {
        round2(self.duration_seconds as f64 / 60.0)
    }

    pub fn average_duration_seconds(&self) -> f64 {
        ratio(self.duration_seconds, self.completed + self.failed)
    }

    /// Share of finished calls and chats ElevenLabs judged successful, in percent.
    pub fn success_rate(&self) -> f64 {
        percent(self.successful, self.completed + self.failed)
    }

    pub fn average_score(&self) -> f64 {
        ratio(self.score_sum, self.scored)
    }
}

pub(super) fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

pub(super) fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round2(part as f64 / whole as f64)
    }
}

pub(super) fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round2(part as f64 * 100.0 / whole as f64)
    }
}

/// Change from `previous` to `current` in percent; null when there was nothing before.
pub(super) fn change(current: f64, previous: f64) -> Option<f64> {
    (previous != 0.0).then(|| round2((current - previous) * 100.0 / previous))
}
