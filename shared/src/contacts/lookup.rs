//! Who is calling, for an agent about to answer: the caller's contact among the agent owner's
//! contacts only, as the dynamic variables the agent's prompt can use.

use crate::db::statements::Cached;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{error::AppResult, phone, AppState};

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
}

/// The caller's contact among the owner's of `elevenlabs_agent_id`, as dynamic variables.
pub async fn caller_variables(
    state: &AppState,
    elevenlabs_agent_id: &str,
    caller: &str,
) -> AppResult<CallerVariables> {
    let number = phone::normalize(caller, state.settings().await?.phone_region());
    let row = match &number {
        Some(number) => {
            state
                .db()
                .get()
                .await?
                .cached_query_opt(sql::CALLER_CONTACT, &[&elevenlabs_agent_id, number])
                .await?
        }
        None => None,
    };
    let text = |column: &str| -> AppResult<String> {
        Ok(match &row {
            Some(row) => row
                .try_get::<_, Option<String>>(column)?
                .unwrap_or_default(),
            None => String::new(),
        })
    };
    Ok(CallerVariables {
        customer_name: text("name")?,
        customer_company: text("company")?,
        customer_notes: text("notes")?,
        customer_email: text("email")?,
        customer_phone: number.unwrap_or_default(),
        contact_found: row.is_some(),
    })
}

pub mod sql {
    crate::db::statements! {
        pub const CALLER_CONTACT = "SELECT c.name, c.company, c.notes, c.email FROM agents a
            JOIN contacts c ON c.user_id = a.user_id AND c.phone_number = $2 AND c.deleted_at IS NULL
            WHERE a.elevenlabs_agent_id = $1";
    }
}
