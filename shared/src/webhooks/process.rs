//! The processor: applies one queued event in one database transaction, exactly once.
//! An `Err` is transient (the database or AWS is down): the message is retried by SQS and
//! lands in the dead-letter queue after maxReceiveCount. Events that can never be applied
//! are recorded (rejected or unmatched) and acknowledged.

use super::{
    elevenlabs, event_key, mark_processed, payload::without_nuls, record_rejected, stripe, Outcome,
};
use crate::{
    aws::{
        blobs,
        queue::{EventSource, QueuedEvent, QueuedJob},
    },
    error::AppResult,
    export_jobs, AppState,
};

/// Applies the event carried by one queue message body, or runs the job it carries (an export
/// job shares the queue).
pub async fn process_message(state: &AppState, message: &str) -> AppResult<Outcome> {
    let event: QueuedEvent = match serde_json::from_str(message) {
        Ok(event) => event,
        Err(err) => {
            if let Ok(QueuedJob::Export { export_id }) = serde_json::from_str(message) {
                export_jobs::run::run(state, export_id).await?;
                return Ok(Outcome::Applied);
            }
            let key = event_key(EventSource::Elevenlabs, message.as_bytes());
            return reject(
                state,
                &key,
                EventSource::Elevenlabs,
                message,
                &format!("not a queued event: {err}"),
            )
            .await;
        }
    };
    let raw = match (&event.body, &event.body_s3_key) {
        (Some(body), _) => body.clone(),
        (None, Some(object)) => {
            let bytes =
                blobs::get(state.aws(), &state.config().aws.recordings_bucket, object).await?;
            match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    return reject(
                        state,
                        &event.event_key,
                        event.source,
                        object,
                        "body is not UTF-8",
                    )
                    .await
                }
            }
        }
        (None, None) => {
            return reject(
                state,
                &event.event_key,
                event.source,
                message,
                "event without a body",
            )
            .await
        }
    };
    let raw = without_nuls(&raw);
    let outcome = match event.source {
        EventSource::Elevenlabs => elevenlabs::apply(state, &event, &raw).await?,
        EventSource::Stripe => stripe::apply(state, &event, &raw).await?,
    };
    if let Outcome::Rejected(reason) = &outcome {
        return reject(state, &event.event_key, event.source, &raw, reason).await;
    }
    tracing::info!(event_key = %event.event_key, outcome = outcome.as_str(), "processed webhook event");
    Ok(outcome)
}

/// Records an event that can never be applied, once.
pub async fn reject(
    state: &AppState,
    key: &str,
    source: EventSource,
    raw: &str,
    reason: &str,
) -> AppResult<Outcome> {
    let source = match source {
        EventSource::Elevenlabs => "elevenlabs",
        EventSource::Stripe => "stripe",
    };
    let mut client = state.db().get().await?;
    let tx = client.transaction().await?;
    if mark_processed(&tx, key, source, "unknown", None, "rejected").await? {
        record_rejected(&tx, key, source, raw, reason).await?;
    }
    tx.commit().await?;
    tracing::warn!(event_key = %key, reason, "rejected webhook event");
    Ok(Outcome::Rejected(reason.to_owned()))
}
