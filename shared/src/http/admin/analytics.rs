//! /admin: System-wide analytics.

use axum::{extract::State, Json};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;

use crate::http::AppQuery;
use crate::{
    admin::analytics::{self, SystemAnalytics},
    auth::AdminUser,
    error::{AppError, AppResult, ErrorBody},
    http::{routes, Mode},
    AppState,
};

pub(super) fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(M; system_analytics))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AnalyticsQuery {
    /// The period: the last N days, 1 to 365 (default 30).
    pub days: Option<i32>,
}

#[utoipa::path(get, path = "/admin/analytics", tag = "admin", params(AnalyticsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SystemAnalytics), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn system_analytics(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<AnalyticsQuery>,
) -> AppResult<Json<SystemAnalytics>> {
    let days = query.days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(AppError::validation("days", "must be 1 to 365"));
    }
    let mut client = state.db().get().await?;
    Ok(Json(analytics::system(&mut client, days).await?))
}
