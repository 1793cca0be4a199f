//! Which of the tenant's agents a dashboard covers: all of them, one agent, or the agents of
//! one type (the CallAgent and ChatAgent pages each have their own analytics tab).

use crate::db::statements::Cached;
use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::sql;
use crate::{
    agents::AgentType,
    error::{AppError, AppResult},
    tenant::TenantId,
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    pub agent_id: Option<Uuid>,
    pub kind: Option<AgentType>,
}

/// The tenant's agents by id, deleted ones included (their calls still count): name and type.
#[derive(Debug, Clone, Default)]
pub struct Agents(BTreeMap<Uuid, (String, AgentType)>);

impl Agents {
    pub async fn of(db: &impl GenericClient, tenant: TenantId) -> AppResult<Self> {
        let rows = db.cached_query(sql::AGENTS, &[tenant.as_uuid()]).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    (
                        row.try_get("name")?,
                        AgentType::from_db(row.try_get("type")?),
                    ),
                ))
            })
            .collect::<AppResult<_>>()
            .map(Self)
    }

    pub fn name(&self, agent: Uuid) -> String {
        self.0
            .get(&agent)
            .map(|(name, _)| name.clone())
            .unwrap_or_default()
    }

    pub fn kind(&self, agent: Uuid) -> Option<AgentType> {
        self.0.get(&agent).map(|(_, kind)| *kind)
    }
}

impl Scope {
    /// The scope's agent, when it names one, must be one of the tenant's.
    pub fn check(&self, agents: &Agents) -> AppResult<()> {
        match self.agent_id {
            Some(agent) if agents.kind(agent).is_none() => Err(AppError::not_found("agent")),
            _ => Ok(()),
        }
    }

    /// The agents in scope; `None` when that is all of them.
    pub fn agent_ids(&self, agents: &Agents) -> Option<Vec<Uuid>> {
        (*self != Scope::default()).then(|| {
            agents
                .0
                .keys()
                .copied()
                .filter(|agent| self.covers(agents, *agent))
                .collect()
        })
    }

    pub fn covers(&self, agents: &Agents, agent: Uuid) -> bool {
        self.agent_id.is_none_or(|wanted| wanted == agent)
            && self
                .kind
                .is_none_or(|kind| agents.kind(agent) == Some(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_their_agents_only() {
        let (call, chat) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let agents = Agents(BTreeMap::from([
            (call, ("c".into(), AgentType::Call)),
            (chat, ("h".into(), AgentType::Chat)),
        ]));
        let all = Scope::default();
        assert!(all.covers(&agents, call) && all.covers(&agents, chat));
        let chats = Scope {
            kind: Some(AgentType::Chat),
            ..Scope::default()
        };
        assert!(!chats.covers(&agents, call) && chats.covers(&agents, chat));
        let one = Scope {
            agent_id: Some(call),
            kind: None,
        };
        assert!(one.covers(&agents, call) && !one.covers(&agents, chat));
        let mismatched = Scope {
            agent_id: Some(call),
            kind: Some(AgentType::Chat),
        };
        assert!(!mismatched.covers(&agents, call));
        assert!(one.check(&agents).is_ok());
        let stranger = Scope {
            agent_id: Some(Uuid::from_u128(3)),
            kind: None,
        };
        assert!(stranger.check(&agents).is_err());
    }
}
