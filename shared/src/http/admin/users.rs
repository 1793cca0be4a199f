//! /admin: Tenants: list, detail, credit adjustments, suspension.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use super::optional_body;
use crate::http::{AppJson, AppQuery, Id, ListResponse, Page, PageQuery};
use crate::{
    admin::{
        audit::Actor,
        users::{self, AdminUserDetail, AdminUserSummary, UserFilter},
    },
    auth::AdminUser,
    credits::CreditTransaction,
    db::filter::Search,
    error::{AppError, AppResult, ErrorBody},
    http::{routes, Mode},
    ids::UserId,
    text,
    users::UserStatus,
    AppState,
};

pub(super) fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; list_users))
        .routes(routes!(M; get_user))
        .routes(routes!(M; adjust_credits))
        .routes(routes!(M; suspend_user))
        .routes(routes!(M; reactivate_user))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Part of the email or name, case-insensitive.
    #[param(value_type = Option<String>)]
    pub search: Option<Search>,
    /// active or suspended.
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/admin/users", tag = "admin", params(UserQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AdminUserSummary>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<UserQuery>,
    page: Page<(DateTime<Utc>, Uuid)>,
) -> AppResult<Json<ListResponse<AdminUserSummary>>> {
    let Page { limit, after } = page;
    let status = match query.status.as_deref() {
        None => None,
        Some("active") => Some(UserStatus::Active),
        Some("suspended") => Some(UserStatus::Suspended),
        Some(_) => {
            return Err(AppError::validation(
                "status",
                "must be active or suspended",
            ))
        }
    };
    let filter = UserFilter {
        search: query.search,
        status,
    };
    let client = state.db().get().await?;
    let (users, total) = users::list(&client, &filter, after, limit).await?;
    Ok(Json(ListResponse::page(users, total, limit, |u| {
        (u.created_at, u.id)
    })))
}

#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = AdminUserDetail), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    Id(id): Id<UserId>,
) -> AppResult<Json<AdminUserDetail>> {
    let client = state.db().get().await?;
    Ok(Json(users::detail(&client, *id.as_uuid()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditAdjustment {
    /// Signed whole credits: positive adds, negative takes away.
    pub amount: i64,
    /// Why; shown in the user's history and kept in the audit log.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Adjusted {
    pub transaction: CreditTransaction,
    /// True when this Idempotency-Key had been applied before (nothing changed now).
    pub duplicate: bool,
}

/// An `admin_adjustment` ledger entry. Send an `Idempotency-Key` header to make a retry safe.
#[utoipa::path(post, path = "/admin/users/{id}/credits", tag = "admin", request_body = CreditAdjustment,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)), security(("bearer" = [])),
    responses((status = 201, body = Adjusted), (status = 200, body = Adjusted, description = "a replay of the same Idempotency-Key"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn adjust_credits(
    State(state): State<AppState>,
    admin: AdminUser,
    Id(id): Id<UserId>,
    headers: HeaderMap,
    AppJson(request): AppJson<CreditAdjustment>,
) -> AppResult<(StatusCode, Json<Adjusted>)> {
    let user = *id.as_uuid();
    let reason = text::line("reason", &request.reason, 500)?;
    if request.amount == 0 || request.amount.unsigned_abs() > 10_000_000 {
        return Err(AppError::validation(
            "amount",
            "must be a non-zero whole number of credits up to 10,000,000",
        ));
    }
    let request_id = match headers.get("idempotency-key") {
        Some(key) => {
            let key = key
                .to_str()
                .ok()
                .filter(|k| (1..=200).contains(&k.len()))
                .ok_or_else(|| {
                    AppError::validation("Idempotency-Key", "must be 1-200 visible characters")
                })?;
            format!("{}:{user}:{key}", admin.0.user.id)
        }
        None => Uuid::new_v4().to_string(),
    };
    let mut client = state.db().get().await?;
    let tx = client.transaction().await?;
    let applied = users::adjust_credits(
        &tx,
        &Actor::from(&admin),
        user,
        request.amount,
        &reason,
        &request_id,
    )
    .await?;
    tx.commit().await?;
    let (status, duplicate) = match applied {
        crate::credits::Applied::New(_) => (StatusCode::CREATED, false),
        crate::credits::Applied::Duplicate(_) => (StatusCode::OK, true),
    };
    Ok((
        status,
        Json(Adjusted {
            transaction: applied.entry().clone(),
            duplicate,
        }),
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChanged {
    pub id: Uuid,
    pub status: String,
    /// False when the user already had this status.
    pub changed: bool,
    /// Suspension: the tenant's batches that could still place calls, cancelled at ElevenLabs.
    pub batches_cancelled: usize,
}

async fn change_status(
    state: &AppState,
    admin: &AdminUser,
    user: Uuid,
    status: UserStatus,
    reason: Option<String>,
) -> AppResult<Json<StatusChanged>> {
    let reason = reason
        .filter(|raw| !raw.trim().is_empty())
        .map(|raw| text::line("reason", &raw, 500))
        .transpose()?;
    let mut client = state.db().get().await?;
    let tx = client.transaction().await?;
    let changed =
        users::set_status(&tx, &Actor::from(admin), user, status, reason.as_deref()).await?;
    tx.commit().await?;
    // Also when already suspended: a repeated suspension retries a cancellation that failed.
    let batches_cancelled = match status {
        UserStatus::Suspended => users::cancel_open_batches(state, user).await?,
        UserStatus::Active => 0,
    };
    Ok(Json(StatusChanged {
        batches_cancelled,
        id: user,
        status: match status {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
        }
        .into(),
        changed,
    }))
}

/// The user's API calls get 403 and outbound calls are refused; its batches that could still
/// place calls are cancelled at ElevenLabs (502 if ElevenLabs fails: the suspension stands and
/// repeating it retries the cancellation); webhooks for its calls are still recorded and billed.
#[utoipa::path(post, path = "/admin/users/{id}/suspend", tag = "admin", request_body = Option<StatusChange>,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = StatusChanged), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn suspend_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Id(id): Id<UserId>,
    body: Bytes,
) -> AppResult<Json<StatusChanged>> {
    let reason = optional_body::<StatusChange>(&body)?.reason;
    change_status(&state, &admin, *id.as_uuid(), UserStatus::Suspended, reason).await
}

#[utoipa::path(post, path = "/admin/users/{id}/reactivate", tag = "admin", request_body = Option<StatusChange>,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = StatusChanged), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reactivate_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Id(id): Id<UserId>,
    body: Bytes,
) -> AppResult<Json<StatusChanged>> {
    let reason = optional_body::<StatusChange>(&body)?.reason;
    change_status(&state, &admin, *id.as_uuid(), UserStatus::Active, reason).await
}
