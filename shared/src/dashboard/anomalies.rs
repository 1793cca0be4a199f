//! Anomaly flags: a day on which an agent's volume or success rate falls outside the mean ±
//! 3 standard deviations of its previous 14 days.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Agents, Range};

pub const WINDOW_DAYS: i64 = 14;
const SIGMAS: f64 = 3.0;
/// Days with some activity the window needs before it is trusted.
const MIN_ACTIVE_DAYS: usize = 7;

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Anomaly {
    pub agent_id: Uuid,
    pub agent_name: String,
    pub day: NaiveDate,
    /// `daily_volume` or `success_rate`.
    pub metric: &'static str,
    pub value: f64,
    pub mean: f64,
    pub stddev: f64,
}

/// `series`: (agent, day, conversations, success rate) for every day with activity, from
/// `WINDOW_DAYS` before the range on. Days without a row count as zero volume.
pub fn find(series: &[(Uuid, NaiveDate, i64, f64)], range: Range, agents: &Agents) -> Vec<Anomaly> {
    let mut per_agent: HashMap<Uuid, BTreeMap<NaiveDate, (i64, f64)>> = HashMap::new();
    for (agent, day, volume, rate) in series {
        per_agent
            .entry(*agent)
            .or_default()
            .insert(*day, (*volume, *rate));
    }
    let mut found = Vec::new();
    for (agent, days) in &per_agent {
        let mut day = range.from;
        while day <= range.to {
            let window: Vec<(i64, Option<f64>)> = (1..=WINDOW_DAYS)
                .map(|back| {
                    let d = day - Duration::days(back);
                    days.get(&d)
                        .map_or((0, None), |(v, r)| (*v, (*v > 0).then_some(*r)))
                })
                .collect();
            let (volume, rate) = days.get(&day).copied().unwrap_or((0, 0.0));
            let mut flag = |metric, value: f64, history: Vec<f64>| {
                if let Some((mean, stddev)) = band(&history) {
                    if (value - mean).abs() > SIGMAS * stddev {
                        found.push(Anomaly {
                            agent_id: *agent,
                            agent_name: agents.name(*agent),
                            day,
                            metric,
                            value,
                            mean,
                            stddev,
                        });
                    }
                }
            };
            let active = window.iter().filter(|(v, _)| *v > 0).count();
            if active >= MIN_ACTIVE_DAYS {
                flag(
                    "daily_volume",
                    volume as f64,
                    window.iter().map(|(v, _)| *v as f64).collect(),
                );
                if volume > 0 {
                    flag(
                        "success_rate",
                        rate,
                        window.iter().filter_map(|(_, r)| *r).collect(),
                    );
                }
            }
            day += Duration::days(1);
        }
    }
    found.sort_by_key(|a| (a.day, a.agent_id));
    found
}

/// Mean and standard deviation, when there is enough history to judge by. A flat history
/// (stddev 0) gets a floor of one unit so a single extra call is not an anomaly.
fn band(history: &[f64]) -> Option<(f64, f64)> {
    if history.len() < MIN_ACTIVE_DAYS {
        return None;
    }
    let n = history.len() as f64;
    let mean = history.iter().sum::<f64>() / n;
    let variance = history.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Some((round(mean), round(variance.sqrt().max(1.0))))
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).expect("date") + Duration::days(n)
    }

    #[test]
    fn a_spike_after_a_steady_fortnight_is_flagged_and_normal_days_are_not() {
        let agent = Uuid::new_v4();
        let mut series: Vec<_> = (0..14).map(|d| (agent, day(d), 10 + d % 2, 50.0)).collect();
        series.push((agent, day(14), 11, 50.0));
        series.push((agent, day(15), 60, 50.0));
        let range = Range {
            from: day(14),
            to: day(15),
        };
        let found = find(&series, range, &Agents::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].day, day(15));
        assert_eq!(found[0].metric, "daily_volume");
    }

    #[test]
    fn a_collapsed_success_rate_is_flagged_and_thin_history_is_not_judged() {
        let agent = Uuid::new_v4();
        let mut series: Vec<_> = (0..14).map(|d| (agent, day(d), 10, 80.0)).collect();
        series.push((agent, day(14), 10, 10.0));
        let found = find(
            &series,
            Range {
                from: day(14),
                to: day(14),
            },
            &Agents::default(),
        );
        assert_eq!(
            found.iter().map(|a| a.metric).collect::<Vec<_>>(),
            ["success_rate"]
        );

        let thin: Vec<_> = (10..14)
            .map(|d| (agent, day(d), 1, 80.0))
            .chain([(agent, day(14), 50, 0.0)])
            .collect();
        assert!(find(
            &thin,
            Range {
                from: day(14),
                to: day(14)
            },
            &Agents::default()
        )
        .is_empty());
    }
}
