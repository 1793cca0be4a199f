//! Who is calling, for an agent about to answer: the caller's contact among the agent owner's
//! contacts only, as the dynamic variables the agent's prompt can use.

use crate::db::statements::Cached;
use serde_json::{Map, Value};

use crate::{error::AppResult, phone, AppState};

/// `customer_name`, `customer_company`, `customer_notes`, `customer_email` (empty when
/// unknown), `customer_phone` (E.164 when it parses) and `contact_found`.
pub async fn caller_variables(
    state: &AppState,
    elevenlabs_agent_id: &str,
    caller: &str,
) -> AppResult<Map<String, Value>> {
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
    let mut vars = Map::new();
    for (variable, column) in [
        ("customer_name", "name"),
        ("customer_company", "company"),
        ("customer_notes", "notes"),
        ("customer_email", "email"),
    ] {
        let value = match &row {
            Some(row) => row.try_get::<_, Option<String>>(column)?,
            None => None,
        };
        vars.insert(variable.into(), Value::String(value.unwrap_or_default()));
    }
    vars.insert(
        "customer_phone".into(),
        Value::String(number.unwrap_or_default()),
    );
    vars.insert("contact_found".into(), Value::Bool(row.is_some()));
    Ok(vars)
}

pub mod sql {
    crate::db::statements! {
        pub const CALLER_CONTACT = "SELECT c.name, c.company, c.notes, c.email FROM agents a
            JOIN contacts c ON c.user_id = a.user_id AND c.phone_number = $2 AND c.deleted_at IS NULL
            WHERE a.elevenlabs_agent_id = $1";
    }
}
