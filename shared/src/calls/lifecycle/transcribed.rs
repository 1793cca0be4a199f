//! A transcription applied to its call: the charge, the lead, the held credit, then the call's
//! row with its transcript and analysis.

use deadpool_postgres::GenericClient;
use futures::future::{try_join, try_join3};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use super::{sql, Before, Found};
use crate::{
    calls::{
        event::{credits_for, usage_reference, CallRef, CallStatus, Transcript},
        read::CallKind,
    },
    credits::{self, holds, Applied, CreditChange, CreditKind},
    db::statements::Cached,
    error::AppResult,
    leads::{self, analytics, scoring::LeadScores, CallScore},
    settings::Settings,
};

/// Two round trips: the charge, the lead and the held credit touch different rows and are
/// pipelined; then the call's row (written whole when it is new) with its transcript and
/// analysis, which need the lead and the charge, and point at the row.
pub(super) async fn transcribed(
    tx: &impl GenericClient,
    settings: &Settings,
    call: &CallRef,
    before: &Before,
    t: &Transcript,
    found: Found,
) -> AppResult<()> {
    let Found {
        other_party,
        contact,
        person,
    } = found;
    // Analytics sent after the transcription's own analysis may have arrived first: the call
    // keeps them, and they, not the transcription's, score its lead and say how it went.
    let kept_is_newer = before
        .analysis
        .is_some_and(|kept| kept.analyzed_at > call.event_at);
    let analysis = t.analysis.as_ref().filter(|_| !kept_is_newer);
    let scores = analysis.map(|a| LeadScores::from_analysis(a, settings.lead_tags()));
    let score = match &scores {
        Some(scores) => CallScore::of(scores),
        None => before.analysis.map(|kept| kept.score).unwrap_or_default(),
    };
    let status = before
        .status
        .merged(t.status.unwrap_or(CallStatus::Completed));
    let lead = async {
        let Some(key) = person.key(other_party.as_deref()) else {
            return Ok(before.lead_id);
        };
        let touch = leads::LeadTouch {
            tenant: before.tenant,
            key,
            name: contact
                .as_ref()
                .map(|c| c.name.clone())
                .or_else(|| person.name.clone()),
            email: contact
                .as_ref()
                .and_then(|c| c.email.clone())
                .or_else(|| person.email.clone()),
            company: contact
                .as_ref()
                .and_then(|c| c.company.clone())
                .or_else(|| person.company.clone()),
            contact_id: contact.as_ref().map(|c| c.id),
            agent_id: call.agent.agent_id,
            linked: before.lead_id,
            elevenlabs_user: person.elevenlabs_user.as_deref(),
            score,
            contact_at: t.started_at.unwrap_or(call.event_at),
            new_interaction: before.lead_id.is_none(),
        };
        leads::upsert_for_call(tx, &touch).await.map(Some)
    };

    // Usage: one credit per started minute, once per conversation, once its outcome is known:
    // charged on a transcription still in progress, the longer final one would find the
    // conversation charged and add nothing.
    let duration = t.duration_seconds;
    let charge = async {
        let amount = credits_for(duration);
        if amount <= 0 || !status.is_terminal() {
            return Ok(0);
        }
        let minutes = format!("{}:{:02}", duration / 60, duration % 60);
        let what = if t.is_chat { "Chat" } else { "Call" };
        let with = other_party
            .as_deref()
            .map(|n| format!(" with {n}"))
            .unwrap_or_default();
        let change = CreditChange {
            tenant: before.tenant,
            kind: CreditKind::Usage,
            amount: -amount,
            reference: usage_reference(&call.conversation_id),
            description: format!("{what} {minutes}{with}"),
            stripe_payment_id: None,
        };
        Ok(match credits::apply(tx, &change).await? {
            Applied::New(_) => amount,
            Applied::Duplicate(_) => 0,
        })
    };

    // The outcome is known and charged: a batch call's held credit is settled.
    let settle = async {
        if status.is_terminal() {
            holds::settle(
                tx,
                before.tenant,
                &call.conversation_id,
                &holds::CallKeys {
                    batch_call_id: t.batch_call_id.as_deref(),
                    recipient_id: t.batch_recipient_id.as_deref(),
                    phone_number: other_party.as_deref().filter(|_| {
                        t.direction.as_deref() == Some("outbound") && !before.placed_singly
                    }),
                },
            )
            .await?;
        }
        Ok(())
    };

    let analyzed = async {
        let (Some(analysis), Some(scores)) = (analysis, &scores) else {
            return Ok(());
        };
        before.store_analysis(tx, call, scores, analysis).await?;
        Ok(())
    };

    let completed_at = t
        .started_at
        .map(|s| s + chrono::Duration::seconds(duration));
    let metadata = Json(TranscribedMetadata {
        termination_reason: &t.termination_reason,
        provider: &t.provider,
        dynamic_variables: &t.dynamic_variables,
    });
    let ((lead_id, charged), ()) = try_join(try_join(lead, charge), settle).await?;

    let kind = CallKind::of(t.is_chat).as_str();
    let duration = i32::try_from(duration).unwrap_or(i32::MAX);
    let contact_id = contact.as_ref().map(|c| c.id);
    let termination_reason = t.termination_reason.as_deref().filter(|r| !r.is_empty());
    let call_successful = analysis.and_then(|a| a.call_successful.as_deref());
    let summary = analysis.and_then(|a| a.transcript_summary.as_deref());
    let values: [&(dyn ToSql + Sync); 20] = [
        &before.id,
        &kind,
        &t.direction,
        &status.as_str(),
        &other_party,
        &t.agent_number,
        &contact_id,
        &lead_id,
        &t.started_at,
        &duration,
        &charged,
        &t.cost,
        &call_successful,
        &summary,
        &termination_reason,
        &metadata,
        &completed_at,
        call.agent.tenant.as_uuid(),
        &call.agent.agent_id,
        &call.conversation_id,
    ];
    // A stored row is updated with the first 17; a new one also takes the call's keys.
    let (write, params) = if before.stored {
        (sql::SET_TRANSCRIBED, &values[..17])
    } else {
        (sql::INSERT_TRANSCRIBED, &values[..])
    };
    // The transcript and the analysis point at the call's row, so they are sent after its
    // write, in the same round trip (prepared first, so they go out in order).
    tx.prepare_all(&[
        write,
        sql::UPSERT_TRANSCRIPT,
        analytics::sql::UPSERT_UNLESS_NEWER,
    ])
    .await?;
    let record = async {
        let updated = tx.cached_query_one(write, params).await?;
        before.roll_up(tx, &updated).await
    };
    try_join3(record, store_transcript(tx, before.id, t), analyzed).await?;
    Ok(())
}

/// A transcript's turn as `speaker_segments` stores it.
#[derive(Debug, Serialize)]
struct Segment<'a> {
    speaker: &'static str,
    text: &'a str,
    timestamp: i64,
}

/// What a transcription adds to the call's `metadata`.
#[derive(Debug, Serialize)]
struct TranscribedMetadata<'a> {
    termination_reason: &'a Option<String>,
    provider: &'a Option<String>,
    dynamic_variables: &'a Map<String, Value>,
}

async fn store_transcript(tx: &impl GenericClient, call_id: Uuid, t: &Transcript) -> AppResult<()> {
    if t.turns.is_empty() {
        return Ok(());
    }
    let mut content = String::new();
    for turn in &t.turns {
        if !content.is_empty() {
            content.push('\n');
        }
        content.push_str(turn.speaker.as_str());
        content.push_str(": ");
        content.push_str(&turn.text);
    }
    let segments = Json(
        t.turns
            .iter()
            .map(|turn| Segment {
                speaker: turn.speaker.as_str(),
                text: &turn.text,
                timestamp: turn.at_seconds,
            })
            .collect::<Vec<_>>(),
    );
    tx.cached_execute(sql::UPSERT_TRANSCRIPT, &[&call_id, &content, &segments])
        .await?;
    Ok(())
}
