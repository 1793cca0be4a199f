//! Agents. ElevenLabs holds their configuration (prompt, voice, language); we hold which tenant
//! owns which ElevenLabs agent, its type, its phone line and whether it is active. Every query
//! here is scoped by the tenant, so another tenant's id is simply not found.

mod input;
mod remote;
pub mod sql;

use crate::db::filter::{Filter, Keyset, Search, Total};
use crate::db::statements::Cached;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    clients::elevenlabs::ElevenLabs,
    error::{AppError, AppResult},
    ids::AgentId,
    tenant::TenantId,
    text, AppState,
};

use input::remote_id;
pub use input::{AgentSpec, AgentUpdate, NewAgent};
pub use remote::{
    conversation_config, default_prompt, platform_settings, AgentConfig, DATA_COLLECTION,
};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_PROMPT_CHARS: usize = 20_000;
pub const MAX_FIRST_MESSAGE_CHARS: usize = 1_000;
const MAX_ID_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentType {
    /// Voice calls over the phone (what an agent is when its type is not given).
    #[default]
    Call,
    /// Text only.
    Chat,
}

impl AgentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Chat => "chat",
        }
    }

    pub(crate) fn from_db(raw: &str) -> Self {
        if raw == "chat" {
            Self::Chat
        } else {
            Self::Call
        }
    }
}

/// What ElevenLabs could tell us about the agent when we asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemoteStatus {
    Ok,
    /// ElevenLabs no longer has the agent.
    Missing,
    /// ElevenLabs did not answer; `config` is null this time.
    Unavailable,
}

/// The design's Agent model, plus its type, line and the configuration ElevenLabs holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Agent {
    pub id: Uuid,
    pub user_id: Uuid,
    pub elevenlabs_agent_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AgentType,
    pub is_active: bool,
    /// An administrator deactivated it: only an administrator can activate it again.
    pub deactivated_by_admin: bool,
    /// The ElevenLabs phone number id outbound calls are placed from (call agents).
    pub phone_number_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// From ElevenLabs; null when it could not be read.
    pub config: Option<AgentConfig>,
    pub remote_status: RemoteStatus,
}

impl TryFrom<&Row> for Agent {
    type Error = AppError;

    fn try_from(row: &Row) -> AppResult<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            elevenlabs_agent_id: row.try_get("elevenlabs_agent_id")?,
            name: row.try_get("name")?,
            kind: AgentType::from_db(row.try_get("type")?),
            is_active: row.try_get("is_active")?,
            deactivated_by_admin: row.try_get("deactivated_by_admin")?,
            phone_number_id: row.try_get("phone_number_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            config: None,
            remote_status: RemoteStatus::Unavailable,
        })
    }
}

impl Agent {
    /// Fills in what ElevenLabs holds; a failure is shown on the agent, not raised.
    async fn with_remote(mut self, client: Option<&ElevenLabs>) -> Self {
        let Some(client) = client else {
            return self;
        };
        match client.get_agent(&self.elevenlabs_agent_id).await {
            Ok(remote) => {
                self.config = Some(AgentConfig::from_remote(&remote));
                self.remote_status = RemoteStatus::Ok;
            }
            Err(err) if err.is_not_found() => self.remote_status = RemoteStatus::Missing,
            Err(err) => {
                tracing::warn!(error = %err, agent = %self.id, "could not read the agent from ElevenLabs");
            }
        }
        self
    }
}

/// Creates the agent on ElevenLabs, then our row. If our write fails the remote agent is
/// deleted again, so no agent exists that no tenant owns.
pub async fn create(state: &AppState, tenant: TenantId, request: &NewAgent) -> AppResult<Agent> {
    let spec = request.validate(state)?;
    let limit = state.settings().await?.max_agents_per_tenant;
    // Checked before anything is created remotely, and again exactly when the row is written.
    let count: i64 = state
        .db()
        .get()
        .await?
        .cached_query_one(sql::LIVE_COUNT, &[tenant.as_uuid()])
        .await?
        .try_get(0)?;
    if count >= limit {
        return Err(agent_limit(limit));
    }
    let client = state.elevenlabs().await?;
    let phone_number_id = match spec.kind {
        AgentType::Chat => None,
        AgentType::Call => {
            let wanted = remote_id("phone_number_id", request.phone_number_id.as_deref())?;
            remote::outbound_line(&client, wanted).await?
        }
    };
    let body = serde_json::json!({
        "name": spec.name,
        "conversation_config": conversation_config(&spec),
        "platform_settings": platform_settings(&serde_json::Value::Null),
        "tags": [format!("tenant:{}", tenant.as_uuid())],
    });
    let remote_id = client
        .create_agent(&body)
        .await
        .map_err(remote::settings_refused)?;
    let inserted = insert(
        state,
        tenant,
        &remote_id,
        &spec,
        phone_number_id.as_deref(),
        limit,
    )
    .await;
    match inserted {
        Ok(agent) => Ok(agent.with_remote(Some(&client)).await),
        Err(err) => {
            if let Err(cleanup) = client.delete_agent(&remote_id).await {
                tracing::error!(error = %cleanup, remote_id, "could not delete an orphaned ElevenLabs agent");
            }
            Err(err)
        }
    }
}

async fn insert(
    state: &AppState,
    tenant: TenantId,
    remote_id: &str,
    spec: &AgentSpec,
    phone_number_id: Option<&str>,
    limit: i64,
) -> AppResult<Agent> {
    let mut db = state.db().get().await?;
    let tx = db.transaction().await?;
    // Concurrent creations of one tenant take turns, so the limit is exact.
    tx.cached_execute(sql::LOCK_TENANT_AGENTS, &[tenant.as_uuid()])
        .await?;
    let row = tx
        .cached_query_opt(
            sql::INSERT_WITHIN_LIMIT,
            &[
                tenant.as_uuid(),
                &remote_id,
                &spec.name,
                &spec.kind.as_str(),
                &phone_number_id,
                &limit,
            ],
        )
        .await?
        .ok_or_else(|| agent_limit(limit))?;
    tx.commit().await?;
    Agent::try_from(&row)
}

fn agent_limit(limit: i64) -> AppError {
    AppError::forbidden(
        "agent_limit_reached",
        format!("an account may have at most {limit} agents; delete one or ask an administrator"),
    )
    .with_details(serde_json::json!({ "limit": limit }))
}

/// One of the tenant's agents (not deleted); 404 for anything else.
pub async fn find(client: &impl GenericClient, tenant: TenantId, id: AgentId) -> AppResult<Agent> {
    client
        .cached_query_opt(sql::ONE_OF_TENANT, &[&id, tenant.as_uuid()])
        .await?
        .map(|row| Agent::try_from(&row))
        .transpose()?
        .ok_or_else(|| AppError::not_found("agent"))
}

/// The tenant an agent (not deleted) belongs to: how the admin reaches any tenant's agent.
pub async fn owner(client: &impl GenericClient, id: AgentId) -> AppResult<TenantId> {
    client
        .cached_query_opt(sql::OWNER, &[&id])
        .await?
        .map(|row| row.try_get(0).map(TenantId::from_trusted))
        .transpose()?
        .ok_or_else(|| AppError::not_found("agent"))
}

/// Checks that `id` is one of the tenant's agents, deleted ones included (their calls stay).
pub async fn find_any(client: &impl GenericClient, tenant: TenantId, id: Uuid) -> AppResult<()> {
    client
        .cached_query_opt(sql::EXISTS_FOR_TENANT, &[&id, tenant.as_uuid()])
        .await?
        .map(drop)
        .ok_or_else(|| AppError::not_found("agent"))
}

/// Every ElevenLabs agent id we have a tenant for, deleted agents included: a call placed
/// before the delete still belongs to its tenant.
pub async fn remote_ids(
    client: &impl GenericClient,
) -> AppResult<std::collections::HashSet<String>> {
    client
        .cached_query(sql::ALL_REMOTE_IDS, &[])
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

/// The agent with its ElevenLabs configuration.
pub async fn get(state: &AppState, tenant: TenantId, id: AgentId) -> AppResult<Agent> {
    let agent = find(&state.db().get().await?, tenant, id).await?;
    let client = state.elevenlabs().await.ok();
    Ok(agent.with_remote(client.as_ref()).await)
}

/// The agent's configuration as ElevenLabs holds it, reduced to what the tenant configures
/// (see [`remote::tenant_view`]).
pub async fn remote_config(
    state: &AppState,
    tenant: TenantId,
    id: AgentId,
) -> AppResult<serde_json::Value> {
    let agent = find(&state.db().get().await?, tenant, id).await?;
    let client = state.elevenlabs().await?;
    match client.get_agent(&agent.elevenlabs_agent_id).await {
        Ok(remote) => Ok(remote::tenant_view(&remote)),
        Err(err) if err.is_not_found() => Err(AppError::not_found("agent configuration")),
        Err(err) => Err(err.into()),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentFilter {
    /// `call` or `chat`.
    #[serde(rename = "type")]
    pub kind: Option<AgentType>,
    /// Part of the name, case-insensitive.
    #[param(value_type = Option<String>)]
    pub search: Option<Search>,
}

impl AgentFilter {
    /// The tenant's live agents this filter matches.
    fn to_sql(&self, tenant: TenantId) -> Filter {
        let mut filter = Filter::default();
        filter
            .and("user_id = $", vec![Box::new(*tenant.as_uuid())])
            .and("deleted_at IS NULL", vec![])
            .and_some("type = $", self.kind.map(AgentType::as_str))
            .and_containing(&["name"], self.search.as_ref());
        filter
    }
}

/// Newest first.
const NEWEST: Keyset = Keyset::CREATED;

/// A page of the tenant's agents, newest first, each with its ElevenLabs configuration
/// (fetched concurrently; one that fails is marked, the list still answers).
pub async fn list(
    state: &AppState,
    tenant: TenantId,
    filter: &AgentFilter,
    limit: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> AppResult<(Vec<Agent>, Total)> {
    let db = state.db().get().await?;
    let (rows, total) = filter
        .to_sql(tenant)
        .page_with_total(&db, sql::LIST_FROM, sql::LIST_SELECT, &NEWEST, after, limit)
        .await?;
    drop(db);
    let client = state.elevenlabs().await.ok();
    // Bounded: per request, and per tenant across its requests (the quota is the workspace's).
    let agents = rows
        .iter()
        .map(Agent::try_from)
        .collect::<AppResult<Vec<_>>>()?;
    let agents = futures::stream::iter(agents)
        .map(|agent| with_remote_bounded(state, tenant, client.as_ref(), agent))
        .buffered(REMOTE_READS_PER_REQUEST)
        .collect()
        .await;
    Ok((agents, total))
}

/// [`Agent::with_remote`] within the tenant's share of concurrent ElevenLabs reads.
async fn with_remote_bounded(
    state: &AppState,
    tenant: TenantId,
    client: Option<&ElevenLabs>,
    agent: Agent,
) -> Agent {
    let _permit = state.remote_reads().acquire(tenant).await;
    agent.with_remote(client).await
}

/// Who changes an agent: its owner, or an administrator acting on the owner's agent (whose
/// `is_active` decision the owner cannot undo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Editor {
    Owner,
    Admin,
}

/// ElevenLabs reads one agent list may have in flight at once.
pub const REMOTE_READS_PER_REQUEST: usize = 8;

/// Applies the update: ElevenLabs first (read, change, write back whole sub-objects, since
/// whether PATCH deep-merges is not documented), then our row.
pub async fn update(
    state: &AppState,
    tenant: TenantId,
    id: AgentId,
    update: &AgentUpdate,
    editor: Editor,
) -> AppResult<Agent> {
    let mut db = state.db().get().await?;
    let agent = find(&db, tenant, id).await?;
    if editor == Editor::Owner && update.is_active == Some(true) && agent.deactivated_by_admin {
        return Err(AppError::forbidden(
            "agent_deactivated_by_admin",
            "an administrator deactivated this agent; only an administrator can activate it again",
        ));
    }
    if update.kind.is_some_and(|kind| kind != agent.kind) {
        return Err(AppError::validation(
            "type",
            "an agent's type cannot be changed; create a new agent",
        ));
    }
    let changes = remote::Changes::validate(update)?;
    let name = text::optional_line("name", update.name.as_deref(), MAX_NAME_CHARS)?;
    let client = state.elevenlabs().await?;
    let phone_number_id = match (&agent.kind, &update.phone_number_id) {
        (AgentType::Call, Some(raw)) => {
            let wanted = remote_id("phone_number_id", Some(raw))?;
            remote::outbound_line(&client, wanted).await?
        }
        // Not sent: the line stays as stored, whatever a concurrent change made it.
        _ => None,
    };
    let tx = db.transaction().await?;
    if name.is_some() || !changes.is_empty() {
        // ElevenLabs takes an agent's settings whole: another change of them waits here, so
        // that it reads what this one wrote instead of writing back what this one replaced.
        tx.cached_execute(sql::LOCK_AGENT_SETTINGS, &[&agent.id])
            .await?;
        remote::apply(
            &client,
            &agent.elevenlabs_agent_id,
            name.as_deref(),
            &changes,
        )
        .await?;
    }
    let row = tx
        .cached_query_opt(
            sql::UPDATE,
            &[
                &agent.id,
                tenant.as_uuid(),
                &name,
                &phone_number_id,
                &update.is_active,
                &(editor == Editor::Admin),
            ],
        )
        .await?
        .ok_or_else(|| AppError::not_found("agent"))?;
    tx.commit().await?;
    crate::users::mark_stats_changed(&db, tenant).await?;
    Ok(Agent::try_from(&row)?.with_remote(Some(&client)).await)
}

/// Deletes the agent on ElevenLabs, then marks ours deleted: its calls keep their agent.
pub async fn delete(state: &AppState, tenant: TenantId, id: AgentId) -> AppResult<()> {
    let agent = find(&state.db().get().await?, tenant, id).await?;
    state
        .elevenlabs()
        .await?
        .delete_agent(&agent.elevenlabs_agent_id)
        .await?;
    state
        .db()
        .get()
        .await?
        .cached_execute(sql::SOFT_DELETE, &[&agent.id, tenant.as_uuid()])
        .await?;
    crate::users::mark_stats_changed(&state.db().get().await?, tenant).await?;
    Ok(())
}
