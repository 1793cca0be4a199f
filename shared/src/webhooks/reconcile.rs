//! ElevenLabs does not guarantee webhook delivery. Reconciliation lists the workspace's recent
//! conversations, keeps those of our agents that ended, and feeds each one the database lacks
//! (no call, or a call still in progress) through the same queue and processor as a webhook,
//! so billing stays exactly-once.
//!
//! One workspace-wide listing instead of one per agent: the API key is per workspace, so this
//! sees the same conversations for a fraction of the requests.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::ingest::{self, Accepted};
use crate::{
    agents,
    aws::queue::EventSource,
    calls,
    clients::elevenlabs::{ConversationQuery, ConversationSummary},
    error::AppResult,
    AppState,
};

/// ElevenLabs conversation statuses after which the conversation no longer changes.
const ENDED: [&str; 2] = ["done", "failed"];

/// How many ended conversations are looked up in the database at once.
const CHECK_CHUNK: usize = 500;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Conversations ElevenLabs listed in the window.
    pub listed: usize,
    /// Of those, ended conversations of agents we know.
    pub ours: usize,
    /// Ended conversations the database did not have complete; each was fetched and queued.
    pub missing: usize,
    pub queued: usize,
    /// Not queued: an earlier run's event for the same conversation body was processed already.
    pub already_processed: usize,
    /// Not queued: ElevenLabs listed it but did not give it back (tried again next run).
    pub unavailable: usize,
    /// Batch calls' credit holds whose call never reported within their window.
    pub holds_expired: u64,
    /// Export jobs that stopped moving, failed (swept here: this job runs on a schedule).
    pub exports_stalled: usize,
}

/// Reconciles the conversations of the configured lookback window.
pub async fn run_recent(state: &AppState) -> AppResult<Report> {
    let lookback = chrono::Duration::from_std(state.config().reconcile_lookback)
        .map_err(crate::AppError::internal)?;
    run(state, Utc::now() - lookback).await
}

/// Reconciles conversations that started after `since`.
pub async fn run(state: &AppState, since: DateTime<Utc>) -> AppResult<Report> {
    let mut report = Report {
        exports_stalled: crate::export_jobs::run::fail_stalled(state).await?,
        ..Report::default()
    };
    let client = state.elevenlabs().await?;
    let agents = agents::remote_ids(&state.db().get().await?).await?;
    let mut query = ConversationQuery {
        call_start_after_unix: Some(since.timestamp()),
        page_size: Some(100),
        ..Default::default()
    };
    loop {
        let page = client.list_conversations(&query).await?;
        report.listed += page.conversations.len();
        let ended: Vec<ConversationSummary> = page
            .conversations
            .into_iter()
            .filter(|c| is_ended(c) && c.agent_id.as_ref().is_some_and(|a| agents.contains(a)))
            .collect();
        report.ours += ended.len();
        for chunk in ended.chunks(CHECK_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|c| c.conversation_id.as_str()).collect();
            let missing = calls::read::unfinished(&state.db().get().await?, &ids).await?;
            for conversation_id in missing {
                report.missing += 1;
                // One conversation ElevenLabs cannot give back (deleted since the listing, too
                // large to answer in time) must not keep the rest of the window from being
                // queued: those listed after it are older and would leave the window first.
                let data = match client.get_conversation(&conversation_id).await {
                    Ok(data) => data,
                    Err(error) => {
                        tracing::warn!(%conversation_id, %error, "conversation not fetched");
                        report.unavailable += 1;
                        continue;
                    }
                };
                match requeue(state, data).await? {
                    Accepted::Queued => report.queued += 1,
                    Accepted::Duplicate => report.already_processed += 1,
                }
            }
        }
        match page.next_cursor.filter(|_| page.has_more) {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    // What ElevenLabs reported is queued; holds past their window will never be settled.
    report.holds_expired = crate::credits::holds::expire_lapsed(&state.db().get().await?).await?;
    tracing::info!(?report, "reconciled ElevenLabs conversations");
    Ok(report)
}

fn is_ended(conversation: &ConversationSummary) -> bool {
    conversation
        .status
        .as_deref()
        .is_some_and(|s| ENDED.contains(&s))
}

/// Queues a fetched conversation as the post-call transcription webhook would have carried it.
/// The envelope's timestamp is derived from the conversation, so the body (and its event key)
/// is the same on every run.
async fn requeue(state: &AppState, data: serde_json::Value) -> AppResult<Accepted> {
    let metadata = &data["metadata"];
    let ended_at = metadata["start_time_unix_secs"].as_i64().unwrap_or(0)
        + metadata["call_duration_secs"].as_i64().unwrap_or(0);
    let envelope = json!({
        "type": "post_call_transcription",
        "event_timestamp": ended_at,
        "data": data,
    });
    let body = serde_json::to_vec(&envelope).map_err(crate::AppError::internal)?;
    ingest::enqueue_unless_processed(
        state,
        &state.db().get().await?,
        EventSource::Elevenlabs,
        "reconciliation",
        &body,
    )
    .await
}
