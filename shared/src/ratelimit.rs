//! Rate limits. Two kinds, for two costs:
//! - [`Window`] counts in DynamoDB, shared by every instance: for the account flows (credential
//!   stuffing, reset-email floods, scripted sign-ups) and failed webhook signatures, where a
//!   round trip per attempt is cheap next to what it protects.
//! - [`TenantLimiter`], a token bucket per tenant in the process: every authenticated request
//!   pays no network round trip for it. Its bound is per warm instance, so the whole limit is at
//!   most the function's concurrency times it.
//!
//! Both answer 429 `rate_limited` with `Retry-After`. A counter that cannot be reached lets the
//! request through: limiting is protection, not a gate.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::config::BucketConfig;
use crate::{
    aws::counter,
    error::{AppError, AppResult},
    tenant::TenantId,
};

/// Where windows are counted: the DynamoDB table every instance shares.
#[derive(Clone, Copy)]
pub struct Counter<'a> {
    pub dynamodb: &'a crate::aws::Client,
    pub table: &'a str,
}

/// At most `limit` attempts per `seconds`-long fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: i64,
    pub seconds: i64,
}

pub fn too_many(retry_after: Duration, message: &'static str) -> AppError {
    AppError::rate_limited(retry_after, message)
}

/// Counts one attempt of `subject` under `scope` in the current window; past the window's
/// limit the answer is 429 until the window ends.
pub async fn count(
    counter: Counter<'_>,
    scope: &str,
    subject: &str,
    window: Window,
    message: &'static str,
) -> AppResult<()> {
    let now = chrono::Utc::now().timestamp();
    let index = now / window.seconds;
    let ends = (index + 1) * window.seconds;
    let key = format!("ratelimit#{scope}#{subject}#{index}");
    let counted = counter::increment(counter.dynamodb, counter.table, &key, ends + 60).await;
    let hits = counted.unwrap_or_else(|err| {
        tracing::warn!(error = %err, scope, "could not count an attempt for rate limiting");
        0
    });
    if hits > window.limit {
        let wait = u64::try_from(ends - now).unwrap_or(1).max(1);
        return Err(too_many(Duration::from_secs(wait), message));
    }
    Ok(())
}

/// Account flows (sign-up, sign-in, social start, password reset): per caller address (when
/// known: behind API Gateway), per email address from that address, and per email address,
/// across every instance. The tight limit is per address and email, so one stranger guessing
/// at an account does not keep its owner (elsewhere) out; the looser one per email bounds
/// guesses spread over many addresses, and only attempts the first let through count in it.
pub async fn account_flow(
    counter: Counter<'_>,
    address: Option<&str>,
    email: Option<&str>,
) -> AppResult<()> {
    if let Some(address) = address {
        count(
            counter,
            "auth-address",
            address,
            ACCOUNT_FLOWS_PER_ADDRESS,
            "too many account requests from this address; try again later",
        )
        .await?;
    }
    if let Some(email) = email {
        let email = hashed(&email.to_lowercase());
        let from = hashed(address.unwrap_or("unknown"));
        count(
            counter,
            "auth-email-from",
            &format!("{email}#{from}"),
            ACCOUNT_FLOWS_PER_EMAIL_FROM_ADDRESS,
            "too many attempts for this email address; try again later",
        )
        .await?;
        count(
            counter,
            "auth-email",
            &email,
            ACCOUNT_FLOWS_PER_EMAIL,
            "too many attempts for this email address; try again later",
        )
        .await?;
    }
    Ok(())
}

/// Per caller address: enough for a household or office behind one address.
pub const ACCOUNT_FLOWS_PER_ADDRESS: Window = Window {
    limit: 30,
    seconds: 60,
};
/// Per email address from one caller address: sign-in attempts, sign-ups and reset emails
/// together.
pub const ACCOUNT_FLOWS_PER_EMAIL_FROM_ADDRESS: Window = Window {
    limit: 10,
    seconds: 900,
};
/// Per email address from anywhere (the same window).
pub const ACCOUNT_FLOWS_PER_EMAIL: Window = Window {
    limit: 50,
    seconds: 900,
};

/// A subject that must not be stored as given (an email address): the first 16 bytes of its
/// SHA-256, hex.
pub fn hashed(subject: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, subject.as_bytes());
    hex::encode(&digest.as_ref()[..16])
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per tenant, in this process, keyed by the token subject (known before the
/// database is asked who the tenant is, so a limited request costs no query).
#[derive(Debug)]
pub struct TenantLimiter {
    config: BucketConfig,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Buckets kept before idle (full) ones are dropped.
const MAX_TRACKED: usize = 10_000;

impl TenantLimiter {
    pub fn new(config: BucketConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `subject`, or says how long until one is there.
    pub fn take(&self, subject: &str, now: Instant) -> Result<(), Duration> {
        let config = self.config;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(subject) {
            // A full bucket is the same as none: forget the tenants that are idle.
            buckets.retain(|_, b| refill(b, config, now) < config.burst);
        }
        let bucket = buckets.entry(subject.to_owned()).or_insert(Bucket {
            tokens: config.burst,
            at: now,
        });
        let tokens = refill(bucket, config, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / config.per_second))
        }
    }
}

/// ElevenLabs reads one tenant may have in flight at once in a process, whatever its requests.
pub const REMOTE_READS_PER_TENANT: usize = 8;

/// A tenant's share of a remote service (ElevenLabs' workspace quota is shared by every
/// tenant): at most `per_tenant` of its calls in flight at once in this process, whatever
/// the number of requests asking.
#[derive(Debug)]
pub struct TenantPermits {
    per_tenant: usize,
    semaphores: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

impl TenantPermits {
    pub fn new(per_tenant: usize) -> Self {
        Self {
            per_tenant,
            semaphores: Mutex::new(HashMap::new()),
        }
    }

    pub async fn acquire(&self, tenant: TenantId) -> OwnedSemaphorePermit {
        let semaphore = {
            let mut semaphores = self
                .semaphores
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if semaphores.len() >= MAX_TRACKED {
                // Tenants with nothing in flight hold no state worth keeping.
                semaphores.retain(|_, s| Arc::strong_count(s) > 1);
            }
            semaphores
                .entry(tenant)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        semaphore
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("these semaphores are never closed"))
    }
}

fn refill(bucket: &Bucket, config: BucketConfig, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * config.per_second).min(config.burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> TenantLimiter {
        TenantLimiter::new(BucketConfig {
            burst: 3.0,
            per_second: 2.0,
        })
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = limiter();
        let tenant = "subject-1";
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(tenant, t), Ok(()));
        }
        let wait = limiter.take(tenant, t).expect_err("the burst is spent");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert_eq!(limiter.take(tenant, t + Duration::from_millis(500)), Ok(()));
        assert!(limiter
            .take(tenant, t + Duration::from_millis(500))
            .is_err());
    }

    #[test]
    fn tenants_do_not_share_a_bucket() {
        let limiter = limiter();
        let t = Instant::now();
        let first = "subject-1";
        for _ in 0..3 {
            limiter.take(first, t).expect("burst");
        }
        assert!(limiter.take(first, t).is_err());
        assert_eq!(limiter.take("subject-2", t), Ok(()));
    }

    #[test]
    fn hashed_subjects_do_not_show_the_email() {
        let hashed = hashed("victim@example.com");
        assert!(!hashed.contains("victim"));
        assert_eq!(hashed.len(), 32);
        assert_eq!(hashed, super::hashed("victim@example.com"));
    }
}
