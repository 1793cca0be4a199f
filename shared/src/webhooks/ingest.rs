//! The ingest path: verify the signature on the raw body, put the event on the queue (its body
//! in S3 when too big for SQS) and answer fast. Nothing heavy here: on the path of a webhook the
//! queue send is the one AWS call (with the S3 put before it for a big body). An exact
//! redelivery is queued like any event; the processor applies each event key once
//! (`webhooks::mark_processed`, in the transaction of the change).

use deadpool_postgres::GenericClient;

use super::{event_key, signature};
use crate::{
    aws::{
        blobs,
        queue::{self, EventSource, QueuedEvent, MAX_INLINE_BODY_BYTES},
        secrets::AppSecrets,
    },
    db::statements::Cached,
    error::{AppError, AppResult},
    ratelimit, AppState,
};

/// Failed verifications one source may make per minute before it gets 429 instead of 401.
/// Verified events are never limited, so a legitimate event is never turned away.
pub const FAILED_VERIFICATIONS_PER_MINUTE: i64 = 60;

/// What became of an event we queue ourselves (reconciliation, an admin's replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Queued,
    /// This exact event was processed already: nothing was queued.
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

    /// The secrets it may sign with at `now`.
    fn secrets(self, secrets: &AppSecrets, now: i64) -> Vec<&str> {
        match self {
            Sender::Elevenlabs => secrets.elevenlabs_webhook_secrets(now),
            Sender::Stripe => secrets.stripe_webhook_secrets(now),
        }
    }
}

/// How old cached secrets must be to be read again for a signature none of them matched.
const REREAD_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

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
) -> AppResult<()> {
    let mut secrets = state.secrets().get().await?;
    let now = chrono::Utc::now().timestamp();
    // Signed with none of the secrets cached (for up to SECRETS_TTL_SECONDS): an admin may
    // have rotated it since, and ElevenLabs retries neither audio nor initiation failures.
    let scheme = sender.scheme();
    if signature::verify(
        scheme,
        signature_header,
        body,
        &sender.secrets(&secrets, now),
        now,
    )
    .is_err()
    {
        match state.secrets().reread_if_older(REREAD_AFTER).await {
            Ok(Some(fresher)) => secrets = fresher,
            Ok(None) => {}
            // Then the signature is judged by the secrets cached.
            Err(err) => tracing::warn!(error = %err, "could not read the webhook secrets again"),
        }
    }
    let accepted = sender.secrets(&secrets, now);
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
    let source = sender.source();
    enqueue(state, source, route, event_key(source, body), body).await
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

/// Queues an event of ours (a reconciled conversation, an admin's replay) unless this exact
/// event was processed already, which a read of `processed_events` tells: what is settled is
/// not queued again, and the caller can say so.
pub async fn enqueue_unless_processed(
    state: &AppState,
    db: &impl GenericClient,
    source: EventSource,
    route: &str,
    body: &[u8],
) -> AppResult<Accepted> {
    let key = event_key(source, body);
    if db
        .cached_query_opt(super::sql::PROCESSED, &[&key])
        .await?
        .is_some()
    {
        tracing::info!(event_key = %key, route, "not queued: processed already");
        return Ok(Accepted::Duplicate);
    }
    enqueue(state, source, route, key, body).await?;
    Ok(Accepted::Queued)
}

/// Puts the event on the queue: one SQS send, after an S3 put when the body is too big for a
/// message (an exact redelivery writes the same object again).
async fn enqueue(
    state: &AppState,
    source: EventSource,
    route: &str,
    key: String,
    body: &[u8],
) -> AppResult<()> {
    let mut event = QueuedEvent {
        version: 1,
        source,
        route: route.to_owned(),
        event_key: key,
        received_at: chrono::Utc::now(),
        body: None,
        body_s3_key: None,
    };
    match std::str::from_utf8(body) {
        Ok(text) if body.len() <= MAX_INLINE_BODY_BYTES => event.body = Some(text.to_owned()),
        _ => {
            let object = format!("webhook-bodies/{}.json", event.event_key.replace(':', "-"));
            blobs::put(
                state.aws(),
                &state.config().aws.recordings_bucket,
                &object,
                body.to_vec(),
                "application/json",
            )
            .await?;
            event.body_s3_key = Some(object);
        }
    }
    queue::send(state.aws(), state.webhook_queue_url()?, &event).await?;
    tracing::info!(event_key = %event.event_key, route, "queued webhook event");
    Ok(())
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
