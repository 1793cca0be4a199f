//! One error type and one HTTP mapping. Every error body is the design's
//! `{"error":{"code","message","details","timestamp"}}`; 5xx bodies never carry internals
//! (they are logged inside the request span, which holds the request id).

use std::borrow::Cow;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub details: Option<Value>,
    /// Sent as `Retry-After` (whole seconds, at least 1).
    pub retry_after: Option<std::time::Duration>,
    source: Option<Source>,
}

/// The wire shape of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorPayload,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorPayload {
    /// Stable, machine-readable snake_case code.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

/// Marks a response whose body is already in the error format, so the safety-net
/// middleware in `http::errors` leaves it alone.
#[derive(Clone, Copy, Debug)]
pub struct FormattedError;

impl AppError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// What went wrong underneath: logged, never sent.
    fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 (design.md's validation category) for input that breaks a rule; `field` names
    /// what to fix.
    pub fn validation(field: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            format!("{field}: {reason}"),
        )
        .with_details(serde_json::json!({ "field": field, "reason": reason }))
    }

    pub fn unauthorized(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// Insufficient funds for the request (credits): 402.
    pub fn payment_required(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::PAYMENT_REQUIRED, code, message)
    }

    /// The input is bigger than we take: 413.
    pub fn too_large(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    /// The input is of a kind we do not take: 415.
    pub fn unsupported_media_type(
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, message)
    }

    /// Too many requests: 429 `rate_limited`, with when to try again.
    pub fn rate_limited(retry_after: std::time::Duration, message: &'static str) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            .with_retry_after(retry_after)
    }

    /// A service we called answered, but not with what the request needed: 502
    /// `upstream_error` (the details name the service).
    pub fn upstream(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "upstream_error", message)
    }

    /// Our own configuration is wrong: 500 `internal_error` saying what cannot work.
    pub fn misconfigured(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// A service this request depends on (Stack Auth, AWS) failed: design.md's external
    /// service category, 502.
    pub fn unavailable(code: &'static str, source: impl Into<Source>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            code,
            "a service this request depends on is unavailable; try again shortly",
        )
        .with_source(source)
    }

    /// The database cannot be reached (or its circuit is open): design.md's server-error
    /// category, with a stable code and when to try again.
    pub fn database_unavailable(
        retry_after: std::time::Duration,
        source: impl Into<Source>,
    ) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "database_unavailable",
            "the database is temporarily unavailable; try again shortly",
        )
        .with_retry_after(retry_after)
        .with_source(source)
    }

    /// The database is reachable but could not take this work now (a deadlock, a
    /// serialization conflict, every pooled connection busy): retrying shortly may succeed.
    pub fn database_busy(source: impl Into<Source>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "database_busy",
            "the database is busy; try again shortly",
        )
        .with_retry_after(std::time::Duration::from_secs(1))
        .with_source(source)
    }

    pub fn internal(source: impl Into<Source>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred",
        )
        .with_source(source)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorPayload {
                code: self.code.to_owned(),
                message: self.message.to_string(),
                details: self.details.clone(),
                timestamp: chrono::Utc::now(),
            },
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, error = %self, "request failed");
        } else {
            tracing::debug!(code = self.code, message = %self.message, "request rejected");
        }
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.max(1).into());
        }
        response.extensions_mut().insert(FormattedError);
        response
    }
}

impl From<tokio_postgres::Error> for AppError {
    fn from(err: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        // A lost connection or a lock conflict is worth retrying; anything else is a bug.
        match err.code() {
            None if is_connection_failure(&err) => {
                Self::database_unavailable(std::time::Duration::from_secs(1), err)
            }
            None => Self::internal(err),
            Some(code)
                if *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                Self::database_busy(err)
            }
            // The session ended under the query: Postgres shutting down (57P0x), or a pooler
            // that lost or cannot reach its server (PgBouncer's FATAL 08P01).
            Some(code)
                if code.code().starts_with("08")
                    || *code == SqlState::ADMIN_SHUTDOWN
                    || *code == SqlState::CRASH_SHUTDOWN
                    || *code == SqlState::CANNOT_CONNECT_NOW =>
            {
                Self::database_unavailable(std::time::Duration::from_secs(1), err)
            }
            Some(_) => Self::internal(err),
        }
    }
}

/// A lost or refused connection, as opposed to our own mistake (a parameter that does not
/// serialize, a row that does not convert), which is a bug and not worth retrying.
fn is_connection_failure(err: &tokio_postgres::Error) -> bool {
    use std::error::Error;
    err.is_closed()
        || err
            .source()
            .is_some_and(|source| source.is::<std::io::Error>())
        || err.to_string().contains("timeout")
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_source() {
        let err = AppError::internal(std::io::Error::other("password=hunter2 at db:5432"));
        let body = serde_json::to_string(&err.body()).expect("serializes");
        assert!(!body.contains("hunter2"), "{body}");
        assert!(body.contains("\"code\":\"internal_error\""), "{body}");
        assert!(
            err.to_string().contains("hunter2"),
            "the log keeps the detail"
        );
    }

    #[test]
    fn body_has_the_design_fields() {
        let body = serde_json::to_value(AppError::validation("name", "too long").body())
            .expect("serializes");
        let payload = &body["error"];
        assert_eq!(payload["code"], "validation_error");
        assert_eq!(payload["details"]["field"], "name");
        assert!(payload["message"].is_string());
        assert!(payload["timestamp"].is_string());
    }
}
