//! The safety net that puts every error response into the design's format, whoever produced
//! it: axum's own rejections (405 from the method router, 413 from the body limit), a layer,
//! or a handler that bypassed [`AppError`].

use axum::{
    body::to_bytes,
    extract::Request,
    http::{header, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::{AppError, FormattedError};

pub async fn unknown_route() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

pub async fn normalize(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<FormattedError>().is_some()
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    // A 4xx text from axum explains the client's mistake; a 5xx body may hold internals.
    let detail = if status.is_client_error() {
        to_bytes(body, 2048)
            .await
            .ok()
            .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    } else {
        drop(body);
        None
    };
    let (code, default_message) = describe(status);
    // design.md's categories: a request that does not validate is a 400.
    let status = match status {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        other => other,
    };
    let message = detail.unwrap_or_else(|| default_message.to_owned());
    let mut formatted = AppError::new(status, code, message).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            formatted.headers_mut().insert(name, value.clone());
        }
    }
    formatted
}

fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "authentication required"),
        StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
        StatusCode::NOT_FOUND => ("route_not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "the request body has an unsupported content type",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("validation_error", "the request is invalid"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
        s if s.is_client_error() => ("bad_request", "the request is invalid"),
        StatusCode::SERVICE_UNAVAILABLE => ("service_unavailable", "service unavailable"),
        _ => ("internal_error", "an unexpected error occurred"),
    }
}
