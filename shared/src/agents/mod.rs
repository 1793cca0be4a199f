//! Agents. ElevenLabs holds their configuration (prompt, voice, language); we hold which tenant
//! owns which ElevenLabs agent, its type, its phone line and whether it is active. Every query
//! here is scoped by the tenant, so another tenant's id is simply not found.

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

/// `POST /api/agents`. design.md's Agent model has only `name` of these: a form that sends
/// just that gets a call agent with [`default_prompt`] and the platform's voice and language.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAgent {
    /// 1 to 100 characters.
    pub name: String,
    /// `call` (the default) or `chat`.
    #[serde(rename = "type", default)]
    pub kind: AgentType,
    /// The agent's instructions (up to 20,000 characters); when absent, a general assistant's
    /// (see the README). Given but blank is refused.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// What the agent says first (up to 1,000 characters); the caller speaks first when empty.
    #[serde(default)]
    pub first_message: Option<String>,
    /// An ElevenLabs voice id; the platform default when absent.
    #[serde(default)]
    pub voice_id: Option<String>,
    /// ISO 639-1 code such as `en` or `pt-br`; the platform default when absent.
    #[serde(default)]
    pub language: Option<String>,
    /// The ElevenLabs phone number id to call from; the workspace's first outbound line when
    /// absent (call agents only).
    #[serde(default)]
    pub phone_number_id: Option<String>,
}

/// `PUT /api/agents/{id}`: every field optional; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AgentUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub first_message: Option<String>,
    #[serde(default)]
    pub voice_id: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub phone_number_id: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    /// Refused: an agent keeps its type.
    #[serde(default, rename = "type")]
    pub kind: Option<AgentType>,
}

impl AgentUpdate {
    /// The fields this update sets (for the audit log; values may be long or personal).
    pub fn field_names(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("system_prompt", self.system_prompt.is_some()),
            ("first_message", self.first_message.is_some()),
            ("voice_id", self.voice_id.is_some()),
            ("language", self.language.is_some()),
            ("phone_number_id", self.phone_number_id.is_some()),
            ("is_active", self.is_active.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A new agent's settings after validation and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub name: String,
    pub kind: AgentType,
    pub system_prompt: String,
    pub first_message: Option<String>,
    pub voice_id: String,
    pub language: String,
    pub llm: String,
}

impl NewAgent {
    pub fn validate(&self, state: &AppState) -> AppResult<AgentSpec> {
        let defaults = &state.config().agent_defaults;
        let name = text::line("name", &self.name, MAX_NAME_CHARS)?;
        let system_prompt = match &self.system_prompt {
            Some(prompt) => text::optional_block("system_prompt", Some(prompt), MAX_PROMPT_CHARS)?
                .ok_or_else(|| AppError::validation("system_prompt", "must not be empty"))?,
            None => default_prompt(&name, self.kind),
        };
        Ok(AgentSpec {
            name,
            kind: self.kind,
            system_prompt,
            first_message: text::optional_block(
                "first_message",
                self.first_message.as_deref(),
                MAX_FIRST_MESSAGE_CHARS,
            )?,
            voice_id: remote_id("voice_id", self.voice_id.as_deref())?
                .unwrap_or_else(|| defaults.voice_id.clone()),
            language: language(self.language.as_deref())?
                .unwrap_or_else(|| defaults.language.clone()),
            llm: defaults.llm.clone(),
        })
    }
}

/// An id we pass on to ElevenLabs (voice, phone number): a short token of safe characters.
fn remote_id(field: &str, raw: Option<&str>) -> AppResult<Option<String>> {
    let Some(id) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let safe = id.len() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !safe {
        return Err(AppError::validation(
            field,
            "must be an ElevenLabs id (letters, digits, '_' and '-')",
        ));
    }
    Ok(Some(id.to_owned()))
}

/// `en`, `pt-br`, `zh`: a language code, lowercased.
fn language(raw: Option<&str>) -> AppResult<Option<String>> {
    let Some(code) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let code = code.to_ascii_lowercase();
    let (base, region) = match code.split_once('-') {
        Some((base, region)) => (base, Some(region)),
        None => (code.as_str(), None),
    };
    let letters = |s: &str, range: std::ops::RangeInclusive<usize>| {
        range.contains(&s.len()) && s.chars().all(|c| c.is_ascii_lowercase())
    };
    if letters(base, 2..=3) && region.is_none_or(|r| letters(r, 2..=4)) {
        Ok(Some(code))
    } else {
        Err(AppError::validation(
            "language",
            "must be a language code such as en or pt-br",
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes() {
        assert_eq!(language(Some("EN")).expect("ok").as_deref(), Some("en"));
        assert_eq!(
            language(Some("pt-BR")).expect("ok").as_deref(),
            Some("pt-br")
        );
        assert_eq!(language(None).expect("ok"), None);
        for bad in ["english", "e", "en_us", "en-", "12", "en-usa-x"] {
            assert!(language(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_ids_cannot_smuggle_paths() {
        assert_eq!(
            remote_id("voice_id", Some(" JBFqnCBsd6RMkjVDRZzb "))
                .expect("ok")
                .as_deref(),
            Some("JBFqnCBsd6RMkjVDRZzb")
        );
        for bad in ["../x", "a b", "a/b", "a?b", &"x".repeat(101)] {
            assert!(remote_id("voice_id", Some(bad)).is_err(), "{bad}");
        }
    }
}
