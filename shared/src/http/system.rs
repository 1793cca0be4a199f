//! Health, which every function serves, and the OpenAPI document (api-auth's).

use std::time::Duration;

use axum::{extract::State, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    error::{AppError, AppResult, ErrorBody},
    http::{routes, Mode},
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(M; health))
}

pub fn document_router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(M; openapi_json))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a dependency is down (then the answer is a 500 error whose
    /// `details` is this object).
    pub status: &'static str,
    /// `ok` or `down`.
    pub database: &'static str,
    /// This process's database circuit breaker: `closed`, `open` or `half_open`.
    pub database_circuit: &'static str,
}

/// Liveness plus a database round trip; says which dependency is down and whether the
/// database circuit is open (then no connection is attempted).
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, body = Health), (status = 500, body = ErrorBody)))]
async fn health(State(state): State<AppState>) -> AppResult<Json<Health>> {
    let result = match tokio::time::timeout(Duration::from_secs(3), state.db().ping()).await {
        Ok(result) => result,
        Err(elapsed) => Err(AppError::database_unavailable(
            Duration::from_secs(1),
            elapsed,
        )),
    };
    let health = |database| Health {
        status: if database == "ok" { "ok" } else { "degraded" },
        database,
        database_circuit: state.db().breaker_status().as_str(),
    };
    match result {
        Ok(()) => Ok(Json(health("ok"))),
        Err(err) => {
            let details = serde_json::to_value(health("down")).unwrap_or_default();
            Err(err.with_details(details))
        }
    }
}

/// This document: every route of every function.
#[utoipa::path(get, path = "/api/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(super::openapi::document())
}
