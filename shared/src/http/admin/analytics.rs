//! /admin: System-wide analytics.

use axum::{extract::State, http::HeaderMap, response::Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;

use crate::http::AppQuery;
use crate::{
    admin::analytics::{self, SystemAnalytics},
    auth::AdminUser,
    error::{AppError, AppResult, ErrorBody},
    http::{conditional, routes, Mode},
    AppState,
};

pub(super) fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(M; system_analytics))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// The period: the last N days, 1 to 365 (default 30).
    pub days: Option<i32>,
}

#[utoipa::path(get, path = "/admin/analytics", tag = "admin", params(AnalyticsQuery),
    description = "System-wide figures over the last `days` days (UTC). Answered from the period's snapshot while it is under five minutes old (`generated_at` says when it was read; the reconciler re-reads the periods asked for every two minutes); `Cache-Control: no-cache` or `max-age=0` reads them afresh. Sends an ETag; If-None-Match answers 304 while the snapshot is the same.",
    security(("bearer" = [])),
    responses((status = 200, body = SystemAnalytics), (status = 304), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn system_analytics(
    State(state): State<AppState>,
    _admin: AdminUser,
    headers: HeaderMap,
    AppQuery(query): AppQuery<AnalyticsQuery>,
) -> AppResult<Response> {
    let days = query.days.unwrap_or(analytics::DEFAULT_DAYS);
    if !(1..=365).contains(&days) {
        return Err(AppError::validation("days", "must be 1 to 365"));
    }
    let mut client = state.db().get().await?;
    let figures = analytics::cached(&mut client, days, conditional::asks_afresh(&headers)).await?;
    conditional::json_text(&headers, figures)
}
