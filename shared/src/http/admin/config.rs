//! /admin: Platform settings and rotatable secrets.

use axum::{
    extract::{Path, State},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::http::AppJson;
use crate::{
    admin::{
        audit::{self, Actor},
        secrets::{self, SecretInfo},
    },
    auth::AdminUser,
    error::{AppResult, ErrorBody},
    http::{routes, Mode},
    settings::{self, Settings},
    AppState,
};

pub(super) fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(M; get_config))
        .routes(routes!(M; update_settings))
        .routes(routes!(M; rotate_secret))
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
