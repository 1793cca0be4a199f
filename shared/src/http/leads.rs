//! Leads: list, profile with timeline, assigning an agent, merging duplicates.

use axum::{extract::State, http::HeaderMap, response::Response, Json};
use utoipa_axum::router::OpenApiRouter;

use super::{conditional, AppJson, AppQuery, Id, ListResponse, Page, PageQuery};
use crate::{
    auth::{AuthUser, Caller},
    calls::lead_merge::{self, MergeRequest},
    error::{AppResult, ErrorBody},
    export_jobs::{ExportJob, ExportKind},
    http::{routes, Mode},
    ids::LeadId,
    leads::{
        self,
        read::{
            self, Interaction, InteractionCursor, Lead, LeadCursor, LeadFilter, LeadProfile,
            LeadWithAnalytics,
        },
        LeadUpdate,
    },
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; list_leads))
        .routes(routes!(M; export_leads, start_leads_export))
        .routes(routes!(M; get_lead, assign_lead))
        .routes(routes!(M; lead_timeline))
        .routes(routes!(M; merge_leads))
}

#[utoipa::path(get, path = "/api/leads", tag = "leads",
    description = "One lead per person, newest contact first, with the latest scores and tag and the newest LeadAnalytics. Sends an ETag; If-None-Match answers 304 while the page is unchanged.",
    params(LeadFilter, PageQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<LeadWithAnalytics>), (status = 304), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_leads(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppQuery(filter): AppQuery<LeadFilter>,
    page: Page<LeadCursor>,
) -> AppResult<Response> {
    let (_, (leads, total)) = caller
        .read(&state, &(filter, page), |db, tenant, (filter, page)| {
            Box::pin(read::list(db, tenant, filter, page.limit, page.after))
        })
        .await?;
    conditional::json(
        &headers,
        &ListResponse::page(leads, total, page.limit, |row| row.lead.cursor()),
    )
}

#[utoipa::path(get, path = "/api/leads/export", tag = "leads",
    description = "Every lead matching the list's filters as CSV, newest first by creation (a lead contacted while the file is written keeps its place; cells that look like formulas are escaped), when the file is at most 4 MiB and written within 5 s. Otherwise the answer is 202 with an export job, as `POST /api/leads/export` starts one: poll `Location` (`GET /api/exports/{id}`) for the download link.",
    params(LeadFilter),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 202, body = ExportJob, headers(("Location" = String, description = "the job's status"))),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "three export jobs of the account are in progress; `Retry-After` says when to ask again")))]
async fn export_leads(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(filter): AppQuery<LeadFilter>,
) -> AppResult<axum::response::Response> {
    let export = read::export(&state.db().get().await?, auth.tenant, &filter).await?;
    super::csv::inline_or_job(&state, auth.tenant, ExportKind::Leads, &filter, export).await
}

#[utoipa::path(post, path = "/api/leads/export", tag = "leads",
    description = "Starts an export job for every lead matching the list's filters (query parameters, as for the list), newest first by creation: the CSV is written to storage in the background, of any size; at most three jobs of an account are in progress at once. Poll `Location` (`GET /api/exports/{id}`) for progress and, once done, a download link.",
    params(LeadFilter),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 202, body = ExportJob, headers(("Location" = String, description = "the job's status"))),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "three export jobs of the account are in progress; `Retry-After` says when to ask again")))]
async fn start_leads_export(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(filter): AppQuery<LeadFilter>,
) -> AppResult<axum::response::Response> {
    let export = read::export(&state.db().get().await?, auth.tenant, &filter).await?;
    super::csv::job(&state, auth.tenant, ExportKind::Leads, &filter, &export).await
}

#[utoipa::path(get, path = "/api/leads/{id}", tag = "leads",
    description = "The lead's profile: latest analysis, the interaction timeline (calls and chats with summaries and CTA interactions), and possible duplicates (same phone or email).",
    params(("id" = Uuid, Path, description = "lead id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = LeadProfile), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_lead(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id<LeadId>,
) -> AppResult<Json<LeadProfile>> {
    let (_, profile) = caller
        .read(&state, &id, |db, tenant, id| {
            Box::pin(read::profile(db, tenant, *id))
        })
        .await?;
    Ok(Json(profile))
}

#[utoipa::path(get, path = "/api/leads/{id}/timeline", tag = "leads",
    description = "All of the lead's calls and chats, newest first, keyset-paginated like every list.",
    params(("id" = Uuid, Path, description = "lead id"), PageQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<Interaction>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn lead_timeline(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id<LeadId>,
    page: Page<InteractionCursor>,
) -> AppResult<Json<ListResponse<Interaction>>> {
    let (_, (interactions, total)) = caller
        .read(&state, &(id, page), |db, tenant, (id, page)| {
            Box::pin(read::timeline(db, tenant, *id, page.limit, page.after))
        })
        .await?;
    Ok(Json(ListResponse::page(
        interactions,
        total,
        page.limit,
        Interaction::cursor,
    )))
}

#[utoipa::path(put, path = "/api/leads/{id}", tag = "leads", request_body = LeadUpdate,
    description = "Assigns the lead to one of the tenant's agents.",
    params(("id" = Uuid, Path, description = "lead id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Lead), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn assign_lead(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<LeadId>,
    AppJson(update): AppJson<LeadUpdate>,
) -> AppResult<Json<Lead>> {
    let db = state.db().get().await?;
    Ok(Json(leads::assign(&db, auth.tenant, id, &update).await?))
}

#[utoipa::path(post, path = "/api/leads/{id}/merge", tag = "leads", request_body = MergeRequest,
    description = "Folds another lead of the tenant into this one: its calls move here, counts add up, missing details are filled in, the duplicate is deleted.",
    params(("id" = Uuid, Path, description = "lead id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Lead), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn merge_leads(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<LeadId>,
    AppJson(request): AppJson<MergeRequest>,
) -> AppResult<Json<Lead>> {
    let mut db = state.db().get().await?;
    Ok(Json(
        lead_merge::merge(&mut db, auth.tenant, id, &request).await?,
    ))
}
