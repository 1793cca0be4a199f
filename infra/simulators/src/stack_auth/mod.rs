//! Stack Auth, as far as this backend sees it (wire formats of ../shared/ref/stack-auth.md and
//! Stack Auth's sources): the project's JWKS, access tokens with the exact claim shape, and the
//! REST endpoints behind our account flows, with in-memory users:
//! - `POST /api/v1/auth/password/sign-up|sign-in|send-reset-code|reset|reset/check-code`,
//!   `POST /api/v1/auth/sessions/current/refresh` (password.rs);
//! - `GET|PATCH /api/v1/users/{user_id|me}` (users.rs);
//! - `GET /api/v1/auth/oauth/authorize/{google|linkedin}` (oauth.rs).
//!
//! Requests authenticate as Stack Auth's do (request.rs): `x-stack-project-id`,
//! `x-stack-access-type` (`client`|`server`), `x-stack-secret-server-key` for server access,
//! optionally `x-stack-publishable-client-key` and `x-stack-access-token`. Errors are Stack
//! Auth's known errors (errors.rs).
//!
//! Configuration ([`Config::from_env`]): `STACK_SECRET_SERVER_KEY` (the only server key
//! accepted; default [`DEFAULT_SECRET_SERVER_KEY`], with a warning) and
//! `STACK_PUBLISHABLE_CLIENT_KEY` (if set, the only publishable key accepted).
//!
//! Local-only additions under `/dev`:
//! - `POST /dev/token` mints a token for an email (what `scripts/dev-token` calls). The user it
//!   names is stored too (without a password), so profile calls work with it, and a later
//!   password sign-up with that email completes the same user (same id);
//! - `GET|DELETE /dev/emails` lists or clears the e-mails Stack Auth would have sent (reset and
//!   verification links), optionally `?to=<email>`;
//! - `GET /dev/users` lists the users (server view).

mod errors;
mod oauth;
mod password;
mod request;
mod store;
mod users;

#[cfg(test)]
mod tests;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use aws_lc_rs::digest;
use axum::{
    extract::{Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use jsonwebtoken::{Algorithm, Header};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::keys::{KeyRing, SigningKey};

pub use errors::{KnownError, KNOWN_ERROR_HEADER};
pub use store::{SentEmail, User};

/// Access tokens live 10 minutes by default at Stack Auth.
pub const DEFAULT_TOKEN_SECONDS: i64 = 600;
/// The server key accepted when `STACK_SECRET_SERVER_KEY` is not set.
pub const DEFAULT_SECRET_SERVER_KEY: &str = "ssk_sim_local_secret_server_key";
/// The OAuth `client_secret` a client without a publishable key sends.
pub const PUBLIC_CLIENT_SECRET: &str = "__stack_public_client__";

#[derive(Clone)]
pub struct Issuer {
    pub keys: KeyRing,
    pub project_id: String,
    /// `iss` of normal users: `https://api.stack-auth.com/api/v1/projects/<pid>` unless overridden.
    pub issuer: String,
}

impl Issuer {
    pub fn new(keys: KeyRing, project_id: &str, issuer: Option<String>) -> Self {
        Self {
            issuer: issuer.unwrap_or_else(|| {
                format!("https://api.stack-auth.com/api/v1/projects/{project_id}")
            }),
            project_id: project_id.to_owned(),
            keys,
        }
    }

    /// The payload Stack Auth puts in a normal user's access token.
    pub fn claims(&self, user_id: &str, email: &str, lifetime_seconds: i64) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer,
            "sub": user_id,
            "aud": self.project_id,
            "iat": now,
            "exp": now + lifetime_seconds,
            "project_id": self.project_id,
            "branch_id": "main",
            "refresh_token_id": uuid::Uuid::new_v4().to_string(),
            "role": "authenticated",
            "name": email.split('@').next().unwrap_or_default(),
            "email": email,
            "email_verified": true,
            "selected_team_id": null,
            "signed_up_at": now,
            "is_anonymous": false,
            "is_restricted": false,
            "restricted_reason": null,
            "requires_totp_mfa": false
        })
    }

    /// The payload for a stored user, as Stack Auth builds it from the user
    /// (apps/backend/src/lib/tokens.tsx: `name` is the display name, `email_verified` the
    /// primary e-mail's state, `refresh_token_id` the session).
    pub fn user_claims(&self, user: &User, session_id: &str, lifetime_seconds: i64) -> Value {
        let mut claims = self.claims(
            &user.id,
            user.primary_email.as_deref().unwrap_or_default(),
            lifetime_seconds,
        );
        claims["refresh_token_id"] = json!(session_id);
        claims["name"] = json!(user.display_name);
        claims["email"] = json!(user.primary_email);
        claims["email_verified"] = json!(user.primary_email_verified);
        claims["signed_up_at"] = json!(user.signed_up_at_millis.div_euclid(1000));
        claims
    }

    /// Signs `claims` with `key`, putting the key's id in the header as Stack Auth does.
    pub fn sign(key: &SigningKey, claims: &Value) -> String {
        let mut header = Header::new(key.algorithm);
        header.kid = Some(key.kid.clone());
        header.typ = None;
        jsonwebtoken::encode(&header, claims, &key.encoding).expect("signing with a loaded key")
    }

    pub fn token_for(&self, email: &str) -> String {
        let claims = self.claims(&user_id_for(email), email, DEFAULT_TOKEN_SECONDS);
        Self::sign(&self.keys.es256, &claims)
    }
}

/// A stable user id per email, so the same dev email is the same user across tokens (and the
/// id a password sign-up with that email gets).
pub fn user_id_for(email: &str) -> String {
    let hash = digest::digest(&digest::SHA256, email.trim().to_lowercase().as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The only `x-stack-secret-server-key` accepted.
    pub secret_server_key: String,
    /// If set, the only `x-stack-publishable-client-key` (and OAuth `client_secret`, besides
    /// [`PUBLIC_CLIENT_SECRET`]) accepted; if not, any is.
    pub publishable_client_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            secret_server_key: DEFAULT_SECRET_SERVER_KEY.to_owned(),
            publishable_client_key: None,
        }
    }
}

impl Config {
    /// From `STACK_SECRET_SERVER_KEY` (warns and uses the default if unset) and
    /// `STACK_PUBLISHABLE_CLIENT_KEY`.
    pub fn from_env() -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let secret_server_key = env("STACK_SECRET_SERVER_KEY").unwrap_or_else(|| {
            tracing::warn!(
                "STACK_SECRET_SERVER_KEY is not set; using the simulator's default {DEFAULT_SECRET_SERVER_KEY:?}"
            );
            DEFAULT_SECRET_SERVER_KEY.to_owned()
        });
        Self {
            secret_server_key,
            publishable_client_key: env("STACK_PUBLISHABLE_CLIENT_KEY"),
        }
    }
}

/// The simulator: the token issuer, configuration and the in-memory project.
pub struct StackAuthSim {
    pub issuer: Issuer,
    pub config: Config,
    state: Mutex<store::State>,
}

impl StackAuthSim {
    pub fn new(issuer: Issuer, config: Config) -> Self {
        Self {
            issuer,
            config,
            state: Mutex::new(store::State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, store::State> {
        // A panicking handler cannot leave the plain data inconsistent, so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stored user with this id.
    pub fn user(&self, user_id: &str) -> Option<User> {
        self.state().user(user_id).cloned()
    }

    /// The stored user whose primary e-mail is `email` (case-insensitively).
    pub fn user_by_email(&self, email: &str) -> Option<User> {
        self.state().user_by_email(email).cloned()
    }

    /// The e-mails sent so far, oldest first.
    pub fn emails(&self) -> Vec<SentEmail> {
        self.state().emails.clone()
    }

    /// A signed access token for a stored user and session.
    fn access_token(&self, user: &User, session_id: &str) -> String {
        let claims = self
            .issuer
            .user_claims(user, session_id, DEFAULT_TOKEN_SECONDS);
        Issuer::sign(&self.issuer.keys.es256, &claims)
    }
}

pub fn router(sim: Arc<StackAuthSim>) -> Router {
    Router::new()
        .route(
            "/api/v1/projects/{project_id}/.well-known/jwks.json",
            get(jwks),
        )
        .route("/api/v1/auth/password/sign-up", post(password::sign_up))
        .route("/api/v1/auth/password/sign-in", post(password::sign_in))
        .route(
            "/api/v1/auth/password/send-reset-code",
            post(password::send_reset_code),
        )
        .route("/api/v1/auth/password/reset", post(password::reset))
        .route(
            "/api/v1/auth/password/reset/check-code",
            post(password::check_reset_code),
        )
        .route(
            "/api/v1/auth/sessions/current/refresh",
            post(password::refresh),
        )
        .route(
            "/api/v1/users/{user_id}",
            get(users::read).patch(users::update),
        )
        .route(
            "/api/v1/auth/oauth/authorize/{provider_id}",
            get(oauth::authorize),
        )
        .route("/dev/token", post(mint))
        .route("/dev/emails", get(list_emails).delete(clear_emails))
        .route("/dev/users", get(list_users))
        .route("/health", get(|| async { "ok" }))
        .with_state(sim)
}

/// Serves the simulator, configured by [`Config::from_env`].
pub async fn serve(addr: SocketAddr, issuer: Issuer) -> std::io::Result<()> {
    let sim = Arc::new(StackAuthSim::new(issuer, Config::from_env()));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(sim)).await
}

async fn jwks(State(sim): State<Arc<StackAuthSim>>, Path(project_id): Path<String>) -> Response {
    if project_id != sim.issuer.project_id {
        return KnownError::project_not_found(&project_id).into_response();
    }
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(sim.issuer.keys.jwks()),
    )
        .into_response()
}

#[derive(Deserialize)]
struct MintRequest {
    email: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    /// "ES256" (default, as Stack Auth signs) or "EdDSA".
    #[serde(default)]
    alg: Option<String>,
    /// The account's connected OAuth providers from now on (as if it had signed in with
    /// them); left as they are when absent.
    #[serde(default)]
    oauth_providers: Option<Vec<String>>,
}

async fn mint(State(sim): State<Arc<StackAuthSim>>, Json(request): Json<MintRequest>) -> Response {
    let email = request.email.trim();
    if !email.contains('@') {
        return KnownError::schema_raw("email must be an email address").into_response();
    }
    let algorithm = match request.alg.as_deref() {
        None | Some("ES256") => Algorithm::ES256,
        Some("EdDSA") => Algorithm::EdDSA,
        Some(_) => return KnownError::schema_raw("alg must be ES256 or EdDSA").into_response(),
    };
    let lifetime = request
        .expires_in
        .unwrap_or(DEFAULT_TOKEN_SECONDS)
        .clamp(1, 30 * 86_400);
    let session_id = uuid::Uuid::new_v4().to_string();
    let claims = {
        let mut state = sim.state();
        if let (Some(providers), Some(user)) =
            (&request.oauth_providers, state.user_by_email_mut(email))
        {
            user.oauth_providers = providers.clone();
        }
        let stored = state.user_by_email(email).cloned();
        match (stored, request.user_id) {
            // A user id that is not the stored user's: a token for someone else, as asked.
            (Some(user), Some(user_id)) if user.id != user_id => {
                sim.issuer.claims(&user_id, email, lifetime)
            }
            (Some(user), _) => sim.issuer.user_claims(&user, &session_id, lifetime),
            (None, user_id) => {
                let mut user = dev_user(email, user_id.unwrap_or_else(|| user_id_for(email)));
                user.oauth_providers = request.oauth_providers.clone().unwrap_or_default();
                let claims = sim.issuer.user_claims(&user, &session_id, lifetime);
                if state.user(&user.id).is_none() {
                    state.users.push(user);
                }
                claims
            }
        }
    };
    let key = sim
        .issuer
        .keys
        .by_algorithm(algorithm)
        .expect("both algorithms are in the ring");
    Json(json!({
        "access_token": Issuer::sign(key, &claims),
        "user_id": claims["sub"],
        "expires_at": claims["exp"],
    }))
    .into_response()
}

/// The user `/dev/token` stores for an e-mail nobody signed up with: verified, named after the
/// e-mail's local part (what `/dev/token` always put in its tokens), no password and not usable
/// to sign in, so a password sign-up with the same e-mail completes this user.
fn dev_user(email: &str, user_id: String) -> User {
    let email = store::normalize_email(email);
    let mut user = User::new(user_id, Some(email.clone()));
    user.primary_email_verified = true;
    user.display_name = email.split('@').next().map(str::to_owned);
    user
}

#[derive(Deserialize)]
struct EmailFilter {
    #[serde(default)]
    to: Option<String>,
}

async fn list_emails(
    State(sim): State<Arc<StackAuthSim>>,
    Query(filter): Query<EmailFilter>,
) -> Json<Value> {
    let to = filter.to.as_deref().map(store::normalize_email);
    let items: Vec<SentEmail> = sim
        .emails()
        .into_iter()
        .filter(|e| {
            to.as_deref()
                .is_none_or(|to| store::normalize_email(&e.to) == to)
        })
        .collect();
    Json(json!({ "items": items }))
}

async fn clear_emails(State(sim): State<Arc<StackAuthSim>>) -> StatusCode {
    sim.state().emails.clear();
    StatusCode::NO_CONTENT
}

async fn list_users(State(sim): State<Arc<StackAuthSim>>) -> Json<Value> {
    let items: Vec<Value> = sim.state().users.iter().map(User::server_json).collect();
    Json(json!({ "items": items }))
}
