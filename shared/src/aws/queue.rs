//! The webhook queue: what ingest sends, what the processor receives, and the dead-letter
//! queue's list and replay.

use serde::{Deserialize, Serialize};

use super::sdk_error;
use crate::error::AppResult;

/// SQS refuses bodies over 256 KiB; anything bigger travels through S3.
pub const MAX_INLINE_BODY_BYTES: usize = 200 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    Elevenlabs,
    Stripe,
}

/// A verified webhook event on its way to the processor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedEvent {
    pub version: u8,
    pub source: EventSource,
    /// Which endpoint received it (`call-completed`, `call-analytics`, `reconciliation`, ...).
    pub route: String,
    /// Stable id of this exact event (hash of the raw body): the processor's dedup key.
    pub event_key: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// The raw body, when small enough to travel inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Where the raw body was stored instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_s3_key: Option<String>,
}

/// Work other than a webhook event that the processor takes from the same queue (a message
/// that is not a [`QueuedEvent`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum QueuedJob {
    /// The next slice of an export.
    Export { export_id: uuid::Uuid },
}

pub async fn send(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    event: &QueuedEvent,
) -> AppResult<()> {
    send_json(client, queue_url, event, 0).await
}

/// Queues a job, received no sooner than `delay_seconds` (0–900) from now.
pub async fn send_job(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    job: &QueuedJob,
    delay_seconds: i32,
) -> AppResult<()> {
    send_json(client, queue_url, job, delay_seconds).await
}

async fn send_json(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    message: &impl Serialize,
    delay_seconds: i32,
) -> AppResult<()> {
    let body = serde_json::to_string(message).map_err(crate::AppError::internal)?;
    client
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .delay_seconds(delay_seconds)
        .send()
        .await
        .map_err(|e| sdk_error("sending to the webhook queue", e))?;
    Ok(())
}

/// A message as received: its receipt handle and body.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
}

pub async fn receive(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: i32,
    wait_seconds: i32,
) -> AppResult<Vec<Received>> {
    receive_with(client, queue_url, max, wait_seconds, None).await
}

/// Looks at up to `max` messages without taking them: they stay visible to the consumer.
pub async fn peek(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: i32,
) -> AppResult<Vec<Received>> {
    receive_with(client, queue_url, max.clamp(1, 10), 0, Some(0)).await
}

async fn receive_with(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: i32,
    wait_seconds: i32,
    visibility_timeout: Option<i32>,
) -> AppResult<Vec<Received>> {
    let output = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max)
        .wait_time_seconds(wait_seconds)
        .set_visibility_timeout(visibility_timeout)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
        .map_err(|e| sdk_error("receiving from a queue", e))?;
    Ok(output
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let receive_count = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            Some(Received {
                message_id: m.message_id?,
                receipt_handle: m.receipt_handle?,
                body: m.body.unwrap_or_default(),
                receive_count,
            })
        })
        .collect())
}

pub async fn delete(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handle: &str,
) -> AppResult<()> {
    client
        .delete_message()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .send()
        .await
        .map_err(|e| sdk_error("deleting a message", e))?;
    Ok(())
}

/// Moves up to `max` messages from the dead-letter queue back to the main queue. Each one is
/// sent before it is deleted, so a crash in between duplicates (harmless: the processor is
/// idempotent) rather than loses.
pub async fn replay(
    client: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
    max: usize,
) -> AppResult<usize> {
    let mut moved = 0;
    while moved < max {
        let batch = receive(client, dlq_url, 10, 0).await?;
        if batch.is_empty() {
            break;
        }
        for message in batch {
            client
                .send_message()
                .queue_url(queue_url)
                .message_body(&message.body)
                .send()
                .await
                .map_err(|e| sdk_error("replaying a message", e))?;
            delete(client, dlq_url, &message.receipt_handle).await?;
            moved += 1;
        }
    }
    Ok(moved)
}
