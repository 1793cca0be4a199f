//! The agents' statements (see `crate::db::statements`).

use super::{AgentFilter, AgentType, TenantId, NEWEST};
use crate::db::filter::{Filter, Search};
use uuid::Uuid;

/// The columns `Agent::try_from` reads, named: a statement answering `*` would fail on
/// connections that prepared it before a deploy added a column.
macro_rules! agent_columns {
    () => {
        "id, user_id, elevenlabs_agent_id, name, type, phone_number_id, is_active, deleted_at,
        created_at, updated_at, deactivated_by_admin"
    };
}

pub const LIST_FROM: &str = "agents";
pub const LIST_SELECT: &str = concat!("SELECT ", agent_columns!(), " FROM agents");

crate::db::statements! {
    pub const LIVE_COUNT = "SELECT count(*) FROM agents WHERE user_id = $1 AND deleted_at IS NULL";
    /// Taken while an agent's settings are read from and written back to ElevenLabs.
    pub const LOCK_AGENT_SETTINGS = "SELECT pg_advisory_xact_lock(hashtextextended('agent-settings:' || $1::uuid::text, 0))";
    pub const LOCK_TENANT_AGENTS = "SELECT pg_advisory_xact_lock(hashtextextended('agents:' || $1::uuid::text, 0))";
    pub const INSERT_WITHIN_LIMIT = concat!("INSERT INTO agents (user_id, elevenlabs_agent_id, name, type, phone_number_id)
        SELECT $1, $2, $3, $4, $5
        WHERE (SELECT count(*) FROM agents WHERE user_id = $1 AND deleted_at IS NULL) < $6
        RETURNING ", agent_columns!());
    pub const ONE_OF_TENANT = concat!("SELECT ", agent_columns!(),
        " FROM agents WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL");
    pub const OWNER = "SELECT user_id FROM agents WHERE id = $1 AND deleted_at IS NULL";
    pub const EXISTS_FOR_TENANT = "SELECT 1 FROM agents WHERE id = $1 AND user_id = $2";
    /// $6: an administrator's change. The owner's never activates an agent an administrator
    /// deactivated: `update` refuses that first, and this holds it when the deactivation
    /// commits while the owner's change is on its way through ElevenLabs.
    pub const UPDATE = concat!("UPDATE agents SET name = coalesce($3, name), phone_number_id = coalesce($4, phone_number_id),
        is_active = CASE WHEN deactivated_by_admin AND NOT $6 THEN is_active
            ELSE coalesce($5, is_active) END,
        deactivated_by_admin = CASE WHEN $6 THEN coalesce(NOT $5, deactivated_by_admin)
        ELSE deactivated_by_admin END,
        updated_at = now()
        WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
        RETURNING ", agent_columns!());
    pub const ALL_REMOTE_IDS = "SELECT elevenlabs_agent_id FROM agents";
    pub const SOFT_DELETE = "UPDATE agents SET deleted_at = now(), is_active = false, updated_at = now()
        WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL";
    fullest {
        LIST_TOTAL = || every_filter().total_statement(LIST_FROM),
        LIST_PAGE = || every_filter().page_statement(LIST_SELECT, &NEWEST, true),
    }
}

fn every_filter() -> Filter {
    AgentFilter {
        kind: Some(AgentType::Call),
        search: Some(Search::parse("a").expect("a search")),
    }
    .to_sql(TenantId::from_trusted(Uuid::nil()))
}
