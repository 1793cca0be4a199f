//! The calls group: the call list and export, one call, its transcript and recording, and
//! placing outbound and batch calls.

use axum::{extract::State, http::HeaderMap, response::Response, Json};
use utoipa_axum::router::OpenApiRouter;

use super::{conditional, AppJson, AppQuery, Id, ListResponse, Page, PageQuery};
use crate::{
    auth::{AuthUser, Caller},
    calls::{
        outbound::{self, BatchRequest, BatchSubmitted, OutboundRequest, OutboundStarted},
        read::{self, Call, CallCursor, CallDetail, CallFilter, Transcript},
        recording::{self, Recording},
    },
    error::{AppResult, ErrorBody},
    export_jobs::{ExportJob, ExportKind},
    http::{routes, Mode},
    ids::CallId,
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; list_calls))
        .routes(routes!(M; export_calls, start_calls_export))
        .routes(routes!(M; get_call))
        .routes(routes!(M; call_transcript))
        .routes(routes!(M; recording))
        .routes(routes!(M; outbound_call))
        .routes(routes!(M; batch_call))
}

#[utoipa::path(get, path = "/api/calls/{id}/recording", tag = "calls",
    description = "A short-lived link to the MP3. If the audio webhook never came, the audio is fetched once from ElevenLabs and stored.",
    params(("id" = Uuid, Path, description = "call id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Recording), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn recording(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<CallId>,
) -> AppResult<Json<Recording>> {
    Ok(Json(recording::link(&state, auth.tenant, id).await?))
}

#[utoipa::path(post, path = "/api/calls/outbound", tag = "calls", request_body = OutboundRequest,
    description = "Places one call through ElevenLabs (Twilio) to a contact or a number, recorded as in_progress until its webhook completes it. 402 insufficient_credits below the minimum balance (calls still ringing count one minute each). 403 email_not_verified until the owner's email is verified; 403 destination_not_allowed for a number outside the admin's allowed countries and number types.",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 201, body = OutboundStarted), (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn outbound_call(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(request): AppJson<OutboundRequest>,
) -> AppResult<(axum::http::StatusCode, Json<OutboundStarted>)> {
    let started = outbound::place_call(&state, auth.verified_tenant()?, &request).await?;
    Ok((axum::http::StatusCode::CREATED, Json(started)))
}

#[utoipa::path(post, path = "/api/calls/batch", tag = "calls", request_body = BatchRequest,
    description = "Submits an ElevenLabs batch call to the given contacts (one call per distinct number). 402 insufficient_credits unless the balance covers one minute per contact. 403 email_not_verified, or destination_not_allowed (details list the refused contacts) as for one call.",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 201, body = BatchSubmitted), (status = 401, body = ErrorBody), (status = 402, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn batch_call(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(request): AppJson<BatchRequest>,
) -> AppResult<(axum::http::StatusCode, Json<BatchSubmitted>)> {
    let submitted = outbound::submit_batch(&state, auth.verified_tenant()?, &request).await?;
    Ok((axum::http::StatusCode::CREATED, Json(submitted)))
}

#[utoipa::path(get, path = "/api/calls", tag = "calls",
    description = "The tenant's calls and chats, newest first, keyset-paginated (new calls arriving between pages cause no duplicates or gaps). Sends an ETag; If-None-Match answers 304 while the page is unchanged.",
    params(CallFilter, PageQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<Call>), (status = 304), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_calls(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppQuery(filter): AppQuery<CallFilter>,
    page: Page<CallCursor>,
) -> AppResult<Response> {
    let (_, (mut calls, total)) = caller
        .read(&state, &(filter, page), |db, tenant, (filter, page)| {
            Box::pin(read::list(db, tenant, filter, page.limit, page.after))
        })
        .await?;
    recording::presign_calls(&state, &mut calls).await?;
    let page = ListResponse::page(calls, total, page.limit, |c| (c.created_at, c.id));
    conditional::json(&headers, &page)
}

#[utoipa::path(get, path = "/api/calls/export", tag = "calls",
    description = "Every call matching the list's filters as CSV (cells that look like formulas are escaped), when the file is at most 4 MiB and written within 5 s. Otherwise the answer is 202 with an export job, as `POST /api/calls/export` starts one: poll `Location` (`GET /api/exports/{id}`) for the download link.",
    params(CallFilter),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 202, body = ExportJob, headers(("Location" = String, description = "the job's status"))),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "three export jobs of the account are in progress; `Retry-After` says when to ask again")))]
async fn export_calls(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(filter): AppQuery<CallFilter>,
) -> AppResult<axum::response::Response> {
    let export = read::export(&state.db().get().await?, auth.tenant, &filter).await?;
    super::csv::inline_or_job(&state, auth.tenant, ExportKind::Calls, &filter, export).await
}

#[utoipa::path(post, path = "/api/calls/export", tag = "calls",
    description = "Starts an export job for every call matching the list's filters (query parameters, as for the list): the CSV is written to storage in the background, of any size; at most three jobs of an account are in progress at once. Poll `Location` (`GET /api/exports/{id}`) for progress and, once done, a download link.",
    params(CallFilter),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 202, body = ExportJob, headers(("Location" = String, description = "the job's status"))),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "three export jobs of the account are in progress; `Retry-After` says when to ask again")))]
async fn start_calls_export(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(filter): AppQuery<CallFilter>,
) -> AppResult<axum::response::Response> {
    let export = read::export(&state.db().get().await?, auth.tenant, &filter).await?;
    super::csv::job(&state, auth.tenant, ExportKind::Calls, &filter, &export).await
}

#[utoipa::path(get, path = "/api/calls/{id}", tag = "calls",
    params(("id" = Uuid, Path, description = "call id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = CallDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_call(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<CallId>,
) -> AppResult<Json<CallDetail>> {
    let db = state.db().get().await?;
    let mut detail = read::get(&db, auth.tenant, id).await?;
    recording::presign_calls(&state, std::slice::from_mut(&mut detail.call)).await?;
    Ok(Json(detail))
}

#[utoipa::path(get, path = "/api/calls/{id}/transcript", tag = "calls",
    params(("id" = Uuid, Path, description = "call id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Transcript), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn call_transcript(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<CallId>,
) -> AppResult<Json<Transcript>> {
    let db = state.db().get().await?;
    Ok(Json(read::transcript(&db, auth.tenant, id).await?))
}
