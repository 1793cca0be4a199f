//! Stack Auth, as far as this backend sees it: the project's JWKS, and access tokens with the
//! exact claim shape of ../shared/ref/stack-auth.md. `POST /dev/token` is a local-only addition
//! that mints a token for an email (what `scripts/dev-token` calls).

use std::{net::SocketAddr, sync::Arc};

use aws_lc_rs::digest;
use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use jsonwebtoken::{Algorithm, Header};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::keys::{KeyRing, SigningKey};

/// Access tokens live 10 minutes by default at Stack Auth.
pub const DEFAULT_TOKEN_SECONDS: i64 = 600;

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

/// A stable user id per email, so the same dev email is the same user across tokens.
pub fn user_id_for(email: &str) -> String {
    let hash = digest::digest(&digest::SHA256, email.trim().to_lowercase().as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

pub fn router(issuer: Issuer) -> Router {
    Router::new()
        .route(
            "/api/v1/projects/{project_id}/.well-known/jwks.json",
            get(jwks),
        )
        .route("/dev/token", post(mint))
        .route("/health", get(|| async { "ok" }))
        .with_state(Arc::new(issuer))
}

pub async fn serve(addr: SocketAddr, issuer: Issuer) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router(issuer)).await
}

fn known_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("x-stack-known-error", code.to_owned())],
        Json(json!({ "code": code, "error": message })),
    )
        .into_response()
}

async fn jwks(State(issuer): State<Arc<Issuer>>, Path(project_id): Path<String>) -> Response {
    if project_id != issuer.project_id {
        return known_error(
            StatusCode::NOT_FOUND,
            "PROJECT_NOT_FOUND",
            "Project not found.",
        );
    }
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(issuer.keys.jwks()),
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
}

async fn mint(State(issuer): State<Arc<Issuer>>, Json(request): Json<MintRequest>) -> Response {
    let email = request.email.trim();
    if !email.contains('@') {
        return known_error(
            StatusCode::BAD_REQUEST,
            "SCHEMA_ERROR",
            "email must be an email address",
        );
    }
    let algorithm = match request.alg.as_deref() {
        None | Some("ES256") => Algorithm::ES256,
        Some("EdDSA") => Algorithm::EdDSA,
        Some(_) => {
            return known_error(
                StatusCode::BAD_REQUEST,
                "SCHEMA_ERROR",
                "alg must be ES256 or EdDSA",
            )
        }
    };
    let lifetime = request
        .expires_in
        .unwrap_or(DEFAULT_TOKEN_SECONDS)
        .clamp(1, 30 * 86_400);
    let user_id = request.user_id.unwrap_or_else(|| user_id_for(email));
    let claims = issuer.claims(&user_id, email, lifetime);
    let key = issuer
        .keys
        .by_algorithm(algorithm)
        .expect("both algorithms are in the ring");
    Json(json!({
        "access_token": Issuer::sign(key, &claims),
        "user_id": user_id,
        "expires_at": claims["exp"],
    }))
    .into_response()
}
