//! /admin: The audit log of admin changes.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::http::{AppQuery, ListResponse, Page, PageQuery};
use crate::{
    admin::audit::{self, AuditEntry, AuditFilter},
    auth::AdminUser,
    error::{AppResult, ErrorBody},
    http::{routes, Mode},
    text, AppState,
};

pub(super) fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(M; audit_log))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub actor_id: Option<Uuid>,
    /// e.g. user.credits_adjusted, user.suspended, secret.rotated, settings.updated.
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// An RFC 3339 time, or a day (YYYY-MM-DD, from its 00:00 UTC).
    #[serde(default, deserialize_with = "crate::time::optional_time")]
    #[param(value_type = Option<String>)]
    pub since: Option<DateTime<Utc>>,
    /// An RFC 3339 time, or a day (YYYY-MM-DD, included).
    #[serde(default, deserialize_with = "crate::time::optional_time_until")]
    #[param(value_type = Option<String>)]
    pub until: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/admin/audit-log", tag = "admin", params(AuditQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AuditEntry>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn audit_log(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<AuditQuery>,
    page: Page<i64>,
) -> AppResult<Json<ListResponse<AuditEntry>>> {
    let Page {
        limit,
        after: before,
    } = page;
    let text = |field, raw: &Option<String>| text::optional_line(field, raw.as_deref(), 200);
    let filter = AuditFilter {
        actor_id: query.actor_id,
        action: text("action", &query.action)?,
        target_type: text("target_type", &query.target_type)?,
        target_id: text("target_id", &query.target_id)?,
        since: query.since,
        until: query.until,
    };
    let client = state.db().get().await?;
    let (entries, total) = audit::list(&client, &filter, before, limit).await?;
    Ok(Json(ListResponse::page(entries, total, limit, |e| {
        e.id.parse::<i64>().unwrap_or_default()
    })))
}
