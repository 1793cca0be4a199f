//! Leads as the frontend reads them: the filtered list, and one profile with its interaction
//! timeline and possible duplicates.

use crate::db::filter::Total;
use crate::db::statements::{Cached, PlannedPerRun};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures::future::{try_join, try_join3};
use serde::{Deserialize, Serialize};
use tokio_postgres::{types::Json, Row};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    analytics::{CtaInteractions, LeadAnalytics, ANALYTICS_COLUMNS},
    LeadStatus,
};
use crate::{
    agents,
    db::filter::{Filter, Keyset, Search, Searched},
    error::{AppError, AppResult},
    export::{cell, Export},
    ids::LeadId,
    tenant::TenantId,
    transcript::SpeakerSegment,
};

/// Calls shown on a profile's timeline (newest first).
pub const TIMELINE_LIMIT: i64 = 100;

/// The design's lead: one person per tenant with the latest scores.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Lead {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: Option<String>,
    pub phone_number: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub contact_id: Option<Uuid>,
    /// The owning agent.
    pub agent_id: Option<Uuid>,
    pub agent_name: Option<String>,
    pub total_score: Option<i32>,
    /// hot, warm or cold.
    pub lead_status_tag: Option<String>,
    pub interaction_count: i32,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of the lead list: the lead with its newest analysis.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadWithAnalytics {
    #[serde(flatten)]
    pub lead: Lead,
    /// The newest analysis of any of the lead's calls and chats (of two made in the same
    /// second, the later conversation's); null before the first.
    #[schema(required = true)]
    pub latest_analytics: Option<LeadAnalytics>,
}

/// One call or chat on a lead's timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Interaction {
    pub call_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub direction: Option<String>,
    pub agent_id: Uuid,
    pub started_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub duration_seconds: i32,
    pub summary: Option<String>,
    pub total_score: Option<i32>,
    pub lead_status_tag: Option<String>,
    /// Null when the call has no analysis.
    pub cta_interactions: Option<CtaInteractions>,
    /// A chat's messages in order; null for calls (their transcript is
    /// `GET /api/calls/{id}/transcript`) and for a chat whose transcript has not arrived.
    #[schema(required = true)]
    pub messages: Option<Vec<SpeakerSegment>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadProfile {
    #[serde(flatten)]
    pub lead: Lead,
    /// The newest analysis of any of the lead's calls.
    pub latest_analytics: Option<LeadAnalytics>,
    /// The newest interactions, up to 100; `GET /api/leads/{id}/timeline` pages through all.
    pub timeline: Vec<Interaction>,
    /// How many interactions the lead has in all, counted up to 10,000 (as a list's
    /// `pagination.total`).
    pub timeline_total: i64,
    /// False when the lead has more than `timeline_total` interactions.
    pub timeline_total_exact: bool,
    /// Other leads of the tenant with the same phone number or email: candidates for a merge.
    pub possible_duplicates: Vec<Lead>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeadFilter {
    pub lead_status: Option<LeadStatus>,
    pub min_score: Option<i32>,
    pub agent_id: Option<Uuid>,
    /// Part of the name, phone number, email or company.
    #[param(value_type = Option<String>)]
    pub search: Option<Search>,
}

/// Newest contact first; leads never contacted sort by creation.
pub type LeadCursor = (DateTime<Utc>, Uuid);

impl TryFrom<&Row> for Lead {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            phone_number: row.try_get("phone_number")?,
            email: row.try_get("email")?,
            company: row.try_get("company")?,
            contact_id: row.try_get("contact_id")?,
            agent_id: row.try_get("agent_id")?,
            agent_name: row.try_get("agent_name")?,
            total_score: row.try_get("total_score")?,
            lead_status_tag: row.try_get("lead_status_tag")?,
            interaction_count: row.try_get("interaction_count")?,
            last_contact_at: row.try_get("last_contact_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

impl Lead {
    pub fn cursor(&self) -> LeadCursor {
        (self.last_contact_at.unwrap_or(self.created_at), self.id)
    }
}

/// The list order: newest contact first, never-contacted leads by creation.
const NEWEST_CONTACT: Keyset = Keyset {
    time: "coalesce(l.last_contact_at, l.created_at)",
    id: "l.id",
};

/// An export's order: newest first by creation, which a contact or a merge while the file is
/// written does not change (in the list's order such a lead would move ahead of the pages
/// already written and be left out).
const NEWEST_CREATED: Keyset = Keyset {
    time: "l.created_at",
    id: "l.id",
};

impl LeadFilter {
    /// The filter's conditions, once an `agent_id` is known to be the tenant's (404 if not),
    /// its search fitted to the tenant's rows ([`Filter::fit_search_to_rows`]).
    async fn checked_sql(&self, db: &impl PlannedPerRun, tenant: TenantId) -> AppResult<Filter> {
        if let Some(agent_id) = self.agent_id {
            agents::find_any(db, tenant, agent_id).await?;
        }
        let mut matching = self.to_sql(tenant)?;
        matching
            .fit_search_to_rows(db, sql::LIST_FROM, &NEWEST_CONTACT)
            .await?;
        Ok(matching)
    }

    fn to_sql(&self, tenant: TenantId) -> AppResult<Filter> {
        if self.min_score.is_some_and(|s| !(0..=100).contains(&s)) {
            return Err(AppError::validation(
                "min_score",
                "must be between 0 and 100",
            ));
        }
        let mut filter = Filter::default();
        filter
            .and("l.user_id = $", vec![Box::new(*tenant.as_uuid())])
            .and_some(
                "l.lead_status_tag = $",
                self.lead_status.map(LeadStatus::as_str),
            )
            .and_some("l.total_score >= $", self.min_score)
            .and_some("l.agent_id = $", self.agent_id)
            .and_containing_in(tenant, &SEARCHED, self.search.as_ref());
        Ok(filter)
    }
}

/// Where the leads list's search looks, as V0024's trigram index and its sample (V0037) join
/// the columns.
const SEARCHED: Searched = Searched {
    columns: &["l.name", "l.phone_number", "l.email", "l.company"],
    tenant: "l.user_id",
    joined: None,
    sampled_by: Some("l.id"),
};

/// A page of the tenant's leads with their newest analyses, newest contact first, and how
/// many match in all. An `agent_id` that is not the tenant's answers 404.
pub async fn list(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    filter: &LeadFilter,
    limit: i64,
    after: Option<LeadCursor>,
) -> AppResult<(Vec<LeadWithAnalytics>, Total)> {
    let matching = filter.checked_sql(db, tenant).await?;
    let (rows, total) = matching
        .rows_with_total(
            after.is_none(),
            limit,
            matching.rows_of_page(
                db,
                sql::around_list_page,
                (sql::LIST_SELECT, &NEWEST_CONTACT),
                after,
                limit,
            ),
            matching.total(db, sql::LIST_FROM),
        )
        .await?;
    let rows = rows
        .iter()
        .map(|row| {
            let analytics = row.len() - ANALYTICS_COLUMNS;
            Ok(LeadWithAnalytics {
                lead: Lead::try_from(row)?,
                latest_analytics: match row.try_get::<_, Option<Uuid>>(analytics)? {
                    Some(_) => Some(LeadAnalytics::read(row, analytics)?),
                    None => None,
                },
            })
        })
        .collect::<AppResult<_>>()?;
    Ok((rows, total))
}

/// The list's filters as a CSV export of every matching lead, newest first by creation (a
/// search fitted as the list's is).
pub async fn export(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    filter: &LeadFilter,
) -> AppResult<Export> {
    Ok(Export {
        file_name: "leads",
        select: sql::LIST_SELECT,
        keyset: &NEWEST_CREATED,
        filter: filter.checked_sql(db, tenant).await?,
        count_from: sql::LIST_FROM.to_owned(),
        header: &[
            "id",
            "name",
            "phone_number",
            "email",
            "company",
            "agent",
            "total_score",
            "lead_status_tag",
            "interaction_count",
            "last_contact_at",
            "created_at",
        ],
        record: |row| {
            let lead = Lead::try_from(row)?;
            let position = (lead.created_at, lead.id);
            let cells = vec![
                lead.id.to_string(),
                cell(lead.name),
                cell(lead.phone_number),
                cell(lead.email),
                cell(lead.company),
                cell(lead.agent_name),
                cell(lead.total_score),
                cell(lead.lead_status_tag),
                lead.interaction_count.to_string(),
                cell(lead.last_contact_at.map(|t| t.to_rfc3339())),
                lead.created_at.to_rfc3339(),
            ];
            Ok((position, cells))
        },
    })
}

/// The tenant's best-scored leads last contacted within `contacted`, best first; only those
/// owned by `agents` when given.
pub async fn top_scored(
    db: &impl GenericClient,
    tenant: TenantId,
    contacted: std::ops::Range<DateTime<Utc>>,
    agents: Option<Vec<Uuid>>,
    limit: i64,
) -> AppResult<Vec<Lead>> {
    let contacted = sql::top_scored(tenant, contacted, agents);
    db.cached_query(
        &sql::best_scored_statement(&contacted),
        &contacted.params_with(&[&limit]),
    )
    .await?
    .iter()
    .map(Lead::try_from)
    .collect()
}

/// One of the tenant's leads; 404 for anything else.
pub async fn find(db: &impl GenericClient, tenant: TenantId, id: LeadId) -> AppResult<Lead> {
    db.cached_query_opt(sql::ONE_OF_TENANT, &[&id, tenant.as_uuid()])
        .await?
        .map(|row| Lead::try_from(&row))
        .transpose()?
        .ok_or_else(|| AppError::not_found("lead"))
}

pub async fn profile(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    id: LeadId,
) -> AppResult<LeadProfile> {
    // Sent together, one round trip: everything but the duplicates, which need the lead's
    // number and email. Each statement names the tenant, so for another tenant's lead the
    // others find nothing, and the 404 discards them.
    let latest_analytics = async {
        db.cached_query_opt(sql::LATEST_ANALYTICS, &[&id, tenant.as_uuid()])
            .await?
            .map(|row| LeadAnalytics::read(&row, 0))
            .transpose()
    };
    let (lead, (timeline, total), latest_analytics) = try_join3(
        find(db, tenant, id),
        interactions(db, tenant, id, TIMELINE_LIMIT, None),
        latest_analytics,
    )
    .await?;
    let possible_duplicates = db
        .cached_query(
            sql::POSSIBLE_DUPLICATES,
            &[tenant.as_uuid(), &lead.id, &lead.phone_number, &lead.email],
        )
        .await?
        .iter()
        .map(Lead::try_from)
        .collect::<AppResult<_>>()?;
    Ok(LeadProfile {
        lead,
        latest_analytics,
        timeline,
        timeline_total: total.count,
        timeline_total_exact: total.exact,
        possible_duplicates,
    })
}

/// A page of one of the tenant's leads' calls and chats, newest first, and how many there are;
/// 404 for anyone else's lead.
pub async fn timeline(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    id: LeadId,
    limit: i64,
    after: Option<InteractionCursor>,
) -> AppResult<(Vec<Interaction>, Total)> {
    // One round trip, as in `profile`.
    let (_, page) = try_join(
        find(db, tenant, id),
        interactions(db, tenant, id, limit, after),
    )
    .await?;
    Ok(page)
}

/// A page of the lead's calls and chats and their total, both the tenant's only.
async fn interactions(
    db: &impl PlannedPerRun,
    tenant: TenantId,
    lead: LeadId,
    limit: i64,
    after: Option<InteractionCursor>,
) -> AppResult<(Vec<Interaction>, Total)> {
    let of_lead = sql::timeline_of(*lead.as_uuid(), tenant);
    let (total, rows) = try_join(
        of_lead.total(db, sql::TIMELINE_FROM),
        of_lead.page(db, sql::TIMELINE_SELECT, &NEWEST_INTERACTION, after, limit),
    )
    .await?;
    let page = rows
        .iter()
        .map(Interaction::try_from)
        .collect::<AppResult<_>>()?;
    Ok((page, total))
}

impl TryFrom<&Row> for Interaction {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        Ok(Self {
            call_id: row.try_get("id")?,
            kind: row.try_get("type")?,
            status: row.try_get("status")?,
            direction: row.try_get("direction")?,
            agent_id: row.try_get("agent_id")?,
            started_at: row.try_get("started_at")?,
            created_at: row.try_get("created_at")?,
            duration_seconds: row.try_get("duration_seconds")?,
            summary: row.try_get("summary")?,
            total_score: row.try_get("total_score")?,
            lead_status_tag: row.try_get("lead_status_tag")?,
            cta_interactions: row
                .try_get::<_, Option<Json<CtaInteractions>>>("cta_interactions")?
                .map(|Json(cta)| cta),
            messages: row
                .try_get::<_, Option<Json<Vec<SpeakerSegment>>>>("messages")?
                .map(|Json(messages)| messages),
        })
    }
}

/// The position of an interaction in the newest-first timeline.
pub type InteractionCursor = (DateTime<Utc>, Uuid);

impl Interaction {
    pub fn cursor(&self) -> InteractionCursor {
        (self.created_at, self.call_id)
    }
}

const NEWEST_INTERACTION: Keyset = Keyset {
    time: "c.created_at",
    id: "c.id",
};

pub mod sql;
