//! The account flows behind /auth: sign-up, sign-in, a social sign-in's start, password reset
//! and the profile, as thin proxies to Stack Auth's REST API. Input is checked here, before
//! anything is sent. A session Stack Auth opens becomes our account exactly as any request
//! carrying its token would ([`auth::authenticate`]: the same verifier, the user provisioned
//! once by token subject with the signup bonus, the same suspension and admin checks); so a
//! later first request with that token finds the user and grants nothing twice. Every flow
//! counts against the account-flow rate limits first.

mod input;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{self, AuthUser},
    clients::stack_auth::{OAuthStart, Session},
    error::{AppError, AppResult},
    ratelimit,
    tenant::TenantId,
    text,
    users::{self, AuthProvider, Role, User, UserStatus},
    AppState,
};
use input::{
    email, invalid, password, pkce_challenge, provider, random_url_safe, redirect_uri, url_safe,
};

/// Stack Auth's password rules (`getPasswordError`): 8 to 256 characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 256;
/// The sign-in providers the product offers.
pub const PROVIDERS: [&str; 2] = ["google", "linkedin"];
/// Frontend pages the emails Stack Auth sends link to (with `?code=`).
pub const VERIFY_EMAIL_PATH: &str = "/verify-email";
pub const RESET_PASSWORD_PATH: &str = "/reset-password";

const MAX_CODE_CHARS: usize = 256;

/// Display names, here and at Stack Auth.
pub const MAX_NAME_CHARS: usize = 100;

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

/// The design's User model.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: Uuid,
    /// Null when Stack Auth's token carries none (its `email` claim is nullable: a social
    /// account without a shared address).
    #[schema(required = true)]
    pub email: Option<String>,
    /// Null until the user sets a display name (Stack Auth's `name` claim is nullable).
    #[schema(required = true)]
    pub name: Option<String>,
    pub credits: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub is_active: bool,
    pub auth_provider: AuthProvider,
    pub role: Role,
}

impl Profile {
    pub fn new(user: User, is_admin: bool) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
            credits: user.credits,
            created_at: user.created_at,
            updated_at: user.updated_at,
            is_active: user.status == UserStatus::Active,
            auth_provider: user.auth_provider,
            role: if is_admin { Role::Admin } else { user.role },
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ProfileUpdate {
    /// Display name, 1 to 100 characters.
    pub name: String,
}

/// The caller's address, when known (behind API Gateway): what the account-flow limits count.
pub type ClientAddress<'a> = Option<&'a str>;

/// Creates the account at Stack Auth (which emails a verification link to the frontend), then
/// here with the signup bonus, and signs it in.
pub async fn register(
    state: &AppState,
    client: ClientAddress<'_>,
    request: &RegisterRequest,
) -> AppResult<AuthSession> {
    let email = email(&request.email)?;
    let password = password(&request.password, PASSWORD_MIN_CHARS)?;
    let name = text::optional_line("name", request.name.as_deref(), MAX_NAME_CHARS)?;
    ratelimit::account_flow(state.rate_counter().await, client, Some(&email)).await?;
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
    open_session(state, session, named).await
}

/// Signs in with email and password; the account is created here on its first sign-in.
pub async fn login(
    state: &AppState,
    client: ClientAddress<'_>,
    request: &LoginRequest,
) -> AppResult<AuthSession> {
    let email = email(&request.email)?;
    // Any length up to the maximum: a password that breaks today's rules is simply wrong.
    let password = password(&request.password, 1)?;
    ratelimit::account_flow(state.rate_counter().await, client, Some(&email)).await?;
    let session = state.stack_auth().await?.sign_in(&email, password).await?;
    open_session(state, session, None).await
}

/// Starts a Google or LinkedIn sign-in (Stack Auth's authorize endpoint in JSON mode, PKCE).
pub async fn start_social(
    state: &AppState,
    client: ClientAddress<'_>,
    request: &SocialRequest,
) -> AppResult<SocialStart> {
    ratelimit::account_flow(state.rate_counter().await, client, None).await?;
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
    let start = OAuthStart {
        provider,
        redirect_uri,
        state: &flow_state,
        code_challenge: &code_challenge,
    };
    let authorize_url = state
        .stack_auth()
        .await?
        .oauth_authorize_url(&start)
        .await
        .map_err(|err| match err.known_code() {
            Some("REDIRECT_URL_NOT_WHITELISTED") => invalid(
                "redirect_uri",
                "is not on a domain Stack Auth trusts for this project",
            ),
            _ => err.into(),
        })?;
    Ok(SocialStart {
        provider: provider.to_owned(),
        authorize_url,
        state: flow_state,
        code_verifier,
    })
}

/// Has Stack Auth email a reset link if the email has an account; the answer is the same
/// either way.
pub async fn request_reset(
    state: &AppState,
    client: ClientAddress<'_>,
    request: &ResetRequest,
) -> AppResult<ResetSent> {
    let email = email(&request.email)?;
    ratelimit::account_flow(state.rate_counter().await, client, Some(&email)).await?;
    let callback = format!("{}{RESET_PASSWORD_PATH}", state.config().email.app_url);
    match state
        .stack_auth()
        .await?
        .send_reset_code(&email, &callback)
        .await
    {
        // Older Stack Auth releases name the missing user; the answer must not.
        Err(err) if matches!(err.known_code(), Some("USER_NOT_FOUND")) => {}
        other => other?,
    }
    Ok(ResetSent { sent: true })
}

/// Sets a new password with the code from the reset email.
pub async fn confirm_reset(
    state: &AppState,
    client: ClientAddress<'_>,
    request: &ResetConfirm,
) -> AppResult<ResetDone> {
    ratelimit::account_flow(state.rate_counter().await, client, None).await?;
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
    Ok(ResetDone { reset: true })
}

/// Sets the name at Stack Auth (the display name) first and only then here, so a refusal
/// there leaves both sides unchanged.
/// How long a profile read trusts the stored sign-in provider before asking Stack Auth again.
const AUTH_PROVIDER_RECHECK: chrono::Duration = chrono::Duration::hours(1);
/// How long after a check that failed the next one is made.
const AUTH_PROVIDER_RETRY: chrono::Duration = chrono::Duration::minutes(5);

/// The caller's profile, its `auth_provider` as Stack Auth knows it: read on the first profile
/// read after the account was provisioned, then at most hourly (a Google or LinkedIn account
/// connected later shows up). Best effort: when Stack Auth does not answer, the stored value
/// stands and a read five minutes later asks again, so an outage or an account Stack Auth does
/// not know slows one profile read in five minutes, not every one.
pub async fn profile(state: &AppState, auth: AuthUser) -> Profile {
    let fresh = auth
        .user
        .auth_provider_checked_at
        .is_some_and(|at| at > Utc::now() - AUTH_PROVIDER_RECHECK);
    let user = if fresh {
        auth.user
    } else {
        match checked_auth_provider(state, auth.tenant).await {
            Ok(user) => user,
            Err(err) => {
                tracing::warn!(error = %err, "the sign-in provider was not checked");
                let retry_at = Utc::now() - AUTH_PROVIDER_RECHECK + AUTH_PROVIDER_RETRY;
                if let Err(err) = defer_auth_provider_check(state, auth.tenant, retry_at).await {
                    tracing::warn!(error = %err, "the failed check was not recorded");
                }
                auth.user
            }
        }
    };
    Profile::new(user, auth.is_admin)
}

async fn checked_auth_provider(state: &AppState, tenant: TenantId) -> AppResult<User> {
    // No database connection is held while Stack Auth answers.
    let subject = users::auth_subject(&state.db().get().await?, tenant).await?;
    let providers = state.stack_auth().await?.oauth_providers(&subject).await?;
    let provider = AuthProvider::from_oauth(&providers);
    users::set_auth_provider(&state.db().get().await?, tenant, provider).await
}

async fn defer_auth_provider_check(
    state: &AppState,
    tenant: TenantId,
    checked_at: DateTime<Utc>,
) -> AppResult<()> {
    users::set_auth_provider_checked_at(&state.db().get().await?, tenant, checked_at).await
}

pub async fn rename(
    state: &AppState,
    user: &AuthUser,
    update: &ProfileUpdate,
) -> AppResult<Profile> {
    let name = text::line("name", &update.name, MAX_NAME_CHARS)?;
    // No database connection is held while Stack Auth answers.
    let subject = users::auth_subject(&state.db().get().await?, user.tenant).await?;
    state
        .stack_auth()
        .await?
        .set_display_name(&subject, &name)
        .await?;
    let renamed = users::update_name(&state.db().get().await?, user.tenant, &name).await?;
    Ok(Profile::new(renamed, user.is_admin))
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
            AppError::upstream("the authentication service issued a token this API does not accept")
                .with_details(serde_json::json!({ "service": "stack_auth", "reason": err.code }))
        })
}
