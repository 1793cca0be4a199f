//! /auth/register, /auth/login, /auth/social and /auth/reset-password: thin proxies to Stack
//! Auth's REST API. Input is checked here, before anything is sent. A session Stack Auth opens
//! becomes our account exactly as any request carrying its token would: the same verifier, the
//! user provisioned once by token subject (with the signup bonus), the same suspension and admin
//! checks; so a later first request with that token finds the user and grants nothing twice.

use axum::{extract::State, http::StatusCode, Json};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{profile::Profile, AppJson, ClientAddress};
use crate::{
    auth::{self, AuthUser},
    clients::stack_auth::{OAuthStart, Session},
    error::{AppError, AppResult, ErrorBody},
    ratelimit, text, users, AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(social))
        .routes(routes!(reset_password))
        .routes(routes!(confirm_reset))
}

/// Stack Auth's password rules (`getPasswordError`): 8 to 256 characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 256;
/// The sign-in providers the product offers.
pub const PROVIDERS: [&str; 2] = ["google", "linkedin"];
/// Frontend pages the emails Stack Auth sends link to (with `?code=`).
pub const VERIFY_EMAIL_PATH: &str = "/verify-email";
pub const RESET_PASSWORD_PATH: &str = "/reset-password";

const MAX_URL_CHARS: usize = 2048;
const MAX_CODE_CHARS: usize = 256;

// No `Debug` on the requests: they hold passwords.

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    /// 8 to 256 characters.
    #[schema(format = Password, min_length = 8, max_length = 256)]
    pub password: String,
    /// Display name, up to 100 characters.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

/// The signed-in account and its Stack Auth session. The access token goes in
/// `Authorization: Bearer` on every other request; the refresh token renews it at Stack Auth
/// (`POST /api/v1/auth/sessions/current/refresh`).
#[derive(Serialize, ToSchema)]
pub struct AuthSession {
    pub user: Profile,
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SocialRequest {
    /// `google` or `linkedin`.
    pub provider: String,
    /// The frontend page Stack Auth sends the browser back to with `code` and `state` (or
    /// `errorCode`): an http(s) URL on the frontend's origin.
    pub redirect_uri: String,
    /// The client's own OAuth state; one is generated when absent.
    #[serde(default)]
    pub state: Option<String>,
    /// The S256 PKCE challenge of a verifier the client keeps; when absent, a verifier is
    /// generated and returned as `code_verifier`.
    #[serde(default)]
    pub code_challenge: Option<String>,
}

/// Where to send the browser. Back on `redirect_uri`, the client checks `state` and exchanges
/// `code` at Stack Auth (`POST /api/v1/auth/oauth/token`, form fields `grant_type=authorization_code`,
/// `code`, `redirect_uri`, `code_verifier`, `client_id`, `client_secret`); the first request
/// with the resulting token creates the account.
#[derive(Serialize, ToSchema)]
pub struct SocialStart {
    pub provider: String,
    /// The provider's sign-in page.
    pub authorize_url: String,
    pub state: String,
    /// The PKCE verifier for the token exchange; null when the client sent its own challenge.
    pub code_verifier: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetSent {
    /// Always true: whether the email has an account is not revealed.
    pub sent: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetConfirm {
    /// The `code` of the link in the reset email.
    pub code: String,
    /// The new password, 8 to 256 characters.
    #[schema(format = Password, min_length = 8, max_length = 256)]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetDone {
    pub reset: bool,
}

#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    description = "Creates the account at Stack Auth (which emails a verification link to FRONTEND_URL/verify-email), then here with the signup bonus, and signs it in.",
    responses((status = 201, body = AuthSession), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<RegisterRequest>,
) -> AppResult<(StatusCode, Json<AuthSession>)> {
    let email = email(&request.email)?;
    let password = password(&request.password, PASSWORD_MIN_CHARS)?;
    let name = text::optional_line(
        "name",
        request.name.as_deref(),
        super::profile::MAX_NAME_CHARS,
    )?;
    ratelimit::account_flow(state.rate_counter(), client.as_deref(), Some(&email)).await?;
    let stack = state.stack_auth().await?;
    let verify_url = format!("{}{VERIFY_EMAIL_PATH}", state.config().email.app_url);
    let session = stack.sign_up(&email, password, Some(&verify_url)).await?;
    // The account exists from here on: a name Stack Auth could not take is left unset on both
    // sides (PUT /auth/profile sets it later) rather than failing the registration.
    let mut named = None;
    if let Some(name) = &name {
        match stack.set_display_name(&session.user_id, name).await {
            Ok(()) => named = Some(name.as_str()),
            Err(err) => tracing::warn!(error = %err, "the new account's name was not set"),
        }
    }
    let session = open_session(&state, session, named).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    description = "Signs in with email and password at Stack Auth; the account is created here on its first sign-in.",
    responses((status = 200, body = AuthSession), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<LoginRequest>,
) -> AppResult<Json<AuthSession>> {
    let email = email(&request.email)?;
    // Any length up to the maximum: a password that breaks today's rules is simply wrong.
    let password = password(&request.password, 1)?;
    ratelimit::account_flow(state.rate_counter(), client.as_deref(), Some(&email)).await?;
    let stack = state.stack_auth().await?;
    let session = stack.sign_in(&email, password).await?;
    Ok(Json(open_session(&state, session, None).await?))
}

#[utoipa::path(post, path = "/auth/social", tag = "auth", request_body = SocialRequest,
    description = "Starts a Google or LinkedIn sign-in through Stack Auth (its authorize endpoint in JSON mode, with PKCE).",
    responses((status = 200, body = SocialStart), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn social(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<SocialRequest>,
) -> AppResult<Json<SocialStart>> {
    ratelimit::account_flow(state.rate_counter(), client.as_deref(), None).await?;
    let provider = provider(&request.provider)?;
    let redirect_uri = redirect_uri(
        &request.redirect_uri,
        state
            .config()
            .frontend_origin
            .as_ref()
            .and_then(|o| o.to_str().ok()),
    )?;
    let flow_state = match request.state.as_deref() {
        Some(value) => url_safe("state", value, 8, 512)?.to_owned(),
        None => random_url_safe(),
    };
    let (code_challenge, code_verifier) = match request.code_challenge.as_deref() {
        Some(challenge) => (
            url_safe("code_challenge", challenge, 43, 128)?.to_owned(),
            None,
        ),
        None => {
            let verifier = random_url_safe();
            (pkce_challenge(&verifier), Some(verifier))
        }
    };
    let stack = state.stack_auth().await?;
    let start = OAuthStart {
        provider,
        redirect_uri,
        state: &flow_state,
        code_challenge: &code_challenge,
    };
    let authorize_url =
        stack
            .oauth_authorize_url(&start)
            .await
            .map_err(|err| match err.known_code() {
                Some("REDIRECT_URL_NOT_WHITELISTED") => invalid(
                    "redirect_uri",
                    "is not on a domain Stack Auth trusts for this project",
                ),
                _ => err.into(),
            })?;
    Ok(Json(SocialStart {
        provider: provider.to_owned(),
        authorize_url,
        state: flow_state,
        code_verifier,
    }))
}

#[utoipa::path(post, path = "/auth/reset-password", tag = "auth", request_body = ResetRequest,
    description = "Asks Stack Auth to email a reset link (to FRONTEND_URL/reset-password?code=...) if the email has an account; the answer is the same either way.",
    responses((status = 202, body = ResetSent), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn reset_password(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<ResetRequest>,
) -> AppResult<(StatusCode, Json<ResetSent>)> {
    let email = email(&request.email)?;
    ratelimit::account_flow(state.rate_counter(), client.as_deref(), Some(&email)).await?;
    let stack = state.stack_auth().await?;
    let callback = format!("{}{RESET_PASSWORD_PATH}", state.config().email.app_url);
    match stack.send_reset_code(&email, &callback).await {
        // Older Stack Auth releases name the missing user; the answer must not.
        Err(err) if matches!(err.known_code(), Some("USER_NOT_FOUND")) => {}
        other => other?,
    }
    Ok((StatusCode::ACCEPTED, Json(ResetSent { sent: true })))
}

#[utoipa::path(post, path = "/auth/reset-password/confirm", tag = "auth", request_body = ResetConfirm,
    description = "Sets a new password with the code from the reset email.",
    responses((status = 200, body = ResetDone), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn confirm_reset(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    AppJson(request): AppJson<ResetConfirm>,
) -> AppResult<Json<ResetDone>> {
    ratelimit::account_flow(state.rate_counter(), client.as_deref(), None).await?;
    let code = request.code.trim();
    if code.is_empty()
        || code.chars().count() > MAX_CODE_CHARS
        || code.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("code", "is not a reset code"));
    }
    let password = password(&request.password, PASSWORD_MIN_CHARS)?;
    state
        .stack_auth()
        .await?
        .reset_password(code, password)
        .await?;
    Ok(Json(ResetDone { reset: true }))
}

/// Our account for a session Stack Auth just opened, with `name` (already at Stack Auth) set
/// on our side too.
async fn open_session(
    state: &AppState,
    session: Session,
    name: Option<&str>,
) -> AppResult<AuthSession> {
    let auth = account(state, &session.access_token).await?;
    let mut user = auth.user;
    if let Some(name) = name {
        if user.name.as_deref() != Some(name) {
            user = users::update_name(&state.db().get().await?, auth.tenant, name).await?;
        }
    }
    Ok(AuthSession {
        user: Profile::new(user, auth.is_admin),
        access_token: session.access_token,
        refresh_token: session.refresh_token,
    })
}

/// The account a bearer of `access_token` is: verified, provisioned and checked as any request
/// is. A token Stack Auth just issued that we refuse means the two sides disagree (issuer,
/// audience, keys): a 502, not the client's 401.
async fn account(state: &AppState, access_token: &str) -> AppResult<AuthUser> {
    auth::authenticate(state, access_token)
        .await
        .map_err(|err| {
            if err.status != StatusCode::UNAUTHORIZED {
                return err;
            }
            tracing::error!(code = err.code, "a token Stack Auth issued was refused");
            AppError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "the authentication service issued a token this API does not accept",
            )
            .with_details(serde_json::json!({ "service": "stack_auth", "reason": err.code }))
        })
}

/// A rule broken by the input: 400 `validation_error` naming the field.
fn invalid(field: &str, reason: &str) -> AppError {
    AppError::validation(field, reason)
}

fn email(raw: &str) -> AppResult<String> {
    let email = raw.trim();
    if email.is_empty() {
        return Err(invalid("email", "must not be empty"));
    }
    if email.chars().count() > text::MAX_EMAIL_CHARS || !text::is_email(email) {
        return Err(invalid("email", "is not an email address"));
    }
    Ok(email.to_owned())
}

/// Kept exactly as typed (spaces count), `min..=256` characters.
fn password(raw: &str, min_chars: usize) -> AppResult<&str> {
    let length = raw.chars().count();
    if length < min_chars {
        let reason = if min_chars <= 1 {
            "must not be empty".to_owned()
        } else {
            format!("must be at least {min_chars} characters")
        };
        return Err(invalid("password", &reason));
    }
    if length > PASSWORD_MAX_CHARS {
        return Err(invalid(
            "password",
            &format!("must be at most {PASSWORD_MAX_CHARS} characters"),
        ));
    }
    Ok(raw)
}

fn provider(raw: &str) -> AppResult<&'static str> {
    let wanted = raw.trim();
    PROVIDERS
        .into_iter()
        .find(|p| p.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            AppError::bad_request(
                "unsupported_provider",
                "provider must be google or linkedin",
            )
            .with_details(serde_json::json!({ "field": "provider", "allowed": PROVIDERS }))
        })
}

/// An absolute http(s) URL without credentials, on `frontend_origin` when one is configured
/// (so nobody can have Stack Auth deliver a sign-in code to their own site). Kept as given:
/// the token exchange must send the very same string.
fn redirect_uri<'a>(raw: &'a str, frontend_origin: Option<&str>) -> AppResult<&'a str> {
    let raw = raw.trim();
    let refuse = |reason: &str| {
        Err(
            AppError::bad_request("invalid_redirect_uri", format!("redirect_uri {reason}"))
                .with_details(serde_json::json!({ "field": "redirect_uri", "reason": reason })),
        )
    };
    if raw.chars().count() > MAX_URL_CHARS {
        return refuse("is too long");
    }
    let Ok(url) = reqwest::Url::parse(raw) else {
        return refuse("is not an absolute URL");
    };
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return refuse("must be an http(s) URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("must not carry credentials");
    }
    if let Some(origin) = frontend_origin {
        if url.origin().ascii_serialization() != origin {
            return refuse("must be on the frontend's origin");
        }
    }
    Ok(raw)
}

/// A client-chosen OAuth value: `min..=max` characters of the URL-safe set PKCE allows.
fn url_safe<'a>(field: &str, raw: &'a str, min: usize, max: usize) -> AppResult<&'a str> {
    let valid = (min..=max).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if valid {
        Ok(raw)
    } else {
        Err(invalid(
            field,
            &format!("must be {min} to {max} characters of A-Z a-z 0-9 - . _ ~"),
        ))
    }
}

/// 32 random bytes, base64url: a PKCE verifier (43 characters) or an OAuth state.
fn random_url_safe() -> String {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0_u8; 32];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // The system generator does not fail in practice; UUIDs come from it too.
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 S256: base64url(SHA-256(verifier)).
fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_passwords_are_checked_before_stack_auth() {
        assert_eq!(email(" Ada@Example.com ").expect("ok"), "Ada@Example.com");
        for bad in ["", "ada", "ada@x", "a b@x.com"] {
            let err = email(bad).expect_err(bad);
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "validation_error")
            );
        }
        assert!(password("12345678", PASSWORD_MIN_CHARS).is_ok());
        assert!(
            password(" 1234567", PASSWORD_MIN_CHARS).is_ok(),
            "spaces count"
        );
        assert!(password(&"é".repeat(256), PASSWORD_MIN_CHARS).is_ok());
        for bad in ["", "1234567", &"x".repeat(257)] {
            let err = password(bad, PASSWORD_MIN_CHARS).expect_err("refused");
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert_eq!(err.details.expect("details")["field"], "password");
        }
        assert!(password("short", 1).is_ok(), "sign-in takes any length");
        assert!(password("", 1).is_err());
    }

    #[test]
    fn only_our_providers() {
        assert_eq!(provider("google").expect("ok"), "google");
        assert_eq!(provider(" LinkedIn ").expect("ok"), "linkedin");
        for bad in ["github", "", "google/../x"] {
            let err = provider(bad).expect_err(bad);
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "unsupported_provider")
            );
        }
    }

    #[test]
    fn redirects_stay_on_the_frontend() {
        let origin = Some("https://app.example.com");
        for good in [
            "https://app.example.com/auth/callback",
            "https://app.example.com:443/cb?x=1",
            " https://app.example.com ",
        ] {
            assert!(redirect_uri(good, origin).is_ok(), "{good}");
        }
        for bad in [
            "https://evil.example.com/cb",
            "http://app.example.com/cb",
            "https://app.example.com.evil.com/cb",
            "https://app.example.com@evil.com/cb",
            "https://user:pw@app.example.com/cb",
            "javascript:alert(1)",
            "/relative",
            "",
        ] {
            let err = redirect_uri(bad, origin).expect_err(bad);
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "invalid_redirect_uri")
            );
        }
        assert!(redirect_uri("https://anywhere.example/cb", None).is_ok());
        assert!(redirect_uri("ftp://anywhere.example/cb", None).is_err());
    }

    #[test]
    fn pkce_values() {
        let verifier = random_url_safe();
        assert_eq!(verifier.len(), 43);
        assert!(url_safe("v", &verifier, 43, 128).is_ok());
        assert_ne!(verifier, random_url_safe());
        // Computed independently (Python hashlib + base64.urlsafe_b64encode).
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mJ92K9IXrrsmV8ZvjI1hAkF0aXkGWk"),
            "b-vqQhBSsayY08KmVzhArnNte14CwTTfGEp8vxOcaR0"
        );
        assert!(url_safe("state", "short", 8, 512).is_err());
        assert!(url_safe("state", "has space here", 8, 512).is_err());
    }
}
