//! Access-token verification (Stack Auth: ES256, also EdDSA), following the checks the issuer
//! itself applies: signature by a key from the JWKS, exp/nbf with a small leeway, iss and aud,
//! and no anonymous or restricted users.

use std::collections::HashSet;

use jsonwebtoken::{errors::ErrorKind, Algorithm, Validation};
use serde::Deserialize;

use super::{jwks::JwksCache, verified::VerifiedTokens, AuthError};
use crate::config::AuthConfig;

/// What a verified token says about its user.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Expiry, Unix seconds (required: the check refuses a token without it).
    pub exp: u64,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_anonymous: bool,
    #[serde(default)]
    pub is_restricted: bool,
}

pub struct TokenVerifier {
    jwks: JwksCache,
    validation: Validation,
    verified: VerifiedTokens,
}

impl TokenVerifier {
    pub fn new(config: &AuthConfig, http: reqwest::Client) -> Self {
        let jwks = JwksCache::new(
            config.jwks_url.clone(),
            http,
            config.jwks_ttl,
            config.jwks_min_refresh_interval,
        );
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.required_spec_claims =
            HashSet::from(["exp", "sub", "iss", "aud"].map(String::from));
        let verified = VerifiedTokens::new(config.jwks_ttl.as_secs(), validation.leeway);
        Self {
            jwks,
            validation,
            verified,
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(claims) = self.verified.get(token, now) {
            return Ok(claims);
        }
        let claims = self.check(token).await?;
        self.verified.keep(token, &claims, now);
        Ok(claims)
    }

    async fn check(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA) {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = self.jwks.key(&kid).await?;
        if key.algorithm != header.alg {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![key.algorithm];
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| classify(e.kind()))?
            .claims;
        if claims.is_anonymous {
            return Err(AuthError::AnonymousUser);
        }
        if claims.is_restricted {
            return Err(AuthError::RestrictedUser);
        }
        if claims.sub.trim().is_empty() {
            return Err(AuthError::Malformed);
        }
        Ok(claims)
    }
}

fn classify(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm => AuthError::UnsupportedAlgorithm,
        _ => AuthError::Malformed,
    }
}
