//! Reading calls and chats: the filtered, keyset-paginated list, one call with its lead
//! analytics, and its transcript. Every query is scoped by the tenant.

use crate::db::statements::{Cached, PlannedPerRun};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use tokio_postgres::{types::Json, Row};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::event::CallStatus;
pub use crate::transcript::{SegmentSpeaker, SpeakerSegment};
use crate::{
    agents,
    db::filter::{Filter, Joined, Keyset, Search, Searched, Total},
    error::{AppError, AppResult},
    export::{cell, Export},
    ids::CallId,
    leads::{analytics::LeadAnalytics, LeadStatus},
    tenant::TenantId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Call,
    Chat,
}

impl CallKind {
    /// A conversation with a chat agent is a chat, any other a call.
    pub fn of(is_chat: bool) -> Self {
        if is_chat {
            Self::Chat
        } else {
            Self::Call
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Chat => "chat",
        }
    }

    /// From the `calls.type` column (a check constraint keeps it to these two).
    pub(super) fn parse(stored: &str) -> Self {
        match stored {
            "chat" => Self::Chat,
            _ => Self::Call,
        }
    }
}

/// The design's Call model, with what the logs tab shows next to it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Call {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub agent_name: String,
    pub user_id: Uuid,
    pub elevenlabs_conversation_id: String,
    #[serde(rename = "type")]
    pub kind: CallKind,
    pub direction: Option<String>,
    pub status: CallStatus,
    /// The other party (E.164 when it parses); null for chats, which have no number.
    #[schema(required = true)]
    pub phone_number: Option<String>,
    pub contact_id: Option<Uuid>,
    pub contact_name: Option<String>,
    pub lead_id: Option<Uuid>,
    pub duration_seconds: i32,
    /// The design's field: duration in minutes, two decimals.
    pub duration_minutes: f64,
    pub credits_charged: i64,
    /// ElevenLabs' verdict: success, failure or unknown.
    pub call_successful: Option<String>,
    pub summary: Option<String>,
    pub failure_reason: Option<String>,
    pub total_score: Option<i32>,
    pub lead_status_tag: Option<String>,
    /// A presigned link to the MP3, playable by an `<audio>` element for at least 15 minutes
    /// (`GET /api/calls/{id}/recording` hands out a fresh one); null when there is no audio
    /// (chats, calls whose audio never arrived).
    #[schema(required = true)]
    pub recording_url: Option<String>,
    /// The stored MP3's object key, which `recording_url` is signed for.
    #[serde(skip)]
    pub recording_key: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Null while the call is in progress.
    #[schema(required = true)]
    pub completed_at: Option<DateTime<Utc>>,
}

/// One call with its lead analytics.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: Call,
    pub lead_analytics: Option<LeadAnalytics>,
}

/// The design's Transcript model.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transcript {
    /// The transcript of a call has the call's id.
    pub id: Uuid,
    pub call_id: Uuid,
    pub content: String,
    /// The turns in order.
    pub speaker_segments: Vec<SpeakerSegment>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallFilter {
    pub agent_id: Option<Uuid>,
    /// `call` or `chat`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<CallKind>,
    pub status: Option<CallStatus>,
    /// Calls created at or after this time: an RFC 3339 time, or a day (YYYY-MM-DD, from its
    /// 00:00 UTC).
    #[serde(default, deserialize_with = "crate::time::optional_time")]
    #[param(value_type = Option<String>)]
    pub from: Option<DateTime<Utc>>,
    /// Calls created before this time: an RFC 3339 time, or a day (YYYY-MM-DD, included).
    #[serde(default, deserialize_with = "crate::time::optional_time_until")]
    #[param(value_type = Option<String>)]
    pub to: Option<DateTime<Utc>>,
    /// The call's lead tag: hot, warm or cold.
    pub lead_status: Option<LeadStatus>,
    /// Calls whose total score is at least this (0 to 100).
    pub min_score: Option<i32>,
    /// Part of the call's phone number, or of its contact's name, phone number, e-mail or
    /// company.
    #[param(value_type = Option<String>)]
    pub search: Option<Search>,
}

/// The position of a call in the newest-first order.
pub type CallCursor = (DateTime<Utc>, Uuid);

impl TryFrom<&Row> for Call {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        let id: Uuid = row.try_get("id")?;
        let duration_seconds: i32 = row.try_get("duration_seconds")?;
        Ok(Self {
            id,
            agent_id: row.try_get("agent_id")?,
            agent_name: row.try_get("agent_name")?,
            user_id: row.try_get("user_id")?,
            elevenlabs_conversation_id: row.try_get("elevenlabs_conversation_id")?,
            kind: CallKind::parse(row.try_get("type")?),
            direction: row.try_get("direction")?,
            status: CallStatus::parse(row.try_get("status")?),
            phone_number: row.try_get("phone_number")?,
            contact_id: row.try_get("contact_id")?,
            contact_name: row.try_get("contact_name")?,
            lead_id: row.try_get("lead_id")?,
            duration_seconds,
            duration_minutes: (f64::from(duration_seconds) / 60.0 * 100.0).round() / 100.0,
            credits_charged: row.try_get("credits_charged")?,
            call_successful: row.try_get("call_successful")?,
            summary: row.try_get("summary")?,
            failure_reason: row.try_get("failure_reason")?,
            total_score: row.try_get("total_score")?,
            lead_status_tag: row.try_get("lead_status_tag")?,
            recording_url: None,
            recording_key: row.try_get("recording_key")?,
            started_at: row.try_get("started_at")?,
            created_at: row.try_get("created_at")?,
            completed_at: row.try_get("completed_at")?,
        })
    }
}

/// Where the call list's search looks: the call's number, and its contact's details (the
/// contacts list's `SEARCHED_COLUMNS`, which the contacts' trigram index has, V0024, and its
/// sample's, V0036).
pub const SEARCHED: [Searched; 2] = [
    Searched {
        columns: &["c.phone_number"],
        tenant: "c.user_id",
        joined: None,
        sampled_by: None,
    },
    Searched {
        columns: &["ct.name", "ct.phone_number", "ct.email", "ct.company"],
        tenant: "ct.user_id",
        joined: Some(Joined {
            table: "contacts ct",
            on: "ct.id = c.contact_id AND ct.user_id = c.user_id",
        }),
        sampled_by: Some("ct.id"),
    },
];

/// The list order: newest first.
pub const NEWEST: Keyset = Keyset {
    time: "c.created_at",
    id: "c.id",
};

impl CallFilter {
    /// The filter's conditions, once an `agent_id` is known to be the tenant's (404 if not),
    /// its search fitted to the tenant's rows ([`Filter::fit_search_to_rows`]).
    pub(super) async fn checked_sql(
        &self,
        db: &impl PlannedPerRun,
        tenant: TenantId,
        counted: Counted,
    ) -> AppResult<Filter> {
        if let Some(agent_id) = self.agent_id {
            agents::find_any(db, tenant, agent_id).await?;
        }
        let mut matching = self.to_sql(tenant, counted)?;
        matching
            .fit_search_to_rows(db, &self.tables(counted, false), &NEWEST)
            .await?;
        Ok(matching)
    }

    /// The tables the count of `counted` needs: a join only when a filter reads it, so an
    /// unfiltered total is an index-only count of the tenant's calls (every call has an agent,
    /// so that join never changes the count; an unused outer join still keeps Postgres off the
    /// index).
    pub(super) fn count_from(&self, counted: Counted) -> String {
        self.tables(counted, self.search().is_some())
    }

    /// [`CallFilter::count_from`]'s tables, the contacts' (joined last) only `with_contacts`: a
    /// search's lookups read them, but its rows read in the list's order (its fit, a window)
    /// ask each call's contact apart. Joined there unused, they kept the largest tenant's
    /// check that its list is long off the index alone (1,000 rows read from the table, 502
    /// buffers against 12; its fit 1.45 against 1.05 ms).
    fn tables(&self, counted: Counted, with_contacts: bool) -> String {
        let mut from = String::from(match counted {
            Counted::Calls => "calls c",
            Counted::Analyzed => "lead_analytics la JOIN calls c ON c.id = la.call_id",
        });
        if counted == Counted::Calls && (self.lead_status.is_some() || self.min_score.is_some()) {
            from.push_str(" LEFT JOIN lead_analytics la ON la.call_id = c.id");
        }
        if with_contacts {
            from.push_str(" LEFT JOIN contacts ct ON ct.id = c.contact_id");
        }
        from
    }

    /// A list's total of the `counted` rows that `matching` (this filter's SQL) matches.
    /// Analyses that no condition on their call narrows are counted by their own tenant column,
    /// from their own index: joined to the tenant's calls, a million-call tenant's count probed
    /// `lead_analytics` once per call (~30 ms for the 10,000 it counts, against ~2 ms).
    async fn total(
        &self,
        db: &impl PlannedPerRun,
        tenant: TenantId,
        counted: Counted,
        matching: &Filter,
    ) -> AppResult<Total> {
        if counted == Counted::Analyzed && !self.reads_calls() {
            return self
                .conditions("la.user_id = $", tenant)?
                .total(db, sql::ANALYSES_FROM)
                .await;
        }
        matching.total(db, &self.count_from(counted)).await
    }

    /// Whether a condition reads the call or its contact: all but the analysis' tag and score.
    fn reads_calls(&self) -> bool {
        self.agent_id.is_some()
            || self.kind.is_some()
            || self.status.is_some()
            || self.from.is_some()
            || self.to.is_some()
            || self.search().is_some()
    }

    fn search(&self) -> Option<&str> {
        self.search.as_ref().and_then(Search::text)
    }

    /// The filter's SQL over the `counted` rows: its conditions, and its search as two
    /// lookups ([`Filter::and_containing_any`]): the calls whose number holds the text, through
    /// their trigram index, and the calls of the tenant's contacts whose name, number, e-mail
    /// or company holds it, through the contacts' own (both V0024), then the calls' index on
    /// their contact (V0021).
    fn to_sql(&self, tenant: TenantId, counted: Counted) -> AppResult<Filter> {
        let mut filter = self.conditions("c.user_id = $", tenant)?;
        filter.and_containing_any(
            tenant,
            self.search.as_ref(),
            &self.count_from(counted),
            NEWEST.id,
            &SEARCHED,
        );
        Ok(filter)
    }

    /// The filter's conditions but its search, the tenant's by `of_tenant` (a condition with
    /// one `$`).
    fn conditions(&self, of_tenant: &str, tenant: TenantId) -> AppResult<Filter> {
        if let Some(score) = self.min_score {
            if !(0..=100).contains(&score) {
                return Err(AppError::validation(
                    "min_score",
                    "must be between 0 and 100",
                ));
            }
        }
        let mut filter = Filter::default();
        filter
            .and(of_tenant, vec![Box::new(*tenant.as_uuid())])
            .and_some("c.agent_id = $", self.agent_id)
            .and_some("c.type = $", self.kind.map(CallKind::as_str))
            .and_some("c.status = $", self.status.map(CallStatus::as_str))
            .and_some("c.created_at >= $", self.from)
            .and_some("c.created_at < $", self.to)
            .and_some(
                "la.lead_status_tag = $",
                self.lead_status.map(LeadStatus::as_str),
            )
            .and_some("la.total_score >= $", self.min_score);
        Ok(filter)
    }
}

/// Which rows a list of calls counts and pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Counted {
    /// Every matching call.
    Calls,
    /// Only matching calls with an analysis.
    Analyzed,
}

/// A page of the tenant's calls, newest first, and how many match in all. An `agent_id` that
/// is not the tenant's answers 404.
pub async fn list(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    filter: &CallFilter,
    limit: i64,
    after: Option<CallCursor>,
) -> AppResult<(Vec<Call>, Total)> {
    matching_page(
        db,
        tenant,
        filter,
        (sql::LIST_SELECT, Counted::Calls),
        limit,
        after,
    )
    .await
}

/// A page of `select`'s rows (over `counted`) that `filter` matches, newest first, read as
/// `T`, and how many match in all (up to the bound): what every list of calls answers.
pub(super) async fn matching_page<T>(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    filter: &CallFilter,
    (select, counted): (&str, Counted),
    limit: i64,
    after: Option<CallCursor>,
) -> AppResult<(Vec<T>, Total)>
where
    T: for<'r> TryFrom<&'r Row, Error = AppError>,
{
    let matching = filter.checked_sql(db, tenant, counted).await?;
    let (rows, total) = matching
        .rows_with_total(
            after.is_none(),
            limit,
            matching.page(db, select, &NEWEST, after, limit),
            filter.total(db, tenant, counted, &matching),
        )
        .await?;
    let page = rows.iter().map(T::try_from).collect::<AppResult<_>>()?;
    Ok((page, total))
}

/// The list's filters as a CSV export of every matching call, newest first (a search fitted
/// as the list's is: its pages are read in the same way).
pub async fn export(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    filter: &CallFilter,
) -> AppResult<Export> {
    Ok(Export {
        file_name: "calls",
        select: sql::LIST_SELECT,
        keyset: &NEWEST,
        filter: filter.checked_sql(db, tenant, Counted::Calls).await?,
        count_from: filter.count_from(Counted::Calls),
        header: &[
            "id",
            "created_at",
            "started_at",
            "agent",
            "type",
            "direction",
            "status",
            "phone_number",
            "contact_name",
            "duration_seconds",
            "credits_charged",
            "call_successful",
            "total_score",
            "lead_status_tag",
            "summary",
        ],
        record: |row| {
            let call = Call::try_from(row)?;
            let position = (call.created_at, call.id);
            let cells = vec![
                call.id.to_string(),
                call.created_at.to_rfc3339(),
                cell(call.started_at.map(|t| t.to_rfc3339())),
                call.agent_name,
                call.kind.as_str().to_owned(),
                cell(call.direction),
                call.status.as_str().to_owned(),
                cell(call.phone_number),
                cell(call.contact_name),
                call.duration_seconds.to_string(),
                call.credits_charged.to_string(),
                cell(call.call_successful),
                cell(call.total_score),
                cell(call.lead_status_tag),
                cell(call.summary),
            ];
            Ok((position, cells))
        },
    })
}

/// One of the tenant's calls with its lead analytics; 404 for anything else.
pub async fn get(db: &impl GenericClient, tenant: TenantId, id: CallId) -> AppResult<CallDetail> {
    let row = db
        .cached_query_opt(sql::ONE_OF_TENANT, &[&id, tenant.as_uuid()])
        .await?
        .ok_or_else(|| AppError::not_found("call"))?;
    let analytics = db
        .cached_query_opt(sql::ANALYTICS_OF_CALL, &[&id])
        .await?
        .map(|row| LeadAnalytics::read(&row, 0))
        .transpose()?;
    Ok(CallDetail {
        call: Call::try_from(&row)?,
        lead_analytics: analytics,
    })
}

/// The call's transcript; 404 when the call is not the tenant's or has none yet.
pub async fn transcript(
    db: &impl GenericClient,
    tenant: TenantId,
    id: CallId,
) -> AppResult<Transcript> {
    let row = db
        .cached_query_opt(sql::TRANSCRIPT_OF_TENANT, &[&id, tenant.as_uuid()])
        .await?;
    match row {
        Some(row) => Ok(Transcript {
            id: *id.as_uuid(),
            call_id: *id.as_uuid(),
            content: row.try_get("content")?,
            speaker_segments: row
                .try_get::<_, Json<Vec<SpeakerSegment>>>("speaker_segments")?
                .0,
            created_at: row.try_get("created_at")?,
        }),
        None => {
            // Tell "no such call" from "no transcript yet" only to the call's owner.
            get(db, tenant, id).await?;
            Err(AppError::not_found("transcript"))
        }
    }
}

/// Of these conversations, the ones whose call is missing or not finished.
pub async fn unfinished(
    db: &impl GenericClient,
    conversation_ids: &[&str],
) -> AppResult<Vec<String>> {
    db.cached_query(sql::UNFINISHED_CONVERSATIONS, &[&conversation_ids])
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

pub mod sql;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_looks_in_the_contacts_columns_their_index_has() {
        let contact_columns: Vec<String> = crate::contacts::SEARCHED_COLUMNS
            .iter()
            .map(|column| format!("ct.{column}"))
            .collect();
        assert_eq!(SEARCHED[1].columns, contact_columns);
    }
}
