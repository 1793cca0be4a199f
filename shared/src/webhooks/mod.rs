//! Webhooks: verified at ingest, queued, and applied by the processor exactly once.

pub mod batch;
pub mod elevenlabs;
pub mod ingest;
pub mod payload;
pub mod process;
pub mod reconcile;
pub mod signature;
pub mod stripe;

use crate::db::statements::Cached;
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
        .cached_execute(
            sql::MARK_PROCESSED,
            &[&key, &source, &event_type, &conversation_id, &outcome],
        )
        .await?;
    Ok(inserted == 1)
}

/// Records the outcome an applied event ended with, when it was not `applied`.
pub async fn set_outcome(tx: &impl GenericClient, key: &str, outcome: &Outcome) -> AppResult<()> {
    tx.cached_execute(sql::SET_OUTCOME, &[&key, &outcome.as_str()])
        .await?;
    Ok(())
}

/// Keeps an event that can never be applied, once.
pub async fn record_rejected(
    tx: &impl GenericClient,
    key: &str,
    source: &str,
    raw: &str,
    reason: &str,
) -> AppResult<()> {
    tx.cached_execute(sql::RECORD_REJECTED, &[&key, &source, &raw, &reason])
        .await?;
    Ok(())
}

/// An event nobody of ours could be found for, kept for an admin to match and replay.
pub struct Unmatched<'a> {
    pub key: &'a str,
    pub source: &'a str,
    pub event_type: &'a str,
    pub elevenlabs_agent_id: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    /// The event as JSON; when it is not JSON, `raw_payload` holds it.
    pub payload: Option<&'a serde_json::Value>,
    pub raw_payload: Option<&'a str>,
    pub reason: &'a str,
}

pub async fn record_unmatched(tx: &impl GenericClient, event: &Unmatched<'_>) -> AppResult<()> {
    tx.cached_execute(
        sql::RECORD_UNMATCHED,
        &[
            &event.key,
            &event.source,
            &event.event_type,
            &event.elevenlabs_agent_id,
            &event.conversation_id,
            &event.payload,
            &event.raw_payload,
            &event.reason,
        ],
    )
    .await?;
    Ok(())
}

pub mod sql {
    crate::db::statements! {
        pub const MARK_PROCESSED = "INSERT INTO processed_events (event_key, source, event_type, conversation_id, outcome)
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_key) DO NOTHING";
        pub const PROCESSED = "SELECT 1 FROM processed_events WHERE event_key = $1";
        pub const SET_OUTCOME = "UPDATE processed_events SET outcome = $2 WHERE event_key = $1";
        pub const RECORD_REJECTED = "INSERT INTO rejected_events (event_key, source, raw_payload, reason) VALUES ($1, $2, $3, $4)
            ON CONFLICT (event_key) DO NOTHING";
        pub const RECORD_UNMATCHED = "INSERT INTO unmatched_events (event_key, source, event_type, elevenlabs_agent_id, conversation_id, payload, raw_payload, reason)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_key) DO NOTHING";
        /// Whether an event waiting for its conversation (analytics that name no agent) has
        /// waited under 30 minutes since the processor first looked at it, not since it came
        /// in: after a database outage or a replay from the dead-letter queue, its
        /// transcription may be a moment behind it (V0034).
        pub const STILL_AWAITED = "WITH seen AS (
                INSERT INTO awaited_events (event_key) VALUES ($1)
                ON CONFLICT (event_key) DO UPDATE SET event_key = EXCLUDED.event_key
                RETURNING first_seen_at)
            SELECT now() - first_seen_at < interval '30 minutes' AS waiting FROM seen";
        /// An event that waited is done with waiting: applied, or kept unmatched.
        pub const AWAITED_NO_MORE = "DELETE FROM awaited_events WHERE event_key = $1";
    }
}
