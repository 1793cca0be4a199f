//! `GET|PATCH /api/v1/users/{user_id}` (apps/backend/src/app/api/latest/users/crud.tsx). Any user
//! needs server access; `me` (the user of `x-stack-access-token`) also works with client access,
//! which sees the client view and may update fewer fields.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    Json,
};
use serde_json::Value;

use super::{
    errors::{ApiError, ApiResult, KnownError},
    password::password_error,
    request::{parse_body, require, AccessType, Auth, Fields, CLIENT_OR_HIGHER, SERVER_OR_HIGHER},
    store::{is_email, normalize_email, PasswordHash, User},
    StackAuthSim,
};

/// The fields `PATCH` accepts with server access (`usersCrudServerUpdateSchema`); the simulator
/// stores the ones a user object shows and ignores the rest.
const SERVER_UPDATE_FIELDS: &[&str] = &[
    "display_name",
    "profile_image_url",
    "client_metadata",
    "client_read_only_metadata",
    "server_metadata",
    "primary_email",
    "primary_email_verified",
    "primary_email_auth_enabled",
    "passkey_auth_enabled",
    "password",
    "password_hash",
    "otp_auth_enabled",
    "totp_secret_base64",
    "selected_team_id",
    "is_anonymous",
    "restricted_by_admin",
    "restricted_by_admin_reason",
    "restricted_by_admin_private_details",
];

/// With client access (UNCONFIRMED beyond `display_name`, `client_metadata`,
/// `profile_image_url`, `totp_secret_base64`, which Stack Auth's tests show).
const CLIENT_UPDATE_FIELDS: &[&str] = &[
    "display_name",
    "profile_image_url",
    "client_metadata",
    "selected_team_id",
    "totp_secret_base64",
    "otp_auth_enabled",
    "passkey_auth_enabled",
];

/// Which user the path names, checking the access type it needs.
fn target(
    sim: &StackAuthSim,
    headers: &HeaderMap,
    user_id: &str,
) -> Result<(Auth, String), KnownError> {
    let auth = sim.authenticate(headers)?;
    if user_id == "me" {
        let auth = require(auth, CLIENT_OR_HIGHER)?;
        let id = auth
            .user_id
            .clone()
            .filter(|id| sim.state().user(id).is_some())
            .ok_or_else(KnownError::cannot_get_own_user_without_user)?;
        return Ok((auth, id));
    }
    let auth = require(auth, SERVER_OR_HIGHER)?;
    Ok((auth, user_id.to_owned()))
}

fn view(auth: &Auth, user: &User) -> Value {
    match auth.access_type {
        AccessType::Client => user.client_json(),
        AccessType::Server | AccessType::Admin => user.server_json(),
    }
}

/// `GET /api/v1/users/{user_id}` → the user object; `404 USER_NOT_FOUND`.
pub async fn read(
    State(sim): State<Arc<StackAuthSim>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let (auth, user_id) = target(&sim, &headers, &user_id)?;
    let user = sim.user(&user_id).ok_or_else(KnownError::user_not_found)?;
    Ok(Json(view(&auth, &user)).into_response())
}

/// `PATCH /api/v1/users/{user_id}` with the fields to change → the updated user object.
/// Metadata fields are replaced whole; `display_name: ""` clears the name.
pub async fn update(
    State(sim): State<Arc<StackAuthSim>>,
    Path(path_user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let route = format!("PATCH /api/v1/users/{path_user_id}");
    let body = parse_body(&headers, &body)?;
    let (auth, user_id) = target(&sim, &headers, &path_user_id)?;
    let allowed = match auth.access_type {
        AccessType::Client => CLIENT_UPDATE_FIELDS,
        AccessType::Server | AccessType::Admin => SERVER_UPDATE_FIELDS,
    };
    let mut fields = Fields::new(&route, "body", body, Some(allowed));
    let display_name = fields.nullable_string("display_name");
    let profile_image_url = fields.nullable_string("profile_image_url");
    let client_metadata = fields.optional_json("client_metadata");
    let client_read_only_metadata = fields.optional_json("client_read_only_metadata");
    let server_metadata = fields.optional_json("server_metadata");
    let primary_email = fields.nullable_string("primary_email");
    let primary_email_verified = fields.optional_bool("primary_email_verified");
    let primary_email_auth_enabled = fields.optional_bool("primary_email_auth_enabled");
    let password = fields.nullable_string("password");
    if let Some(Some(email)) = &primary_email {
        if email.is_empty() {
            fields.problem("primary_email", "must not be empty");
        } else if !is_email(email) {
            fields.problem("primary_email", "must be a valid email");
        }
    }
    fields.finish()?;
    if let Some(Some(password)) = &password {
        password_error(password)?;
    }

    let mut state = sim.state();
    let Some(current) = state.user(&user_id).cloned() else {
        return Err(KnownError::user_not_found().into());
    };
    let new_email = match &primary_email {
        Some(Some(email)) => Some(normalize_email(email)),
        Some(None) => None,
        None => current.primary_email.clone(),
    };
    if let Some(email) = &new_email {
        let taken = state.user_by_email(email).is_some_and(|u| u.id != user_id);
        if taken && current.primary_email.as_deref() != Some(email.as_str()) {
            return Err(KnownError::user_email_already_exists(email).into());
        }
    }
    let auth_enabled = new_email.is_some()
        && primary_email_auth_enabled.unwrap_or(current.primary_email_auth_enabled);
    let verified =
        new_email.is_some() && primary_email_verified.unwrap_or(current.primary_email_verified);
    if new_email.is_none() && primary_email_auth_enabled == Some(true) {
        return Err(ApiError::Status(
            StatusCode::BAD_REQUEST,
            "primary_email_auth_enabled cannot be true without primary_email".into(),
        ));
    }

    let user = state
        .user_mut(&user_id)
        .ok_or_else(KnownError::user_not_found)?;
    if let Some(name) = display_name {
        user.display_name = name.filter(|n| !n.is_empty());
    }
    if let Some(url) = profile_image_url {
        user.profile_image_url = url;
    }
    if let Some(value) = client_metadata {
        user.client_metadata = value;
    }
    if let Some(value) = client_read_only_metadata {
        user.client_read_only_metadata = value;
    }
    if let Some(value) = server_metadata {
        user.server_metadata = value;
    }
    if let Some(password) = password {
        user.password = password.as_deref().map(PasswordHash::new);
    }
    user.primary_email = new_email;
    user.primary_email_verified = verified;
    user.primary_email_auth_enabled = auth_enabled;
    let user = user.clone();
    drop(state);
    Ok(Json(view(&auth, &user)).into_response())
}
