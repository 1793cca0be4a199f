//! /admin/*: the admin panel's API. Every route takes an [`AdminUser`]: no token is 401,
//! anyone without the admin role 403. Every change is written to the audit log.

mod agents;
mod analytics;
mod audit;
mod config;
mod purchases;
mod users;
mod webhooks;

use axum::body::Bytes;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    error::{AppError, AppResult},
    http::Mode,
    AppState,
};

pub fn router<M: Mode>() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::router::<M>())
        .merge(agents::router::<M>())
        .merge(config::router::<M>())
        .merge(webhooks::router::<M>())
        .merge(purchases::router::<M>())
        .merge(analytics::router::<M>())
        .merge(audit::router::<M>())
}

/// A JSON body that may be left out entirely (then every field takes its default).
pub(super) fn optional_body<T: DeserializeOwned + Default>(body: &Bytes) -> AppResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|err| {
        if err.is_syntax() || err.is_eof() {
            AppError::bad_request("invalid_json", "the request body is not valid JSON")
                .with_details(serde_json::json!({ "reason": err.to_string() }))
        } else {
            AppError::validation("body", err.to_string())
        }
    })
}
