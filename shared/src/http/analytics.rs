//! The design's `/analytics/*` lists: scored conversations (LeadAnalytics) and per-call
//! metrics. `/analytics/dashboard` is the overview's alias and `/analytics/reports` is served
//! with the dashboards.

use axum::{extract::State, Json};
use utoipa_axum::router::OpenApiRouter;

use super::{AppQuery, ListResponse, Page, PageQuery};
use crate::{
    auth::Caller,
    calls::{
        metrics::{self, CallMetrics},
        read::{CallCursor, CallFilter},
        scored::{self, ScoredConversation},
    },
    error::{AppResult, ErrorBody},
    http::{routes, Mode},
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; scored_leads))
        .routes(routes!(M; call_metrics))
}

#[utoipa::path(get, path = "/analytics/leads", tag = "dashboard",
    description = "Lead scoring data: every analyzed call and chat as the design's LeadAnalytics, with its lead, number, agent and type; newest conversation first, with the call list's filters (agent, type, status, range, tag, minimum score, search), keyset-paginated.",
    params(CallFilter, PageQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<ScoredConversation>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn scored_leads(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(filter): AppQuery<CallFilter>,
    page: Page<CallCursor>,
) -> AppResult<Json<ListResponse<ScoredConversation>>> {
    let (_, (rows, total)) = caller
        .read(&state, &(filter, page), |db, tenant, (filter, page)| {
            Box::pin(scored::list(db, tenant, filter, page.limit, page.after))
        })
        .await?;
    Ok(Json(ListResponse::page(
        rows,
        total,
        page.limit,
        ScoredConversation::cursor,
    )))
}

#[utoipa::path(get, path = "/analytics/calls", tag = "dashboard",
    description = "Call analytics: each call's and chat's duration, status, credits, score, tag and calls to action over a range (`from`/`to`), with the call list's filters; newest first, keyset-paginated.",
    params(CallFilter, PageQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<CallMetrics>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn call_metrics(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(filter): AppQuery<CallFilter>,
    page: Page<CallCursor>,
) -> AppResult<Json<ListResponse<CallMetrics>>> {
    let (_, (rows, total)) = caller
        .read(&state, &(filter, page), |db, tenant, (filter, page)| {
            Box::pin(metrics::list(db, tenant, filter, page.limit, page.after))
        })
        .await?;
    Ok(Json(ListResponse::page(
        rows,
        total,
        page.limit,
        CallMetrics::cursor,
    )))
}
