//! /admin/*: the admin panel's API. Every route takes an [`AdminUser`]: no token is 401,
//! anyone without the admin role 403. Every change is written to the audit log.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{AppJson, AppQuery, ListResponse, PageQuery};
use crate::{
    admin::{
        agents::{self as admin_agents, AgentRow},
        analytics::{self, SystemAnalytics},
        audit::{self, Actor, AuditEntry, AuditFilter},
        events::{self, DeadLetter, Replayed, UnmatchedEvent},
        purchases::{self, AdminPurchase},
        secrets::{self, SecretInfo},
        users::{self, AdminUserDetail, AdminUserSummary, UserFilter},
    },
    agents::{Agent, AgentUpdate},
    auth::AdminUser,
    billing::{Purchase, PurchaseStatus},
    credits::CreditTransaction,
    error::{AppError, AppResult, ErrorBody},
    settings::{self, Settings},
    text,
    users::UserStatus,
    AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user))
        .routes(routes!(adjust_credits))
        .routes(routes!(suspend_user))
        .routes(routes!(reactivate_user))
        .routes(routes!(list_agents))
        .routes(routes!(get_agent, update_agent))
        .routes(routes!(deactivate_agent))
        .routes(routes!(get_config))
        .routes(routes!(update_settings))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_dead_letters))
        .routes(routes!(replay_dead_letters))
        .routes(routes!(list_unmatched))
        .routes(routes!(get_unmatched))
        .routes(routes!(replay_unmatched))
        .routes(routes!(list_purchases))
        .routes(routes!(approve_purchase))
        .routes(routes!(system_analytics))
        .routes(routes!(audit_log))
}

/// A JSON body that may be left out entirely (then every field takes its default).
fn optional_body<T: DeserializeOwned + Default>(body: &Bytes) -> AppResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|err| {
        if err.is_syntax() || err.is_eof() {
            AppError::bad_request("invalid_json", "the request body is not valid JSON")
                .with_details(serde_json::json!({ "reason": err.to_string() }))
        } else {
            AppError::validation("body", err.to_string())
        }
    })
}

fn user_id(raw: &str) -> AppResult<Uuid> {
    raw.parse().map_err(|_| AppError::not_found("user"))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserQuery {
    /// Part of the email or name, case-insensitive.
    pub search: Option<String>,
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
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<Json<ListResponse<AdminUserSummary>>> {
    let limit = page.limit()?;
    let after = page.cursor::<(DateTime<Utc>, Uuid)>()?;
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
        search: query.search.filter(|s| !s.trim().is_empty()),
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
    Path(id): Path<String>,
) -> AppResult<Json<AdminUserDetail>> {
    let client = state.db().get().await?;
    Ok(Json(users::detail(&client, user_id(&id)?).await?))
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
    Path(id): Path<String>,
    headers: HeaderMap,
    AppJson(request): AppJson<CreditAdjustment>,
) -> AppResult<(StatusCode, Json<Adjusted>)> {
    let user = user_id(&id)?;
    let reason = text::line("reason", &request.reason, 500)?;
    if request.amount == 0 || request.amount.abs() > 10_000_000 {
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
    id: &str,
    status: UserStatus,
    reason: Option<String>,
) -> AppResult<Json<StatusChanged>> {
    let user = user_id(id)?;
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
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Json<StatusChanged>> {
    let reason = optional_body::<StatusChange>(&body)?.reason;
    change_status(&state, &admin, &id, UserStatus::Suspended, reason).await
}

#[utoipa::path(post, path = "/admin/users/{id}/reactivate", tag = "admin", request_body = Option<StatusChange>,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = StatusChanged), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reactivate_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Json<StatusChanged>> {
    let reason = optional_body::<StatusChange>(&body)?.reason;
    change_status(&state, &admin, &id, UserStatus::Active, reason).await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AgentQuery {
    /// Only this tenant's agents.
    pub user_id: Option<Uuid>,
    /// Part of the name or ElevenLabs id.
    pub search: Option<String>,
}

#[utoipa::path(get, path = "/admin/agents", tag = "admin", params(AgentQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AgentRow>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_agents(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<AgentQuery>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<Json<ListResponse<AgentRow>>> {
    let limit = page.limit()?;
    let after = page.cursor::<(DateTime<Utc>, Uuid)>()?;
    let search = query.search.as_deref().filter(|s| !s.trim().is_empty());
    let client = state.db().get().await?;
    let (agents, total) = admin_agents::list(&client, query.user_id, search, after, limit).await?;
    Ok(Json(ListResponse::page(agents, total, limit, |a| {
        (a.created_at, a.id)
    })))
}

#[utoipa::path(get, path = "/admin/agents/{id}", tag = "admin", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_agent(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<Json<Agent>> {
    Ok(Json(admin_agents::get(&state, &id).await?))
}

/// Changes any tenant's agent with the same rules as its owner's PUT /api/agents/{id}.
#[utoipa::path(put, path = "/admin/agents/{id}", tag = "admin", request_body = AgentUpdate,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn update_agent(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    AppJson(change): AppJson<AgentUpdate>,
) -> AppResult<Json<Agent>> {
    let actor = Actor::from(&admin);
    Ok(Json(
        admin_agents::update(&state, &actor, &id, &change, "agent.updated").await?,
    ))
}

#[utoipa::path(post, path = "/admin/agents/{id}/deactivate", tag = "admin",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn deactivate_agent(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<Json<Agent>> {
    let change = AgentUpdate {
        is_active: Some(false),
        ..AgentUpdate::default()
    };
    let actor = Actor::from(&admin);
    Ok(Json(
        admin_agents::update(&state, &actor, &id, &change, "agent.deactivated").await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminConfig {
    pub settings: Settings,
    /// Which secrets are set, their last four characters and rotation times; never values.
    pub secrets: Vec<SecretInfo>,
}

#[utoipa::path(get, path = "/admin/config", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = AdminConfig), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_config(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<Json<AdminConfig>> {
    let client = state.db().get().await?;
    Ok(Json(AdminConfig {
        settings: settings::load(&client, state.config()).await?,
        secrets: secrets::describe(&state).await?,
    }))
}

/// Changes some settings (an object of setting names to values); all are validated together.
#[utoipa::path(put, path = "/admin/config/settings", tag = "admin",
    request_body(content = Object, description = "setting names to new values, e.g. {\"low_credit_threshold\": 10}"),
    security(("bearer" = [])),
    responses((status = 200, body = Settings), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn update_settings(
    State(state): State<AppState>,
    admin: AdminUser,
    AppJson(changes): AppJson<Value>,
) -> AppResult<Json<Settings>> {
    let mut client = state.db().get().await?;
    let tx = client.transaction().await?;
    let actor = Actor::from(&admin);
    let (updated, changed) =
        settings::update(&tx, state.config(), &changes, Some(admin.0.tenant)).await?;
    if !changed.is_empty() {
        let values: serde_json::Map<String, Value> = changed
            .iter()
            .map(|key| (key.clone(), changes[key].clone()))
            .collect();
        audit::record(
            &tx,
            &actor,
            audit::Entry {
                action: "settings.updated",
                target_type: "settings",
                target_id: changed.join(","),
                details: Value::Object(values),
            },
        )
        .await?;
    }
    tx.commit().await?;
    state.invalidate_settings().await;
    Ok(Json(updated))
}

/// No `Debug`: it holds the secret value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    pub value: String,
    /// Webhook secrets only: how long the previous value stays valid (default 86400, at most
    /// 604800; 0 ends it now).
    pub grace_seconds: Option<i64>,
}

/// Writes a new version of the app secret with this key changed. Running functions use it
/// within their cache TTL. The value is never returned or logged.
#[utoipa::path(put, path = "/admin/config/secrets/{name}", tag = "admin", request_body = NewSecret,
    params(("name" = String, Path, description = "elevenlabs_api_key, elevenlabs_webhook_secret, stripe_secret_key, stripe_webhook_secret, smtp_password, contact_lookup_secret or stack_secret_server_key")),
    security(("bearer" = [])),
    responses((status = 200, body = SecretInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn rotate_secret(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(name): Path<String>,
    AppJson(request): AppJson<NewSecret>,
) -> AppResult<Json<SecretInfo>> {
    let actor = Actor::from(&admin);
    Ok(Json(
        secrets::rotate(&state, &actor, &name, &request.value, request.grace_seconds).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    pub data: Vec<DeadLetter>,
}

/// Up to 10 messages of the webhook dead-letter queue (left in place).
#[utoipa::path(get, path = "/admin/webhooks/dlq", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = DeadLetters), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_dead_letters(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<Json<DeadLetters>> {
    Ok(Json(DeadLetters {
        data: events::dead_letters(&state, 10).await?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedCount {
    pub replayed: usize,
}

/// Moves the dead letters back to the webhook queue (the processor applies each once).
#[utoipa::path(post, path = "/admin/webhooks/dlq/replay", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = ReplayedCount), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn replay_dead_letters(
    State(state): State<AppState>,
    admin: AdminUser,
) -> AppResult<Json<ReplayedCount>> {
    let replayed = events::replay_dead_letters(&state, &Actor::from(&admin), 1000).await?;
    Ok(Json(ReplayedCount { replayed }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UnmatchedQuery {
    /// Also list events already matched or replayed.
    pub include_matched: Option<bool>,
}

#[utoipa::path(get, path = "/admin/webhooks/unmatched", tag = "admin", params(UnmatchedQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<UnmatchedEvent>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_unmatched(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<UnmatchedQuery>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<Json<ListResponse<UnmatchedEvent>>> {
    let limit = page.limit()?;
    let after = page.cursor::<(DateTime<Utc>, Uuid)>()?;
    let client = state.db().get().await?;
    let include_matched = query.include_matched.unwrap_or(false);
    let (events, total) = events::list_unmatched(&client, include_matched, after, limit).await?;
    Ok(Json(ListResponse::page(events, total, limit, |e| {
        (e.created_at, e.id)
    })))
}

#[utoipa::path(get, path = "/admin/webhooks/unmatched/{id}", tag = "admin", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = UnmatchedEvent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_unmatched(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> AppResult<Json<UnmatchedEvent>> {
    let id: Uuid = id
        .parse()
        .map_err(|_| AppError::not_found("unmatched event"))?;
    let client = state.db().get().await?;
    Ok(Json(events::find_unmatched(&client, id).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// Our agent id (any tenant's): the event is replayed as this agent's.
    pub agent_id: Option<Uuid>,
}

/// Replays the event (after its agent was created), or matches it to an agent and replays it.
#[utoipa::path(post, path = "/admin/webhooks/unmatched/{id}/replay", tag = "admin", request_body = Option<MatchRequest>,
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Replayed), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn replay_unmatched(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Json<Replayed>> {
    let id: Uuid = id
        .parse()
        .map_err(|_| AppError::not_found("unmatched event"))?;
    let agent = optional_body::<MatchRequest>(&body)?.agent_id;
    Ok(Json(
        events::replay_unmatched(&state, &Actor::from(&admin), id, agent).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PurchaseQuery {
    /// pending, processing, paid, failed, expired or review.
    pub status: Option<String>,
}

/// Every tenant's purchases, e.g. `?status=review` for the ones waiting for a decision.
#[utoipa::path(get, path = "/admin/purchases", tag = "admin", params(PurchaseQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AdminPurchase>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_purchases(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<PurchaseQuery>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<Json<ListResponse<AdminPurchase>>> {
    let limit = page.limit()?;
    let after = page.cursor::<(DateTime<Utc>, Uuid)>()?;
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
    Path(id): Path<String>,
    AppJson(request): AppJson<Approval>,
) -> AppResult<Json<Purchase>> {
    let id: Uuid = id.parse().map_err(|_| AppError::not_found("purchase"))?;
    let reason = text::line("reason", &request.reason, 500)?;
    let mut client = state.db().get().await?;
    let tx = client.transaction().await?;
    let paid = purchases::approve(&tx, &Actor::from(&admin), id, &reason).await?;
    tx.commit().await?;
    Ok(Json(paid))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AnalyticsQuery {
    /// The period: the last N days, 1 to 365 (default 30).
    pub days: Option<i32>,
}

#[utoipa::path(get, path = "/admin/analytics", tag = "admin", params(AnalyticsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SystemAnalytics), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn system_analytics(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<AnalyticsQuery>,
) -> AppResult<Json<SystemAnalytics>> {
    let days = query.days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(AppError::validation("days", "must be 1 to 365"));
    }
    let client = state.db().get().await?;
    Ok(Json(analytics::system(&client, days).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    pub actor_id: Option<Uuid>,
    /// e.g. user.credits_adjusted, user.suspended, secret.rotated, settings.updated.
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[serde(default, deserialize_with = "crate::time::optional_time")]
    pub since: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::time::optional_time")]
    pub until: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/admin/audit-log", tag = "admin", params(AuditQuery, PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse<AuditEntry>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn audit_log(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(query): AppQuery<AuditQuery>,
    AppQuery(page): AppQuery<PageQuery>,
) -> AppResult<Json<ListResponse<AuditEntry>>> {
    let limit = page.limit()?;
    let before: Option<i64> = page.cursor()?;
    let filter = AuditFilter {
        actor_id: query.actor_id,
        action: query.action,
        target_type: query.target_type,
        target_id: query.target_id,
        since: query.since,
        until: query.until,
    };
    let client = state.db().get().await?;
    let (entries, total) = audit::list(&client, &filter, before, limit).await?;
    Ok(Json(ListResponse::page(entries, total, limit, |e| {
        e.id.parse::<i64>().unwrap_or_default()
    })))
}
