//! What every API simulator does before normal handling: each `/v1` request is recorded
//! (`GET|DELETE /dev/requests`), then takes the next matching scripted fault
//! (`POST|DELETE /dev/faults`, script format in [`crate::faults`]). The simulators differ only in
//! their [`Dialect`]: how a body is recorded, which headers are, and the error body of a bare
//! scripted status.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{Query, Request, State},
    http::{HeaderMap, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::faults::{dev_error, Faults};

/// How many received requests `/dev/requests` remembers (oldest are dropped first).
const REQUEST_LOG_LIMIT: usize = 10_000;

/// One request received under `/v1` (what `GET /dev/requests` lists).
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Only for simulators whose [`Dialect`] logs headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Map<String, Value>>,
    /// See [`RecordedBody`].
    pub body: Value,
    pub at_unix_ms: i64,
}

/// How a request body is recorded.
#[derive(Clone, Copy, Debug)]
pub enum RecordedBody {
    /// The raw body as a string, as received.
    Raw,
    /// The JSON body, the text of a non-JSON body, or null when empty.
    Json,
}

impl RecordedBody {
    fn record(self, bytes: &[u8]) -> Value {
        match self {
            Self::Raw => Value::String(String::from_utf8_lossy(bytes).into_owned()),
            Self::Json if bytes.iter().all(u8::is_ascii_whitespace) => Value::Null,
            Self::Json => serde_json::from_slice(bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
        }
    }
}

/// Picks the headers worth recording (secrets redacted).
pub type RecordHeaders = fn(&HeaderMap) -> Map<String, Value>;

/// What differs between the simulators' logs and injected errors.
#[derive(Clone, Copy, Debug)]
pub struct Dialect {
    /// Larger request bodies get a 413 instead of being recorded.
    pub body_limit: usize,
    pub body: RecordedBody,
    /// None for simulators that record no headers.
    pub headers: Option<RecordHeaders>,
    /// The service's usual error body for a status that the script gives no body for.
    pub default_error_body: fn(StatusCode) -> Value,
}

/// One simulator's request log and queued faults.
pub struct Interceptor {
    dialect: Dialect,
    faults: Faults,
    requests: Mutex<VecDeque<RecordedRequest>>,
}

impl Interceptor {
    pub fn new(dialect: Dialect) -> Arc<Self> {
        Arc::new(Self {
            dialect,
            faults: Faults::default(),
            requests: Mutex::default(),
        })
    }

    fn log(&self) -> MutexGuard<'_, VecDeque<RecordedRequest>> {
        // A panicking handler cannot leave the plain data inconsistent, so keep serving.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `/v1` requests received so far whose path starts with `path_prefix`, oldest first.
    pub fn requests(&self, path_prefix: &str) -> Vec<RecordedRequest> {
        self.log()
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    /// `routes` plus `/dev/faults` and `/dev/requests`, all behind the recording and
    /// fault-playing layer.
    pub fn around<S: Clone + Send + Sync + 'static>(
        self: &Arc<Self>,
        routes: Router<S>,
    ) -> Router<S> {
        let dev_routes = Router::new()
            .route("/dev/faults", post(add_faults).delete(clear_faults))
            .route("/dev/requests", get(list_requests).delete(clear_requests))
            .with_state(self.clone());
        routes
            .merge(dev_routes)
            .layer(middleware::from_fn_with_state(
                self.clone(),
                record_and_inject,
            ))
    }
}

async fn record_and_inject(
    State(interceptor): State<Arc<Interceptor>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if !path.starts_with("/v1/") {
        return next.run(request).await;
    }
    let dialect = interceptor.dialect;
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, dialect.body_limit).await else {
        return dev_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: dialect.headers.map(|logged| logged(&parts.headers)),
        body: dialect.body.record(&bytes),
        at_unix_ms: chrono::Utc::now().timestamp_millis(),
    };
    {
        let mut log = interceptor.log();
        if log.len() >= REQUEST_LOG_LIMIT {
            log.pop_front();
        }
        log.push_back(recorded);
    }
    let fault = interceptor
        .faults
        .take(parts.method.as_str(), &path, &bytes);
    let request = Request::from_parts(parts, Body::from(bytes));
    match fault {
        Some(fault) => fault.play(request, next, dialect.default_error_body).await,
        None => next.run(request).await,
    }
}

async fn add_faults(State(interceptor): State<Arc<Interceptor>>, body: Bytes) -> Response {
    interceptor.faults.add(&body)
}

async fn clear_faults(State(interceptor): State<Arc<Interceptor>>) -> Response {
    interceptor.faults.clear()
}

/// `GET /dev/requests?path_prefix=..`: oldest first.
async fn list_requests(
    State(interceptor): State<Arc<Interceptor>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let prefix = query.get("path_prefix").map_or("", String::as_str);
    Json(interceptor.requests(prefix)).into_response()
}

async fn clear_requests(State(interceptor): State<Arc<Interceptor>>) -> Response {
    let cleared = std::mem::take(&mut *interceptor.log()).len();
    Json(json!({ "cleared": cleared })).into_response()
}
