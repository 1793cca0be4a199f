//! Dashboards: `/api/dashboard/*` and the period report `/analytics/reports`. Each answer has an
//! ETag built from the tenant's rollup version and balance, both read with the user at
//! authentication, so a poll with `If-None-Match` answers 304 without a read of its own.
//! Computed answers are cached in DynamoDB under their ETag (which changes whenever the
//! processor writes), with a TTL.

use axum::{
    extract::{OriginalUri, State},
    http::{header, HeaderMap, HeaderValue},
    response::Response,
};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;

use super::{
    conditional::{fingerprint, matches, not_modified, with_etag},
    AppQuery,
};
use crate::{
    auth::AuthUser,
    aws::cache,
    dashboard::{self, Agents, Analytics, Overview, RangeQuery, Report, ReportFormat},
    error::{AppError, AppResult, ErrorBody},
    http::{routes, Mode},
    tenant::TenantId,
    users::User,
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; overview))
        .routes(routes!(M; analytics))
        .routes(routes!(M; report))
}

#[utoipa::path(get, path = "/api/dashboard/overview", tag = "dashboard",
    description = "KPIs for a range of days with the change against the previous range of the same length; `agent_id` or `type` narrow it to one agent or to the call or chat agents. Alias: GET /analytics/dashboard. Sends an ETag; If-None-Match answers 304 while nothing changed.",
    params(RangeQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Overview), (status = 304), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn overview(
    State(state): State<AppState>,
    auth: AuthUser,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    AppQuery(query): AppQuery<RangeQuery>,
) -> AppResult<Response> {
    serve(&state, &auth.user, &uri, &headers, &query, View::Overview).await
}

#[utoipa::path(get, path = "/api/dashboard/analytics", tag = "dashboard",
    description = "Daily series over the range (zeros included), per-agent breakdown with each agent's own daily series, score distribution, CTA funnel and anomaly flags; `agent_id` or `type` narrow it as for the overview. ETag and If-None-Match as for the overview.",
    params(RangeQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Analytics), (status = 304), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn analytics(
    State(state): State<AppState>,
    auth: AuthUser,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    AppQuery(query): AppQuery<RangeQuery>,
) -> AppResult<Response> {
    serve(&state, &auth.user, &uri, &headers, &query, View::Analytics).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// json (default) or csv (a download).
    #[param(inline)]
    pub format: Option<ReportFormat>,
}

#[utoipa::path(get, path = "/analytics/reports", tag = "dashboard",
    description = "A period report: the overview's KPIs against the previous period, the per-agent table with daily series, and the ten best-scored leads contacted in the range; `format=csv` downloads the same as three CSV tables. Takes the dashboards' range and scope; ETag and If-None-Match as for the overview.",
    params(RangeQuery, ReportQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, description = "the report, as JSON or (`format=csv`) CSV",
            content((Report = "application/json"), (String = "text/csv"))), (status = 304),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn report(
    State(state): State<AppState>,
    auth: AuthUser,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    AppQuery(query): AppQuery<RangeQuery>,
    AppQuery(format): AppQuery<ReportQuery>,
) -> AppResult<Response> {
    let view = View::Report(format.format.unwrap_or_default());
    serve(&state, &auth.user, &uri, &headers, &query, view).await
}

#[derive(Clone, Copy)]
enum View {
    Overview,
    Analytics,
    Report(ReportFormat),
}

/// 304 when the client's ETag is current; otherwise the view, from the cache or computed.
async fn serve(
    state: &AppState,
    user: &User,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    query: &RangeQuery,
    view: View,
) -> AppResult<Response> {
    let (range, scope) = (query.range()?, query.scope());
    let (tenant, credits) = (user.tenant(), user.credits);
    let etag = etag(tenant, uri, user.stats_version, credits)?;
    if matches(headers, &etag) {
        return Ok(not_modified(etag));
    }
    let body = cached(state, tenant, &etag, async {
        let db = state.db().get().await?;
        let agents = Agents::of(&db, tenant).await?;
        scope.check(&agents)?;
        match view {
            View::Overview => {
                json(&dashboard::overview(&db, tenant, range, &scope, &agents, credits).await?)
            }
            View::Analytics => {
                json(&dashboard::analytics(&db, tenant, range, &scope, &agents).await?)
            }
            View::Report(format) => {
                let report =
                    dashboard::report(&db, tenant, range, &scope, &agents, credits).await?;
                match format {
                    ReportFormat::Json => json(&report),
                    ReportFormat::Csv => {
                        String::from_utf8(report.csv()?).map_err(AppError::internal)
                    }
                }
            }
        }
    })
    .await?;
    let mut response = with_etag(body, etag);
    if let View::Report(ReportFormat::Csv) = view {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"report.csv\""),
        );
    }
    Ok(response)
}

/// Changes with the rollups, the balance, the day (ranges default to today) and the request.
fn etag(
    tenant: TenantId,
    uri: &axum::http::Uri,
    version: i64,
    credits: i64,
) -> AppResult<HeaderValue> {
    let today = chrono::Utc::now().date_naive();
    let request = fingerprint(format!("{tenant:?}|{uri}|{today}").as_bytes());
    let tag = format!("W/\"{version}-{credits}-{:016x}\"", request as u64);
    HeaderValue::from_str(&tag).map_err(crate::AppError::internal)
}

/// The JSON body for `etag`: from this process' cache, the shared one, or computed and cached.
async fn cached(
    state: &AppState,
    tenant: TenantId,
    etag: &HeaderValue,
    compute: impl std::future::Future<Output = AppResult<String>>,
) -> AppResult<String> {
    let ttl = state.config().dashboard_cache_ttl;
    if ttl.is_zero() {
        return compute.await;
    }
    let key = format!(
        "dashboard#{}#{}",
        tenant.as_uuid(),
        etag.to_str().unwrap_or_default()
    );
    let memory = state.cached_responses();
    if let Some(body) = memory.get(&key) {
        return Ok(body);
    }
    let (dynamodb, table) = (state.aws(), &state.config().aws.table);
    if let Some(body) = cache::get(dynamodb, table, &key).await {
        memory.put(&key, &body, ttl);
        return Ok(body);
    }
    let body = compute.await?;
    memory.put(&key, &body, ttl);
    cache::put(dynamodb, table, &key, body.clone(), ttl).await;
    Ok(body)
}

fn json<T: Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(AppError::internal)
}
