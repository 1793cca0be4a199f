//! The webhook queue: what ingest sends, what the processor receives, and the dead-letter
//! queue's list and replay.

use std::collections::HashMap;

use serde::{de::IgnoredAny, Deserialize, Serialize};
use serde_json::json;

use super::{Client, Service};
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

pub async fn send(client: &Client, queue_url: &str, event: &QueuedEvent) -> AppResult<()> {
    send_json(client, queue_url, event, 0).await
}

/// Queues a job, received no sooner than `delay_seconds` (0–900) from now.
pub async fn send_job(
    client: &Client,
    queue_url: &str,
    job: &QueuedJob,
    delay_seconds: i32,
) -> AppResult<()> {
    send_json(client, queue_url, job, delay_seconds).await
}

async fn send_json(
    client: &Client,
    queue_url: &str,
    message: &impl Serialize,
    delay_seconds: i32,
) -> AppResult<()> {
    let body = serde_json::to_string(message).map_err(crate::AppError::internal)?;
    send_body(client, queue_url, &body, delay_seconds).await
}

async fn send_body(
    client: &Client,
    queue_url: &str,
    body: &str,
    delay_seconds: i32,
) -> AppResult<()> {
    let input = json!({
        "QueueUrl": queue_url,
        "MessageBody": body,
        "DelaySeconds": delay_seconds,
    });
    client
        .json::<IgnoredAny>(Service::Sqs, "SendMessage", &input)
        .await?;
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
    client: &Client,
    queue_url: &str,
    max: i32,
    wait_seconds: i32,
) -> AppResult<Vec<Received>> {
    receive_with(client, queue_url, max, wait_seconds, None).await
}

/// Looks at up to `max` messages without taking them: they stay visible to the consumer.
pub async fn peek(client: &Client, queue_url: &str, max: i32) -> AppResult<Vec<Received>> {
    receive_with(client, queue_url, max.clamp(1, 10), 0, Some(0)).await
}

/// ReceiveMessage's answer, as far as it is read.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Messages {
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    message_id: Option<String>,
    receipt_handle: Option<String>,
    body: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
}

async fn receive_with(
    client: &Client,
    queue_url: &str,
    max: i32,
    wait_seconds: i32,
    visibility_timeout: Option<i32>,
) -> AppResult<Vec<Received>> {
    let mut input = json!({
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": max,
        "WaitTimeSeconds": wait_seconds,
        "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
    });
    if let Some(timeout) = visibility_timeout {
        input["VisibilityTimeout"] = json!(timeout);
    }
    let output: Messages = client.json(Service::Sqs, "ReceiveMessage", &input).await?;
    Ok(output
        .messages
        .into_iter()
        .filter_map(|m| {
            let receive_count = m
                .attributes
                .get("ApproximateReceiveCount")
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

pub async fn delete(client: &Client, queue_url: &str, receipt_handle: &str) -> AppResult<()> {
    let input = json!({"QueueUrl": queue_url, "ReceiptHandle": receipt_handle});
    client
        .json::<IgnoredAny>(Service::Sqs, "DeleteMessage", &input)
        .await?;
    Ok(())
}

/// What [`replay`] moved, and whether it found the dead-letter queue empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub moved: usize,
    /// False when `max` or the time allowed ran out first: more may be left.
    pub emptied: bool,
}

/// How long each of [`replay`]'s receives waits for a message. A receive that does not wait
/// asks only some of SQS's servers, and on a queue of fewer than 1,000 messages may answer none
/// while some are left; one that waits asks them all, so its empty answer means empty. The
/// shortest wait SQS takes, paid once, by the last receive.
const REPLAY_RECEIVE_WAIT_SECONDS: i32 = 1;

/// Moves up to `max` messages from the dead-letter queue back to the main queue, batch after
/// batch while `budget` lasts (the first batch whatever it is). Each one is sent before it is
/// deleted, so a crash in between duplicates (harmless: the processor is idempotent) rather
/// than loses.
pub async fn replay(
    client: &Client,
    dlq_url: &str,
    queue_url: &str,
    max: usize,
    budget: std::time::Duration,
) -> AppResult<Replayed> {
    let started = std::time::Instant::now();
    let mut moved = 0;
    let emptied = loop {
        if moved >= max || (moved > 0 && started.elapsed() >= budget) {
            break false;
        }
        let batch = receive(client, dlq_url, 10, REPLAY_RECEIVE_WAIT_SECONDS).await?;
        if batch.is_empty() {
            break true;
        }
        for message in batch {
            send_body(client, queue_url, &message.body, 0).await?;
            delete(client, dlq_url, &message.receipt_handle).await?;
            moved += 1;
        }
    };
    Ok(Replayed { moved, emptied })
}
