//! Who is calling. The tenant id comes only from a verified token: [`TenantId`] can only be
//! made inside this crate, by the extractors here or by code that found the tenant through a
//! trusted mapping (an agent id on a verified webhook).

mod jwks;
mod verify;

use axum::{extract::FromRequestParts, http::request::Parts};
use uuid::Uuid;

pub use jwks::parse_key_set;
pub use verify::{Claims, TokenVerifier};

use crate::{
    error::AppError,
    users::{self, Role, User, UserStatus},
    AppState,
};

/// The tenant (a user account) whose data a request may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantId(Uuid);

impl TenantId {
    pub(crate) fn from_trusted(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing access token")]
    Missing,
    #[error("malformed access token")]
    Malformed,
    #[error("token algorithm not accepted")]
    UnsupportedAlgorithm,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("anonymous users cannot use this API")]
    AnonymousUser,
    #[error("restricted users cannot use this API")]
    RestrictedUser,
    #[error("the key set could not be fetched: {0}")]
    KeysUnavailable(String),
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        let code = match &err {
            AuthError::Missing => "missing_token",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongIssuer | AuthError::WrongAudience => "invalid_token_issuer",
            AuthError::AnonymousUser | AuthError::RestrictedUser => "user_not_allowed",
            AuthError::KeysUnavailable(detail) => {
                return AppError::unavailable("auth_unavailable", detail.clone());
            }
            _ => "invalid_token",
        };
        AppError::unauthorized(code, err.to_string())
    }
}

/// Reads the token from `Authorization: Bearer` or, as Stack Auth's SDKs send it,
/// `x-stack-access-token`.
fn bearer_token(parts: &Parts) -> Result<&str, AuthError> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::Malformed);
        }
        return Ok(token.trim());
    }
    match parts.headers.get("x-stack-access-token") {
        Some(value) => value
            .to_str()
            .map(str::trim)
            .map_err(|_| AuthError::Malformed),
        None => Err(AuthError::Missing),
    }
}

/// An authenticated, active user. Extracting it verifies the token, creates the user on its
/// first request (with the signup bonus) and refuses suspended accounts with 403.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub tenant: TenantId,
    pub user: User,
    pub is_admin: bool,
    /// The identity provider says the email is the user's.
    pub email_verified: bool,
}

/// A tenant whose owner verified their email address: what spending the platform's telephony
/// (placing calls) requires, so a throwaway sign-up cannot dial out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedTenant(TenantId);

impl VerifiedTenant {
    pub fn tenant(self) -> TenantId {
        self.0
    }
}

impl AuthUser {
    pub fn verified_tenant(&self) -> Result<VerifiedTenant, AppError> {
        if self.email_verified {
            Ok(VerifiedTenant(self.tenant))
        } else {
            Err(AppError::forbidden(
                "email_not_verified",
                "verify your email address before placing calls",
            ))
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let token = bearer_token(parts)?;
        let claims = state.verifier().verify(token).await?;
        if let Err(wait) = state
            .tenant_limiter()
            .take(&claims.sub, std::time::Instant::now())
        {
            return Err(crate::ratelimit::too_many(
                wait,
                "too many requests for this account; slow down",
            ));
        }
        let user = users::provision(&mut state.db().get().await?, &claims).await?;
        if user.status == UserStatus::Suspended {
            return Err(AppError::forbidden(
                "account_suspended",
                "this account is suspended; contact support",
            ));
        }
        let listed_admin = claims.email_verified
            && claims.email.as_deref().is_some_and(|email| {
                state
                    .config()
                    .admin_emails
                    .iter()
                    .any(|admin| admin.eq_ignore_ascii_case(email))
            });
        let auth = AuthUser {
            tenant: user.tenant(),
            is_admin: user.role == Role::Admin || listed_admin,
            email_verified: claims.email_verified,
            user,
        };
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}

/// An [`AuthUser`] with the admin role; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(AppError::forbidden(
                "admin_required",
                "this route requires the admin role",
            ));
        }
        Ok(Self(user))
    }
}
