//! Applying ElevenLabs events. Each event is one transaction: the call (status only moves
//! forward), its transcript, lead analytics, the lead, the dashboard rollup and the credit
//! usage (reference = conversation id, so a conversation is charged once however often it
//! arrives).

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{
    mark_processed,
    payload::{int, Analysis, ConversationRef, Envelope, InitiationFailure, Transcription},
    Outcome,
};
use crate::{
    aws::{blobs, queue::QueuedEvent},
    credits::{self, holds, Applied, CreditChange, CreditKind},
    error::AppResult,
    leads::{self, rollup, scoring::LeadScores},
    phone,
    tenant::TenantId,
    AppState,
};

const SOURCE: &str = "elevenlabs";

/// Whole credits for a call: one per started minute (2:13 -> 3).
pub fn credits_for(duration_seconds: i64) -> i64 {
    if duration_seconds <= 0 {
        0
    } else {
        (duration_seconds + 59) / 60
    }
}

/// The ledger reference of a conversation's usage charge.
pub fn usage_reference(conversation_id: &str) -> String {
    format!("elevenlabs:{conversation_id}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Transcription,
    Audio,
    InitiationFailure,
    Analytics,
}

pub async fn apply(state: &AppState, event: &QueuedEvent, raw: &str) -> AppResult<Outcome> {
    let Ok(envelope) = serde_json::from_str::<Envelope>(raw) else {
        return Ok(Outcome::Rejected("body is not a JSON object".into()));
    };
    let analytics_route = event.route == "call-analytics";
    let kind = match envelope.kind.as_deref() {
        _ if analytics_route => Kind::Analytics,
        Some("post_call_transcription") => Kind::Transcription,
        Some("post_call_audio") => Kind::Audio,
        Some("call_initiation_failure") => Kind::InitiationFailure,
        other => {
            let reason = format!("unsupported event type {:?}", other.unwrap_or("<none>"));
            return keep_unmatched(state, event, raw, &envelope, None, &reason).await;
        }
    };
    // The analytics endpoint also takes a bare {conversation_id, agent_id, analysis}.
    let data = match (envelope.data.clone(), analytics_route) {
        (Some(data), _) => data,
        (None, true) => serde_json::from_str(raw).unwrap_or(Value::Null),
        (None, false) => return Ok(Outcome::Rejected("event without data".into())),
    };
    let conversation_id = data
        .get("conversation_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let agent_id = data
        .get("agent_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(conversation_id) = conversation_id.filter(|c| !c.trim().is_empty()) else {
        return Ok(Outcome::Rejected("data.conversation_id is missing".into()));
    };
    let event_at = envelope
        .timestamp()
        .and_then(|t| Utc.timestamp_opt(t, 0).single())
        .unwrap_or(event.received_at);

    let client = state.db().get().await?;
    let owner = match &agent_id {
        Some(agent) => find_agent(&client, agent).await?,
        None => find_agent_of_conversation(&client, &conversation_id).await?,
    };
    drop(client);
    let Some(agent) = owner else {
        if agent_id.is_none() && !analytics_route {
            return Ok(Outcome::Rejected("data.agent_id is missing".into()));
        }
        let reason = format!(
            "unknown agent {:?}",
            agent_id.as_deref().unwrap_or("<none>")
        );
        return keep_unmatched(
            state,
            event,
            raw,
            &envelope,
            Some(&conversation_id),
            &reason,
        )
        .await;
    };
    let ids = ConversationRef {
        agent_id: agent_id.unwrap_or_default(),
        conversation_id,
    };
    let context = Context {
        state,
        event,
        agent,
        ids,
        event_at,
    };
    match kind {
        Kind::Transcription => match serde_json::from_value::<Transcription>(data) {
            Ok(t) => context.transcription(t).await,
            Err(err) => Ok(Outcome::Rejected(format!("transcription data: {err}"))),
        },
        Kind::Audio => match data.get("full_audio").and_then(Value::as_str) {
            Some(audio) => match STANDARD.decode(audio.trim()) {
                Ok(bytes) if !bytes.is_empty() => context.audio(bytes).await,
                _ => Ok(Outcome::Rejected("full_audio is not base64 audio".into())),
            },
            None => Ok(Outcome::Rejected("data.full_audio is missing".into())),
        },
        Kind::InitiationFailure => {
            let failure = serde_json::from_value::<InitiationFailure>(data).unwrap_or_default();
            context.initiation_failure(failure).await
        }
        Kind::Analytics => match data
            .get("analysis")
            .cloned()
            .map(serde_json::from_value::<Analysis>)
        {
            Some(Ok(analysis)) => context.analytics(analysis).await,
            _ => Ok(Outcome::Rejected(
                "data.analysis is missing or malformed".into(),
            )),
        },
    }
}

/// The local agent an ElevenLabs agent id belongs to (soft-deleted ones too: their calls
/// still arrive and still belong to the tenant).
#[derive(Debug, Clone)]
pub struct AgentOwner {
    pub agent_id: Uuid,
    pub tenant: TenantId,
    pub is_chat: bool,
}

impl From<&tokio_postgres::Row> for AgentOwner {
    /// From a row with the agents table's `id`, `user_id` and `type`.
    fn from(row: &tokio_postgres::Row) -> Self {
        Self {
            agent_id: row.get("id"),
            tenant: TenantId::from_trusted(row.get("user_id")),
            is_chat: row.get::<_, &str>("type") == "chat",
        }
    }
}

async fn find_agent(
    client: &impl GenericClient,
    elevenlabs_agent_id: &str,
) -> AppResult<Option<AgentOwner>> {
    let row = client
        .query_opt(
            "SELECT id, user_id, type FROM agents WHERE elevenlabs_agent_id = $1",
            &[&elevenlabs_agent_id],
        )
        .await?;
    Ok(row.as_ref().map(AgentOwner::from))
}

async fn find_agent_of_conversation(
    client: &impl GenericClient,
    conversation_id: &str,
) -> AppResult<Option<AgentOwner>> {
    let row = client
        .query_opt(
            "SELECT a.id, a.user_id, a.type FROM calls c JOIN agents a ON a.id = c.agent_id
             WHERE c.elevenlabs_conversation_id = $1",
            &[&conversation_id],
        )
        .await?;
    Ok(row.as_ref().map(AgentOwner::from))
}

async fn keep_unmatched(
    state: &AppState,
    event: &QueuedEvent,
    raw: &str,
    envelope: &Envelope,
    conversation_id: Option<&str>,
    reason: &str,
) -> AppResult<Outcome> {
    let data = envelope.data.as_ref();
    let agent = data.and_then(|d| d.get("agent_id")).and_then(Value::as_str);
    let conversation = conversation_id.or_else(|| {
        data.and_then(|d| d.get("conversation_id"))
            .and_then(Value::as_str)
    });
    let kind = envelope.kind.as_deref().unwrap_or(&event.route);
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
    tx.execute(
        "INSERT INTO unmatched_events (event_key, source, event_type, elevenlabs_agent_id, conversation_id, payload, raw_payload, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_key) DO NOTHING",
        &[&event.event_key, &SOURCE, &kind, &agent, &conversation, &payload, &raw_kept, &reason],
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(event_key = %event.event_key, reason, "kept an unmatched webhook event");
    Ok(Outcome::Unmatched)
}

/// The call row as it was before this event changed it.
struct CallBefore {
    id: Uuid,
    tenant: TenantId,
    status: String,
    lead_id: Option<Uuid>,
    figures: CallFigures,
}

/// What a call contributes to the daily rollup, read from its row. The rollup always moves by
/// the difference between the row before and after an event, so a late, longer transcription
/// or a success verdict that arrives after the call ended is counted exactly once.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CallFigures {
    day: DateTime<Utc>,
    terminal: bool,
    chat: bool,
    completed: bool,
    failed: bool,
    successful: bool,
    duration: i64,
}

const FIGURE_COLUMNS: &str =
    "type, status, call_successful, duration_seconds, started_at, created_at";

impl CallFigures {
    fn from_row(row: &tokio_postgres::Row) -> Self {
        let status: &str = row.get("status");
        Self {
            day: row
                .get::<_, Option<DateTime<Utc>>>("started_at")
                .unwrap_or_else(|| row.get("created_at")),
            terminal: is_terminal(status),
            chat: row.get::<_, &str>("type") == "chat",
            completed: status == "completed",
            failed: status == "failed",
            successful: row.get::<_, Option<&str>>("call_successful") == Some("success"),
            duration: i64::from(row.get::<_, i32>("duration_seconds")),
        }
    }
}

fn is_terminal(status: &str) -> bool {
    status != "in_progress"
}

/// Status only moves forward: in_progress -> completed | failed, and a final status stays.
fn merged_status<'a>(old: &'a str, new: &'a str) -> &'a str {
    if is_terminal(old) {
        old
    } else {
        new
    }
}

struct Context<'a> {
    state: &'a AppState,
    event: &'a QueuedEvent,
    agent: AgentOwner,
    ids: ConversationRef,
    event_at: DateTime<Utc>,
}

impl Context<'_> {
    /// Begins the event's transaction; None when this exact event was applied before.
    async fn begin<'c>(
        &self,
        client: &'c mut deadpool_postgres::Client,
        kind: &str,
    ) -> AppResult<Option<Transaction<'c>>> {
        let tx = client.transaction().await?;
        let fresh = mark_processed(
            &tx,
            &self.event.event_key,
            SOURCE,
            kind,
            Some(&self.ids.conversation_id),
            "applied",
        )
        .await?;
        Ok(fresh.then_some(tx))
    }

    /// Makes sure the call row exists and locks it. The tenant's row is locked first: every
    /// event of a tenant takes its locks in one order (user, call, lead), so concurrent events
    /// of one tenant queue up instead of deadlocking.
    async fn lock_call(&self, tx: &Transaction<'_>) -> AppResult<CallBefore> {
        // Locks the tenant and marks its dashboards stale (their ETag follows stats_version).
        tx.execute(
            "UPDATE users SET stats_version = stats_version + 1 WHERE id = $1",
            &[self.agent.tenant.as_uuid()],
        )
        .await?;
        let call_type = if self.agent.is_chat { "chat" } else { "call" };
        tx.execute(
            "INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, type, status)
             VALUES ($1, $2, $3, $4, 'in_progress') ON CONFLICT (elevenlabs_conversation_id) DO NOTHING",
            &[self.agent.tenant.as_uuid(), &self.agent.agent_id, &self.ids.conversation_id, &call_type],
        )
        .await?;
        let row = tx
            .query_one(
                &format!(
                    "SELECT id, user_id, lead_id, {FIGURE_COLUMNS} FROM calls
                     WHERE elevenlabs_conversation_id = $1 FOR UPDATE"
                ),
                &[&self.ids.conversation_id],
            )
            .await?;
        Ok(CallBefore {
            id: row.get("id"),
            tenant: TenantId::from_trusted(row.get("user_id")),
            status: row.get("status"),
            lead_id: row.get("lead_id"),
            figures: CallFigures::from_row(&row),
        })
    }

    async fn transcription(&self, t: Transcription) -> AppResult<Outcome> {
        let region = self.state.settings().await?.phone_region();
        let phone_call = t.metadata.phone_call.clone().unwrap_or_default();
        let is_chat = t.metadata.text_only == Some(true) || t.metadata.phone_call.is_none();
        let direction = phone_call
            .direction
            .filter(|d| d == "inbound" || d == "outbound");
        let other_party = phone_call
            .external_number
            .as_deref()
            .map(|raw| phone::normalize(raw, region).unwrap_or_else(|| raw.trim().to_owned()));
        let started_at = t
            .metadata
            .start_time_unix_secs
            .as_ref()
            .and_then(int)
            .and_then(|s| Utc.timestamp_opt(s, 0).single());
        let duration = t
            .metadata
            .call_duration_secs
            .as_ref()
            .and_then(int)
            .unwrap_or(0)
            .max(0);
        let status = match t.status.as_deref() {
            Some("failed") => "failed",
            Some("done") | None => "completed",
            Some(_) => "in_progress",
        };
        let analysis = t.analysis.clone().unwrap_or_default();
        let scores = LeadScores::from_analysis(&analysis, self.state.settings().await?.lead_tags());
        let dynamic = t
            .conversation_initiation_client_data
            .as_ref()
            .and_then(|c| c.dynamic_variables.clone())
            .unwrap_or_default();

        let mut client = self.state.db().get().await?;
        let Some(tx) = self.begin(&mut client, "post_call_transcription").await? else {
            return Ok(Outcome::Duplicate);
        };
        let before = self.lock_call(&tx).await?;
        let status = merged_status(&before.status, status);
        let contact = match &other_party {
            Some(number) => find_contact(&tx, before.tenant, number).await?,
            None => None,
        };
        let lead_id = match other_party.as_deref().filter(|n| n.starts_with('+')) {
            Some(number) => Some(
                leads::upsert_for_call(
                    &tx,
                    &leads::LeadTouch {
                        tenant: before.tenant,
                        phone_number: number,
                        name: contact.as_ref().map(|c| c.name.clone()).or_else(|| {
                            text_var(&dynamic, &["customer_name", "name", "user_name"])
                        }),
                        email: contact
                            .as_ref()
                            .and_then(|c| c.email.clone())
                            .or_else(|| text_var(&dynamic, &["customer_email", "email"])),
                        company: contact
                            .as_ref()
                            .and_then(|c| c.company.clone())
                            .or_else(|| text_var(&dynamic, &["customer_company", "company"])),
                        contact_id: contact.as_ref().map(|c| c.id),
                        agent_id: self.agent.agent_id,
                        scores: (!scores.is_empty()).then_some(&scores),
                        contact_at: started_at.unwrap_or(self.event_at),
                        new_interaction: before.lead_id.is_none(),
                    },
                )
                .await?,
            ),
            None => before.lead_id,
        };

        // Usage: one credit per started minute, once per conversation.
        let amount = credits_for(duration);
        let mut charged = 0;
        if amount > 0 {
            let minutes = format!("{}:{:02}", duration / 60, duration % 60);
            let what = if is_chat { "Chat" } else { "Call" };
            let with = other_party
                .as_deref()
                .map(|n| format!(" with {n}"))
                .unwrap_or_default();
            let change = CreditChange {
                tenant: before.tenant,
                kind: CreditKind::Usage,
                amount: -amount,
                reference: usage_reference(&self.ids.conversation_id),
                description: format!("{what} {minutes}{with}"),
                stripe_payment_id: None,
            };
            if let Applied::New(_) = credits::apply(&tx, &change).await? {
                charged = amount;
            }
        }

        if status != "in_progress" {
            // The outcome is known and charged: a batch call's held credit is settled.
            let batch = t.metadata.batch_call.as_ref();
            holds::settle(
                &tx,
                before.tenant,
                &self.ids.conversation_id,
                &holds::CallKeys {
                    batch_call_id: batch.and_then(|b| b.batch_call_id.as_deref()),
                    recipient_id: batch.and_then(|b| b.batch_call_recipient_id.as_deref()),
                    phone_number: other_party
                        .as_deref()
                        .filter(|_| direction.as_deref() == Some("outbound")),
                },
            )
            .await?;
        }
        let completed_at = started_at.map(|s| s + chrono::Duration::seconds(duration));
        let metadata = json!({
            "termination_reason": t.metadata.termination_reason,
            "provider": phone_call.provider,
            "dynamic_variables": dynamic,
        });
        let updated = tx
            .query_one(
                &format!("UPDATE calls SET
                    type = $2, direction = COALESCE($3, direction), status = $4,
                    phone_number = COALESCE($5, phone_number), agent_number = COALESCE($6, agent_number),
                    contact_id = COALESCE($7, contact_id), lead_id = COALESCE($8, lead_id),
                    started_at = COALESCE($9, started_at), duration_seconds = GREATEST(duration_seconds, $10),
                    credits_charged = credits_charged + $11, cost = COALESCE($12, cost),
                    call_successful = COALESCE($13, call_successful), summary = COALESCE($14, summary),
                    termination_reason = COALESCE($15, termination_reason), metadata = metadata || $16,
                    completed_at = CASE WHEN $4 <> 'in_progress' THEN COALESCE(completed_at, $17, now()) ELSE completed_at END,
                    updated_at = now()
                 WHERE id = $1 RETURNING {FIGURE_COLUMNS}"),
                &[
                    &before.id,
                    &if is_chat { "chat" } else { "call" },
                    &direction,
                    &status,
                    &other_party,
                    &phone_call.agent_number,
                    &contact.as_ref().map(|c| c.id),
                    &lead_id,
                    &started_at,
                    &i32::try_from(duration).unwrap_or(i32::MAX),
                    &charged,
                    &t.metadata.cost.as_ref().and_then(int),
                    &analysis.call_successful,
                    &analysis.transcript_summary,
                    &t.metadata.termination_reason.clone().filter(|r| !r.is_empty()),
                    &metadata,
                    &completed_at,
                ],
            )
            .await?;
        store_transcript(&tx, before.id, &t).await?;
        if !scores.is_empty() || t.analysis.is_some() {
            store_analytics(
                &tx,
                &self.agent,
                before.id,
                &scores,
                &analysis,
                self.event_at,
            )
            .await?;
        }
        self.rollup(&tx, &before, &updated, charged).await?;
        tx.commit().await?;
        Ok(Outcome::Applied)
    }

    async fn audio(&self, mp3: Vec<u8>) -> AppResult<Outcome> {
        let object = recording_object(self.agent.tenant, &self.ids.conversation_id);
        // Stored first (idempotent overwrite); the row points at it only once it exists.
        blobs::put(
            &self.state.aws().s3,
            &self.state.config().aws.recordings_bucket,
            &object,
            mp3,
            "audio/mpeg",
        )
        .await?;
        let mut client = self.state.db().get().await?;
        let Some(tx) = self.begin(&mut client, "post_call_audio").await? else {
            return Ok(Outcome::Duplicate);
        };
        let before = self.lock_call(&tx).await?;
        tx.execute(
            "UPDATE calls SET recording_key = $2, updated_at = now() WHERE id = $1",
            &[&before.id, &object],
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome::Applied)
    }

    async fn initiation_failure(&self, failure: InitiationFailure) -> AppResult<Outcome> {
        let region = self.state.settings().await?.phone_region();
        let body = failure.metadata.as_ref().and_then(|m| m.get("body"));
        let to = body
            .and_then(|b| b.get("To").or_else(|| b.get("to")))
            .and_then(Value::as_str)
            .map(|raw| phone::normalize(raw, region).unwrap_or_else(|| raw.trim().to_owned()));
        let reason = failure.failure_reason.unwrap_or_else(|| "unknown".into());
        let mut client = self.state.db().get().await?;
        let Some(tx) = self.begin(&mut client, "call_initiation_failure").await? else {
            return Ok(Outcome::Duplicate);
        };
        let before = self.lock_call(&tx).await?;
        let status = merged_status(&before.status, "failed");
        let updated = tx
            .query_one(
                &format!(
                    "UPDATE calls SET status = $2, failure_reason = $3, phone_number = COALESCE(phone_number, $4),
                         direction = COALESCE(direction, 'outbound'),
                         completed_at = COALESCE(completed_at, $5), updated_at = now()
                     WHERE id = $1 RETURNING {FIGURE_COLUMNS}"
                ),
                &[&before.id, &status, &reason, &to, &self.event_at],
            )
            .await?;
        // The call never started: a batch call's held credit is released.
        holds::settle(
            &tx,
            before.tenant,
            &self.ids.conversation_id,
            &holds::CallKeys {
                phone_number: to.as_deref(),
                ..holds::CallKeys::default()
            },
        )
        .await?;
        self.rollup(&tx, &before, &updated, 0).await?;
        tx.commit().await?;
        Ok(Outcome::Applied)
    }

    async fn analytics(&self, analysis: Analysis) -> AppResult<Outcome> {
        let scores = LeadScores::from_analysis(&analysis, self.state.settings().await?.lead_tags());
        let mut client = self.state.db().get().await?;
        let Some(tx) = self.begin(&mut client, "call_analytics").await? else {
            return Ok(Outcome::Duplicate);
        };
        let before = self.lock_call(&tx).await?;
        store_analytics(
            &tx,
            &self.agent,
            before.id,
            &scores,
            &analysis,
            self.event_at,
        )
        .await?;
        let updated = tx
            .query_one(
                &format!(
                    "UPDATE calls SET call_successful = COALESCE($2, call_successful),
                         summary = COALESCE($3, summary), updated_at = now()
                     WHERE id = $1 RETURNING {FIGURE_COLUMNS}"
                ),
                &[
                    &before.id,
                    &analysis.call_successful,
                    &analysis.transcript_summary,
                ],
            )
            .await?;
        if let (Some(lead), false) = (before.lead_id, scores.is_empty()) {
            leads::apply_scores(&tx, lead, &scores, self.event_at).await?;
        }
        self.rollup(&tx, &before, &updated, 0).await?;
        tx.commit().await?;
        Ok(Outcome::Applied)
    }

    /// Moves the daily rollup from the call as it was (`before`) to the call as this event's
    /// UPDATE left it (`updated`, its RETURNING row), and adds the credits the event charged.
    async fn rollup(
        &self,
        tx: &Transaction<'_>,
        before: &CallBefore,
        updated: &tokio_postgres::Row,
        credits: i64,
    ) -> AppResult<()> {
        let after = CallFigures::from_row(updated);
        if after == before.figures && credits == 0 {
            return Ok(());
        }
        if before.figures.terminal {
            self.add_to_rollup(tx, before, &before.figures, -1, 0)
                .await?;
        }
        let sign = if after.terminal { 1 } else { 0 };
        self.add_to_rollup(tx, before, &after, sign, credits).await
    }

    async fn add_to_rollup(
        &self,
        tx: &Transaction<'_>,
        call: &CallBefore,
        figures: &CallFigures,
        sign: i32,
        credits: i64,
    ) -> AppResult<()> {
        let count = |yes: bool| if yes { sign } else { 0 };
        tx.execute(
            "INSERT INTO daily_agent_stats
                 (user_id, agent_id, day, calls, chats, completed, failed, successful, duration_seconds, credits_used)
             VALUES ($1, $2, $3::timestamptz::date, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (user_id, agent_id, day) DO UPDATE SET
                 calls = daily_agent_stats.calls + EXCLUDED.calls,
                 chats = daily_agent_stats.chats + EXCLUDED.chats,
                 completed = daily_agent_stats.completed + EXCLUDED.completed,
                 failed = daily_agent_stats.failed + EXCLUDED.failed,
                 successful = daily_agent_stats.successful + EXCLUDED.successful,
                 duration_seconds = daily_agent_stats.duration_seconds + EXCLUDED.duration_seconds,
                 credits_used = daily_agent_stats.credits_used + EXCLUDED.credits_used",
            &[
                call.tenant.as_uuid(),
                &self.agent.agent_id,
                &figures.day,
                &count(!figures.chat),
                &count(figures.chat),
                &count(figures.completed),
                &count(figures.failed),
                &count(figures.successful),
                &(figures.duration * i64::from(sign)),
                &credits,
            ],
        )
        .await?;
        Ok(())
    }
}

/// Where a call's MP3 is stored: under its tenant and conversation.
pub fn recording_object(tenant: TenantId, conversation_id: &str) -> String {
    format!("recordings/{tenant}/{}.mp3", sanitize_key(conversation_id))
}

/// Object keys keep to a safe alphabet whatever the conversation id holds.
fn sanitize_key(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect()
}

fn text_var(vars: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|name| vars.get(*name))
        .filter_map(Value::as_str)
        .map(str::trim)
        .find(|v| !v.is_empty())
        .map(str::to_owned)
}

struct ContactMatch {
    id: Uuid,
    name: String,
    email: Option<String>,
    company: Option<String>,
}

async fn find_contact(
    tx: &impl GenericClient,
    tenant: TenantId,
    phone_number: &str,
) -> AppResult<Option<ContactMatch>> {
    let row = tx
        .query_opt(
            "SELECT id, name, email, company FROM contacts
             WHERE user_id = $1 AND phone_number = $2 AND deleted_at IS NULL",
            &[tenant.as_uuid(), &phone_number],
        )
        .await?;
    Ok(row.map(|row| ContactMatch {
        id: row.get("id"),
        name: row.get("name"),
        email: row.get("email"),
        company: row.get("company"),
    }))
}

async fn store_transcript(
    tx: &impl GenericClient,
    call_id: Uuid,
    t: &Transcription,
) -> AppResult<()> {
    let segments: Vec<Value> = t
        .transcript
        .iter()
        .filter_map(|turn| {
            let text = turn.message.as_deref()?.to_owned();
            let speaker = if turn.role.as_deref() == Some("agent") {
                "agent"
            } else {
                "user"
            };
            let timestamp = turn.time_in_call_secs.as_ref().and_then(int).unwrap_or(0);
            Some(json!({ "speaker": speaker, "text": text, "timestamp": timestamp }))
        })
        .collect();
    if segments.is_empty() {
        return Ok(());
    }
    let content = segments
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s["speaker"].as_str().unwrap_or_default(),
                s["text"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let segments = Value::Array(segments);
    tx.execute(
        "INSERT INTO transcripts (call_id, content, speaker_segments) VALUES ($1, $2, $3)
         ON CONFLICT (call_id) DO UPDATE SET content = EXCLUDED.content,
             speaker_segments = EXCLUDED.speaker_segments, updated_at = now()
         WHERE jsonb_array_length(EXCLUDED.speaker_segments) >= jsonb_array_length(transcripts.speaker_segments)",
        &[&call_id, &content, &segments],
    )
    .await?;
    Ok(())
}

/// Stores the analysis unless a newer one is already there, and moves the daily lead rollup
/// from the analysis it replaces (on that one's day) to this one.
async fn store_analytics(
    tx: &impl GenericClient,
    owner: &AgentOwner,
    call_id: Uuid,
    scores: &LeadScores,
    analysis: &Analysis,
    analyzed_at: DateTime<Utc>,
) -> AppResult<()> {
    let replaced = tx
        .query_opt(
            "SELECT total_score, lead_status_tag, cta_interactions, analyzed_at
             FROM lead_analytics WHERE call_id = $1",
            &[&call_id],
        )
        .await?;
    let raw = json!({
        "call_successful": analysis.call_successful,
        "transcript_summary": analysis.transcript_summary,
        "data_collection_results": analysis.collected(),
        "evaluation_criteria_results": analysis.evaluation_criteria_results,
    });
    let tag = scores.lead_status_tag.map(|t| t.as_str());
    let stored = tx
        .execute(
        "INSERT INTO lead_analytics (call_id, intent_level, intent_score, urgency_level, urgency_score,
             budget_constraint, budget_score, fit_alignment, fit_score, engagement_health, engagement_score,
             total_score, lead_status_tag, reasoning, cta_interactions, raw_analysis, analyzed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (call_id) DO UPDATE SET
             intent_level = EXCLUDED.intent_level, intent_score = EXCLUDED.intent_score,
             urgency_level = EXCLUDED.urgency_level, urgency_score = EXCLUDED.urgency_score,
             budget_constraint = EXCLUDED.budget_constraint, budget_score = EXCLUDED.budget_score,
             fit_alignment = EXCLUDED.fit_alignment, fit_score = EXCLUDED.fit_score,
             engagement_health = EXCLUDED.engagement_health, engagement_score = EXCLUDED.engagement_score,
             total_score = EXCLUDED.total_score, lead_status_tag = EXCLUDED.lead_status_tag,
             reasoning = EXCLUDED.reasoning, cta_interactions = EXCLUDED.cta_interactions,
             raw_analysis = EXCLUDED.raw_analysis, analyzed_at = EXCLUDED.analyzed_at, updated_at = now()
         WHERE lead_analytics.analyzed_at <= EXCLUDED.analyzed_at",
        &[
            &call_id,
            &scores.intent_level,
            &scores.intent_score,
            &scores.urgency_level,
            &scores.urgency_score,
            &scores.budget_constraint,
            &scores.budget_score,
            &scores.fit_alignment,
            &scores.fit_score,
            &scores.engagement_health,
            &scores.engagement_score,
            &scores.total_score,
            &tag,
            &scores.reasoning,
            &scores.cta_interactions,
            &raw,
            &analyzed_at,
        ],
    )
    .await?;
    if stored == 0 {
        return Ok(());
    }
    let tenant = *owner.tenant.as_uuid();
    if let Some(old) = replaced {
        let old_day = old.get::<_, DateTime<Utc>>("analyzed_at").date_naive();
        let old = rollup::Contribution::new(
            old.get("total_score"),
            old.get("lead_status_tag"),
            &old.get::<_, Value>("cta_interactions"),
        );
        rollup::apply(tx, tenant, owner.agent_id, old_day, &old, -1).await?;
    }
    let new = rollup::Contribution::new(
        scores.total_score,
        tag.map(str::to_owned),
        &scores.cta_interactions,
    );
    rollup::apply(
        tx,
        tenant,
        owner.agent_id,
        analyzed_at.date_naive(),
        &new,
        1,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_minute_is_a_credit() {
        assert_eq!(credits_for(0), 0);
        assert_eq!(credits_for(-5), 0);
        assert_eq!(credits_for(1), 1);
        assert_eq!(credits_for(60), 1);
        assert_eq!(credits_for(61), 2);
        assert_eq!(credits_for(133), 3);
    }

    #[test]
    fn status_never_goes_backwards() {
        assert_eq!(merged_status("in_progress", "completed"), "completed");
        assert_eq!(merged_status("completed", "in_progress"), "completed");
        assert_eq!(merged_status("failed", "completed"), "failed");
        assert_eq!(merged_status("completed", "failed"), "completed");
    }

    #[test]
    fn object_keys_are_sanitized() {
        assert_eq!(sanitize_key("conv_123-ab"), "conv_123-ab");
        assert_eq!(sanitize_key("../../etc/passwd"), "______etc_passwd");
    }
}
