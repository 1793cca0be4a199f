//! Stack Auth access tokens: the signing keys (JWKS, cached) and the verification of a token
//! into its [`Claims`]. Knows nothing of users or requests; `auth` builds on it.

mod jwks;
mod verified;
mod verify;

pub use jwks::parse_key_set;
pub use verify::{Claims, TokenVerifier};

use crate::error::AppError;

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
