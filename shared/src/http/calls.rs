//! The calls group: recordings (and, later, calls, transcripts and leads).

use std::time::Duration;

use axum::{
    extract::{Path, State},
    Json,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::AuthUser,
    aws::blobs,
    error::{AppError, AppResult, ErrorBody},
    AppState,
};

/// Presigned recording links are short-lived.
pub const RECORDING_URL_TTL: Duration = Duration::from_secs(15 * 60);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(recording))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recording {
    pub call_id: Uuid,
    /// A presigned URL for the MP3; valid until `expires_at`.
    pub recording_url: String,
    pub expires_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/calls/{id}/recording", tag = "calls",
    params(("id" = Uuid, Path, description = "call id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Recording), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn recording(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> AppResult<Json<Recording>> {
    let id: Uuid = id.parse().map_err(|_| AppError::not_found("call"))?;
    let row = state
        .db()
        .get()
        .await?
        .query_opt(
            "SELECT recording_key FROM calls WHERE id = $1 AND user_id = $2",
            &[&id, auth.tenant.as_uuid()],
        )
        .await?
        .ok_or_else(|| AppError::not_found("call"))?;
    let key: Option<String> = row.get(0);
    let key = key.ok_or_else(|| AppError::not_found("recording"))?;
    let url = blobs::presigned_get(
        &state.aws().s3,
        &state.config().aws.recordings_bucket,
        &key,
        RECORDING_URL_TTL,
    )
    .await?;
    Ok(Json(Recording {
        call_id: id,
        recording_url: url,
        expires_at: Utc::now() + chrono::Duration::from_std(RECORDING_URL_TTL).unwrap_or_default(),
    }))
}
