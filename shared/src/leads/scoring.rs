//! Lead scoring: how the results of the data-collection items every agent asks for
//! (`agents::remote::DATA_COLLECTION`) map to the design's LeadAnalytics fields.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub use crate::config::TagThresholds;
use crate::lenient::int;

/// Each of the five dimensions is scored 0..=20, so the total is 0..=100.
pub const MAX_DIMENSION_SCORE: i64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadTag {
    Hot,
    Warm,
    Cold,
}

impl LeadTag {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Warm => "warm",
            Self::Cold => "cold",
        }
    }

    /// A tag as stored.
    pub fn parse(stored: &str) -> Option<Self> {
        [Self::Hot, Self::Warm, Self::Cold]
            .into_iter()
            .find(|tag| tag.as_str() == stored)
    }

    /// The tag of a 0..=100 total score.
    pub fn for_score(total: i64, thresholds: TagThresholds) -> Self {
        if total >= thresholds.hot {
            Self::Hot
        } else if total >= thresholds.warm {
            Self::Warm
        } else {
            Self::Cold
        }
    }
}

/// ElevenLabs' analysis of a conversation (its `analysis` object, parsed leniently): what
/// scoring reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Analysis {
    #[serde(default)]
    pub call_successful: Option<String>,
    #[serde(default)]
    pub transcript_summary: Option<String>,
    #[serde(default)]
    pub data_collection_results: Option<Value>,
    #[serde(default)]
    pub data_collection_results_list: Option<Vec<Value>>,
    #[serde(default)]
    pub evaluation_criteria_results: Option<Value>,
}

/// An analysis' data-collection results by id.
pub type Collected<'a> = BTreeMap<&'a str, &'a Value>;

impl Analysis {
    /// Data-collection results by id, from the map form or the list form (borrowed: an
    /// analysis is read on every call event, and copying it showed in the processor's profile).
    pub fn collected(&self) -> Collected<'_> {
        let mut out = Collected::new();
        if let Some(Value::Object(map)) = &self.data_collection_results {
            out.extend(map.iter().map(|(k, v)| (k.as_str(), v)));
        }
        for item in self.data_collection_results_list.iter().flatten() {
            if let Some(id) = item.get("data_collection_id").and_then(Value::as_str) {
                out.entry(id).or_insert(item);
            }
        }
        out
    }
}

/// The LeadAnalytics fields derived from one analysis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadScores {
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
    pub total_score: Option<i32>,
    pub lead_status_tag: Option<LeadTag>,
    pub reasoning: Value,
    pub cta_interactions: Value,
}

impl LeadScores {
    pub fn from_analysis(analysis: &Analysis, thresholds: TagThresholds) -> Self {
        let collected = analysis.collected();
        let text = |id: &str| value_of(&collected, id).and_then(as_text);
        let score = |id: &str| {
            value_of(&collected, id)
                .and_then(int)
                .map(|s| s.clamp(0, MAX_DIMENSION_SCORE) as i32)
        };
        let flag = |id: &str| value_of(&collected, id).and_then(as_flag).unwrap_or(false);
        let reason = |id: &str| {
            text(&format!("{id}_reasoning"))
                .or_else(|| rationale_of(&collected, &format!("{id}_score")))
                .unwrap_or_default()
        };
        let scores = [
            score("intent_score"),
            score("urgency_score"),
            score("budget_score"),
            score("fit_score"),
            score("engagement_score"),
        ];
        let total = scores
            .iter()
            .any(Option::is_some)
            .then(|| scores.iter().flatten().sum::<i32>());
        Self {
            intent_level: text("intent_level"),
            intent_score: scores[0],
            urgency_level: text("urgency_level"),
            urgency_score: scores[1],
            budget_constraint: text("budget_constraint"),
            budget_score: scores[2],
            fit_alignment: text("fit_alignment"),
            fit_score: scores[3],
            engagement_health: text("engagement_health"),
            engagement_score: scores[4],
            total_score: total,
            lead_status_tag: total.map(|t| LeadTag::for_score(i64::from(t), thresholds)),
            reasoning: json!({
                "intent": reason("intent"),
                "urgency": reason("urgency"),
                "budget": reason("budget"),
                "fit": reason("fit"),
                "engagement": reason("engagement"),
                "cta_behavior": text("cta_behavior_reasoning").unwrap_or_default(),
            }),
            cta_interactions: json!({
                "pricing_clicked": flag("cta_pricing_clicked"),
                "demo_clicked": flag("cta_demo_clicked"),
                "followup_clicked": flag("cta_followup_clicked"),
                "sample_clicked": flag("cta_sample_clicked"),
                "escalated_to_human": flag("cta_escalated_to_human"),
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total_score.is_none()
            && [
                &self.intent_level,
                &self.urgency_level,
                &self.budget_constraint,
                &self.fit_alignment,
                &self.engagement_health,
            ]
            .iter()
            .all(|v| v.is_none())
    }
}

/// A result is `{value, rationale, ...}`; tolerate a bare value too.
fn value_of<'a>(collected: &Collected<'a>, id: &str) -> Option<&'a Value> {
    let item = *collected.get(id)?;
    match item {
        Value::Object(fields) if fields.contains_key("value") => {
            fields.get("value").filter(|v| !v.is_null())
        }
        Value::Null => None,
        other => Some(other),
    }
}

fn rationale_of(collected: &Collected<'_>, id: &str) -> Option<String> {
    collected
        .get(id)?
        .get("rationale")?
        .as_str()
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Some(true),
            "false" | "no" | "n" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(results: Value) -> Analysis {
        serde_json::from_value(json!({ "data_collection_results": results })).expect("analysis")
    }

    #[test]
    fn maps_results_to_lead_analytics() {
        let scores = LeadScores::from_analysis(
            &analysis(json!({
                "intent_level": {"data_collection_id": "intent_level", "value": "high", "rationale": "asked for price"},
                "intent_score": {"value": 18, "rationale": "clear need"},
                "urgency_score": {"value": "15"},
                "budget_score": {"value": 12.6},
                "fit_score": {"value": 99},
                "engagement_score": {"value": -4},
                "engagement_reasoning": {"value": "short answers"},
                "cta_demo_clicked": {"value": "yes"},
                "cta_pricing_clicked": {"value": true},
                "cta_sample_clicked": {"value": null}
            })),
            TagThresholds::default(),
        );
        assert_eq!(scores.intent_level.as_deref(), Some("high"));
        assert_eq!(scores.intent_score, Some(18));
        assert_eq!(scores.budget_score, Some(13));
        assert_eq!(
            scores.fit_score,
            Some(20),
            "clamped to the dimension's maximum"
        );
        assert_eq!(scores.engagement_score, Some(0), "clamped at zero");
        assert_eq!(scores.total_score, Some(18 + 15 + 13 + 20));
        assert_eq!(scores.lead_status_tag, Some(LeadTag::Warm));
        assert_eq!(scores.reasoning["intent"], "clear need");
        assert_eq!(scores.reasoning["engagement"], "short answers");
        assert_eq!(scores.cta_interactions["demo_clicked"], true);
        assert_eq!(scores.cta_interactions["sample_clicked"], false);
    }

    #[test]
    fn empty_analysis_has_no_scores() {
        let scores = LeadScores::from_analysis(&analysis(json!({})), TagThresholds::default());
        assert!(scores.is_empty());
        assert_eq!(scores.lead_status_tag, None);
    }

    #[test]
    fn tags_follow_thresholds() {
        let default = TagThresholds::default();
        assert_eq!(LeadTag::for_score(70, default), LeadTag::Hot);
        assert_eq!(LeadTag::for_score(69, default), LeadTag::Warm);
        assert_eq!(LeadTag::for_score(40, default), LeadTag::Warm);
        assert_eq!(LeadTag::for_score(39, default), LeadTag::Cold);
        let strict = TagThresholds { hot: 90, warm: 60 };
        assert_eq!(LeadTag::for_score(80, strict), LeadTag::Warm);
        assert_eq!(LeadTag::for_score(59, strict), LeadTag::Cold);
    }
}
