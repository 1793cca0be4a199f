//! Balance, ledger and purchases: /billing/credits, /api/user/credits, /billing/history,
//! /billing/packages, /billing/purchase and /billing/purchases.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::{AppJson, AppQuery, Id, ListResponse, Page, PageQuery};
use crate::{
    auth::AuthUser,
    billing::{self, Checkout, Package, Purchase, PurchaseCursor},
    credits::{self, CreditKind, CreditState, CreditTransaction},
    error::{AppError, AppResult, ErrorBody},
    http::{routes, Mode},
    ids::PurchaseId,
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; billing_credits))
        .routes(routes!(M; user_credits))
        .routes(routes!(M; history))
        .routes(routes!(M; list_packages))
        .routes(routes!(M; purchase))
        .routes(routes!(M; list_purchases))
        .routes(routes!(M; get_purchase))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Credits {
    /// Whole credits; 1 credit = 1 started minute. Negative when usage overran the balance.
    pub credits: i64,
    pub low_credits: bool,
    pub status: CreditState,
    pub low_credit_threshold: i64,
}

impl Credits {
    async fn of(state: &AppState, balance: i64) -> AppResult<Self> {
        let threshold = state.settings().await?.low_credit_threshold;
        Ok(Self {
            credits: balance,
            low_credits: balance < threshold,
            status: credits::credit_state(balance, threshold),
            low_credit_threshold: threshold,
        })
    }
}

#[utoipa::path(get, path = "/billing/credits", tag = "billing",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Credits), (status = 401, body = ErrorBody)))]
async fn billing_credits(
    State(state): State<AppState>,
    auth: AuthUser,
) -> AppResult<Json<Credits>> {
    Ok(Json(Credits::of(&state, auth.user.credits).await?))
}

#[utoipa::path(get, path = "/api/user/credits", tag = "billing",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Credits), (status = 401, body = ErrorBody)))]
async fn user_credits(State(state): State<AppState>, auth: AuthUser) -> AppResult<Json<Credits>> {
    Ok(Json(Credits::of(&state, auth.user.credits).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryFilter {
    /// Only entries of this type: purchase (refunds included, as they are served as
    /// purchases), usage, bonus, admin_adjustment, or refund (its `ledger_type`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[utoipa::path(get, path = "/billing/history", tag = "billing", params(PageQuery, HistoryFilter),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<CreditTransaction>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    auth: AuthUser,
    page: Page<i64>,
    AppQuery(filter): AppQuery<HistoryFilter>,
) -> AppResult<Json<ListResponse<CreditTransaction>>> {
    let Page {
        limit,
        after: before,
    } = page;
    let kind = filter
        .kind
        .as_deref()
        .map(|raw| {
            CreditKind::parse(raw).ok_or_else(|| {
                AppError::validation(
                    "type",
                    "must be purchase, usage, bonus, admin_adjustment or refund",
                )
            })
        })
        .transpose()?;
    let client = state.db().get().await?;
    let (entries, total) = credits::history(&client, auth.tenant, kind, before, limit).await?;
    Ok(Json(ListResponse::page(entries, total, limit, |entry| {
        entry.id.parse::<i64>().unwrap_or_default()
    })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Packages {
    pub data: Vec<Package>,
}

/// The credit packages on sale (an admin setting).
#[utoipa::path(get, path = "/billing/packages", tag = "billing",
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Packages), (status = 401, body = ErrorBody)))]
async fn list_packages(
    State(state): State<AppState>,
    _auth: AuthUser,
) -> AppResult<Json<Packages>> {
    Ok(Json(Packages {
        data: billing::packages(&*state.settings().await?),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// One of GET /billing/packages' ids. The credits and the price come from the package.
    pub package_id: String,
}

/// Starts a Stripe Checkout for a package; send the browser to `checkout_url`. The credits
/// arrive with Stripe's webhook once the payment succeeds.
#[utoipa::path(post, path = "/billing/purchase", tag = "billing", request_body = PurchaseRequest,
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Checkout), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn purchase(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(request): AppJson<PurchaseRequest>,
) -> AppResult<Json<Checkout>> {
    let package_id = request.package_id.trim();
    if package_id.is_empty() {
        return Err(AppError::validation("package_id", "is required"));
    }
    Ok(Json(
        billing::start_purchase(&state, &auth.user, package_id).await?,
    ))
}

/// The account's purchases with their state, newest first, keyset-paginated like every list.
#[utoipa::path(get, path = "/billing/purchases", tag = "billing", params(PageQuery),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = ListResponse<Purchase>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_purchases(
    State(state): State<AppState>,
    auth: AuthUser,
    page: Page<PurchaseCursor>,
) -> AppResult<Json<ListResponse<Purchase>>> {
    let Page { limit, after } = page;
    let client = state.db().get().await?;
    let (purchases, total) = billing::list(&client, auth.tenant, limit, after).await?;
    Ok(Json(ListResponse::page(purchases, total, limit, |p| {
        (p.created_at, p.id)
    })))
}

/// One purchase (the frontend polls it after Checkout returns).
#[utoipa::path(get, path = "/billing/purchases/{id}", tag = "billing",
    params(("id" = uuid::Uuid, Path, description = "The purchase id")),
    security(("bearer" = []), ("stack_access_token" = [])),
    responses((status = 200, body = Purchase), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_purchase(
    State(state): State<AppState>,
    auth: AuthUser,
    Id(id): Id<PurchaseId>,
) -> AppResult<Json<Purchase>> {
    let client = state.db().get().await?;
    Ok(Json(
        billing::find(&client, auth.tenant, *id.as_uuid()).await?,
    ))
}
