//! Extractors whose rejections are [`AppError`]s with precise codes: malformed JSON is 400
//! `invalid_json`, JSON of the wrong shape 400 `validation_error`, a missing JSON content type 415, an oversized body 413.

use axum::{
    extract::{
        rejection::{JsonRejection, QueryRejection},
        FromRequest, FromRequestParts, Request,
    },
    http::{request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;

use crate::{
    auth::{self, AdminUser, AuthUser, Caller},
    error::AppError,
    ids::ResourceId,
    tokens::AuthError,
    AppState,
};

pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> AppError {
    let detail = rejection.body_text();
    match rejection {
        JsonRejection::JsonSyntaxError(_) => {
            AppError::bad_request("invalid_json", "the request body is not valid JSON")
                .with_details(serde_json::json!({ "reason": detail }))
        }
        JsonRejection::JsonDataError(_) => AppError::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "the request body does not have the expected fields",
        )
        .with_details(serde_json::json!({ "reason": detail })),
        JsonRejection::MissingJsonContentType(_) => AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a body with Content-Type: application/json",
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        _ => AppError::bad_request("invalid_body", "the request body could not be read"),
    }
}

pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| {
                AppError::bad_request("invalid_query", "the query string is invalid")
                    .with_details(serde_json::json!({ "reason": rejection.body_text() }))
            })
    }
}

/// The caller's address as API Gateway reports it: the last `X-Forwarded-For` entry, the one
/// API Gateway appends (earlier entries are whatever the caller sent, so cannot be trusted).
/// None when the request did not come through API Gateway (the local server's own clients).
#[derive(Debug, Clone)]
pub struct ClientAddress(pub Option<String>);

impl ClientAddress {
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Self {
        Self(
            headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .map(|ip| ip.trim().chars().take(64).collect::<String>())
                .filter(|ip| !ip.is_empty()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
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

/// Authenticates once per request: a second extractor in the same request reuses the result.
impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let user = auth::authenticate(state, bearer_token(parts)?).await?;
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// A verified token whose account a read-only handler reads beside its own statements
/// ([`Caller::read`]).
impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        auth::caller(state, bearer_token(parts)?).await
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        AuthUser::from_request_parts(parts, state)
            .await?
            .into_admin()
    }
}

/// A resource id from the request path, parsed at the edge: a segment that is not an id is the
/// resource's 404.
pub struct Id<T>(pub T);

impl<S: Send + Sync, T: ResourceId + Send> FromRequestParts<S> for Id<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| AppError::not_found(T::RESOURCE))?;
        T::parse(&raw).map(Self)
    }
}
