//! Fault injection shared by the simulators, and the listener that lets a fault close a
//! connection without answering.
//!
//! `POST /dev/faults {"path_prefix":"/v1/...","method"?:"GET","body_contains"?:"..",
//! "responses":[..]}` queues scripted responses; each matching request takes the next one (in
//! order) before normal handling resumes. `body_contains` matches the raw body or its
//! form-decoded text, so concurrent tests can target their own requests. An entry is
//! `{"status":429,"headers":{..},"body":<json or string>}` (no body: the simulator's usual error
//! for that status), `{"delay_ms":N}` (sleep, then handle normally; may be combined with the
//! others), `{"raw":"not json"}` (a malformed body, status 200 unless given) or `{"drop":true}`
//! (close the connection without any response, so the client sees a network error; needs the
//! simulator to run through [`serve`]). `DELETE /dev/faults` clears the queues.

use std::{
    collections::VecDeque,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    extract::{connect_info::Connected, ConnectInfo, Request},
    http::{header, HeaderName, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    serve::{IncomingStream, Listener},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};

/// One scripted response.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct FaultResponse {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// A JSON value is sent as JSON; a JSON string is sent as plain text.
    #[serde(default)]
    pub body: Option<Value>,
    /// Sent verbatim with `content-type: application/json` (for malformed-body tests).
    #[serde(default)]
    pub raw: Option<String>,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Close the connection without answering.
    #[serde(default)]
    pub drop: bool,
}

/// Scripted responses for requests whose path starts with `path_prefix` (and, if given, whose
/// method is `method` and whose body contains `body_contains`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FaultRule {
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub body_contains: Option<String>,
    pub responses: VecDeque<FaultResponse>,
}

fn default_prefix() -> String {
    "/v1".into()
}

impl FaultRule {
    fn matches(&self, method: &str, path: &str, body: &[u8]) -> bool {
        path.starts_with(&self.path_prefix)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .body_contains
                .as_deref()
                .is_none_or(|text| body_contains(body, text))
            && !self.responses.is_empty()
    }
}

fn body_contains(body: &[u8], text: &str) -> bool {
    let raw = String::from_utf8_lossy(body);
    raw.contains(text) || crate::form::decode(&raw).contains(text)
}

/// A simulator's queued faults.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    fn rules(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next scripted response for this request, if any rule matches.
    pub fn take(&self, method: &str, path: &str, body: &[u8]) -> Option<FaultResponse> {
        let mut rules = self.rules();
        let next = rules
            .iter_mut()
            .find(|rule| rule.matches(method, path, body))
            .and_then(|rule| rule.responses.pop_front());
        rules.retain(|rule| !rule.responses.is_empty());
        next
    }

    /// `POST /dev/faults`: queues a rule; answers `{"queued":n,"pending":total}`.
    pub fn add(&self, body: &[u8]) -> Response {
        let rule: FaultRule = match serde_json::from_slice(body) {
            Ok(rule) => rule,
            Err(e) => return dev_error(StatusCode::BAD_REQUEST, format!("bad fault script: {e}")),
        };
        if let Some(bad) = rule
            .responses
            .iter()
            .filter_map(|r| r.status)
            .find(|s| StatusCode::from_u16(*s).is_err())
        {
            return dev_error(StatusCode::BAD_REQUEST, format!("bad status {bad}"));
        }
        let queued = rule.responses.len();
        let mut rules = self.rules();
        if queued > 0 {
            rules.push(rule);
        }
        let pending: usize = rules.iter().map(|r| r.responses.len()).sum();
        Json(json!({ "queued": queued, "pending": pending })).into_response()
    }

    /// `DELETE /dev/faults`: answers `{"cleared":n}`.
    pub fn clear(&self) -> Response {
        let cleared: usize = std::mem::take(&mut *self.rules())
            .iter()
            .map(|r| r.responses.len())
            .sum();
        Json(json!({ "cleared": cleared })).into_response()
    }
}

impl FaultResponse {
    /// The scripted response (`default_body` gives the body for a bare status), or None when
    /// this entry only delays.
    fn to_response(&self, default_body: fn(StatusCode) -> Value) -> Option<Response> {
        if self.status.is_none() && self.body.is_none() && self.raw.is_none() {
            return None;
        }
        let status = self
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        let mut response = match (&self.raw, &self.body) {
            (Some(raw), _) => (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                raw.clone(),
            )
                .into_response(),
            (None, Some(Value::String(text))) => (status, text.clone()).into_response(),
            (None, Some(body)) => (status, Json(body.clone())).into_response(),
            (None, None) => (status, Json(default_body(status))).into_response(),
        };
        for (name, value) in &self.headers {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        Some(response)
    }

    /// Plays this entry: waits its delay, then drops the connection, answers the scripted
    /// response, or hands the request on to `next`.
    pub async fn play(
        &self,
        request: Request,
        next: Next,
        default_body: fn(StatusCode) -> Value,
    ) -> Response {
        if let Some(ms) = self.delay_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if self.drop {
            return match request.extensions().get::<ConnectInfo<Connection>>() {
                Some(ConnectInfo(connection)) => {
                    connection.drop_now();
                    // Never written: the connection refuses all further I/O.
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
                None => dev_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "drop faults need the simulator to run through faults::serve",
                ),
            };
        }
        match self.to_response(default_body) {
            Some(response) => response,
            None => next.run(request).await,
        }
    }
}

/// Simulator-only endpoints answer errors as `{"error": ..}`.
pub fn dev_error(status: StatusCode, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, Json(json!({ "error": message }))).into_response()
}

// ---- connections that a fault can drop ---------------------------------------------------------

/// One accepted connection, as handlers see it (`ConnectInfo<Connection>`).
#[derive(Clone, Debug)]
pub struct Connection {
    pub peer: SocketAddr,
    dropped: Arc<AtomicBool>,
}

impl Connection {
    /// From now on every read or write on this connection fails, so the server closes it
    /// without sending anything more.
    pub fn drop_now(&self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, DroppableListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, DroppableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be dropped from inside a handler.
pub struct DroppableListener(pub TcpListener);

/// A TCP stream that fails all I/O once its [`Connection`] is dropped.
pub struct DroppableStream {
    inner: TcpStream,
    dropped: Arc<AtomicBool>,
}

impl DroppableStream {
    fn check(&self) -> io::Result<()> {
        if self.dropped.load(Ordering::SeqCst) {
            Err(io::ErrorKind::ConnectionAborted.into())
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for DroppableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for DroppableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Listener for DroppableListener {
    type Io = DroppableStream;
    type Addr = Connection;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (inner, peer) = Listener::accept(&mut self.0).await;
        let dropped = Arc::new(AtomicBool::new(false));
        let connection = Connection {
            peer,
            dropped: dropped.clone(),
        };
        (DroppableStream { inner, dropped }, connection)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Connection {
            peer: self.0.local_addr()?,
            dropped: Arc::default(),
        })
    }
}

/// Serves `router` on `listener` so that `{"drop":true}` faults can close connections.
pub async fn serve(listener: TcpListener, router: Router) -> io::Result<()> {
    axum::serve(
        DroppableListener(listener),
        router.into_make_service_with_connect_info::<Connection>(),
    )
    .await
}
