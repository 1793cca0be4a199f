//! The agents group: `/api/agents` (documented) and the design's `/agents` aliases.

use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use super::{AppJson, AppQuery, Id, ListResponse, Page, PageQuery};
use crate::{
    agents::{self, Agent, AgentFilter, AgentUpdate, NewAgent},
    auth::AuthUser,
    error::{AppResult, ErrorBody},
    http::{routes, Mode},
    ids::AgentId,
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; list_agents, create_agent))
        .routes(routes!(M; get_agent, update_agent, delete_agent))
        .routes(routes!(M; agent_config))
}

#[utoipa::path(get, path = "/api/agents", tag = "agents",
    description = "The tenant's agents, newest first, each with its ElevenLabs configuration. Alias: GET /agents.",
    params(AgentFilter, PageQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<Agent>), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn list_agents(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(filter): AppQuery<AgentFilter>,
    page: Page<(DateTime<Utc>, Uuid)>,
) -> AppResult<Json<ListResponse<Agent>>> {
    let Page { limit, after } = page;
    let (agents, total) = agents::list(&state, auth.tenant, &filter, limit, after).await?;
    Ok(Json(ListResponse::page(agents, total, limit, |a| {
        (a.created_at, a.id)
    })))
}

#[utoipa::path(post, path = "/api/agents", tag = "agents", request_body = NewAgent,
    description = "Creates the agent on ElevenLabs (with the lead-scoring data collection), then records it. Alias: POST /agents.",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 201, body = Agent), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn create_agent(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(request): AppJson<NewAgent>,
) -> AppResult<(StatusCode, Json<Agent>)> {
    let agent = agents::create(&state, auth.tenant, &request).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

#[utoipa::path(get, path = "/api/agents/{id}", tag = "agents",
    params(("id" = Uuid, Path, description = "agent id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_agent(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<AgentId>,
) -> AppResult<Json<Agent>> {
    Ok(Json(agents::get(&state, auth.tenant, id).await?))
}

#[utoipa::path(put, path = "/api/agents/{id}", tag = "agents", request_body = AgentUpdate,
    description = "Changes the given fields on ElevenLabs and here; absent fields stay. An agent an administrator deactivated cannot be activated by its owner (403 agent_deactivated_by_admin). Alias: PUT /agents/{id}.",
    params(("id" = Uuid, Path, description = "agent id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn update_agent(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<AgentId>,
    AppJson(update): AppJson<AgentUpdate>,
) -> AppResult<Json<Agent>> {
    Ok(Json(
        agents::update(&state, auth.tenant, id, &update, agents::Editor::Owner).await?,
    ))
}

#[utoipa::path(delete, path = "/api/agents/{id}", tag = "agents",
    description = "Deletes the agent on ElevenLabs; its calls and leads stay. Alias: DELETE /agents/{id}.",
    params(("id" = Uuid, Path, description = "agent id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn delete_agent(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<AgentId>,
) -> AppResult<StatusCode> {
    agents::delete(&state, auth.tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/agents/{id}/config", tag = "agents",
    description = "The agent's configuration as ElevenLabs holds it, limited to what a tenant configures (agent_id, name, conversation_config's prompt, LLM, first message, language, voice and text_only, platform_settings.data_collection); platform-level settings are never passed through. Alias: GET /agents/{id}/config.",
    params(("id" = Uuid, Path, description = "agent id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn agent_config(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<AgentId>,
) -> AppResult<Json<Value>> {
    Ok(Json(agents::remote_config(&state, auth.tenant, id).await?))
}
