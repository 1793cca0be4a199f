//! Webhooks: verified at ingest, queued, and applied by the processor exactly once.

pub mod batch;
pub mod elevenlabs;
pub mod ingest;
pub mod payload;
pub mod process;
pub mod reconcile;
pub mod signature;
pub mod stripe;

use aws_lc_rs::digest;
use deadpool_postgres::GenericClient;

use crate::{aws::queue::EventSource, error::AppResult};

/// The dedup key of an exact event: its source and the hash of its raw body.
pub fn event_key(source: EventSource, body: &[u8]) -> String {
    let prefix = match source {
        EventSource::Elevenlabs => "el",
        EventSource::Stripe => "st",
    };
    format!(
        "{prefix}:{}",
        hex::encode(digest::digest(&digest::SHA256, body))
    )
}

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Seen before: nothing changed.
    Duplicate,
    /// The agent is unknown: kept in unmatched_events for later matching.
    Unmatched,
    /// Malformed: recorded in rejected_events, never retried.
    Rejected(String),
    /// A valid event we do not act on (or one whose change a later state already covers).
    Ignored,
    /// A payment held for a person to review; no credits moved.
    Review(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Unmatched => "unmatched",
            Self::Rejected(_) => "rejected",
            Self::Ignored => "ignored",
            Self::Review(_) => "review",
        }
    }
}

/// Marks an event processed inside the caller's transaction; false when it already was.
pub async fn mark_processed(
    tx: &impl GenericClient,
    key: &str,
    source: &str,
    event_type: &str,
    conversation_id: Option<&str>,
    outcome: &str,
) -> AppResult<bool> {
    let inserted = tx
        .execute(
            "INSERT INTO processed_events (event_key, source, event_type, conversation_id, outcome)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_key) DO NOTHING",
            &[&key, &source, &event_type, &conversation_id, &outcome],
        )
        .await?;
    Ok(inserted == 1)
}
