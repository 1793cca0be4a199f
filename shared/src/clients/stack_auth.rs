//! Stack Auth's REST API, for the account flows: password sign-up and sign-in, the password
//! reset, the display name, and the start of an OAuth sign-in. Server requests carry the
//! project id and the secret server key from the app secret (`x-stack-access-type: server`).
//!
//! Each attempt has a timeout. What may be repeated is decided per request: reads and updates
//! to a value are retried on 429, 5xx and timeouts; a sign-up or sign-in is sent once (only a
//! connection that could not be opened is tried again, since nothing was sent). Stack Auth's
//! known errors (`{code, error, details?}` with `x-stack-known-error`) become our error codes
//! with the right status; anything else is a 502 `upstream_error`, or a 502
//! `auth_service_unavailable` when Stack Auth cannot be reached or refuses the load.
//!
//! Nothing here logs a password, a token or the server key: errors carry Stack Auth's code and
//! status only, and neither the client nor its answers implement a revealing `Debug`.

use std::time::Duration;

use axum::http::StatusCode;
use reqwest::{Method, Response, Url};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};

use super::retry::{self, Failure, Idempotency};
use crate::{
    config::RetryPolicy,
    error::{AppError, AppResult},
};

mod known;

use known::known;

/// The OAuth `client_secret` of a client without a publishable key.
pub const PUBLIC_CLIENT_SECRET: &str = "__stack_public_client__";

/// The header naming a known error's code.
const KNOWN_ERROR_HEADER: &str = "x-stack-known-error";

#[derive(Clone)]
pub struct StackAuth {
    http: reqwest::Client,
    base_url: Url,
    project_id: String,
    server_key: String,
    publishable_client_key: Option<String>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for StackAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackAuth")
            .field("base_url", &self.base_url.as_str())
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// A new session: what password sign-up and sign-in answer.
#[derive(Clone, Deserialize)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// The parameters of Stack Auth's OAuth authorize endpoint that are ours to choose.
#[derive(Clone, Copy)]
pub struct OAuthStart<'a> {
    /// `google`, `linkedin`, ...
    pub provider: &'a str,
    /// Where Stack Auth sends the browser back with `?code=&state=` (and errors).
    pub redirect_uri: &'a str,
    pub state: &'a str,
    /// The S256 PKCE challenge of the verifier the code will be exchanged with.
    pub code_challenge: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum StackAuthError {
    /// A known error: Stack Auth's stable code (its message may quote the request, so it is
    /// kept out of `Display` and logs).
    #[error("Stack Auth answered {status} {code}")]
    Known {
        status: StatusCode,
        code: String,
        message: String,
        details: Option<Value>,
    },
    /// Any other error status (Stack Auth's plain-text `StatusError`, a proxy's page).
    #[error("Stack Auth answered {0}")]
    Status(StatusCode),
    #[error("Stack Auth did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Stack Auth could not be reached: {0}")]
    Unreachable(String),
    #[error("Stack Auth sent an answer we cannot read: {0}")]
    Malformed(String),
}

pub type StackAuthResult<T> = Result<T, StackAuthError>;

impl StackAuthError {
    /// The known error's code (`USER_NOT_FOUND`, ...), if it is one.
    pub fn known_code(&self) -> Option<&str> {
        match self {
            Self::Known { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<StackAuthError> for AppError {
    fn from(err: StackAuthError) -> Self {
        let details = match err {
            StackAuthError::Known {
                status,
                code,
                message,
                details,
            } => {
                if let Some(mapped) = known(&code) {
                    tracing::debug!(stack_code = %code, "Stack Auth refused the request");
                    return mapped.error(&code, message, details);
                }
                // Our configuration (server key, project, trusted domains) or a code we do not
                // expect: nothing the client can fix, and Stack Auth's message stays out.
                tracing::warn!(%status, stack_code = %code, "Stack Auth request failed");
                json!({ "service": "stack_auth", "status": status.as_u16(), "code": code })
            }
            StackAuthError::Status(status)
                if status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                return unavailable(StackAuthError::Status(status));
            }
            StackAuthError::Status(status) => {
                tracing::warn!(%status, "Stack Auth request failed");
                json!({ "service": "stack_auth", "status": status.as_u16() })
            }
            err @ (StackAuthError::Timeout(_) | StackAuthError::Unreachable(_)) => {
                return unavailable(err);
            }
            StackAuthError::Malformed(reason) => {
                tracing::warn!(reason, "Stack Auth sent an unreadable answer");
                json!({ "service": "stack_auth", "reason": "malformed_response" })
            }
        };
        AppError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "the authentication service (Stack Auth) could not complete the request",
        )
        .with_details(details)
    }
}

/// Not reached, timed out, or refusing the load (after the retries the request allowed).
fn unavailable(err: StackAuthError) -> AppError {
    tracing::warn!(error = %err, "Stack Auth is unavailable");
    AppError::unavailable("auth_service_unavailable", err)
}

/// Which failures a request may be repeated after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempts {
    /// Sent once: only a connection that could not be opened is tried again.
    Once,
    Retry(Idempotency),
}

impl Attempts {
    fn may_retry(self, failure: Failure) -> bool {
        match self {
            Self::Once => failure == Failure::Connect,
            Self::Retry(idempotency) => retry::is_retryable(failure, idempotency),
        }
    }
}

/// Whether the request carries the server key (the OAuth authorize endpoint takes the client
/// id and secret in its query instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Server,
    Public,
}

/// The client for Stack Auth's calls: redirects are never followed (the authorize endpoint
/// answers one unless asked for JSON) and connections open within a few seconds.
fn http_client() -> AppResult<reqwest::Client> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .user_agent(concat!("ai-calling-backend/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(AppError::internal)?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

impl StackAuth {
    pub fn new(
        http: reqwest::Client,
        base_url: Url,
        project_id: String,
        server_key: String,
        publishable_client_key: Option<String>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http,
            base_url,
            project_id,
            server_key,
            publishable_client_key,
            retry,
        }
    }

    /// A client with the current server key from Secrets Manager (cached; a rotation is picked
    /// up within the cache TTL).
    /// A client with its own HTTP connection settings (see [`http_client`]).
    pub fn configured(
        api_url: Url,
        project_id: String,
        secret_server_key: String,
        publishable_client_key: Option<String>,
        retry: RetryPolicy,
    ) -> AppResult<Self> {
        Ok(Self::new(
            http_client()?,
            api_url,
            project_id,
            secret_server_key,
            publishable_client_key,
            retry,
        ))
    }

    /// `POST /auth/password/sign-up`; with a callback URL, Stack Auth sends the verification
    /// email linking there.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        verification_callback_url: Option<&str>,
    ) -> StackAuthResult<Session> {
        let mut body = json!({ "email": email, "password": password });
        if let Some(url) = verification_callback_url {
            body["verification_callback_url"] = json!(url);
        }
        self.call(
            Method::POST,
            "auth/password/sign-up",
            Some(&body),
            Attempts::Once,
        )
        .await
    }

    /// `POST /auth/password/sign-in`; a wrong pair is `EMAIL_PASSWORD_MISMATCH`.
    pub async fn sign_in(&self, email: &str, password: &str) -> StackAuthResult<Session> {
        let body = json!({ "email": email, "password": password });
        self.call(
            Method::POST,
            "auth/password/sign-in",
            Some(&body),
            Attempts::Once,
        )
        .await
    }

    /// `POST /auth/password/send-reset-code`: the same answer whether or not the email has an
    /// account. Retried only when Stack Auth refused it (a repeat would send a second email).
    pub async fn send_reset_code(&self, email: &str, callback_url: &str) -> StackAuthResult<()> {
        let body = json!({ "email": email, "callback_url": callback_url });
        self.call::<Value>(
            Method::POST,
            "auth/password/send-reset-code",
            Some(&body),
            Attempts::Retry(Idempotency::Unsafe),
        )
        .await
        .map(drop)
    }

    /// `POST /auth/password/reset` with the code from the email.
    pub async fn reset_password(&self, code: &str, password: &str) -> StackAuthResult<()> {
        let body = json!({ "code": code, "password": password });
        self.call::<Value>(
            Method::POST,
            "auth/password/reset",
            Some(&body),
            Attempts::Once,
        )
        .await
        .map(drop)
    }

    /// `PATCH /users/{user_id}` `{display_name}` (setting a value: safe to repeat).
    pub async fn set_display_name(&self, user_id: &str, name: &str) -> StackAuthResult<()> {
        let path = format!("users/{}", segment(user_id));
        let body = json!({ "display_name": name });
        self.call::<Value>(
            Method::PATCH,
            &path,
            Some(&body),
            Attempts::Retry(Idempotency::Safe),
        )
        .await
        .map(drop)
    }

    /// The ids of the OAuth providers connected to the user (`google`, `linkedin`), in Stack
    /// Auth's order, from the server view of the user (`oauth_providers: [{id, ...}]`).
    pub async fn oauth_providers(&self, user_id: &str) -> StackAuthResult<Vec<String>> {
        #[derive(Deserialize)]
        struct ServerUser {
            #[serde(default)]
            oauth_providers: Vec<Provider>,
        }
        #[derive(Deserialize)]
        struct Provider {
            id: String,
        }
        let path = format!("users/{}", segment(user_id));
        let user = self
            .call::<ServerUser>(Method::GET, &path, None, Attempts::Retry(Idempotency::Safe))
            .await?;
        Ok(user.oauth_providers.into_iter().map(|p| p.id).collect())
    }

    /// The provider's authorization URL for an OAuth sign-in, from Stack Auth's authorize
    /// endpoint in JSON mode (`stack_response_mode=json`: `{location}` instead of a redirect; in
    /// this mode PKCE, not a cookie, ties the callback to the flow). Stack Auth sends the
    /// browser back to `redirect_uri` with `code` and `state`, and the code is exchanged at
    /// `POST /api/v1/auth/oauth/token` with the verifier.
    pub async fn oauth_authorize_url(&self, start: &OAuthStart<'_>) -> StackAuthResult<String> {
        #[derive(Deserialize)]
        struct Location {
            location: String,
        }
        let mut url = self.url(&format!("auth/oauth/authorize/{}", segment(start.provider)));
        url.query_pairs_mut()
            .append_pair("client_id", &self.project_id)
            .append_pair(
                "client_secret",
                self.publishable_client_key
                    .as_deref()
                    .unwrap_or(PUBLIC_CLIENT_SECRET),
            )
            .append_pair("redirect_uri", start.redirect_uri)
            .append_pair("error_redirect_url", start.redirect_uri)
            .append_pair("scope", "legacy")
            .append_pair("state", start.state)
            .append_pair("grant_type", "authorization_code")
            .append_pair("code_challenge", start.code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("response_type", "code")
            .append_pair("type", "authenticate")
            .append_pair("stack_response_mode", "json");
        let response = self
            .send(
                Method::GET,
                url,
                None,
                Access::Public,
                Attempts::Retry(Idempotency::Safe),
            )
            .await?;
        let location: Location = read_json(response, self.retry.timeout).await?;
        match Url::parse(&location.location) {
            Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(location.location),
            _ => Err(StackAuthError::Malformed(
                "the authorize location is not an http(s) URL".into(),
            )),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        attempts: Attempts,
    ) -> StackAuthResult<T> {
        let response = self
            .send(method, self.url(path), body, Access::Server, attempts)
            .await?;
        read_json(response, self.retry.timeout).await
    }

    /// Sends the request, repeating it while `attempts` allows; answers the first 2xx.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        access: Access,
        attempts: Attempts,
    ) -> StackAuthResult<Response> {
        let build = || {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .timeout(self.retry.timeout);
            if access == Access::Server {
                request = request
                    .header("x-stack-project-id", &self.project_id)
                    .header("x-stack-access-type", "server")
                    .header("x-stack-secret-server-key", &self.server_key);
            }
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        retry::send(
            &self.retry,
            &format!("Stack Auth {method} {}", url.path()),
            build,
            |failure| attempts.may_retry(failure),
            api_error,
            |err| transport_error(err, self.retry.timeout),
        )
        .await
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/api/v1/{path}"));
        url.set_query(None);
        url
    }
}

async fn read_json<T: DeserializeOwned>(
    response: Response,
    timeout: Duration,
) -> StackAuthResult<T> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| transport_error(e, timeout))?;
    serde_json::from_slice(&bytes).map_err(|e| StackAuthError::Malformed(e.to_string()))
}

fn transport_error(err: reqwest::Error, timeout: Duration) -> StackAuthError {
    if err.is_timeout() {
        StackAuthError::Timeout(timeout)
    } else {
        // Without the URL: an authorize URL's query holds the flow's state.
        StackAuthError::Unreachable(err.without_url().to_string())
    }
}

/// A known error (`x-stack-known-error` and `{code, error, details?}`), or just the status.
async fn api_error(response: Response) -> StackAuthError {
    let status = response.status();
    let named = response
        .headers()
        .get(KNOWN_ERROR_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Option<Value> = response
        .bytes()
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match named.or_else(|| field("code")) {
        Some(code) => StackAuthError::Known {
            status,
            code,
            message: field("error").unwrap_or_default(),
            details: body
                .as_ref()
                .and_then(|b| b.get("details"))
                .filter(|d| !d.is_null())
                .cloned(),
        },
        None => StackAuthError::Status(status),
    }
}

/// One path segment: a user id or provider cannot reach another route.
fn segment(id: &str) -> String {
    let mut url = Url::parse("http://x/").expect("static URL");
    url.path_segments_mut()
        .expect("http URL has segments")
        .push(id);
    url.path().trim_start_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        sync::{Arc, Mutex},
    };

    use axum::{
        body::Bytes,
        extract::{Request, State},
        http::HeaderMap,
        response::IntoResponse,
        Router,
    };

    use super::*;

    const KEY: &str = "ssk_test_do_not_leak";

    #[derive(Clone)]
    struct Scripted {
        status: u16,
        known: Option<&'static str>,
        body: &'static str,
        delay: Duration,
    }

    fn answer(status: u16, body: &'static str) -> Scripted {
        Scripted {
            status,
            known: None,
            body,
            delay: Duration::ZERO,
        }
    }

    fn known_error(status: u16, code: &'static str, body: &'static str) -> Scripted {
        Scripted {
            known: Some(code),
            ..answer(status, body)
        }
    }

    #[derive(Default)]
    struct Fake {
        script: Mutex<VecDeque<Scripted>>,
        seen: Mutex<Vec<(String, HeaderMap, Bytes)>>,
    }

    impl Fake {
        fn requests(&self) -> usize {
            self.seen.lock().expect("lock").len()
        }
    }

    async fn serve_next(
        State(fake): State<Arc<Fake>>,
        request: Request,
    ) -> axum::response::Response {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.expect("body");
        fake.seen.lock().expect("lock").push((
            format!("{} {}", parts.method, parts.uri),
            parts.headers,
            body,
        ));
        let next = fake.script.lock().expect("lock").pop_front();
        let next = next.unwrap_or_else(|| answer(200, "{}"));
        tokio::time::sleep(next.delay).await;
        let mut response = (
            StatusCode::from_u16(next.status).expect("status"),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            next.body,
        )
            .into_response();
        if let Some(code) = next.known {
            response
                .headers_mut()
                .insert(KNOWN_ERROR_HEADER, code.parse().expect("header"));
        }
        if next.status == 307 {
            response.headers_mut().insert(
                axum::http::header::LOCATION,
                "https://accounts.google.com/o/oauth2/v2/auth"
                    .parse()
                    .expect("header"),
            );
        }
        response
    }

    async fn client_with(script: Vec<Scripted>) -> (StackAuth, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        fake.script.lock().expect("lock").extend(script);
        let app = Router::new().fallback(serve_next).with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (client_at(&format!("http://{addr}")), fake)
    }

    fn client_at(base: &str) -> StackAuth {
        crate::telemetry::install_crypto_provider();
        StackAuth::new(
            http_client().expect("client"),
            base.parse().expect("url"),
            "proj-1".into(),
            KEY.into(),
            None,
            RetryPolicy {
                timeout: Duration::from_millis(300),
                max_retries: 2,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(100),
            },
        )
    }

    const SESSION: &str =
        r#"{"access_token":"at.secret","refresh_token":"rt-secret","user_id":"u-1"}"#;

    #[tokio::test]
    async fn sign_up_sends_the_server_headers_and_reads_the_session() {
        let (client, fake) = client_with(vec![answer(200, SESSION)]).await;
        let session = client
            .sign_up(
                "ada@example.com",
                "hunter2hunter2",
                Some("http://app/verify-email"),
            )
            .await
            .expect("session");
        assert_eq!(session.user_id, "u-1");
        assert_eq!(session.access_token, "at.secret");
        let seen = fake.seen.lock().expect("lock");
        assert_eq!(seen[0].0, "POST /api/v1/auth/password/sign-up");
        assert_eq!(seen[0].1["x-stack-project-id"], "proj-1");
        assert_eq!(seen[0].1["x-stack-access-type"], "server");
        assert_eq!(seen[0].1["x-stack-secret-server-key"], KEY);
        assert!(!seen[0].1.contains_key("x-stack-override-error-status"));
        let body: Value = serde_json::from_slice(&seen[0].2).expect("json");
        assert_eq!(
            body,
            json!({"email": "ada@example.com", "password": "hunter2hunter2",
                   "verification_callback_url": "http://app/verify-email"})
        );
        for printed in [format!("{session:?}"), format!("{client:?}")] {
            for secret in ["at.secret", "rt-secret", KEY] {
                assert!(!printed.contains(secret), "{printed}");
            }
        }
    }

    #[tokio::test]
    async fn known_errors_become_ours() {
        let cases = [
            (
                known_error(
                    409,
                    "USER_EMAIL_ALREADY_EXISTS",
                    r#"{"code":"USER_EMAIL_ALREADY_EXISTS","error":"A user with email \"a@b.co\" already exists.","details":{"email":"a@b.co"}}"#,
                ),
                StatusCode::CONFLICT,
                "email_taken",
            ),
            (
                known_error(
                    409,
                    "CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE",
                    r#"{"code":"CONTACT_CHANNEL_ALREADY_USED_FOR_AUTH_BY_SOMEONE_ELSE","error":"x"}"#,
                ),
                StatusCode::CONFLICT,
                "email_taken",
            ),
            (
                known_error(
                    400,
                    "EMAIL_PASSWORD_MISMATCH",
                    r#"{"code":"EMAIL_PASSWORD_MISMATCH","error":"Wrong e-mail or password."}"#,
                ),
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
            ),
            (
                known_error(
                    400,
                    "PASSWORD_TOO_SHORT",
                    r#"{"code":"PASSWORD_TOO_SHORT","error":"Password too short. Minimum length is 8.","details":{"min_length":8}}"#,
                ),
                StatusCode::BAD_REQUEST,
                "validation_error",
            ),
            (
                known_error(
                    400,
                    "SCHEMA_ERROR",
                    r#"{"code":"SCHEMA_ERROR","error":"Request validation failed","details":{"message":"Request validation failed"}}"#,
                ),
                StatusCode::BAD_REQUEST,
                "validation_error",
            ),
            (
                known_error(
                    400,
                    "OAUTH_PROVIDER_NOT_FOUND_OR_NOT_ENABLED",
                    r#"{"code":"OAUTH_PROVIDER_NOT_FOUND_OR_NOT_ENABLED","error":"x"}"#,
                ),
                StatusCode::BAD_REQUEST,
                "provider_not_enabled",
            ),
            (
                known_error(
                    401,
                    "INVALID_SECRET_SERVER_KEY",
                    r#"{"code":"INVALID_SECRET_SERVER_KEY","error":"The secret server key is not valid for the project \"proj-1\".","details":{"project_id":"proj-1"}}"#,
                ),
                StatusCode::BAD_GATEWAY,
                "upstream_error",
            ),
            (
                known_error(
                    404,
                    "USER_NOT_FOUND",
                    r#"{"code":"USER_NOT_FOUND","error":"User not found."}"#,
                ),
                StatusCode::BAD_GATEWAY,
                "upstream_error",
            ),
            // No header, the code only in the body: still known.
            (
                answer(409, r#"{"code":"USER_EMAIL_ALREADY_EXISTS","error":"x"}"#),
                StatusCode::CONFLICT,
                "email_taken",
            ),
            (
                answer(500, "Internal Server Error"),
                StatusCode::BAD_GATEWAY,
                "upstream_error",
            ),
            (
                answer(200, "<html>"),
                StatusCode::BAD_GATEWAY,
                "upstream_error",
            ),
        ];
        for (scripted, status, code) in cases {
            let (client, _) = client_with(vec![scripted.clone()]).await;
            let err = client
                .sign_up("a@b.co", "hunter2hunter2", None)
                .await
                .expect_err(scripted.body);
            let err = AppError::from(err);
            assert_eq!((err.status, err.code), (status, code), "{}", scripted.body);
            let body = serde_json::to_string(&err.body()).expect("json");
            assert!(!body.contains(KEY), "{body}");
            assert!(!body.contains("hunter2"), "{body}");
            if code == "upstream_error" {
                assert!(
                    !body.contains("not valid for the project"),
                    "no upstream message: {body}"
                );
            }
        }
    }

    #[tokio::test]
    async fn password_rules_are_passed_on_with_the_field() {
        let (client, _) = client_with(vec![known_error(
            400,
            "PASSWORD_TOO_LONG",
            r#"{"code":"PASSWORD_TOO_LONG","error":"Password too long. Maximum length is 256.","details":{"maxLength":256}}"#,
        )])
        .await;
        let err = AppError::from(client.sign_in("a@b.co", "x").await.expect_err("refused"));
        let details = err.details.expect("details");
        assert_eq!(details["field"], "password");
        assert_eq!(details["code"], "PASSWORD_TOO_LONG");
        assert_eq!(details["details"]["maxLength"], 256);
    }

    #[tokio::test]
    async fn sign_in_is_sent_once_but_a_name_update_is_retried() {
        let (client, fake) = client_with(vec![answer(503, "busy"), answer(200, SESSION)]).await;
        let err = client
            .sign_in("a@b.co", "pw")
            .await
            .expect_err("not retried");
        assert_eq!(fake.requests(), 1);
        let err = AppError::from(err);
        assert_eq!(
            (err.status, err.code),
            (StatusCode::BAD_GATEWAY, "auth_service_unavailable")
        );

        let slow = Scripted {
            delay: Duration::from_millis(600),
            ..answer(200, SESSION)
        };
        let (client, fake) = client_with(vec![slow]).await;
        let err = client
            .sign_up("a@b.co", "hunter2hunter2", None)
            .await
            .expect_err("timed out");
        assert!(matches!(err, StackAuthError::Timeout(_)), "{err:?}");
        assert_eq!(
            fake.requests(),
            1,
            "a sign-up that may have landed is not repeated"
        );

        let (client, fake) = client_with(vec![
            answer(500, "{}"),
            answer(429, "{}"),
            answer(200, "{}"),
        ])
        .await;
        client
            .set_display_name("u/1", "Ada")
            .await
            .expect("third try");
        assert_eq!(fake.requests(), 3);
        let seen = fake.seen.lock().expect("lock");
        assert_eq!(
            seen[0].0, "PATCH /api/v1/users/u%2F1",
            "ids stay one segment"
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&seen[0].2).expect("json"),
            json!({"display_name": "Ada"})
        );
    }

    #[tokio::test]
    async fn an_unreachable_service_is_a_502() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let client = client_at(&format!("http://{addr}"));
        let err = client
            .sign_in("a@b.co", "pw")
            .await
            .expect_err("nobody listens");
        assert!(matches!(err, StackAuthError::Unreachable(_)), "{err:?}");
        assert_eq!(AppError::from(err).status, StatusCode::BAD_GATEWAY);
    }

    #[tokio::test]
    async fn oauth_uses_json_mode_without_the_server_key_and_never_follows_redirects() {
        let (client, fake) = client_with(vec![answer(
            200,
            r#"{"location":"https://accounts.google.com/o/oauth2/v2/auth?client_id=x"}"#,
        )])
        .await;
        let start = OAuthStart {
            provider: "google",
            redirect_uri: "http://localhost:5173/auth/callback?next=/a&b",
            state: "state-123456",
            code_challenge: "b-vqQhBSsayY08KmVzhArnNte14CwTTfGEp8vxOcaR0",
        };
        let url = client.oauth_authorize_url(&start).await.expect("location");
        assert!(url.starts_with("https://accounts.google.com/"));
        {
            let seen = fake.seen.lock().expect("lock");
            let requested =
                Url::parse(&format!("http://x{}", &seen[0].0["GET ".len()..])).expect("url");
            assert_eq!(requested.path(), "/api/v1/auth/oauth/authorize/google");
            let query: std::collections::HashMap<_, _> =
                requested.query_pairs().into_owned().collect();
            assert_eq!(query["client_id"], "proj-1");
            assert_eq!(query["client_secret"], PUBLIC_CLIENT_SECRET);
            assert_eq!(query["redirect_uri"], start.redirect_uri);
            assert_eq!(query["state"], start.state);
            assert_eq!(query["code_challenge"], start.code_challenge);
            assert_eq!(query["code_challenge_method"], "S256");
            assert_eq!(query["grant_type"], "authorization_code");
            assert_eq!(query["response_type"], "code");
            assert_eq!(query["stack_response_mode"], "json");
            assert!(!seen[0].1.contains_key("x-stack-secret-server-key"));
        }

        let (client, fake) = client_with(vec![answer(307, "")]).await;
        let err = client
            .oauth_authorize_url(&start)
            .await
            .expect_err("a redirect is not an answer");
        assert_eq!(fake.requests(), 1, "not followed");
        assert_eq!(AppError::from(err).status, StatusCode::BAD_GATEWAY);
    }
}
