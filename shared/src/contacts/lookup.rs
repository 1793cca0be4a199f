//! Who is calling, for an agent about to answer: the caller's contact among the agent owner's
//! contacts only, as the dynamic variables the agent's prompt can use.

use crate::db::statements::Cached;
use deadpool_postgres::GenericClient;
use serde::Serialize;
use utoipa::ToSchema;

use super::Contact;
use crate::{error::AppResult, phone, tenant::TenantId, AppState};

/// The caller's dynamic variables. Every one is always present (empty when unknown), because
/// ElevenLabs needs a value for each variable the agent uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct CallerVariables {
    pub customer_name: String,
    pub customer_company: String,
    pub customer_notes: String,
    pub customer_email: String,
    /// E.164 when it parses.
    pub customer_phone: String,
    pub contact_found: bool,
    /// `customer_company` by the name outbound calls first gave it.
    pub company: String,
    /// The contact's id; empty when there is none.
    pub contact_id: String,
    /// The agent's owner; empty when the agent is not known.
    pub tenant_id: String,
}

impl CallerVariables {
    /// The variables of the person at `number` for `tenant`'s agent: `contact`'s details when
    /// it is known.
    pub fn of(tenant: Option<TenantId>, contact: Option<&Contact>, number: Option<&str>) -> Self {
        let text = |field: fn(&Contact) -> Option<&str>| {
            contact.and_then(field).unwrap_or_default().to_owned()
        };
        let company = text(|c| c.company.as_deref());
        Self {
            customer_name: text(|c| Some(&c.name)),
            customer_company: company.clone(),
            customer_notes: text(|c| c.notes.as_deref()),
            customer_email: text(|c| c.email.as_deref()),
            customer_phone: number.unwrap_or_default().to_owned(),
            contact_found: contact.is_some(),
            company,
            contact_id: contact.map(|c| c.id.to_string()).unwrap_or_default(),
            tenant_id: tenant.map(|t| t.as_uuid().to_string()).unwrap_or_default(),
        }
    }
}

/// The caller's contact among the owner's of `elevenlabs_agent_id`, as dynamic variables.
pub async fn caller_variables(
    state: &AppState,
    elevenlabs_agent_id: &str,
    caller: &str,
) -> AppResult<CallerVariables> {
    let region = state.settings().await?.phone_region();
    // No user lookup to share the connection's liveness check with: the lookup itself does,
    // one round trip instead of two while the caller hears ringing. Safe to run twice.
    let (_, variables) = state
        .db()
        .get_with_first(
            &(region, elevenlabs_agent_id, caller),
            |db, (region, agent, caller)| Box::pin(caller_in(&*db, *region, agent, caller)),
        )
        .await?;
    Ok(variables)
}

/// [`caller_variables`] with its connection and the platform's phone region (a setting).
pub async fn caller_in(
    db: &impl GenericClient,
    region: phonenumber::country::Id,
    elevenlabs_agent_id: &str,
    caller: &str,
) -> AppResult<CallerVariables> {
    let written = phone::e164(caller, region);
    let row = db
        .cached_query_opt(sql::CALLER_CONTACT, &[&elevenlabs_agent_id, &written])
        .await?;
    let (tenant, contact) = match &row {
        Some(row) => (
            Some(TenantId::from_trusted(row.try_get("tenant_id")?)),
            // No contact at the number: its columns are NULL.
            row.try_get::<_, Option<uuid::Uuid>>("id")?
                .map(|_| Contact::try_from(row))
                .transpose()?,
        ),
        None => (None, None),
    };
    // Contacts are stored valid, so only an unknown caller's number is validated (after the
    // round trip, not before it), and an invalid one is not echoed.
    let number = if contact.is_some() {
        written
    } else {
        written.filter(|written| phone::normalize(written, region).is_some())
    };
    Ok(CallerVariables::of(
        tenant,
        contact.as_ref(),
        number.as_deref(),
    ))
}

pub mod sql {
    crate::db::statements! {
        /// The agent's owner, and its contact at the number if it has one.
        pub const CALLER_CONTACT = "SELECT a.user_id AS tenant_id, c.id, c.user_id, c.name,
                c.phone_number, c.email, c.company, c.notes, c.created_at, c.updated_at
            FROM agents a
            LEFT JOIN contacts c
                ON c.user_id = a.user_id AND c.phone_number = $2 AND c.deleted_at IS NULL
            WHERE a.elevenlabs_agent_id = $1";
    }
}
