//! When and how long an outbound API client waits before trying again, and the one send loop
//! every client uses.

use std::{
    future::Future,
    time::{Duration, SystemTime},
};

use reqwest::{header::HeaderMap, RequestBuilder, Response, StatusCode};

use crate::config::RetryPolicy;

/// Whether a request may safely be sent twice. A request that could have taken effect
/// (placing a call, creating an agent) is only retried when the remote side says it did not
/// act on it (429, 503) or the connection never got the request there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    Safe,
    Unsafe,
}

/// What an attempt ended with, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Status(StatusCode),
    /// The request may have reached the server (it timed out waiting for the answer).
    Timeout,
    /// The connection failed before the request was sent.
    Connect,
}

pub fn is_retryable(failure: Failure, idempotency: Idempotency) -> bool {
    match (failure, idempotency) {
        (Failure::Connect, _) => true,
        // Refusals: the server says it did not act on the request.
        (Failure::Status(StatusCode::TOO_MANY_REQUESTS), _) => true,
        (Failure::Status(StatusCode::SERVICE_UNAVAILABLE), _) => true,
        (Failure::Status(status), Idempotency::Safe) => {
            status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT
        }
        (Failure::Timeout, Idempotency::Safe) => true,
        _ => false,
    }
}

/// The delay before retry number `retry` (0-based): the server's Retry-After when it sent one,
/// otherwise exponential backoff with ±20% jitter, both capped at the policy's `max_delay`.
/// None when the server asks for a longer wait than the policy allows: retrying earlier would
/// only be refused again.
pub fn delay(policy: &RetryPolicy, retry: u32, server_wait: Option<Duration>) -> Option<Duration> {
    if let Some(wait) = server_wait {
        return (wait <= policy.max_delay).then_some(wait);
    }
    let exponential = policy
        .base_delay
        .saturating_mul(2u32.saturating_pow(retry))
        .min(policy.max_delay);
    let jitter = 0.8 + fastrand::f64() * 0.4;
    Some(exponential.mul_f64(jitter).min(policy.max_delay))
}

/// The wait a response asks for: `retry-after-ms`, then `Retry-After` in seconds or as an
/// HTTP date.
pub fn server_wait(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0));
    }
    let raw = text("retry-after")?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let at = SystemTime::from(at);
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Sends the request `build` makes until one answers 2xx, retrying while `may_retry` allows
/// and the policy has retries and waits left. `refused` turns a non-2xx answer into the
/// client's error, `unreachable` a transport failure. `what` names the request in logs.
pub async fn send<E, Refused>(
    policy: &RetryPolicy,
    what: &str,
    build: impl Fn() -> RequestBuilder,
    may_retry: impl Fn(Failure) -> bool,
    refused: impl Fn(Response) -> Refused,
    unreachable: impl Fn(reqwest::Error) -> E,
) -> Result<Response, E>
where
    Refused: Future<Output = E>,
    E: std::fmt::Display,
{
    let mut retries = 0;
    loop {
        let (failure, wait, error) = match build().send().await {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response) => {
                let status = response.status();
                let wait = server_wait(response.headers());
                (Failure::Status(status), wait, refused(response).await)
            }
            Err(err) => {
                let failure = if err.is_connect() {
                    Failure::Connect
                } else {
                    Failure::Timeout
                };
                (failure, None, unreachable(err))
            }
        };
        if retries >= policy.max_retries || !may_retry(failure) {
            return Err(error);
        }
        let Some(delay) = delay(policy, retries, wait) else {
            return Err(error);
        };
        tracing::info!(request = what, error = %error, ?delay, "retrying a request");
        tokio::time::sleep(delay).await;
        retries += 1;
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            timeout: Duration::from_secs(1),
            max_retries: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for retry in 0..3 {
            let expected = 100.0 * 2f64.powi(retry as i32);
            for _ in 0..50 {
                let ms = delay(&policy(), retry, None)
                    .expect("a delay")
                    .as_secs_f64()
                    * 1000.0;
                assert!(
                    (expected * 0.8 - 1.0..=expected * 1.2 + 1.0).contains(&ms),
                    "retry {retry}: {ms}ms"
                );
            }
        }
        assert!(delay(&policy(), 30, None).expect("a delay") <= Duration::from_secs(2));
    }

    #[test]
    fn server_wait_wins_unless_it_is_too_long() {
        let wait = Duration::from_millis(1500);
        assert_eq!(delay(&policy(), 0, Some(wait)), Some(wait));
        assert_eq!(delay(&policy(), 0, Some(Duration::from_secs(30))), None);
    }

    #[test]
    fn reads_every_retry_after_form() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(server_wait(&headers), Some(Duration::from_secs(3)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(server_wait(&headers), Some(Duration::from_millis(250)));

        let mut headers = HeaderMap::new();
        let at = chrono::Utc::now() + chrono::Duration::seconds(5);
        let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        headers.insert("retry-after", HeaderValue::from_str(&date).expect("header"));
        let wait = server_wait(&headers).expect("a date");
        assert!(wait <= Duration::from_secs(5) && wait >= Duration::from_secs(3));

        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(server_wait(&headers), None);
    }

    #[test]
    fn unsafe_requests_are_not_repeated_after_they_may_have_landed() {
        let server_error = Failure::Status(StatusCode::INTERNAL_SERVER_ERROR);
        assert!(is_retryable(server_error, Idempotency::Safe));
        assert!(!is_retryable(server_error, Idempotency::Unsafe));
        assert!(!is_retryable(Failure::Timeout, Idempotency::Unsafe));
        assert!(is_retryable(Failure::Timeout, Idempotency::Safe));
        for idempotency in [Idempotency::Safe, Idempotency::Unsafe] {
            assert!(is_retryable(
                Failure::Status(StatusCode::TOO_MANY_REQUESTS),
                idempotency
            ));
            assert!(is_retryable(Failure::Connect, idempotency));
            assert!(!is_retryable(
                Failure::Status(StatusCode::BAD_REQUEST),
                idempotency
            ));
        }
    }
}
