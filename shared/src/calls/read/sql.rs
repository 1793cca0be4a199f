//! The call lists' statements, and the fullest variant of each built from a filter, which
//! `checked_sql` prepares against the schema.

use chrono::Utc;
use uuid::Uuid;

use super::{CallFilter, CallKind, CallStatus, Counted, NEWEST};
use crate::{
    db::filter::{Filter, Search},
    leads::{analytics::analytics_columns, LeadStatus},
    tenant::TenantId,
};

/// The columns `Call::try_from` reads, over the tables they come from. Not `c.*`: the
/// call's `metadata` (what ElevenLabs echoed of the call, dynamic variables included) is
/// never read back by a request.
macro_rules! call_columns {
    () => {
        "c.id, c.agent_id, c.user_id, c.elevenlabs_conversation_id, c.type, c.direction,
        c.status, c.phone_number, c.contact_id, c.lead_id, c.duration_seconds,
        c.credits_charged, c.call_successful, c.summary, c.failure_reason, c.recording_key,
        c.started_at, c.created_at, c.completed_at,
        a.name AS agent_name, ct.name AS contact_name, la.total_score, la.lead_status_tag"
    };
}
macro_rules! call_joins {
    () => {
        "calls c
        JOIN agents a ON a.id = c.agent_id
        LEFT JOIN contacts ct ON ct.id = c.contact_id
        LEFT JOIN lead_analytics la ON la.call_id = c.id"
    };
}

/// The rows the call list pages through and an export writes.
pub const LIST_SELECT: &str = concat!("SELECT ", call_columns!(), " FROM ", call_joins!());
/// The analyzed calls as `/analytics/leads` pages through them: each analysis (its lead is
/// its call's) with who and which agent it was about.
pub const SCORED_SELECT: &str = concat!(
    "SELECT ",
    analytics_columns!(),
    ", la.lead_id, l.name AS lead_name, c.phone_number,
        c.agent_id, a.name AS agent_name, c.type AS conversation_type,
        c.created_at AS conversation_at
    FROM lead_analytics la JOIN calls c ON c.id = la.call_id
    JOIN agents a ON a.id = c.agent_id
    LEFT JOIN contacts ct ON ct.id = c.contact_id
    LEFT JOIN leads l ON l.id = c.lead_id"
);
/// A tenant's analyses, counted by their own tenant column when no condition reads the call.
pub const ANALYSES_FROM: &str = "lead_analytics la";
/// The same rows as `/analytics/calls` pages through them: one conversation's metrics.
pub const METRICS_SELECT: &str = concat!(
    "SELECT c.id, c.agent_id, a.name AS agent_name, c.type, c.status, c.direction,
        c.duration_seconds, c.credits_charged, c.call_successful, c.created_at, c.completed_at,
        la.total_score, la.lead_status_tag, la.cta_interactions FROM ",
    call_joins!()
);

crate::db::statements! {
    pub const ONE_OF_TENANT = concat!(
        "SELECT ", call_columns!(), " FROM ", call_joins!(), " WHERE c.id = $1 AND c.user_id = $2"
    );
    pub const ANALYTICS_OF_CALL = concat!(
        "SELECT ", analytics_columns!(), " FROM lead_analytics la WHERE la.call_id = $1"
    );
    pub const TRANSCRIPT_OF_TENANT = "SELECT t.call_id, t.content, t.speaker_segments, t.created_at
        FROM transcripts t JOIN calls c ON c.id = t.call_id
        WHERE t.call_id = $1 AND c.user_id = $2";
    pub const UNFINISHED_CONVERSATIONS = "SELECT wanted.id FROM unnest($1::text[]) AS wanted(id)
        WHERE NOT EXISTS (
            SELECT 1 FROM calls
            WHERE calls.elevenlabs_conversation_id = wanted.id AND calls.status <> 'in_progress')";
    fullest {
        LIST_COUNT = || {
            let every = every_condition();
            matching(&every, Counted::Calls).count_statement(&every.count_from(Counted::Calls))
        },
        LIST_TOTAL = || {
            let every = every_condition();
            matching(&every, Counted::Calls).total_statement(&every.count_from(Counted::Calls))
        },
        LIST_PAGE = || matching(&every_condition(), Counted::Calls).page_statement(LIST_SELECT, &NEWEST, true),
        METRICS_PAGE = || matching(&every_condition(), Counted::Calls).page_statement(METRICS_SELECT, &NEWEST, true),
        SCORED_TOTAL = || {
            let every = every_condition();
            matching(&every, Counted::Analyzed).total_statement(&every.count_from(Counted::Analyzed))
        },
        SCORED_PAGE = || matching(&every_condition(), Counted::Analyzed).page_statement(SCORED_SELECT, &NEWEST, true),
        ANALYSES_TOTAL = || CallFilter {
            lead_status: Some(LeadStatus::Hot),
            min_score: Some(50),
            ..CallFilter::default()
        }
        .conditions("la.user_id = $", TenantId::from_trusted(Uuid::nil()))
        .expect("the analysis' conditions are valid")
        .total_statement(ANALYSES_FROM),
    }
}

fn every_condition() -> CallFilter {
    CallFilter {
        agent_id: Some(Uuid::nil()),
        kind: Some(CallKind::Call),
        status: Some(CallStatus::Completed),
        from: Some(Utc::now()),
        to: Some(Utc::now()),
        lead_status: Some(LeadStatus::Hot),
        min_score: Some(50),
        search: Some(Search::parse("a").expect("a search")),
    }
}

fn matching(filter: &CallFilter, counted: Counted) -> Filter {
    filter
        .to_sql(TenantId::from_trusted(Uuid::nil()), counted)
        .expect("the fullest filter is valid")
}
