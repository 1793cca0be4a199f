//! Leads: one per person per tenant, found by normalized phone, kept up to date by every call.

pub mod analytics;
pub mod read;
pub mod rollup;
pub mod scoring;

use crate::db::statements::Cached;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    agents,
    error::{AppError, AppResult},
    ids::{AgentId, LeadId, ResourceId},
    tenant::TenantId,
};
use read::Lead;
use scoring::{LeadScores, LeadTag};

/// A lead's temperature, as list filters name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    Hot,
    Warm,
    Cold,
}

impl LeadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Warm => "warm",
            Self::Cold => "cold",
        }
    }
}

/// What identifies the person a conversation was with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadKey<'a> {
    /// E.164.
    Phone(&'a str),
    /// A chat's person who gave an email but no number.
    Email(&'a str),
    /// A chat's person who gave neither: ElevenLabs' id for the end user.
    ElevenLabsUser(&'a str),
}

/// What a call's analysis gives its lead: the total score and its tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallScore {
    pub total: Option<i32>,
    pub tag: Option<LeadTag>,
}

impl CallScore {
    pub fn of(scores: &LeadScores) -> Self {
        Self {
            total: scores.total_score,
            tag: scores.lead_status_tag,
        }
    }

    pub fn is_none(self) -> bool {
        self.total.is_none() && self.tag.is_none()
    }
}

/// What one call or chat tells us about a lead.
pub struct LeadTouch<'a> {
    pub tenant: TenantId,
    pub key: LeadKey<'a>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub contact_id: Option<Uuid>,
    pub agent_id: Uuid,
    /// The lead the call is linked to already: touched whatever its key finds now (the lead
    /// may have been merged into one with another number).
    pub linked: Option<Uuid>,
    /// ElevenLabs' id for a chat's visitor, kept on a lead found by number or email too, so
    /// that their next chat, anonymous, finds it (unless another lead holds it already).
    pub elevenlabs_user: Option<&'a str>,
    /// The analysis the call keeps after this touch.
    pub score: CallScore,
    pub contact_at: DateTime<Utc>,
    /// True the first time this call is linked to the lead (counts one interaction).
    pub new_interaction: bool,
}

/// Creates or updates the lead for a call or chat; returns its id. Known details are kept,
/// missing ones filled in, but a contact other than the lead's brings its own; scores follow
/// the most recent contact. An email key is looked up before the insert: the caller holds the
/// tenant's lock, so no other event of the tenant can insert the same person meanwhile.
pub async fn upsert_for_call(tx: &impl GenericClient, touch: &LeadTouch<'_>) -> AppResult<Uuid> {
    let total = touch.score.total;
    let tag = touch.score.tag.map(LeadTag::as_str);
    let (statement, phone, email, user) = match touch.key {
        LeadKey::Phone(phone) => (
            sql::UPSERT_BY_PHONE,
            Some(phone),
            touch.email.as_deref(),
            touch.elevenlabs_user,
        ),
        LeadKey::Email(email) => (
            sql::UPSERT_BY_EMAIL,
            None,
            Some(email),
            touch.elevenlabs_user,
        ),
        LeadKey::ElevenLabsUser(user) => (
            sql::UPSERT_BY_ELEVENLABS_USER,
            None,
            touch.email.as_deref(),
            Some(user),
        ),
    };
    let interactions = i32::from(touch.new_interaction);
    // The linked lead is not given a visitor's id: another lead may hold it (one per tenant).
    let no_user: Option<&str> = None;
    let mut values: [&(dyn ToSql + Sync); 13] = [
        touch.tenant.as_uuid(),
        &phone,
        &touch.name,
        &email,
        &touch.company,
        &touch.contact_id,
        &touch.agent_id,
        &total,
        &tag,
        &interactions,
        &touch.contact_at,
        &user,
        &touch.linked,
    ];
    if touch.linked.is_some() {
        values[11] = &no_user;
        if let Some(row) = tx.cached_query_opt(sql::TOUCH_LINKED, &values).await? {
            return Ok(row.try_get(0)?);
        }
    }
    let row = tx.cached_query_one(statement, &values[..12]).await?;
    Ok(row.try_get(0)?)
}

/// Applies the score of analytics that arrived on their own for a call of the lead that
/// started at `contact_at`, unless a later contact already set its own.
pub async fn apply_scores(
    tx: &impl GenericClient,
    lead_id: Uuid,
    score: CallScore,
    contact_at: DateTime<Utc>,
) -> AppResult<()> {
    tx.cached_execute(
        sql::APPLY_SCORES_UNLESS_NEWER,
        &[
            &lead_id,
            &score.total,
            &score.tag.map(LeadTag::as_str),
            &contact_at,
        ],
    )
    .await?;
    Ok(())
}

/// `PUT /api/leads/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LeadUpdate {
    /// The agent that owns the lead; must be one of the tenant's agents.
    pub agent_id: Uuid,
}

pub async fn assign(
    db: &impl GenericClient,
    tenant: TenantId,
    id: LeadId,
    update: &LeadUpdate,
) -> AppResult<Lead> {
    let lead = read::find(db, tenant, id).await?;
    // Only "not found" is the request's fault; a database failure stays what it is.
    let agent = agents::find(db, tenant, AgentId::from_uuid(update.agent_id))
        .await
        .map_err(|err| match err.status {
            StatusCode::NOT_FOUND => AppError::validation("agent_id", "is not one of your agents"),
            _ => err,
        })?;
    db.cached_execute(sql::ASSIGN_AGENT, &[&lead.id, tenant.as_uuid(), &agent.id])
        .await?;
    crate::users::mark_stats_changed(db, tenant).await?;
    read::find(db, tenant, id).await
}

pub mod sql {
    /// A lead from a touch's twelve parameters, with a new id or the one `$id` finds, and
    /// ElevenLabs' visitor id `$12` as given or `guarded` (only if no other lead of the tenant
    /// holds it: one per tenant, and the caller holds the tenant's lock).
    macro_rules! insert_lead {
        ($id:literal) => {
            insert_lead!($id, "$12")
        };
        ($id:literal, guarded) => {
            insert_lead!($id, "CASE WHEN NOT EXISTS (SELECT FROM leads held
                WHERE held.user_id = $1 AND held.elevenlabs_user_id = $12) THEN $12 END")
        };
        ($id:literal, $user:literal) => {
            concat!("INSERT INTO leads (id, user_id, phone_number, name, email, company, contact_id, agent_id,
                    total_score, lead_status_tag, interaction_count, last_contact_at, elevenlabs_user_id)
                VALUES (", $id, ", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, ", $user, ") ")
        };
    }

    /// How a touch updates the lead it found: known details are kept, missing ones filled in,
    /// but a contact other than the lead's (its contact deleted, another one made for the
    /// number) brings its own; scores follow the most recent contact.
    macro_rules! merged_lead {
        () => {
            concat!(
                "name = ", detail_of_contact!("name"), ",
                email = ", detail_of_contact!("email"), ",
                company = ", detail_of_contact!("company"), ",
                contact_id = COALESCE(EXCLUDED.contact_id, leads.contact_id),
                agent_id = COALESCE(leads.agent_id, EXCLUDED.agent_id),
                elevenlabs_user_id = COALESCE(leads.elevenlabs_user_id, EXCLUDED.elevenlabs_user_id),
                total_score = CASE WHEN EXCLUDED.total_score IS NOT NULL
                    AND EXCLUDED.last_contact_at >= COALESCE(leads.last_contact_at, '-infinity')
                    THEN EXCLUDED.total_score ELSE leads.total_score END,
                lead_status_tag = CASE WHEN EXCLUDED.lead_status_tag IS NOT NULL
                    AND EXCLUDED.last_contact_at >= COALESCE(leads.last_contact_at, '-infinity')
                    THEN EXCLUDED.lead_status_tag ELSE leads.lead_status_tag END,
                interaction_count = leads.interaction_count + EXCLUDED.interaction_count,
                last_contact_at = GREATEST(leads.last_contact_at, EXCLUDED.last_contact_at),
                updated_at = now()"
            )
        };
    }

    /// A detail of the lead: the touch's when it brings a contact other than the lead's, else
    /// the one known, else the touch's.
    macro_rules! detail_of_contact {
        ($column:literal) => {
            concat!(
                "CASE WHEN EXCLUDED.contact_id IS NOT NULL AND EXCLUDED.contact_id IS DISTINCT FROM leads.contact_id
                    THEN COALESCE(EXCLUDED.", $column, ", leads.", $column, ")
                    ELSE COALESCE(leads.", $column, ", EXCLUDED.", $column, ") END"
            )
        };
    }

    crate::db::statements! {
        pub const UPSERT_BY_PHONE = concat!(insert_lead!("gen_random_uuid()", guarded),
            "ON CONFLICT (user_id, phone_number) WHERE phone_number IS NOT NULL DO UPDATE SET ",
            merged_lead!(), " RETURNING id");
        pub const UPSERT_BY_EMAIL = concat!(
            insert_lead!("coalesce((SELECT id FROM leads WHERE user_id = $1 AND lower(email) = lower($4)
                ORDER BY last_contact_at DESC NULLS LAST, id LIMIT 1), gen_random_uuid())", guarded),
            "ON CONFLICT (id) DO UPDATE SET ", merged_lead!(), " RETURNING id");
        pub const UPSERT_BY_ELEVENLABS_USER = concat!(insert_lead!("gen_random_uuid()"),
            "ON CONFLICT (user_id, elevenlabs_user_id) WHERE elevenlabs_user_id IS NOT NULL DO UPDATE SET ",
            merged_lead!(), " RETURNING id");
        /// A touch of the lead `$13` (the upserts' twelve values, named as their conflict
        /// clause names them); nothing when it is gone.
        pub const TOUCH_LINKED = concat!("UPDATE leads SET ", merged_lead!(), "
            FROM (VALUES ($2::text, $3::text, $4::text, $5::text, $6::uuid, $7::uuid, $8::integer,
                    $9::text, $10::integer, $11::timestamptz, $12::text))
                AS excluded (phone_number, name, email, company, contact_id, agent_id, total_score,
                    lead_status_tag, interaction_count, last_contact_at, elevenlabs_user_id)
            WHERE leads.id = $13 AND leads.user_id = $1
            RETURNING leads.id");
        pub const APPLY_SCORES_UNLESS_NEWER = "UPDATE leads SET total_score = $2, lead_status_tag = $3, updated_at = now()
            WHERE id = $1 AND COALESCE(last_contact_at, '-infinity') <= $4";
        pub const ASSIGN_AGENT =
            "UPDATE leads SET agent_id = $3, updated_at = now() WHERE id = $1 AND user_id = $2";
    }
}
