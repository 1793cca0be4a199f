//! /admin: Every tenant's agents.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::http::{AppJson, AppQuery, Id, ListResponse, Page, PageQuery};
use crate::{
    admin::{
        agents::{self as admin_agents, AgentRow},
        audit::Actor,
    },
    agents::{Agent, AgentUpdate},
    auth::AdminUser,
    db::filter::Search,
    error::{AppResult, ErrorBody},
    http::{routes, Mode},
    ids::AgentId,
    AppState,
};

pub(super) fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; list_agents))
        .routes(routes!(M; get_agent, update_agent))
        .routes(routes!(M; deactivate_agent))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentQuery {
    /// Only this tenant's agents.
    pub user_id: Option<Uuid>,
    /// Part of the name or ElevenLabs id.
    #[param(value_type = Option<String>)]
    pub search: Option<Search>,
}

#[utoipa::path(get, path = "/admin/agents", operation_id = "admin_list_agents", tag = "admin", params(AgentQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AgentRow>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_agents(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<AgentQuery>,
    page: Page<(DateTime<Utc>, Uuid)>,
) -> AppResult<Json<ListResponse<AgentRow>>> {
    let Page { limit, after } = page;
    let client = state.db().get().await?;
    let search = query.search.as_ref();
    let (agents, total) = admin_agents::list(&client, query.user_id, search, after, limit).await?;
    Ok(Json(ListResponse::page(agents, total, limit, |a| {
        (a.created_at, a.id)
    })))
}

#[utoipa::path(get, path = "/admin/agents/{id}", operation_id = "admin_get_agent", tag = "admin", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_agent(
    State(state): State<AppState>,
    _admin: AdminUser,
    Id(id): Id<AgentId>,
) -> AppResult<Json<Agent>> {
    Ok(Json(admin_agents::get(&state, id).await?))
}

/// Changes any tenant's agent with the same rules as its owner's PUT /api/agents/{id}.
#[utoipa::path(put, path = "/admin/agents/{id}", operation_id = "admin_update_agent", tag = "admin", request_body = AgentUpdate,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn update_agent(
    State(state): State<AppState>,
    admin: AdminUser,
    Id(id): Id<AgentId>,
    AppJson(change): AppJson<AgentUpdate>,
) -> AppResult<Json<Agent>> {
    let actor = Actor::from(&admin);
    Ok(Json(
        admin_agents::update(&state, &actor, id, &change, "agent.updated").await?,
    ))
}

#[utoipa::path(post, path = "/admin/agents/{id}/deactivate", tag = "admin",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn deactivate_agent(
    State(state): State<AppState>,
    admin: AdminUser,
    Id(id): Id<AgentId>,
) -> AppResult<Json<Agent>> {
    let change = AgentUpdate {
        is_active: Some(false),
        ..AgentUpdate::default()
    };
    let actor = Actor::from(&admin);
    Ok(Json(
        admin_agents::update(&state, &actor, id, &change, "agent.deactivated").await?,
    ))
}
