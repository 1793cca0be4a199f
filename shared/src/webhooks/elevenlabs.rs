//! ElevenLabs events, at the edge: the payload is parsed into a typed [`CallEvent`] (pure, see
//! [`parse`]), the tenant found from the agent id, and the event applied to its call by
//! `calls::lifecycle` in one transaction with the event's dedup row. Events for agents we do
//! not know are kept in unmatched_events.

use crate::db::statements::Cached;
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};

use super::{
    mark_processed,
    payload::{int, Analysis, Envelope, InitiationFailure, Transcription},
    record_unmatched, Outcome, Unmatched,
};
use crate::{
    aws::queue::QueuedEvent,
    calls::{
        event::{CallEvent, CallRef, CallStatus, Speaker, Transcript, Turn},
        lifecycle, owner, recording,
    },
    error::{AppError, AppResult},
    AppState,
};

const SOURCE: &str = "elevenlabs";

/// The route of the analytics endpoint (its events have no `type`).
const ANALYTICS_ROUTE: &str = "call-analytics";

/// One ElevenLabs webhook, parsed.
#[derive(Debug)]
pub struct Parsed {
    pub conversation_id: String,
    pub agent_id: Option<String>,
    pub event_at: DateTime<Utc>,
    pub event: Payload,
}

/// The event as it arrived; audio is still base64-decoded bytes until it is stored.
#[derive(Debug)]
pub enum Payload {
    Transcribed(Box<Transcript>),
    Audio(Vec<u8>),
    InitiationFailed { to: Option<String>, reason: String },
    Analyzed(Analysis),
}

/// Why an event cannot be applied as it is.
#[derive(Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Malformed: recorded as rejected.
    Rejected(String),
    /// A type we do not know: kept as unmatched.
    Unsupported(String),
}

/// Parses an event's raw body (`route` is the endpoint it came in on; `received_at` stands in
/// for a missing timestamp).
pub fn parse(route: &str, raw: &str, received_at: DateTime<Utc>) -> Result<Parsed, Unusable> {
    let rejected = |reason: &str| Unusable::Rejected(reason.to_owned());
    let envelope =
        serde_json::from_str::<Envelope>(raw).map_err(|_| rejected("body is not a JSON object"))?;
    let analytics_route = route == ANALYTICS_ROUTE;
    #[derive(PartialEq)]
    enum Kind {
        Transcription,
        Audio,
        InitiationFailure,
        Analytics,
    }
    let kind = match envelope.kind.as_deref() {
        _ if analytics_route => Kind::Analytics,
        Some("post_call_transcription") => Kind::Transcription,
        Some("post_call_audio") => Kind::Audio,
        Some("call_initiation_failure") => Kind::InitiationFailure,
        other => {
            return Err(Unusable::Unsupported(format!(
                "unsupported event type {:?}",
                other.unwrap_or("<none>")
            )))
        }
    };
    // The analytics endpoint also takes a bare {conversation_id, agent_id, analysis}.
    let data = match (envelope.data.clone(), analytics_route) {
        (Some(data), _) => data,
        (None, true) => serde_json::from_str(raw).unwrap_or(Value::Null),
        (None, false) => return Err(rejected("event without data")),
    };
    let text = |field: &str| data.get(field).and_then(Value::as_str).map(str::to_owned);
    let Some(conversation_id) = text("conversation_id").filter(|c| !c.trim().is_empty()) else {
        return Err(rejected("data.conversation_id is missing"));
    };
    let agent_id = text("agent_id");
    let event = match kind {
        Kind::Transcription => {
            let t = serde_json::from_value::<Transcription>(data)
                .map_err(|err| Unusable::Rejected(format!("transcription data: {err}")))?;
            Payload::Transcribed(Box::new(transcript(t)))
        }
        Kind::Audio => {
            let audio = data
                .get("full_audio")
                .and_then(Value::as_str)
                .ok_or_else(|| rejected("data.full_audio is missing"))?;
            match STANDARD.decode(audio.trim()) {
                Ok(bytes) if !bytes.is_empty() => Payload::Audio(bytes),
                _ => return Err(rejected("full_audio is not base64 audio")),
            }
        }
        Kind::InitiationFailure => {
            let failure = serde_json::from_value::<InitiationFailure>(data).unwrap_or_default();
            let body = failure.metadata.as_ref().and_then(|m| m.get("body"));
            Payload::InitiationFailed {
                to: body
                    .and_then(|b| b.get("To").or_else(|| b.get("to")))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                reason: failure.failure_reason.unwrap_or_else(|| "unknown".into()),
            }
        }
        Kind::Analytics => match data.get("analysis").cloned().map(serde_json::from_value) {
            Some(Ok(analysis)) => Payload::Analyzed(analysis),
            _ => return Err(rejected("data.analysis is missing or malformed")),
        },
    };
    Ok(Parsed {
        conversation_id,
        agent_id,
        event_at: envelope
            .timestamp()
            .and_then(|t| Utc.timestamp_opt(t, 0).single())
            .unwrap_or(received_at),
        event,
    })
}

/// The facts of a `post_call_transcription`.
fn transcript(t: Transcription) -> Transcript {
    let phone_call = t.metadata.phone_call.clone().unwrap_or_default();
    let batch = t.metadata.batch_call.clone().unwrap_or_default();
    Transcript {
        status: Some(match t.status.as_deref() {
            Some("failed") => CallStatus::Failed,
            Some("done") | None => CallStatus::Completed,
            Some(_) => CallStatus::InProgress,
        }),
        is_chat: t.metadata.text_only == Some(true) || t.metadata.phone_call.is_none(),
        direction: phone_call
            .direction
            .filter(|d| d == "inbound" || d == "outbound"),
        other_party: phone_call.external_number,
        agent_number: phone_call.agent_number,
        provider: phone_call.provider,
        started_at: t
            .metadata
            .start_time_unix_secs
            .as_ref()
            .and_then(int)
            .and_then(|s| Utc.timestamp_opt(s, 0).single()),
        duration_seconds: t
            .metadata
            .call_duration_secs
            .as_ref()
            .and_then(int)
            .unwrap_or(0)
            .max(0),
        cost: t.metadata.cost.as_ref().and_then(int),
        termination_reason: t.metadata.termination_reason,
        dynamic_variables: t
            .conversation_initiation_client_data
            .and_then(|c| c.dynamic_variables)
            .unwrap_or_default(),
        user_id: t.user_id,
        batch_call_id: batch.batch_call_id,
        batch_recipient_id: batch.batch_call_recipient_id,
        turns: t
            .transcript
            .into_iter()
            .filter_map(|turn| {
                Some(Turn {
                    speaker: if turn.role.as_deref() == Some("agent") {
                        Speaker::Agent
                    } else {
                        Speaker::User
                    },
                    at_seconds: turn.time_in_call_secs.as_ref().and_then(int).unwrap_or(0),
                    text: turn.message?,
                })
            })
            .collect(),
        analysis: t.analysis,
    }
}

pub async fn apply(state: &AppState, event: &QueuedEvent, raw: &str) -> AppResult<Outcome> {
    let parsed = match parse(&event.route, raw, event.received_at) {
        Ok(parsed) => parsed,
        Err(Unusable::Rejected(reason)) => return Ok(Outcome::Rejected(reason)),
        Err(Unusable::Unsupported(reason)) => {
            return keep_unmatched(state, event, raw, None, &reason).await
        }
    };
    let names_no_agent = parsed.agent_id.is_none();
    let settings = state.settings().await?;
    // One connection for the lookup and the transaction.
    let mut client = state.db().get().await?;
    let owner = match &parsed.agent_id {
        Some(agent) => owner::of_agent(&client, agent).await?,
        None => owner::of_conversation(&client, &parsed.conversation_id).await?,
    };
    let Some(agent) = owner else {
        if names_no_agent && event.route != ANALYTICS_ROUTE {
            return Ok(Outcome::Rejected("data.agent_id is missing".into()));
        }
        // Its transcription may come after it: retried through the queue meanwhile
        // (`STILL_AWAITED` says how long), then kept as unmatched.
        if names_no_agent
            && client
                .cached_query_one(super::sql::STILL_AWAITED, &[&event.event_key])
                .await?
                .try_get("waiting")?
        {
            return Err(AppError::internal(
                "analytics for a conversation not stored yet; retried",
            ));
        }
        drop(client);
        let reason = format!(
            "unknown agent {:?}",
            parsed.agent_id.as_deref().unwrap_or("<none>")
        );
        return keep_unmatched(state, event, raw, Some(&parsed.conversation_id), &reason).await;
    };
    let call = CallRef {
        agent,
        conversation_id: parsed.conversation_id,
        event_at: parsed.event_at,
    };
    let call_event = match parsed.event {
        Payload::Transcribed(t) => CallEvent::Transcribed(t),
        // Stored first (idempotent overwrite); the row points at it only once it exists. The
        // upload holds no connection.
        Payload::Audio(mp3) => {
            drop(client);
            let object_key =
                recording::store(state, call.agent.tenant, &call.conversation_id, mp3).await?;
            client = state.db().get().await?;
            CallEvent::Recorded { object_key }
        }
        Payload::InitiationFailed { to, reason } => CallEvent::InitiationFailed { to, reason },
        Payload::Analyzed(analysis) => CallEvent::Analyzed(analysis),
    };
    let tx = client.transaction().await?;
    let delivery = lifecycle::Delivery {
        event_key: &event.event_key,
        source: SOURCE,
    };
    match lifecycle::apply_once(&tx, &settings, &call, &call_event, &delivery).await {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(Outcome::Duplicate),
        // Retrying cannot change whose call it is: kept for an admin to look at.
        Err(err) if err.code == lifecycle::ANOTHER_TENANTS_CONVERSATION => {
            drop(tx);
            drop(client);
            let reason = err.message.into_owned();
            return keep_unmatched(state, event, raw, Some(&call.conversation_id), &reason).await;
        }
        Err(err) => return Err(err),
    }
    if names_no_agent {
        tx.cached_execute(super::sql::AWAITED_NO_MORE, &[&event.event_key])
            .await?;
    }
    tx.commit().await?;
    Ok(Outcome::Applied)
}

async fn keep_unmatched(
    state: &AppState,
    event: &QueuedEvent,
    raw: &str,
    conversation_id: Option<&str>,
    reason: &str,
) -> AppResult<Outcome> {
    let envelope = serde_json::from_str::<Envelope>(raw).ok();
    let data = envelope.as_ref().and_then(|e| e.data.as_ref());
    let agent = data.and_then(|d| d.get("agent_id")).and_then(Value::as_str);
    let conversation = conversation_id.or_else(|| {
        data.and_then(|d| d.get("conversation_id"))
            .and_then(Value::as_str)
    });
    let kind = envelope
        .as_ref()
        .and_then(|e| e.kind.as_deref())
        .unwrap_or(&event.route);
    // Audio is big and re-fetchable from ElevenLabs: keep the event without it.
    let payload: Option<Value> = serde_json::from_str::<Value>(raw).ok().map(|mut v| {
        if let Some(audio) = v.pointer_mut("/data/full_audio") {
            *audio = json!("<omitted>");
        }
        v
    });
    let raw_kept = if payload.is_some() { None } else { Some(raw) };
    let mut client = state.db().get().await?;
    let tx = client.transaction().await?;
    if !mark_processed(
        &tx,
        &event.event_key,
        SOURCE,
        kind,
        conversation,
        "unmatched",
    )
    .await?
    {
        return Ok(Outcome::Duplicate);
    }
    let unmatched = Unmatched {
        key: &event.event_key,
        source: SOURCE,
        event_type: kind,
        elevenlabs_agent_id: agent,
        conversation_id: conversation,
        payload: payload.as_ref(),
        raw_payload: raw_kept,
        reason,
    };
    record_unmatched(&tx, &unmatched).await?;
    tx.cached_execute(super::sql::AWAITED_NO_MORE, &[&event.event_key])
        .await?;
    tx.commit().await?;
    tracing::warn!(event_key = %event.event_key, reason, "kept an unmatched webhook event");
    Ok(Outcome::Unmatched)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    const ROUTE: &str = "call-completed";

    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).single().expect("time")
    }

    fn parsed(route: &str, body: serde_json::Value) -> Result<Parsed, Unusable> {
        parse(route, &body.to_string(), at())
    }

    #[test]
    fn a_transcription_becomes_the_facts_of_the_call() {
        let event = parsed(
            ROUTE,
            json!({"type": "post_call_transcription", "event_timestamp": "1739537297",
                "data": {"agent_id": "agent_1", "conversation_id": "conv_1", "status": "done",
                    "transcript": [
                        {"role": "agent", "message": "Hello", "time_in_call_secs": 0},
                        {"role": "user", "message": null, "time_in_call_secs": 2},
                        {"role": "user", "message": "Hi", "time_in_call_secs": "3"}],
                    "metadata": {"start_time_unix_secs": 1739537000, "call_duration_secs": "133",
                        "cost": 296, "termination_reason": "",
                        "phone_call": {"type": "twilio", "direction": "sideways",
                            "agent_number": "+15550001111", "external_number": "(415) 555-0100"},
                        "batch_call": {"batch_call_id": "btcal_1", "batch_call_recipient_id": "r_1"}},
                    "analysis": {"call_successful": "success"},
                    "conversation_initiation_client_data": {"dynamic_variables": {"name": "Ada"}}}}),
        )
        .expect("parses");
        assert_eq!(
            (parsed_ids(&event), event.event_at.timestamp()),
            (("conv_1", Some("agent_1")), 1_739_537_297)
        );
        let Payload::Transcribed(t) = event.event else {
            panic!("not a transcription: {:?}", event.event)
        };
        assert_eq!(t.status, Some(CallStatus::Completed));
        assert!(!t.is_chat, "a phone call");
        assert_eq!(t.direction, None, "only inbound or outbound are kept");
        assert_eq!(t.other_party.as_deref(), Some("(415) 555-0100"));
        assert_eq!(t.duration_seconds, 133);
        assert_eq!(t.cost, Some(296));
        assert_eq!(t.started_at.map(|s| s.timestamp()), Some(1_739_537_000));
        assert_eq!(
            (t.batch_call_id.as_deref(), t.batch_recipient_id.as_deref()),
            (Some("btcal_1"), Some("r_1"))
        );
        assert_eq!(
            t.turns,
            [
                Turn {
                    speaker: Speaker::Agent,
                    text: "Hello".into(),
                    at_seconds: 0
                },
                Turn {
                    speaker: Speaker::User,
                    text: "Hi".into(),
                    at_seconds: 3
                }
            ],
            "turns without a message are dropped"
        );
        assert_eq!(t.dynamic_variables["name"], "Ada");
        assert_eq!(
            t.analysis.and_then(|a| a.call_successful).as_deref(),
            Some("success")
        );
    }

    fn parsed_ids(event: &Parsed) -> (&str, Option<&str>) {
        (event.conversation_id.as_str(), event.agent_id.as_deref())
    }

    #[test]
    fn a_chat_a_failure_and_an_unknown_status_keep_their_meaning() {
        let status = |status: serde_json::Value| {
            let event = parsed(
                ROUTE,
                json!({"type": "post_call_transcription",
                    "data": {"agent_id": "a", "conversation_id": "c", "status": status,
                        "metadata": {"text_only": true}}}),
            )
            .expect("parses");
            assert_eq!(event.event_at, at(), "no timestamp: the time it arrived");
            match event.event {
                Payload::Transcribed(t) => (t.status, t.is_chat),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(status(json!("failed")), (Some(CallStatus::Failed), true));
        assert_eq!(status(json!(null)), (Some(CallStatus::Completed), true));
        assert_eq!(
            status(json!("processing")),
            (Some(CallStatus::InProgress), true)
        );
    }

    #[test]
    fn audio_failures_and_analyses_parse_into_their_events() {
        let audio = parsed(
            ROUTE,
            json!({"type": "post_call_audio",
                "data": {"agent_id": "a", "conversation_id": "c", "full_audio": "SUQz"}}),
        )
        .expect("audio");
        assert!(matches!(audio.event, Payload::Audio(ref mp3) if mp3 == b"ID3"));

        let failure = parsed(
            ROUTE,
            json!({"type": "call_initiation_failure",
                "data": {"agent_id": "a", "conversation_id": "c", "failure_reason": "busy",
                    "metadata": {"type": "twilio", "body": {"To": "+14155550100"}}}}),
        )
        .expect("failure");
        match failure.event {
            Payload::InitiationFailed { to, reason } => {
                assert_eq!(
                    (to.as_deref(), reason.as_str()),
                    (Some("+14155550100"), "busy")
                )
            }
            other => panic!("{other:?}"),
        }

        // The analytics endpoint takes the bare form, without an agent id.
        let analysis = parsed(
            ANALYTICS_ROUTE,
            json!({"conversation_id": "c", "analysis": {"call_successful": "failure"}}),
        )
        .expect("analysis");
        assert_eq!(parsed_ids(&analysis), ("c", None));
        assert!(matches!(analysis.event,
            Payload::Analyzed(ref a) if a.call_successful.as_deref() == Some("failure")));
    }

    #[test]
    fn unusable_events_say_why() {
        let rejected = |route: &str, body: serde_json::Value| match parsed(route, body) {
            Err(Unusable::Rejected(reason)) => reason,
            other => panic!("not rejected: {other:?}"),
        };
        assert_eq!(
            parse(ROUTE, "not json", at()).expect_err("garbage"),
            Unusable::Rejected("body is not a JSON object".into())
        );
        assert_eq!(
            rejected(ROUTE, json!({"type": "post_call_audio"})),
            "event without data"
        );
        assert_eq!(
            rejected(
                ROUTE,
                json!({"type": "post_call_audio", "data": {"agent_id": "a", "conversation_id": " "}})
            ),
            "data.conversation_id is missing"
        );
        assert_eq!(
            rejected(
                ROUTE,
                json!({"type": "post_call_audio",
                    "data": {"agent_id": "a", "conversation_id": "c", "full_audio": "%%%"}})
            ),
            "full_audio is not base64 audio"
        );
        assert_eq!(
            rejected(ANALYTICS_ROUTE, json!({"conversation_id": "c"})),
            "data.analysis is missing or malformed"
        );
        assert_eq!(
            parsed(ROUTE, json!({"type": "conversation_started", "data": {}})).expect_err("type"),
            Unusable::Unsupported("unsupported event type \"conversation_started\"".into())
        );
    }
}
