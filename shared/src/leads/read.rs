//! Leads as the frontend reads them: the filtered list, and one profile with its interaction
//! timeline and possible duplicates.

use crate::db::statements::Cached;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use tokio_postgres::{types::Json, Row};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    analytics::{CtaInteractions, LeadAnalytics},
    LeadStatus,
};
use crate::{
    agents,
    db::filter::{like_pattern, Filter, Keyset},
    error::{AppError, AppResult},
    export::{cell, Export},
    ids::LeadId,
    tenant::TenantId,
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
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadProfile {
    #[serde(flatten)]
    pub lead: Lead,
    /// The newest analysis of any of the lead's calls.
    pub latest_analytics: Option<LeadAnalytics>,
    pub timeline: Vec<Interaction>,
    /// Other leads of the tenant with the same phone number or email: candidates for a merge.
    pub possible_duplicates: Vec<Lead>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
pub struct LeadFilter {
    pub lead_status: Option<LeadStatus>,
    pub min_score: Option<i32>,
    pub agent_id: Option<Uuid>,
    /// Part of the name, phone number, email or company.
    pub search: Option<String>,
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

impl LeadFilter {
    /// The filter's conditions, once an `agent_id` is known to be the tenant's (404 if not).
    async fn checked_sql(&self, db: &impl GenericClient, tenant: TenantId) -> AppResult<Filter> {
        if let Some(agent_id) = self.agent_id {
            agents::find_any(db, tenant, agent_id).await?;
        }
        self.to_sql(tenant)
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
                self.lead_status.map(|s| match s {
                    LeadStatus::Hot => "hot",
                    LeadStatus::Warm => "warm",
                    LeadStatus::Cold => "cold",
                }),
            )
            .and_some("l.total_score >= $", self.min_score)
            .and_some("l.agent_id = $", self.agent_id);
        if let Some(search) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let p = like_pattern(search);
            filter.and(
                "(l.name ILIKE $ OR l.phone_number ILIKE $ OR l.email ILIKE $ OR l.company ILIKE $)",
                vec![Box::new(p.clone()), Box::new(p.clone()), Box::new(p.clone()), Box::new(p)],
            );
        }
        Ok(filter)
    }
}

/// A page of the tenant's leads, newest contact first, and how many match in all. An
/// `agent_id` that is not the tenant's answers 404.
pub async fn list(
    db: &impl GenericClient,
    tenant: TenantId,
    filter: &LeadFilter,
    limit: i64,
    after: Option<LeadCursor>,
) -> AppResult<(Vec<Lead>, i64)> {
    let matching = filter.checked_sql(db, tenant).await?;
    let total = matching.count(db, sql::LIST_FROM).await?;
    let rows = matching
        .page(db, sql::LIST_SELECT, &NEWEST_CONTACT, after, limit)
        .await?;
    let leads = rows.iter().map(Lead::try_from).collect::<AppResult<_>>()?;
    Ok((leads, total))
}

/// The list's filters as a CSV export of every matching lead, newest contact first.
pub async fn export(
    db: &impl GenericClient,
    tenant: TenantId,
    filter: &LeadFilter,
) -> AppResult<Export> {
    Ok(Export {
        file_name: "leads",
        select: sql::LIST_SELECT,
        keyset: &NEWEST_CONTACT,
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
            let position = lead.cursor();
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

/// One of the tenant's leads; 404 for anything else.
pub async fn find(db: &impl GenericClient, tenant: TenantId, id: LeadId) -> AppResult<Lead> {
    db.cached_query_opt(sql::ONE_OF_TENANT, &[&id, tenant.as_uuid()])
        .await?
        .map(|row| Lead::try_from(&row))
        .transpose()?
        .ok_or_else(|| AppError::not_found("lead"))
}

pub async fn profile(
    db: &impl GenericClient,
    tenant: TenantId,
    id: LeadId,
) -> AppResult<LeadProfile> {
    let lead = find(db, tenant, id).await?;
    let timeline = db
        .cached_query(
            sql::TIMELINE,
            &[&lead.id, tenant.as_uuid(), &TIMELINE_LIMIT],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(Interaction {
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
            })
        })
        .collect::<AppResult<_>>()?;
    let latest_analytics = db
        .cached_query_opt(sql::LATEST_ANALYTICS, &[&lead.id, tenant.as_uuid()])
        .await?
        .map(|row| LeadAnalytics::try_from(&row))
        .transpose()?;
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
        possible_duplicates,
    })
}

pub mod sql {
    use uuid::Uuid;

    use super::{LeadFilter, NEWEST_CONTACT};
    use crate::{db::filter::Filter, leads::LeadStatus, tenant::TenantId};

    /// The columns `Lead::try_from` reads.
    macro_rules! lead_columns {
        () => {
            "l.*, a.name AS agent_name,
            coalesce(l.last_contact_at, l.created_at) AS sort_at"
        };
    }
    macro_rules! lead_from {
        () => {
            "leads l LEFT JOIN agents a ON a.id = l.agent_id"
        };
    }

    /// The rows the lead list counts, pages through and an export writes.
    pub const LIST_FROM: &str = lead_from!();
    pub const LIST_SELECT: &str = concat!("SELECT ", lead_columns!(), " FROM ", lead_from!());

    crate::db::statements! {
        pub const ONE_OF_TENANT = concat!(
            "SELECT ", lead_columns!(), " FROM ", lead_from!(), " WHERE l.id = $1 AND l.user_id = $2"
        );
        pub const TIMELINE = "SELECT c.id, c.type, c.status, c.direction, c.agent_id, c.started_at, c.created_at,
                c.duration_seconds, c.summary, la.total_score, la.lead_status_tag, la.cta_interactions
            FROM calls c LEFT JOIN lead_analytics la ON la.call_id = c.id
            WHERE c.lead_id = $1 AND c.user_id = $2
            ORDER BY c.created_at DESC, c.id DESC LIMIT $3";
        pub const LATEST_ANALYTICS = "SELECT la.* FROM lead_analytics la JOIN calls c ON c.id = la.call_id
            WHERE c.lead_id = $1 AND c.user_id = $2
            ORDER BY la.analyzed_at DESC LIMIT 1";
        pub const POSSIBLE_DUPLICATES = concat!("SELECT ", lead_columns!(), " FROM ", lead_from!(), "
            WHERE l.user_id = $1 AND l.id <> $2
              AND ((l.phone_number IS NOT NULL AND l.phone_number = $3)
                   OR (l.email IS NOT NULL AND lower(l.email) = lower($4)))
            ORDER BY l.created_at LIMIT 20");
        fullest {
            LIST_COUNT = || every_filter().count_statement(LIST_FROM),
            LIST_PAGE = || every_filter().page_statement(LIST_SELECT, &NEWEST_CONTACT, true),
        }
    }

    fn every_filter() -> Filter {
        LeadFilter {
            lead_status: Some(LeadStatus::Hot),
            min_score: Some(50),
            agent_id: Some(Uuid::nil()),
            search: Some("a".into()),
        }
        .to_sql(TenantId::from_trusted(Uuid::nil()))
        .expect("the fullest filter is valid")
    }
}
