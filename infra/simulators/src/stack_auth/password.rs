//! Password auth (apps/backend/src/app/api/latest/auth/password/*/route.tsx) and the session
//! refresh. All accept client access or higher, so our backend calls them with its server key.

use std::sync::Arc;

use axum::{body::Bytes, extract::State, http::HeaderMap, response::IntoResponse, Json};
use serde_json::json;

use super::{
    errors::{ApiResult, KnownError},
    request::{parse_body, require, Fields, CLIENT_OR_HIGHER},
    store::{
        is_email, is_url, normalize_email, now_millis, PasswordHash, ResetCode, User, CODE_LENGTH,
        CODE_LIFETIME_MILLIS, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH,
    },
    user_id_for, StackAuthSim,
};

/// `getPasswordError` (packages/stack-shared/src/helpers/password.ts).
pub fn password_error(password: &str) -> Result<(), KnownError> {
    let length = password.chars().count();
    if length < PASSWORD_MIN_LENGTH {
        return Err(KnownError::password_too_short(PASSWORD_MIN_LENGTH));
    }
    if length > PASSWORD_MAX_LENGTH {
        return Err(KnownError::password_too_long(PASSWORD_MAX_LENGTH));
    }
    Ok(())
}

fn check_email(fields: &mut Fields, key: &str, email: &str) {
    if fields.has(key) && !email.is_empty() && !is_email(email) {
        fields.problem(key, "must be a valid email");
    }
}

fn check_url(fields: &mut Fields, key: &str, url: Option<&str>) {
    if let Some(url) = url {
        if url.chars().any(char::is_whitespace) {
            fields.problem(key, "contains spaces");
        }
        if !is_url(url) {
            fields.problem(key, "is not a valid URL");
        }
    }
}

/// `POST /api/v1/auth/password/sign-up` `{email, password, verification_callback_url?}` →
/// `{access_token, refresh_token, user_id}`.
pub async fn sign_up(
    State(sim): State<Arc<StackAuthSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    const ROUTE: &str = "POST /api/v1/auth/password/sign-up";
    let body = parse_body(&headers, &body)?;
    require(sim.authenticate(&headers)?, CLIENT_OR_HIGHER)?;
    let mut fields = Fields::new(
        ROUTE,
        "body",
        body,
        Some(&[
            "email",
            "password",
            "verification_callback_url",
            "turnstile_token",
            "turnstile_phase",
            "turnstile_previous_result",
        ]),
    );
    let email = fields.required_string("email");
    let password = fields.required_string("password");
    let callback = fields.optional_string("verification_callback_url");
    fields.optional_string("turnstile_token");
    fields.optional_string("turnstile_phase");
    fields.optional_string("turnstile_previous_result");
    check_email(&mut fields, "email", &email);
    check_url(
        &mut fields,
        "verification_callback_url",
        callback.as_deref(),
    );
    fields.finish()?;
    password_error(&password)?;

    let email = normalize_email(&email);
    let mut state = sim.state();
    let user = match state.user_by_email(&email).cloned() {
        Some(existing) if existing.primary_email_auth_enabled => {
            return Err(KnownError::user_email_already_exists(&email).into());
        }
        // Stored by /dev/token (no sign-in method yet): this sign-up completes that user.
        Some(existing) => {
            let user = state
                .user_mut(&existing.id)
                .ok_or_else(KnownError::user_not_found)?;
            user.primary_email_auth_enabled = true;
            user.password = Some(PasswordHash::new(&password));
            user.clone()
        }
        None => {
            let mut user = User::new(user_id_for(&email), Some(email.clone()));
            user.primary_email_auth_enabled = true;
            user.password = Some(PasswordHash::new(&password));
            state.users.push(user.clone());
            user
        }
    };
    if let Some(callback) = callback {
        state.send_code_email(
            "email_verification",
            "Verify your email",
            &user,
            &email,
            &callback,
        );
    }
    let (refresh_token, session) = state.new_session(&user.id);
    drop(state);
    Ok(Json(json!({
        "access_token": sim.access_token(&user, &session.id),
        "refresh_token": refresh_token,
        "user_id": user.id,
    }))
    .into_response())
}

/// `POST /api/v1/auth/password/sign-in` `{email, password}` →
/// `{access_token, refresh_token, user_id}`; a wrong e-mail or password is
/// `400 EMAIL_PASSWORD_MISMATCH`.
pub async fn sign_in(
    State(sim): State<Arc<StackAuthSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    const ROUTE: &str = "POST /api/v1/auth/password/sign-in";
    let body = parse_body(&headers, &body)?;
    require(sim.authenticate(&headers)?, CLIENT_OR_HIGHER)?;
    let mut fields = Fields::new(ROUTE, "body", body, Some(&["email", "password"]));
    let email = fields.required_string("email");
    let password = fields.required_string("password");
    if fields.has("email") && email.is_empty() {
        fields.problem("email", "must not be empty");
    }
    check_email(&mut fields, "email", &email);
    fields.finish()?;

    let mut state = sim.state();
    let user = state
        .user_by_email(&email)
        .filter(|u| u.primary_email_auth_enabled)
        .cloned();
    let matches = user
        .as_ref()
        .and_then(|u| u.password.as_ref())
        .is_some_and(|hash| hash.verify(&password));
    let Some(user) = user.filter(|_| matches) else {
        return Err(KnownError::email_password_mismatch().into());
    };
    let (refresh_token, session) = state.new_session(&user.id);
    drop(state);
    Ok(Json(json!({
        "access_token": sim.access_token(&user, &session.id),
        "refresh_token": refresh_token,
        "user_id": user.id,
    }))
    .into_response())
}

/// `POST /api/v1/auth/password/send-reset-code` `{email, callback_url}` → always
/// `{"success": "maybe, only if user with e-mail exists"}`; the e-mail (a link to
/// `callback_url?code=<45 chars>`) is recorded for `GET /dev/emails`.
pub async fn send_reset_code(
    State(sim): State<Arc<StackAuthSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    const ROUTE: &str = "POST /api/v1/auth/password/send-reset-code";
    let body = parse_body(&headers, &body)?;
    require(sim.authenticate(&headers)?, CLIENT_OR_HIGHER)?;
    let mut fields = Fields::new(ROUTE, "body", body, Some(&["email", "callback_url"]));
    let email = fields.required_string("email");
    let callback = fields.required_string("callback_url");
    check_email(&mut fields, "email", &email);
    if fields.has("callback_url") {
        check_url(&mut fields, "callback_url", Some(&callback));
    }
    fields.finish()?;

    let mut state = sim.state();
    // Stack Auth looks the e-mail up among the contact channels used for sign-in; for an unknown
    // one it waits 2-3 s before answering the same thing (the simulator does not wait).
    if let Some(user) = state
        .user_by_email(&email)
        .filter(|u| u.primary_email_auth_enabled)
        .cloned()
    {
        let to = user.primary_email.clone().unwrap_or_default();
        let sent = state.send_code_email(
            "password_reset",
            "Reset your password",
            &user,
            &to,
            &callback,
        );
        state.reset_codes.insert(
            sent.code,
            ResetCode {
                user_id: user.id,
                expires_at_millis: now_millis() + CODE_LIFETIME_MILLIS,
                used: false,
            },
        );
    }
    Ok(Json(json!({ "success": "maybe, only if user with e-mail exists" })).into_response())
}

/// Reads `{code, ...}` and finds the unused, unexpired reset code (verification-code-handler).
fn reset_code(
    sim: &StackAuthSim,
    route: &str,
    headers: &HeaderMap,
    body: &Bytes,
    extra: &[&str],
) -> Result<(String, Fields), KnownError> {
    let body = parse_body(headers, body)?;
    require(sim.authenticate(headers)?, CLIENT_OR_HIGHER)?;
    let mut allowed = vec!["code"];
    allowed.extend_from_slice(extra);
    let mut fields = Fields::new(route, "body", body, Some(&allowed));
    let code = fields.required_string("code");
    if fields.has("code") && code.chars().count() != CODE_LENGTH {
        fields.problem("code", &format!("must be exactly {CODE_LENGTH} characters"));
    }
    Ok((code.to_lowercase(), fields))
}

fn find_code(sim: &StackAuthSim, code: &str) -> Result<ResetCode, KnownError> {
    let state = sim.state();
    let found = state
        .reset_codes
        .get(code)
        .cloned()
        .ok_or_else(KnownError::verification_code_not_found)?;
    if found.expires_at_millis < now_millis() {
        return Err(KnownError::verification_code_expired());
    }
    if found.used {
        return Err(KnownError::verification_code_already_used());
    }
    Ok(found)
}

/// `POST /api/v1/auth/password/reset/check-code` `{code}` → `{"is_code_valid": true}`.
pub async fn check_reset_code(
    State(sim): State<Arc<StackAuthSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    const ROUTE: &str = "POST /api/v1/auth/password/reset/check-code";
    let (code, fields) = reset_code(&sim, ROUTE, &headers, &body, &[])?;
    fields.finish()?;
    find_code(&sim, &code)?;
    Ok(Json(json!({ "is_code_valid": true })).into_response())
}

/// `POST /api/v1/auth/password/reset` `{code, password}` → `{"success": true}`. As at Stack
/// Auth, the code is used up before the new password is checked.
pub async fn reset(
    State(sim): State<Arc<StackAuthSim>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    const ROUTE: &str = "POST /api/v1/auth/password/reset";
    let (code, mut fields) = reset_code(&sim, ROUTE, &headers, &body, &["password"])?;
    let password = fields.required_string("password");
    fields.finish()?;
    let found = find_code(&sim, &code)?;
    let mut state = sim.state();
    if let Some(stored) = state.reset_codes.get_mut(&code) {
        stored.used = true;
    }
    password_error(&password)?;
    let user = state
        .user_mut(&found.user_id)
        .ok_or_else(KnownError::user_not_found)?;
    user.password = Some(PasswordHash::new(&password));
    Ok(Json(json!({ "success": true })).into_response())
}

/// `POST /api/v1/auth/sessions/current/refresh` with `x-stack-refresh-token` →
/// `{access_token}`.
pub async fn refresh(State(sim): State<Arc<StackAuthSim>>, headers: HeaderMap) -> ApiResult {
    const ROUTE: &str = "POST /api/v1/auth/sessions/current/refresh";
    require(sim.authenticate(&headers)?, CLIENT_OR_HIGHER)?;
    let token = headers
        .get("x-stack-refresh-token")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let Some(token) = token else {
        return Err(KnownError::schema(
            ROUTE,
            &["headers.x-stack-refresh-token must be defined".to_owned()],
        )
        .into());
    };
    let mut state = sim.state();
    let session = state
        .sessions
        .get(token)
        .cloned()
        .ok_or_else(KnownError::refresh_token_not_found_or_expired)?;
    let user = state
        .user_mut(&session.user_id)
        .ok_or_else(KnownError::refresh_token_not_found_or_expired)?;
    user.last_active_at_millis = now_millis();
    let user = user.clone();
    drop(state);
    Ok(Json(json!({ "access_token": sim.access_token(&user, &session.id) })).into_response())
}
