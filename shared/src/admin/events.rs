//! Webhook events that need a hand: the dead-letter queue (list, replay) and the unmatched
//! events (inspect, replay, or match to a tenant's agent and replay). Replays go through the
//! normal queue and processor, which are idempotent, so replaying twice applies once.

use crate::db::filter::Total;
use crate::db::statements::{Cached, PlannedPerRun};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, Actor, Entry};
use crate::{
    aws::queue::{self, EventSource, QueuedEvent},
    db::filter::{Filter, Keyset},
    error::{AppError, AppResult},
    webhooks::ingest,
    AppState,
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetter {
    pub message_id: String,
    pub source: Option<String>,
    pub route: Option<String>,
    pub event_key: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
    pub receive_count: u32,
    /// The event body (absent when it is stored in S3 or unreadable).
    pub body: Option<Value>,
}

fn dlq_url(state: &AppState) -> AppResult<&str> {
    state
        .config()
        .aws
        .webhook_dlq_url
        .as_deref()
        .ok_or_else(|| AppError::internal("WEBHOOK_DLQ_URL is not configured"))
}

/// Up to `max` messages from the dead-letter queue, left in place.
pub async fn dead_letters(state: &AppState, max: i32) -> AppResult<Vec<DeadLetter>> {
    let messages = queue::peek(state.aws(), dlq_url(state)?, max).await?;
    Ok(messages
        .into_iter()
        .map(|message| {
            let event: Option<QueuedEvent> = serde_json::from_str(&message.body).ok();
            DeadLetter {
                message_id: message.message_id,
                source: event.as_ref().map(|e| source_name(e.source).to_owned()),
                route: event.as_ref().map(|e| e.route.clone()),
                event_key: event.as_ref().map(|e| e.event_key.clone()),
                received_at: event.as_ref().map(|e| e.received_at),
                receive_count: message.receive_count,
                body: event
                    .and_then(|e| e.body)
                    .and_then(|b| serde_json::from_str(&b).ok()),
            }
        })
        .collect())
}

/// Moves up to `max` dead letters back to the webhook queue.
/// How long one replay request moves messages: each takes two SQS calls, and the admin's
/// function has 15 s (its database connect and the audit entry included).
pub const REPLAY_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

pub async fn replay_dead_letters(
    state: &AppState,
    actor: &Actor,
    max: usize,
) -> AppResult<queue::Replayed> {
    let replayed = queue::replay(
        state.aws(),
        dlq_url(state)?,
        state.webhook_queue_url()?,
        max,
        REPLAY_BUDGET,
    )
    .await?;
    let moved = replayed.moved;
    let client = state.db().get().await?;
    audit::record(
        &client,
        actor,
        Entry {
            action: "webhooks.dlq_replayed",
            target_type: "queue",
            target_id: "webhook-dlq".into(),
            details: json!({ "replayed": moved }),
        },
    )
    .await?;
    Ok(replayed)
}

fn source_name(source: EventSource) -> &'static str {
    match source {
        EventSource::Elevenlabs => "elevenlabs",
        EventSource::Stripe => "stripe",
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnmatchedEvent {
    pub id: Uuid,
    pub source: String,
    pub event_type: String,
    pub elevenlabs_agent_id: Option<String>,
    pub conversation_id: Option<String>,
    pub reason: String,
    pub matched_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Only in the single-event view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

fn unmatched(row: &tokio_postgres::Row, payload: Option<Value>) -> AppResult<UnmatchedEvent> {
    Ok(UnmatchedEvent {
        id: row.try_get("id")?,
        source: row.try_get("source")?,
        event_type: row.try_get("event_type")?,
        elevenlabs_agent_id: row.try_get("elevenlabs_agent_id")?,
        conversation_id: row.try_get("conversation_id")?,
        reason: row.try_get("reason")?,
        matched_at: row.try_get("matched_at")?,
        created_at: row.try_get("created_at")?,
        payload,
    })
}

pub mod sql {
    use super::{matching, NEWEST};

    macro_rules! unmatched_columns {
        () => {
            "id, source, event_type, elevenlabs_agent_id, conversation_id, reason, matched_at, created_at"
        };
    }

    /// The rows the unmatched-event list counts and pages through.
    pub const LIST_FROM: &str = "unmatched_events";
    pub const LIST_SELECT: &str =
        concat!("SELECT ", unmatched_columns!(), " FROM unmatched_events");

    crate::db::statements! {
        pub const UNMATCHED_WITH_PAYLOAD = concat!(
            "SELECT ", unmatched_columns!(), ", payload, raw_payload FROM unmatched_events WHERE id = $1"
        );
        pub const LIVE_AGENT_ELEVENLABS_ID =
            "SELECT elevenlabs_agent_id FROM agents WHERE id = $1 AND deleted_at IS NULL";
        pub const MARK_MATCHED =
            "UPDATE unmatched_events SET matched_at = now() WHERE id = $1 AND matched_at IS NULL";
        fullest {
            LIST_TOTAL = || matching(false).total_statement(LIST_FROM),
            LIST_PAGE = || matching(false).page_statement(LIST_SELECT, &NEWEST, true),
        }
    }
}

const NEWEST: Keyset = Keyset::CREATED;

/// Open (not yet matched) events by default, `include_matched` lists all; newest first, after
/// the (created_at, id) cursor when given.
pub async fn list_unmatched(
    client: &impl PlannedPerRun,
    include_matched: bool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> AppResult<(Vec<UnmatchedEvent>, Total)> {
    let matching = matching(include_matched);
    let (rows, total) = matching
        .page_with_total(
            client,
            sql::LIST_FROM,
            sql::LIST_SELECT,
            &NEWEST,
            after,
            limit,
        )
        .await?;
    let events = rows
        .iter()
        .map(|row| unmatched(row, None))
        .collect::<AppResult<_>>()?;
    Ok((events, total))
}

fn matching(include_matched: bool) -> Filter {
    let mut matching = Filter::default();
    if !include_matched {
        matching.and("matched_at IS NULL", Vec::new());
    }
    matching
}

pub async fn find_unmatched(client: &impl GenericClient, id: Uuid) -> AppResult<UnmatchedEvent> {
    let row = client
        .cached_query_opt(sql::UNMATCHED_WITH_PAYLOAD, &[&id])
        .await?
        .ok_or_else(|| AppError::not_found("unmatched event"))?;
    let payload: Option<Value> = row.try_get("payload")?;
    let raw: Option<String> = row.try_get("raw_payload")?;
    let payload = payload.or_else(|| raw.map(Value::String));
    unmatched(&row, payload)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Replayed {
    pub id: Uuid,
    /// True when this exact event was processed already (nothing new was queued).
    pub duplicate: bool,
    /// The ElevenLabs agent the event now names, when it was matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

/// Queues the event again, as received or (with `agent`) rewritten to name that agent of ours,
/// for which the tenant is then known. The event is marked matched once it is queued.
pub async fn replay_unmatched(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    agent: Option<Uuid>,
) -> AppResult<Replayed> {
    let client = state.db().get().await?;
    let event = find_unmatched(&client, id).await?;
    if event.source != "elevenlabs" {
        return Err(AppError::conflict(
            "not_replayable",
            "only ElevenLabs events can be matched to an agent and replayed; Stripe events name a purchase",
        ));
    }
    let Some(Value::Object(mut body)) = event.payload.clone() else {
        return Err(AppError::conflict(
            "not_replayable",
            "the event's body was not JSON and cannot be replayed",
        ));
    };
    if body.get("data").and_then(|d| d.get("full_audio")).is_some() {
        return Err(AppError::conflict(
            "not_replayable",
            "audio events are kept without their audio; ElevenLabs can send it again",
        ));
    }
    let agent_id = match agent {
        Some(agent) => {
            let elevenlabs_id: String = client
                .cached_query_opt(sql::LIVE_AGENT_ELEVENLABS_ID, &[&agent])
                .await?
                .ok_or_else(|| AppError::not_found("agent"))?
                .try_get(0)?;
            let data = body
                .entry("data")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .ok_or_else(|| {
                    AppError::conflict("not_replayable", "the event has no data object")
                })?;
            data.insert("agent_id".into(), json!(elevenlabs_id));
            Some(elevenlabs_id)
        }
        None => None,
    };
    let raw = serde_json::to_vec(&Value::Object(body)).map_err(AppError::internal)?;
    let route = if matches!(
        event.event_type.as_str(),
        "call_analytics" | "call-analytics"
    ) {
        "call-analytics"
    } else {
        "call-completed"
    };
    let accepted =
        ingest::enqueue_unless_processed(state, &client, EventSource::Elevenlabs, route, &raw)
            .await?;
    client.cached_execute(sql::MARK_MATCHED, &[&id]).await?;
    audit::record(
        &client,
        actor,
        Entry {
            action: if agent.is_some() {
                "webhooks.event_matched"
            } else {
                "webhooks.event_replayed"
            },
            target_type: "unmatched_event",
            target_id: id.to_string(),
            details: json!({ "agent_id": agent, "elevenlabs_agent_id": agent_id }),
        },
    )
    .await?;
    Ok(Replayed {
        id,
        duplicate: accepted == ingest::Accepted::Duplicate,
        agent_id,
    })
}
