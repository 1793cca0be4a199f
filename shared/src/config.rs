//! Typed configuration, read once at start. A missing or malformed required value stops the
//! process with a message that names the variable.

use std::time::Duration;

use axum::http::HeaderValue;
use reqwest::Url;

mod database;
pub use database::DatabaseSource;

const STACK_API_DEFAULT: &str = "https://api.stack-auth.com";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub stack: StackConfig,
    /// Browser origin allowed by CORS (with credentials); none means no cross-origin access.
    pub frontend_origin: Option<HeaderValue>,
    /// Lower-cased; a verified token email in this list is an admin.
    pub admin_emails: Vec<String>,
    pub max_json_body_bytes: usize,
    /// Each tenant's request budget in one process (429 beyond it).
    pub tenant_rate: BucketConfig,
    pub aws: AwsConfig,
    pub elevenlabs_base_url: Url,
    pub elevenlabs_retry: RetryPolicy,
    pub agent_defaults: AgentDefaults,
    /// The least balance (credits) an outbound call needs; a batch needs one minute per contact.
    pub min_call_balance: i64,
    /// Total scores from which a lead is hot or warm.
    pub lead_tags: TagThresholds,
    /// How long a computed dashboard is cached in DynamoDB (0: not cached).
    pub dashboard_cache_ttl: Duration,
    /// How far back reconciliation looks for conversations whose webhooks never arrived.
    pub reconcile_lookback: Duration,
    /// How long one slice of an export job writes before it queues the next (it finishes the
    /// part it is writing first).
    pub export_slice: Duration,
    /// Region used to read phone numbers written without a country code (ISO 3166 alpha-2).
    pub default_phone_region: phonenumber::country::Id,
    /// Webhook bodies can be large (a call's audio arrives base64-encoded).
    pub max_webhook_body_bytes: usize,
    /// The most contact rows one uploaded file may hold (blank rows and the header excluded).
    pub contact_import_max_rows: usize,
    /// The largest contact file accepted, in bytes (the file itself, not the multipart body).
    /// Behind API Gateway a Lambda receives a binary body base64-encoded (4/3 larger) in an
    /// event of at most 6 MB, so more than about 4 MiB cannot arrive there anyway.
    pub contact_import_max_bytes: usize,
    pub stripe: StripeConfig,
    pub email: EmailConfig,
}

/// The Postgres connection: the pool, how a failed connect is retried within a request, and
/// the circuit breaker that stops retrying once the database is evidently down.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub source: DatabaseSource,
    pub pool_size: usize,
    /// Each connect attempt's timeout, and the jittered backoff between attempts.
    pub connect: RetryPolicy,
    /// The most one request spends connecting, retries and waits included.
    pub connect_budget: Duration,
    pub breaker: BreakerConfig,
    /// A pooled connection idle longer than this is checked before use (a scaled-to-zero
    /// compute or a NAT may have dropped it without the client noticing).
    pub idle_check_after: Duration,
    /// The same behind a transaction pooler (a direct URL configured): the pooler keeps its
    /// clients' connections open while Postgres restarts, so a far shorter wait.
    pub pooled_idle_check_after: Duration,
}

/// The database circuit breaker (`db::breaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed connection attempts (each after its own retries) that open it.
    pub failure_threshold: u32,
    /// How long it stays open before a trial; also how long a trial may run before another
    /// caller may try (a trial whose request was cancelled never reports).
    pub cool_down: Duration,
}

/// Each account's request budget in one process (`ratelimit::TenantLimiter`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketConfig {
    /// Requests a tenant may make at once after being idle.
    pub burst: f64,
    /// Requests per second a tenant may sustain.
    pub per_second: f64,
}

/// The secret ids a function may read (its IAM policy names the same ones): none, either or
/// both. Without a webhook secret id its keys are read from the app secret (one document).
#[derive(Debug, Clone, Default)]
pub struct SecretIds {
    pub app: Option<String>,
    pub webhooks: Option<String>,
}

/// Stack Auth's REST API (the local simulator in development and tests), which the account
/// flows call; the secret server key lives in the app secret.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// `STACK_API_URL`, the base the JWKS URL and the issuer are derived from too.
    pub api_url: Url,
    /// Sent as the OAuth `client_secret`; without one, Stack Auth's public-client sentinel is
    /// sent (accepted unless the project requires publishable keys).
    pub publishable_client_key: Option<String>,
    /// Each attempt's timeout and the backoff of the requests that may be repeated.
    pub retry: RetryPolicy,
}

/// Where Stripe is (the local simulator in development and tests) and where Checkout sends the
/// buyer back. The keys themselves live in the app secret.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub base_url: Url,
    /// Per attempt; a network failure is retried once with the same idempotency key.
    pub timeout: Duration,
    /// `{CHECKOUT_SESSION_ID}` is filled in by Stripe.
    pub success_url: String,
    pub cancel_url: String,
}

/// The SMTP relay (Gmail with an app password in production; the password is in the app
/// secret). Without SMTP_HOST emails stay queued in the outbox.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_user: Option<String>,
    pub smtp_tls: SmtpTls,
    pub from: String,
    /// The longest one SMTP exchange may take before the message is retried later.
    pub timeout: Duration,
    /// Links in emails point here (the frontend).
    pub app_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (the local sink only).
    None,
    /// STARTTLS on a submission port (Gmail: 587).
    StartTls,
    /// Implicit TLS (Gmail: 465).
    Tls,
}

/// Names of the AWS resources; the queue URLs are needed only by the webhook functions.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    pub webhook_queue_url: Option<String>,
    pub webhook_dlq_url: Option<String>,
    pub table: String,
    pub recordings_bucket: String,
    /// The secrets this function may read (see `aws::secrets`); unset: none of that kind.
    pub secrets: SecretIds,
    /// How long secrets are cached: a rotation is picked up within this time.
    pub secrets_ttl: Duration,
}

/// What a new agent gets when the request leaves it out.
#[derive(Debug, Clone)]
pub struct AgentDefaults {
    pub voice_id: String,
    pub llm: String,
    pub language: String,
}

/// How an outbound API client waits and retries: each attempt's timeout, and exponential
/// backoff (`base_delay * 2^n`, jittered, capped at `max_delay`) between at most `max_retries`
/// retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub timeout: Duration,
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub project_id: String,
    pub jwks_url: Url,
    pub issuer: String,
    pub audience: String,
    pub leeway: Duration,
    /// How long a fetched key set is trusted before it is fetched again.
    pub jwks_ttl: Duration,
    /// The least time between two fetches caused by unknown key ids.
    pub jwks_min_refresh_interval: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every value through `lookup`, so tests can feed a map instead of the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let database = database::source(&env)?;

        let project_id = env.required("STACK_PROJECT_ID")?;
        let stack_api = env
            .optional("STACK_API_URL")
            .unwrap_or_else(|| STACK_API_DEFAULT.to_owned());
        let stack_api = stack_api.trim_end_matches('/');
        let stack = stack_config(&env, stack_api)?;
        let jwks_url = env.optional("JWKS_URL").unwrap_or_else(|| {
            format!("{stack_api}/api/v1/projects/{project_id}/.well-known/jwks.json")
        });
        let jwks_url = parse_http_url("JWKS_URL", &jwks_url)?;
        let issuer = env
            .optional("JWT_ISSUER")
            .unwrap_or_else(|| format!("{stack_api}/api/v1/projects/{project_id}"));
        let audience = env
            .optional("JWT_AUDIENCE")
            .unwrap_or_else(|| project_id.clone());

        let frontend_url = env
            .optional("FRONTEND_URL")
            .unwrap_or_else(|| "http://localhost:5173".into());
        let frontend_url = frontend_url.trim_end_matches('/').to_owned();
        let frontend_origin = env
            .optional("FRONTEND_URL")
            .map(|raw| parse_origin(&raw))
            .transpose()?;

        Ok(Config {
            database: database_config(&env, database)?,
            auth: AuthConfig {
                project_id,
                jwks_url,
                issuer,
                audience,
                leeway: Duration::from_secs(env.number("JWT_LEEWAY_SECONDS", 30, 0..=300)?),
                jwks_ttl: Duration::from_secs(env.number("JWKS_TTL_SECONDS", 3600, 1..=86_400)?),
                jwks_min_refresh_interval: Duration::from_secs(env.number(
                    "JWKS_MIN_REFRESH_SECONDS",
                    10,
                    0..=3600,
                )?),
            },
            stack,
            frontend_origin,
            admin_emails: env
                .optional("ADMIN_EMAILS")
                .map(|list| {
                    list.split(',')
                        .map(|e| e.trim().to_lowercase())
                        .filter(|e| !e.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            max_json_body_bytes: env.number("MAX_JSON_BODY_BYTES", 1 << 20, 1024..=10 << 20)?,
            tenant_rate: BucketConfig {
                burst: f64::from(env.number("TENANT_RATE_BURST", 120_u32, 1..=100_000)?),
                per_second: f64::from(env.number("TENANT_RATE_PER_SECOND", 20_u32, 1..=100_000)?),
            },
            aws: AwsConfig {
                webhook_queue_url: env.optional("WEBHOOK_QUEUE_URL"),
                webhook_dlq_url: env.optional("WEBHOOK_DLQ_URL"),
                table: env
                    .optional("DYNAMODB_TABLE")
                    .unwrap_or_else(|| "ai-calling-kv".into()),
                recordings_bucket: env
                    .optional("RECORDINGS_BUCKET")
                    .unwrap_or_else(|| "ai-calling-recordings".into()),
                secrets: SecretIds {
                    app: env.optional("APP_SECRET_ID"),
                    webhooks: env.optional("WEBHOOK_SECRET_ID"),
                },
                secrets_ttl: Duration::from_secs(env.number(
                    "SECRETS_TTL_SECONDS",
                    60,
                    0..=3600,
                )?),
            },
            elevenlabs_base_url: parse_http_url(
                "ELEVENLABS_BASE_URL",
                &env.optional("ELEVENLABS_BASE_URL")
                    .unwrap_or_else(|| "https://api.elevenlabs.io".into()),
            )?,
            elevenlabs_retry: retry_policy(
                &env,
                RetrySettings {
                    timeout_ms: ("ELEVENLABS_TIMEOUT_MS", 10_000, 100..=120_000),
                    max_retries: ("ELEVENLABS_MAX_RETRIES", 3, 0..=10),
                    base_ms: ("ELEVENLABS_RETRY_BASE_MS", 500, 1..=60_000),
                    max_ms: ("ELEVENLABS_RETRY_MAX_MS", 8_000, 1..=120_000),
                },
            )?,
            agent_defaults: AgentDefaults {
                voice_id: env
                    .optional("ELEVENLABS_DEFAULT_VOICE_ID")
                    .unwrap_or_else(|| "JBFqnCBsd6RMkjVDRZzb".into()),
                llm: env
                    .optional("ELEVENLABS_DEFAULT_LLM")
                    .unwrap_or_else(|| "gemini-2.0-flash".into()),
                language: env
                    .optional("DEFAULT_AGENT_LANGUAGE")
                    .unwrap_or_else(|| "en".into()),
            },
            min_call_balance: env.number("MIN_CALL_BALANCE_CREDITS", 1, 0..=1_000_000)?,
            lead_tags: {
                let hot = env.number("LEAD_HOT_THRESHOLD", 70, 1..=100)?;
                let warm = env.number("LEAD_WARM_THRESHOLD", 40, 0..=100)?;
                if warm >= hot {
                    return Err(ConfigError::Malformed {
                        name: "LEAD_WARM_THRESHOLD",
                        reason: format!("{warm} must be below LEAD_HOT_THRESHOLD ({hot})"),
                    });
                }
                TagThresholds { hot, warm }
            },
            dashboard_cache_ttl: Duration::from_secs(env.number(
                "DASHBOARD_CACHE_TTL_SECONDS",
                600,
                0..=86_400,
            )?),
            reconcile_lookback: Duration::from_secs(
                3600 * env.number("RECONCILE_LOOKBACK_HOURS", 24, 1..=720)?,
            ),
            // Well inside the processor's 30 s timeout, with the part in hand on top.
            export_slice: Duration::from_secs(env.number("EXPORT_SLICE_SECONDS", 10, 0..=20)?),
            default_phone_region: {
                let raw = env
                    .optional("DEFAULT_PHONE_REGION")
                    .unwrap_or_else(|| "US".into());
                raw.to_uppercase()
                    .parse()
                    .map_err(|_| ConfigError::Malformed {
                        name: "DEFAULT_PHONE_REGION",
                        reason: format!("{raw:?} is not an ISO 3166 country code"),
                    })?
            },
            max_webhook_body_bytes: env.number(
                "MAX_WEBHOOK_BODY_BYTES",
                64 << 20,
                1024..=256 << 20,
            )?,
            contact_import_max_rows: env.number("CONTACT_IMPORT_MAX_ROWS", 1000, 1..=100_000)?,
            contact_import_max_bytes: env.number(
                "CONTACT_IMPORT_MAX_BYTES",
                4 << 20,
                1024..=50 << 20,
            )?,
            stripe: stripe_config(&env, &frontend_url)?,
            email: email_config(&env, &frontend_url)?,
        })
    }
}

/// One retry policy's variables: (name, default, allowed range) of each field.
struct RetrySettings {
    timeout_ms: (&'static str, u64, std::ops::RangeInclusive<u64>),
    max_retries: (&'static str, u32, std::ops::RangeInclusive<u32>),
    base_ms: (&'static str, u64, std::ops::RangeInclusive<u64>),
    max_ms: (&'static str, u64, std::ops::RangeInclusive<u64>),
}

fn retry_policy<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    settings: RetrySettings,
) -> Result<RetryPolicy, ConfigError> {
    let millis = |(name, default, range): (&'static str, u64, std::ops::RangeInclusive<u64>)| {
        env.number(name, default, range).map(Duration::from_millis)
    };
    let (name, default, range) = settings.max_retries;
    Ok(RetryPolicy {
        timeout: millis(settings.timeout_ms)?,
        max_retries: env.number(name, default, range)?,
        base_delay: millis(settings.base_ms)?,
        max_delay: millis(settings.max_ms)?,
    })
}

fn database_config<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    source: DatabaseSource,
) -> Result<DatabaseConfig, ConfigError> {
    Ok(DatabaseConfig {
        source,
        pool_size: env.number("DATABASE_POOL_SIZE", 4, 1..=64)?,
        connect: retry_policy(
            env,
            RetrySettings {
                timeout_ms: ("DATABASE_CONNECT_TIMEOUT_MS", 3_000, 100..=30_000),
                max_retries: ("DATABASE_CONNECT_RETRIES", 8, 0..=20),
                base_ms: ("DATABASE_RETRY_BASE_MS", 100, 1..=10_000),
                max_ms: ("DATABASE_RETRY_MAX_MS", 1_000, 1..=30_000),
            },
        )?,
        connect_budget: Duration::from_millis(env.number(
            "DATABASE_CONNECT_BUDGET_MS",
            5_000,
            100..=60_000,
        )?),
        breaker: BreakerConfig {
            failure_threshold: env.number("DATABASE_BREAKER_FAILURES", 3, 1..=100)?,
            cool_down: Duration::from_millis(env.number(
                "DATABASE_BREAKER_COOL_DOWN_MS",
                5_000,
                100..=300_000,
            )?),
        },
        idle_check_after: Duration::from_secs(env.number(
            "DATABASE_IDLE_CHECK_SECONDS",
            30,
            0..=86_400,
        )?),
        pooled_idle_check_after: Duration::from_millis(env.number(
            "DATABASE_POOLED_IDLE_CHECK_MS",
            0,
            0..=86_400_000,
        )?),
    })
}

fn stack_config<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    api_url: &str,
) -> Result<StackConfig, ConfigError> {
    Ok(StackConfig {
        api_url: parse_http_url("STACK_API_URL", api_url)?,
        publishable_client_key: env.optional("STACK_PUBLISHABLE_CLIENT_KEY"),
        retry: retry_policy(
            env,
            RetrySettings {
                timeout_ms: ("STACK_TIMEOUT_MS", 10_000, 100..=60_000),
                max_retries: ("STACK_MAX_RETRIES", 2, 0..=5),
                base_ms: ("STACK_RETRY_BASE_MS", 200, 1..=10_000),
                max_ms: ("STACK_RETRY_MAX_MS", 2_000, 1..=30_000),
            },
        )?,
    })
}

fn stripe_config<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    frontend_url: &str,
) -> Result<StripeConfig, ConfigError> {
    let base_url = env
        .optional("STRIPE_BASE_URL")
        .unwrap_or_else(|| "https://api.stripe.com".into());
    let success_url = env.optional("CHECKOUT_SUCCESS_URL").unwrap_or_else(|| {
        format!("{frontend_url}/billing?checkout=success&session_id={{CHECKOUT_SESSION_ID}}")
    });
    let cancel_url = env
        .optional("CHECKOUT_CANCEL_URL")
        .unwrap_or_else(|| format!("{frontend_url}/billing?checkout=cancelled"));
    parse_http_url("CHECKOUT_SUCCESS_URL", &success_url)?;
    parse_http_url("CHECKOUT_CANCEL_URL", &cancel_url)?;
    Ok(StripeConfig {
        base_url: parse_http_url("STRIPE_BASE_URL", &base_url)?,
        timeout: Duration::from_millis(env.number("STRIPE_TIMEOUT_MS", 10_000, 100..=60_000)?),
        success_url,
        cancel_url,
    })
}

fn email_config<F: Fn(&str) -> Option<String>>(
    env: &Env<'_, F>,
    frontend_url: &str,
) -> Result<EmailConfig, ConfigError> {
    let smtp_tls = match env.optional("SMTP_TLS").as_deref() {
        None | Some("starttls") => SmtpTls::StartTls,
        Some("tls") => SmtpTls::Tls,
        Some("none") => SmtpTls::None,
        Some(other) => {
            return Err(malformed(
                "SMTP_TLS",
                format!("{other:?} is not starttls, tls or none"),
            ))
        }
    };
    let from = env
        .optional("EMAIL_FROM")
        .unwrap_or_else(|| "AI Calling <no-reply@localhost>".into());
    from.parse::<lettre::message::Mailbox>()
        .map_err(|e| malformed("EMAIL_FROM", e))?;
    Ok(EmailConfig {
        smtp_host: env.optional("SMTP_HOST"),
        smtp_port: env.number("SMTP_PORT", 587, 1..=65_535)?,
        smtp_user: env.optional("SMTP_USER"),
        smtp_tls,
        from,
        timeout: Duration::from_millis(env.number("SMTP_TIMEOUT_MS", 10_000, 100..=120_000)?),
        app_url: frontend_url.to_owned(),
    })
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        let value: T = raw.parse().map_err(|_| ConfigError::Malformed {
            name,
            reason: format!("{raw:?} is not a whole number"),
        })?;
        if !range.contains(&value) {
            return Err(ConfigError::Malformed {
                name,
                reason: format!("{value} is outside {}..={}", range.start(), range.end()),
            });
        }
        Ok(value)
    }
}

fn malformed(name: &'static str, err: impl std::fmt::Display) -> ConfigError {
    ConfigError::Malformed {
        name,
        reason: err.to_string(),
    }
}

fn parse_http_url(name: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| malformed(name, e))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(malformed(name, "expected an http(s) URL with a host")),
    }
}

fn parse_origin(raw: &str) -> Result<HeaderValue, ConfigError> {
    let url = parse_http_url("FRONTEND_URL", raw)?;
    let origin = url.origin().ascii_serialization();
    HeaderValue::from_str(&origin).map_err(|e| malformed("FRONTEND_URL", e))
}

/// Total scores from which a lead is hot, or warm (settings; 70 and 40 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagThresholds {
    pub hot: i64,
    pub warm: i64,
}

impl Default for TagThresholds {
    fn default() -> Self {
        Self { hot: 70, warm: 40 }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        ("DATABASE_URL", "postgres://app@localhost/app"),
        ("STACK_PROJECT_ID", "proj-1"),
    ];

    #[test]
    fn derives_issuer_audience_and_jwks_from_project_id() {
        let cfg = config(&BASE).expect("valid");
        assert_eq!(cfg.auth.audience, "proj-1");
        assert_eq!(
            cfg.auth.issuer,
            "https://api.stack-auth.com/api/v1/projects/proj-1"
        );
        assert_eq!(
            cfg.auth.jwks_url.as_str(),
            "https://api.stack-auth.com/api/v1/projects/proj-1/.well-known/jwks.json"
        );
        assert_eq!(cfg.stack.api_url.as_str(), "https://api.stack-auth.com/");
        assert_eq!(cfg.stack.publishable_client_key, None);
    }

    #[test]
    fn stack_api_url_is_exposed_and_derives_the_rest() {
        let mut pairs = BASE.to_vec();
        pairs.push(("STACK_API_URL", "http://127.0.0.1:8102/"));
        let cfg = config(&pairs).expect("valid");
        assert_eq!(cfg.stack.api_url.as_str(), "http://127.0.0.1:8102/");
        assert_eq!(
            cfg.auth.issuer,
            "http://127.0.0.1:8102/api/v1/projects/proj-1"
        );
    }

    #[test]
    fn explicit_values_override_derived_ones() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("JWT_ISSUER", "https://issuer.example"),
            ("JWT_AUDIENCE", "aud-x"),
            ("JWKS_URL", "http://127.0.0.1:9/jwks.json"),
            ("FRONTEND_URL", "https://app.example.com/dashboard"),
            ("ADMIN_EMAILS", " Boss@Example.com ,, ops@example.com"),
        ]);
        let cfg = config(&pairs).expect("valid");
        assert_eq!(cfg.auth.issuer, "https://issuer.example");
        assert_eq!(cfg.auth.audience, "aud-x");
        assert_eq!(cfg.auth.jwks_url.as_str(), "http://127.0.0.1:9/jwks.json");
        assert_eq!(
            cfg.frontend_origin.expect("origin"),
            "https://app.example.com"
        );
        assert_eq!(cfg.admin_emails, ["boss@example.com", "ops@example.com"]);
    }

    #[test]
    fn contact_import_limits_default_to_the_design() {
        let cfg = config(&BASE).expect("valid");
        assert_eq!(cfg.contact_import_max_rows, 1000);
        assert_eq!(cfg.contact_import_max_bytes, 4 << 20);
    }

    #[test]
    fn lead_tag_thresholds_are_settings_and_must_be_ordered() {
        let cfg = config(&BASE).expect("valid");
        assert_eq!((cfg.lead_tags.hot, cfg.lead_tags.warm), (70, 40));
        let mut pairs = BASE.to_vec();
        pairs.extend([("LEAD_HOT_THRESHOLD", "80"), ("LEAD_WARM_THRESHOLD", "50")]);
        let cfg = config(&pairs).expect("valid");
        assert_eq!((cfg.lead_tags.hot, cfg.lead_tags.warm), (80, 50));
        pairs.push(("LEAD_WARM_THRESHOLD", "90"));
        let map_last_wins = config(&pairs);
        assert!(matches!(
            map_last_wins,
            Err(ConfigError::Malformed {
                name: "LEAD_WARM_THRESHOLD",
                ..
            })
        ));
    }

    #[test]
    fn the_direct_database_url_is_optional_and_never_printed() {
        let cfg = config(&BASE).expect("valid");
        assert!(matches!(
            &cfg.database.source,
            DatabaseSource::Url { direct: None, .. }
        ));
        let mut pairs = BASE.to_vec();
        pairs.push((
            "DATABASE_DIRECT_URL",
            "postgres://app:hunter2@direct.example/app",
        ));
        let cfg = config(&pairs).expect("valid");
        let DatabaseSource::Url { direct, .. } = &cfg.database.source else {
            panic!("a URL source");
        };
        assert_eq!(
            direct.as_deref(),
            Some("postgres://app:hunter2@direct.example/app")
        );
        assert!(!format!("{:?}", cfg.database).contains("hunter2"));
    }

    #[test]
    fn missing_values_are_named() {
        assert_eq!(
            config(&[("STACK_PROJECT_ID", "p")]).unwrap_err(),
            ConfigError::Missing("DATABASE_URL")
        );
        assert_eq!(
            config(&[("DATABASE_URL", "postgres://a@b/c")]).unwrap_err(),
            ConfigError::Missing("STACK_PROJECT_ID")
        );
    }

    #[test]
    fn malformed_values_are_named() {
        for (name, value) in [
            ("JWKS_URL", "not a url"),
            ("JWKS_URL", "ftp://keys.example/jwks"),
            ("FRONTEND_URL", "app.example.com"),
            ("DATABASE_POOL_SIZE", "0"),
            ("DATABASE_POOL_SIZE", "many"),
            ("JWT_LEEWAY_SECONDS", "-1"),
            ("DEFAULT_PHONE_REGION", "Atlantis"),
            ("ELEVENLABS_BASE_URL", "api.elevenlabs.io"),
            ("STACK_API_URL", "api.stack-auth.com"),
            ("STACK_TIMEOUT_MS", "0"),
            ("CONTACT_IMPORT_MAX_ROWS", "0"),
            ("CONTACT_IMPORT_MAX_BYTES", "12"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((name, value));
            match config(&pairs) {
                Err(ConfigError::Malformed { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name}={value}: expected malformed, got {other:?}"),
            }
        }
        let err = config(&[
            ("STACK_PROJECT_ID", "p"),
            ("DATABASE_URL", "postgres://a@b/c"),
            ("DATABASE_DIRECT_URL", "postgres://a@b/c?sslmode=bogus"),
        ])
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Malformed {
                name: "DATABASE_DIRECT_URL",
                ..
            }
        ));
        let err = config(&[("DATABASE_URL", "postgres://a@b/c?sslmode=bogus")]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Malformed {
                name: "DATABASE_URL",
                ..
            }
        ));
    }
}
