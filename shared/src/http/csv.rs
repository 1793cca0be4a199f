//! CSV exports over HTTP: answered inline as `text/csv` when small, otherwise as an export job
//! (202, `Location: /api/exports/{id}`) that writes the file to S3; and the job's status with
//! its download link.

use std::time::Duration;

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::Utc;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;

use super::Id;
use crate::{
    auth::AuthUser,
    error::{AppResult, ErrorBody},
    export::{self, Export},
    export_jobs::{self, ExportJob, ExportKind},
    http::{routes, Mode},
    ids::ExportId,
    tenant::TenantId,
    AppState,
};

/// The largest export answered inline, as sent. A Lambda response is at most 6 MB, and
/// `lambda_http` sends a `text/csv` body as a JSON string (each quote, backslash and line
/// break escaped: a CSV of quoted quotes doubles), or base64-encoded (4/3 of its size): 4 MiB
/// of either stays under it.
pub const INLINE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// `csv`'s size as a JSON string's content.
fn escaped_len(csv: &[u8]) -> usize {
    csv.iter()
        .map(|&byte| match byte {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// How long an inline answer may take to write before the export becomes a job (api-calls
/// has 15 s, API Gateway 30 s).
pub const INLINE_BUDGET: Duration = Duration::from_secs(5);

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(M; export_job))
}

#[utoipa::path(get, path = "/api/exports/{id}", tag = "exports",
    description = "An export job's status and progress (`rows_written` of `total_rows`, once counted); once `done`, `download_url` is a presigned link to the CSV valid for 15 minutes (ask again for a fresh one). The file is kept a day, then the job answers `expired`.",
    params(("id" = Uuid, Path, description = "export id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ExportJob), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_job(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<ExportId>,
) -> AppResult<Json<ExportJob>> {
    Ok(Json(export_jobs::find(&state, auth.tenant, id).await?))
}

/// A GET export: the CSV itself when it is at most [`INLINE_MAX_BYTES`] and written within
/// [`INLINE_BUDGET`], otherwise an export job.
pub async fn inline_or_job(
    state: &AppState,
    tenant: TenantId,
    kind: ExportKind,
    filters: &impl Serialize,
    export: Export,
) -> AppResult<Response> {
    let inline = export::inline(
        &mut state.db().get().await?,
        &export,
        INLINE_MAX_BYTES,
        INLINE_BUDGET,
    )
    .await?;
    match inline {
        Some(csv) if escaped_len(&csv) <= INLINE_MAX_BYTES => {
            Ok(attachment(&export.download_name(Utc::now()), csv))
        }
        _ => job(state, tenant, kind, filters, &export).await,
    }
}

/// Starts an export job: 202 with the job, and its path in `Location`.
pub async fn job(
    state: &AppState,
    tenant: TenantId,
    kind: ExportKind,
    filters: &impl Serialize,
    export: &Export,
) -> AppResult<Response> {
    let job = export_jobs::create(state, tenant, kind, filters, export).await?;
    let location = HeaderValue::from_str(&job.location()).map_err(crate::AppError::internal)?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(job),
    )
        .into_response())
}

fn attachment(file_name: &str, csv: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{file_name}\"");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        csv,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_csv_is_counted_as_a_json_string_sends_it() {
        let csv = "a,\"b \"\"x\"\"\"\r\n\\\u{1}é\n";
        let sent = serde_json::to_string(csv).expect("json");
        assert_eq!(super::escaped_len(csv.as_bytes()), sent.len() - 2);
    }
}
