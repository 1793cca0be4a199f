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

use crate::aws::queue::EventSource;

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
