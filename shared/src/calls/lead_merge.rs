//! Merging two leads of a tenant into one. It moves calls between leads, so it lives with the
//! calls' owner rather than in `leads` (which `calls` builds on).

use crate::db::statements::Cached;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::lifecycle;
use crate::{
    error::{AppError, AppResult},
    ids::LeadId,
    leads::read::{find, Lead},
    tenant::TenantId,
    users,
};

/// `POST /api/leads/{id}/merge`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MergeRequest {
    /// The lead folded into this one; it is deleted, its calls move here.
    pub duplicate_id: Uuid,
}

/// Folds the duplicate into the lead: its calls move over, interaction counts add up, missing
/// details are filled in (ElevenLabs' id for a chat's visitor too, so their next chat finds
/// the lead), the newest contact's scores win, and the duplicate is deleted.
pub async fn merge(
    db: &mut deadpool_postgres::Client,
    tenant: TenantId,
    id: LeadId,
    request: &MergeRequest,
) -> AppResult<Lead> {
    let keep = find(&*db, tenant, id).await?;
    if keep.id == request.duplicate_id {
        return Err(AppError::validation("duplicate_id", "must be another lead"));
    }
    let tx = db.transaction().await?;
    // The tenant's row first, as call events lock it before their lead.
    users::mark_stats_changed(&tx, tenant).await?;
    // Both rows locked in id order, so two opposite merges cannot deadlock.
    let locked = tx
        .cached_query(
            sql::LOCK_BOTH,
            &[&vec![keep.id, request.duplicate_id], tenant.as_uuid()],
        )
        .await?;
    if locked.len() != 2 {
        return Err(AppError::not_found("lead"));
    }
    lifecycle::move_to_lead(&tx, tenant, request.duplicate_id, keep.id).await?;
    let gone = tx
        .cached_query_one(
            sql::DELETE_DUPLICATE,
            &[&request.duplicate_id, tenant.as_uuid()],
        )
        .await?;
    tx.cached_execute(
        sql::FOLD_INTO_KEPT,
        &[
            &keep.id,
            tenant.as_uuid(),
            &gone.try_get::<_, Option<String>>("phone_number")?,
            &gone.try_get::<_, Option<String>>("name")?,
            &gone.try_get::<_, Option<String>>("email")?,
            &gone.try_get::<_, Option<String>>("company")?,
            &gone.try_get::<_, Option<Uuid>>("contact_id")?,
            &gone.try_get::<_, Option<Uuid>>("agent_id")?,
            &gone.try_get::<_, Option<DateTime<Utc>>>("last_contact_at")?,
            &gone.try_get::<_, Option<i32>>("total_score")?,
            &gone.try_get::<_, Option<String>>("lead_status_tag")?,
            &gone.try_get::<_, i32>("interaction_count")?,
            &gone.try_get::<_, Option<String>>("elevenlabs_user_id")?,
        ],
    )
    .await?;
    tx.commit().await?;
    find(&*db, tenant, id).await
}

pub mod sql {
    crate::db::statements! {
        pub const LOCK_BOTH =
            "SELECT id FROM leads WHERE id = ANY($1) AND user_id = $2 ORDER BY id FOR UPDATE";
        /// What the kept lead takes from the duplicate.
        pub const DELETE_DUPLICATE = "DELETE FROM leads WHERE id = $1 AND user_id = $2
            RETURNING phone_number, name, email, company, contact_id, agent_id, last_contact_at,
                total_score, lead_status_tag, interaction_count, elevenlabs_user_id";
        pub const FOLD_INTO_KEPT = "UPDATE leads SET
            phone_number = coalesce(phone_number, $3), name = coalesce(name, $4),
            email = coalesce(email, $5), company = coalesce(company, $6),
            contact_id = coalesce(contact_id, $7), agent_id = coalesce(agent_id, $8),
            elevenlabs_user_id = coalesce(elevenlabs_user_id, $13),
            total_score = CASE WHEN $9::timestamptz > coalesce(last_contact_at, '-infinity') AND $10::int IS NOT NULL
                               THEN $10 ELSE total_score END,
            lead_status_tag = CASE WHEN $9::timestamptz > coalesce(last_contact_at, '-infinity') AND $11::text IS NOT NULL
                               THEN $11 ELSE lead_status_tag END,
            interaction_count = interaction_count + $12,
            last_contact_at = greatest(last_contact_at, $9),
            updated_at = now()
            WHERE id = $1 AND user_id = $2";
    }
}
