//! /admin: Every tenant's purchases and the review queue.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::http::{AppJson, AppQuery, Id, ListResponse, Page, PageQuery};
use crate::{
    admin::{
        audit::Actor,
        purchases::{self, AdminPurchase},
    },
    auth::AdminUser,
    billing::{Purchase, PurchaseStatus},
    error::{AppError, AppResult, ErrorBody},
    http::{routes, Mode},
    ids::PurchaseId,
    text, AppState,
};

pub(super) fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; list_purchases))
        .routes(routes!(M; approve_purchase))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PurchaseQuery {
    /// pending, processing, paid, failed, expired or review.
    pub status: Option<String>,
}

/// Every tenant's purchases, e.g. `?status=review` for the ones waiting for a decision.
#[utoipa::path(get, path = "/admin/purchases", operation_id = "admin_list_purchases", tag = "admin", params(PurchaseQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AdminPurchase>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_purchases(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<PurchaseQuery>,
    page: Page<(DateTime<Utc>, Uuid)>,
) -> AppResult<Json<ListResponse<AdminPurchase>>> {
    let Page { limit, after } = page;
    let status = query
        .status
        .as_deref()
        .map(|raw| {
            PurchaseStatus::parse(raw).ok_or_else(|| {
                AppError::validation(
                    "status",
                    "must be pending, processing, paid, failed, expired or review",
                )
            })
        })
        .transpose()?;
    let client = state.db().get().await?;
    let (rows, total) = purchases::list(&client, status, after, limit).await?;
    Ok(Json(ListResponse::page(rows, total, limit, |p| {
        (p.purchase.created_at, p.purchase.id)
    })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// What was checked (e.g. the payment found in Stripe's dashboard); kept in the audit log.
    pub reason: String,
}

/// Pays a purchase held for review and grants its credits, once.
#[utoipa::path(post, path = "/admin/purchases/{id}/approve", tag = "admin", request_body = Approval,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Purchase), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn approve_purchase(
    State(state): State<AppState>,
    admin: AdminUser,
    Id(id): Id<PurchaseId>,
    AppJson(request): AppJson<Approval>,
) -> AppResult<Json<Purchase>> {
    let reason = text::line("reason", &request.reason, 500)?;
    let mut client = state.db().get().await?;
    let tx = client.transaction().await?;
    let paid = purchases::approve(&tx, &Actor::from(&admin), *id.as_uuid(), &reason).await?;
    tx.commit().await?;
    Ok(Json(paid))
}
