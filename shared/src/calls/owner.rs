//! Whose a webhook's agent or conversation is: the tenant and local agent an event applies to.

use crate::db::statements::Cached;
use std::{
    collections::HashMap,
    sync::{LazyLock, PoisonError, RwLock},
};

use deadpool_postgres::GenericClient;

use super::event::AgentOwner;
use crate::{error::AppResult, tenant::TenantId};

fn agent_owner(row: &tokio_postgres::Row) -> AppResult<AgentOwner> {
    Ok(AgentOwner {
        agent_id: row.try_get("id")?,
        tenant: TenantId::from_trusted(row.try_get("user_id")?),
        is_chat: row.try_get::<_, &str>("type")? == "chat",
    })
}

/// The local agent an ElevenLabs agent id belongs to (soft-deleted ones too).
///
/// The answer never changes once found (agents are only soft-deleted, and their ElevenLabs id
/// is never re-pointed), so the process remembers it and later events skip the query. Agents
/// not found are asked again: they may be created meanwhile.
pub async fn of_agent(
    client: &impl GenericClient,
    elevenlabs_agent_id: &str,
) -> AppResult<Option<AgentOwner>> {
    static KNOWN: LazyLock<RwLock<HashMap<String, AgentOwner>>> = LazyLock::new(RwLock::default);
    const REMEMBERED: usize = 10_000;
    if let Some(owner) = KNOWN
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(elevenlabs_agent_id)
    {
        return Ok(Some(owner.clone()));
    }
    let owner = owner(client, sql::OF_AGENT, elevenlabs_agent_id).await?;
    if let Some(owner) = &owner {
        let mut known = KNOWN.write().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= REMEMBERED {
            known.clear();
        }
        known.insert(elevenlabs_agent_id.to_owned(), owner.clone());
    }
    Ok(owner)
}

/// The owner of the agent a recorded conversation belongs to.
pub async fn of_conversation(
    client: &impl GenericClient,
    conversation_id: &str,
) -> AppResult<Option<AgentOwner>> {
    owner(client, sql::OF_CONVERSATION, conversation_id).await
}

/// The agent owner a statement selecting one agent's `id`, `user_id` and `type` by `key` finds.
async fn owner(
    client: &impl GenericClient,
    statement: &str,
    key: &str,
) -> AppResult<Option<AgentOwner>> {
    client
        .cached_query_opt(statement, &[&key])
        .await?
        .as_ref()
        .map(agent_owner)
        .transpose()
}

pub mod sql {
    crate::db::statements! {
        pub const OF_AGENT =
            "SELECT id, user_id, type FROM agents WHERE elevenlabs_agent_id = $1";
        pub const OF_CONVERSATION = "SELECT a.id, a.user_id, a.type FROM calls c JOIN agents a ON a.id = c.agent_id
            WHERE c.elevenlabs_conversation_id = $1";
    }
}
