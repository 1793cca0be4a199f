//! Every tenant's agents, for the admin: a list straight from our table (no ElevenLabs calls),
//! and changes that go through the same agent functions as the owner's, then to the audit log.

use crate::db::filter::Total;
use crate::db::statements::PlannedPerRun;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, Actor, Entry};
use crate::{
    agents::{self, Agent, AgentType, AgentUpdate},
    db::filter::{Filter, Keyset, Search},
    error::AppResult,
    ids::AgentId,
    AppState,
};

/// An agent in the admin's list: design.md's Agent model, its type and its owner's email.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub owner_email: Option<String>,
    pub elevenlabs_agent_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AgentType,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub mod sql {
    use super::{matching, Filter, Search, NEWEST};

    /// The rows the agent list counts and pages through.
    pub const LIST_FROM: &str = "agents a";
    pub const LIST_SELECT: &str = "SELECT a.id, a.user_id, u.email, a.elevenlabs_agent_id, a.name, a.type, a.is_active, a.created_at, a.updated_at
            FROM agents a JOIN users u ON u.id = a.user_id";

    crate::db::statements! {
        fullest {
            LIST_TOTAL = || every_filter().total_statement(LIST_FROM),
            LIST_PAGE = || every_filter().page_statement(LIST_SELECT, &NEWEST, true),
        }
    }

    fn every_filter() -> Filter {
        let search = Search::parse("a").expect("a search");
        matching(Some(uuid::Uuid::nil()), Some(&search))
    }
}

const NEWEST: Keyset = Keyset {
    time: "a.created_at",
    id: "a.id",
};

/// Newest first; the cursor is the last row's (created_at, id).
pub async fn list(
    client: &impl PlannedPerRun,
    user: Option<Uuid>,
    search: Option<&Search>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> AppResult<(Vec<AgentRow>, Total)> {
    let matching = matching(user, search);
    let (rows, total) = matching
        .page_with_total(
            client,
            sql::LIST_FROM,
            sql::LIST_SELECT,
            &NEWEST,
            after,
            limit,
        )
        .await?;
    let agents = rows
        .iter()
        .map(|row| {
            Ok(AgentRow {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                owner_email: row.try_get("email")?,
                elevenlabs_agent_id: row.try_get("elevenlabs_agent_id")?,
                name: row.try_get("name")?,
                kind: AgentType::from_db(row.try_get("type")?),
                is_active: row.try_get("is_active")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect::<AppResult<_>>()?;
    Ok((agents, total))
}

fn matching(user: Option<Uuid>, search: Option<&Search>) -> Filter {
    let mut matching = Filter::default();
    matching
        .and("a.deleted_at IS NULL", Vec::new())
        .and_some("a.user_id = $", user)
        .and_containing(&["a.name", "a.elevenlabs_agent_id"], search);
    matching
}

/// Any tenant's agent with its ElevenLabs configuration.
pub async fn get(state: &AppState, id: AgentId) -> AppResult<Agent> {
    let owner = agents::owner(&state.db().get().await?, id).await?;
    agents::get(state, owner, id).await
}

/// Changes any tenant's agent as its owner could, and records what was changed.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    id: AgentId,
    change: &AgentUpdate,
    action: &str,
) -> AppResult<Agent> {
    let owner = agents::owner(&state.db().get().await?, id).await?;
    let agent = agents::update(state, owner, id, change, agents::Editor::Admin).await?;
    audit::record(
        &state.db().get().await?,
        actor,
        Entry {
            action,
            target_type: "agent",
            target_id: id.to_string(),
            details: json!({ "owner": owner.as_uuid(), "fields": change.field_names() }),
        },
    )
    .await?;
    Ok(agent)
}
