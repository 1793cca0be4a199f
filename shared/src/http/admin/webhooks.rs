//! /admin: The webhook dead-letter queue and unmatched events.

use axum::{body::Bytes, extract::State, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use super::optional_body;
use crate::http::{AppQuery, Id, ListResponse, Page, PageQuery};
use crate::{
    admin::{
        audit::Actor,
        events::{self, DeadLetter, Replayed, UnmatchedEvent},
    },
    auth::AdminUser,
    error::{AppResult, ErrorBody},
    http::{routes, Mode},
    ids::UnmatchedEventId,
    AppState,
};

pub(super) fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; list_dead_letters))
        .routes(routes!(M; replay_dead_letters))
        .routes(routes!(M; list_unmatched))
        .routes(routes!(M; get_unmatched))
        .routes(routes!(M; replay_unmatched))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    pub data: Vec<DeadLetter>,
}

/// Up to 10 messages of the webhook dead-letter queue (left in place).
#[utoipa::path(get, path = "/admin/webhooks/dlq", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = DeadLetters), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_dead_letters(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<Json<DeadLetters>> {
    Ok(Json(DeadLetters {
        data: events::dead_letters(&state, 10).await?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedCount {
    pub replayed: usize,
    /// False when the request's time ran out before the queue was empty: ask again for the
    /// rest.
    pub emptied: bool,
}

/// Moves the dead letters back to the webhook queue (the processor applies each once), as
/// many as about 8 seconds allow.
#[utoipa::path(post, path = "/admin/webhooks/dlq/replay", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = ReplayedCount), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn replay_dead_letters(
    State(state): State<AppState>,
    admin: AdminUser,
) -> AppResult<Json<ReplayedCount>> {
    let replayed = events::replay_dead_letters(&state, &Actor::from(&admin), 1000).await?;
    Ok(Json(ReplayedCount {
        replayed: replayed.moved,
        emptied: replayed.emptied,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnmatchedQuery {
    /// Also list events already matched or replayed.
    pub include_matched: Option<bool>,
}

#[utoipa::path(get, path = "/admin/webhooks/unmatched", tag = "admin", params(UnmatchedQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<UnmatchedEvent>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_unmatched(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<UnmatchedQuery>,
    page: Page<(DateTime<Utc>, Uuid)>,
) -> AppResult<Json<ListResponse<UnmatchedEvent>>> {
    let Page { limit, after } = page;
    let client = state.db().get().await?;
    let include_matched = query.include_matched.unwrap_or(false);
    let (events, total) = events::list_unmatched(&client, include_matched, after, limit).await?;
    Ok(Json(ListResponse::page(events, total, limit, |e| {
        (e.created_at, e.id)
    })))
}

#[utoipa::path(get, path = "/admin/webhooks/unmatched/{id}", tag = "admin", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = UnmatchedEvent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_unmatched(
    State(state): State<AppState>,
    _admin: AdminUser,
    Id(id): Id<UnmatchedEventId>,
) -> AppResult<Json<UnmatchedEvent>> {
    let client = state.db().get().await?;
    Ok(Json(events::find_unmatched(&client, *id.as_uuid()).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// Our agent id (any tenant's): the event is replayed as this agent's.
    pub agent_id: Option<Uuid>,
}

/// Replays the event (after its agent was created), or matches it to an agent and replays it.
#[utoipa::path(post, path = "/admin/webhooks/unmatched/{id}/replay", tag = "admin", request_body = Option<MatchRequest>,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Replayed), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn replay_unmatched(
    State(state): State<AppState>,
    admin: AdminUser,
    Id(id): Id<UnmatchedEventId>,
    body: Bytes,
) -> AppResult<Json<Replayed>> {
    let agent = optional_body::<MatchRequest>(&body)?.agent_id;
    Ok(Json(
        events::replay_unmatched(&state, &Actor::from(&admin), *id.as_uuid(), agent).await?,
    ))
}
