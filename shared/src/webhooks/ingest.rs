//! The ingest path: verify the signature on the raw body, drop exact redeliveries, put the
//! event on the queue (its body in S3 when too big for SQS) and answer fast. Nothing heavy here.

use super::{event_key, signature};
use crate::{
    aws::{
        blobs, dedup,
        queue::{self, EventSource, QueuedEvent, MAX_INLINE_BODY_BYTES},
    },
    error::{AppError, AppResult},
    ratelimit, AppState,
};

/// Failed verifications one source may make per minute before it gets 429 instead of 401.
/// Verified events are never limited, so a legitimate event is never turned away.
pub const FAILED_VERIFICATIONS_PER_MINUTE: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Queued,
    /// An exact redelivery of an event already queued.
    Duplicate,
}

/// Which sender an event comes from: how it is signed, which secrets verify it, its queue source.
#[derive(Debug, Clone, Copy)]
pub enum Sender {
    Elevenlabs,
    Stripe,
}

impl Sender {
    fn scheme(self) -> signature::Scheme {
        match self {
            Self::Elevenlabs => signature::ELEVENLABS,
            Self::Stripe => signature::STRIPE,
        }
    }

    fn source(self) -> EventSource {
        match self {
            Self::Elevenlabs => EventSource::Elevenlabs,
            Self::Stripe => EventSource::Stripe,
        }
    }

    /// The signature header's name, as the sender writes it.
    pub fn header(self) -> &'static str {
        self.scheme().header
    }
}

/// Verifies the event's signature against the sender's current (and, during a rotation's
/// grace period, previous) secret, then queues it. ElevenLabs signs `v0`s with a 30 minute
/// window; Stripe any matching `v1` within 300 s.
pub async fn receive(
    state: &AppState,
    sender: Sender,
    route: &str,
    signature_header: Option<&str>,
    source_ip: &str,
    body: &[u8],
) -> AppResult<Accepted> {
    let secrets = state.secrets().get().await?;
    let now = chrono::Utc::now().timestamp();
    let accepted = match sender {
        Sender::Elevenlabs => secrets.elevenlabs_webhook_secrets(now),
        Sender::Stripe => secrets.stripe_webhook_secrets(now),
    };
    verify(
        state,
        sender.scheme(),
        signature_header,
        body,
        &accepted,
        source_ip,
        now,
    )
    .await?;
    enqueue(state, sender.source(), route, body).await
}

async fn verify(
    state: &AppState,
    scheme: signature::Scheme,
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    source_ip: &str,
    now: i64,
) -> AppResult<()> {
    if let Err(err) = signature::verify(scheme, header, body, secrets, now) {
        note_failed_verification(state, source_ip).await?;
        return Err(AppError::unauthorized(
            err.code(),
            format!("{}: {err}", scheme.header),
        ));
    }
    Ok(())
}

/// Queues a verified event once; a failure to queue gives the dedup claim back so the sender's
/// retry gets through.
pub async fn enqueue(
    state: &AppState,
    source: EventSource,
    route: &str,
    body: &[u8],
) -> AppResult<Accepted> {
    let aws = state.aws();
    let config = &state.config().aws;
    let key = event_key(source, body);
    let claim = format!("webhook#{key}");
    if !dedup::claim(
        aws.dynamodb().await,
        &config.table,
        &claim,
        config.webhook_dedup_ttl,
    )
    .await?
    {
        tracing::info!(event_key = %key, "dropped an exact redelivery");
        return Ok(Accepted::Duplicate);
    }
    let result = async {
        let mut event = QueuedEvent {
            version: 1,
            source,
            route: route.to_owned(),
            event_key: key.clone(),
            received_at: chrono::Utc::now(),
            body: None,
            body_s3_key: None,
        };
        match std::str::from_utf8(body) {
            Ok(text) if body.len() <= MAX_INLINE_BODY_BYTES => event.body = Some(text.to_owned()),
            _ => {
                let object = format!("webhook-bodies/{}.json", key.replace(':', "-"));
                blobs::put(
                    aws.s3().await,
                    &config.recordings_bucket,
                    &object,
                    body.to_vec(),
                    "application/json",
                )
                .await?;
                event.body_s3_key = Some(object);
            }
        }
        queue::send(aws.sqs().await, state.webhook_queue_url()?, &event).await
    }
    .await;
    if let Err(err) = result {
        if let Err(release) = dedup::release(aws.dynamodb().await, &config.table, &claim).await {
            tracing::error!(error = %release, "could not release a dedup claim");
        }
        return Err(err);
    }
    tracing::info!(event_key = %key, route, "queued webhook event");
    Ok(Accepted::Queued)
}

/// Counts a failed verification for `source_ip` in this minute's window; past the limit the
/// source is told to slow down (429) rather than only "unauthorized".
async fn note_failed_verification(state: &AppState, source_ip: &str) -> AppResult<()> {
    ratelimit::count(
        state.rate_counter().await,
        "webhook-auth",
        source_ip,
        ratelimit::Window {
            limit: FAILED_VERIFICATIONS_PER_MINUTE,
            seconds: 60,
        },
        "too many requests with invalid signatures from this source",
    )
    .await
}
