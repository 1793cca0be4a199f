//! The Postgres pool, behind one door: `Database::get` (and `Database::get_direct` for the
//! work that needs a session past the pooler: migrations). Lambda runs one invocation per
//! instance, so pools stay small; TLS is used whenever the server offers it (Neon requires
//! it), plain TCP otherwise (the local cluster). A connection that cannot be made is retried
//! with jittered backoff inside the request's budget (a waking Neon compute costs latency,
//! not an error); a run of such failures opens a per-process circuit breaker, and requests
//! are then refused at once until a trial connection succeeds. A request checks a connection
//! out once: the one its authentication used is kept for its handler
//! ([`with_request_connection`]), and its user lookup shares a round trip with the
//! connection's liveness check ([`Database::get_with_first`]).

mod breaker;
pub mod filter;
pub mod migrate;
pub mod statements;

use std::{
    cell::RefCell,
    future::Future,
    pin::{pin, Pin},
    time::{Duration, Instant},
};

use deadpool_postgres::{
    HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
    TimeoutType,
};
use futures::future::{self, BoxFuture, Either};
use tokio_postgres::error::SqlState;

pub use breaker::{Admission, Breaker, BreakerConfig, Status as BreakerStatus};
pub use deadpool_postgres::{Client, Transaction};
pub use migrate::{migrate, Migration, MIGRATIONS};
pub(crate) use statements::statements;

use crate::{
    clients::retry,
    config::{DatabaseConfig, DatabaseSource},
    error::{AppError, AppResult},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub struct Database {
    /// Resolved on first use: from the config, or from the secret read then (no AWS call, TLS
    /// handshake or connection before a request needs the database).
    urls: tokio::sync::OnceCell<Urls>,
    pool: tokio::sync::OnceCell<Pool>,
    /// One connection past the pooler, when a direct URL is configured.
    direct: tokio::sync::OnceCell<Option<Pool>>,
    aws: crate::aws::Client,
    breaker: Breaker,
    config: DatabaseConfig,
}

struct Urls {
    /// Deployed, through Neon's pooler (PgBouncer, transaction mode).
    pooled: String,
    /// Straight to Postgres, for work that needs a session.
    direct: Option<String>,
}

impl Database {
    pub fn new(config: DatabaseConfig, aws: crate::aws::Client) -> Self {
        Self {
            urls: tokio::sync::OnceCell::new(),
            pool: tokio::sync::OnceCell::new(),
            direct: tokio::sync::OnceCell::new(),
            aws,
            breaker: Breaker::new(config.breaker),
            config,
        }
    }

    async fn urls(&self) -> AppResult<&Urls> {
        // Boxed: this runs once per process, and inlining it would deepen every caller's future.
        self.urls
            .get_or_try_init(|| {
                Box::pin(async {
                    match &self.config.source {
                        DatabaseSource::Url { url, direct } => Ok(Urls {
                            pooled: url.clone(),
                            direct: direct.clone(),
                        }),
                        DatabaseSource::Secret(id) => self.urls_from_secret(id).await,
                    }
                })
            })
            .await
    }

    async fn pool(&self) -> AppResult<&Pool> {
        self.pool
            .get_or_try_init(|| {
                Box::pin(async {
                    let urls = self.urls().await?;
                    // A direct URL beside it says DATABASE_URL is a pooler's. A pooler keeps its
                    // clients' connections open while Postgres behind it restarts, so one idle
                    // even for a second proves little: it is checked before use, and a dead one
                    // replaced (with the connect's retries) before the request uses anything it
                    // ran on it (its first statements may ride with the check:
                    // `get_with_first`). DATABASE_POOLED_IDLE_CHECK_MS can trust one handed out
                    // within a short time, saving a round trip; by default none is: a query on
                    // a trusted connection while Postgres is down waits in the pooler
                    // (PgBouncer's query_wait_timeout, 120 s) instead of failing within the
                    // connect budget, and under steady traffic every connection is trusted, so
                    // the breaker never opens.
                    let check_after = if urls.direct.is_some() {
                        Some(self.config.pooled_idle_check_after)
                    } else {
                        self.idle_check_after()
                    };
                    self.build_pool(&urls.pooled, self.config.pool_size, check_after)
                })
            })
            .await
    }

    async fn direct_pool(&self) -> AppResult<Option<&Pool>> {
        let direct = self
            .direct
            .get_or_try_init(|| {
                Box::pin(async {
                    match &self.urls().await?.direct {
                        Some(url) => self.build_pool(url, 1, self.idle_check_after()).map(Some),
                        None => Ok(None),
                    }
                })
            })
            .await?;
        Ok(direct.as_ref())
    }

    /// `DATABASE_IDLE_CHECK_SECONDS`, 0 meaning never.
    fn idle_check_after(&self) -> Option<Duration> {
        Some(self.config.idle_check_after).filter(|after| !after.is_zero())
    }

    /// `check_after`: how long a connection may sit idle before it is checked on its next use
    /// (`None`: never).
    fn build_pool(&self, url: &str, size: usize, check_after: Option<Duration>) -> AppResult<Pool> {
        builder(url, size)
            .and_then(|b| {
                Ok(
                    b.pre_recycle(idle_check(check_after, self.config.connect.timeout))
                        .build()?,
                )
            })
            // The error may quote the URL; only its kind is passed on.
            .map_err(|_| AppError::internal("the database URL is not usable"))
    }

    async fn urls_from_secret(&self, id: &str) -> AppResult<Urls> {
        #[derive(serde::Deserialize)]
        struct DatabaseSecret {
            database_url: String,
            #[serde(default)]
            database_direct_url: Option<String>,
        }
        let text = crate::aws::secrets::get_string(&self.aws, id).await?;
        let secret: DatabaseSecret = serde_json::from_str(&text).map_err(|_| {
            AppError::internal("the database secret is not {\"database_url\": \"...\"}")
        })?;
        Ok(Urls {
            pooled: secret.database_url,
            // The template writes an empty string when no direct URL was given.
            direct: secret.database_direct_url.filter(|url| !url.is_empty()),
        })
    }

    /// A connection straight to Postgres, past the pooler, for work that needs its session to
    /// outlive a transaction (migrations); the pooled connection when no direct URL is
    /// configured. Retried and guarded by the breaker like [`Database::get`].
    pub async fn get_direct(&self) -> AppResult<Client> {
        match self.direct_pool().await? {
            Some(pool) => self.connect(pool, Instant::now()).await,
            None => self.get().await,
        }
    }

    /// A pooled connection, or the `database_unavailable` error (500, with Retry-After) when
    /// the database cannot be reached within the budget or the breaker is open. Inside a
    /// request, the connection kept for it ([`Database::keep_for_request`]) if there is one.
    pub async fn get(&self) -> AppResult<Client> {
        if let Some(kept) = take_request_connection() {
            return Ok(kept);
        }
        let pool = self.pool().await?;
        self.connect(pool, Instant::now()).await
    }

    /// [`Database::get`] for a connection's first statements, run by `first`. A liveness check
    /// due on the connection is sent without waiting for its answer, so `first`'s statements
    /// share its round trip, and `first`'s result stands only once the check has passed. If
    /// it fails, the connection is closed, so nothing `first` sent behind the check in the
    /// pooler runs later, and `first` runs again on a connection checked out as `get` does it
    /// (with the connect's retries): `first` must be safe to run twice. (A function of the
    /// connection and `input` rather than a closure: a closure's borrowing future would not
    /// prove itself `Send` to the handlers that await this.)
    pub async fn get_with_first<I: Sync + ?Sized, T>(
        &self,
        input: &I,
        first: for<'c> fn(&'c mut Client, &'c I) -> BoxFuture<'c, AppResult<T>>,
    ) -> AppResult<(Client, T)> {
        let started = Instant::now();
        let (mut client, check) = match take_request_connection() {
            Some(kept) => (kept, None),
            None => self.connect_sending_check(started).await?,
        };
        if let Some(check) = check {
            match beside(check, first(&mut client, input)).await {
                Ok(done) => {
                    self.breaker.succeeded();
                    return Ok((client, done?));
                }
                Err(err) => {
                    tracing::debug!(error = %err, "a pooled connection failed its liveness check; checking out another");
                    drop(Object::take(client));
                    // Within what is left of the same budget.
                    client = self.connect(self.pool().await?, started).await?;
                }
            }
        }
        let done = first(&mut client, input).await?;
        Ok((client, done))
    }

    /// A pooled connection, and the answer to its liveness check when one was due and sent.
    /// Unless the circuit is closed: a trial connection's check is awaited, so that the trial's
    /// one attempt, not a retry the half-open circuit would refuse, closes or reopens it.
    async fn connect_sending_check(
        &self,
        started: Instant,
    ) -> AppResult<(Client, Option<CheckAnswer>)> {
        let pool = self.pool().await?;
        if self.breaker_status() != BreakerStatus::Closed {
            return Ok((self.connect(pool, started).await?, None));
        }
        let mut checkout = pin!(CHECK_SENT.scope(RefCell::new(None), self.connect(pool, started)));
        let client = checkout.as_mut().await?;
        let check = checkout.take_value().and_then(RefCell::into_inner);
        Ok((client, check))
    }

    /// Keeps a pooled connection this request has just used for the request's next
    /// [`Database::get`]: it answered a moment ago, so checking it out again (and, behind a
    /// pooler, proving it alive with another round trip) would only add time. Outside
    /// [`with_request_connection`] it goes back to the pool.
    pub fn keep_for_request(&self, client: Client) {
        let _ =
            REQUEST_CONNECTION.try_with(|slot| *slot.borrow_mut() = Some((Instant::now(), client)));
    }

    /// A connection from `pool` within the connect budget counted from `started`.
    async fn connect(&self, pool: &Pool, started: Instant) -> AppResult<Client> {
        let max_retries = match self.breaker.admit(Instant::now()) {
            Admission::Pass => self.config.connect.max_retries,
            // The trial only asks whether the database is back: one attempt.
            Admission::Trial => 0,
            Admission::Refused { retry_after } => {
                return Err(AppError::database_unavailable(
                    retry_after,
                    "the database circuit is open",
                ))
            }
        };
        let mut retry = 0;
        loop {
            let remaining = self.config.connect_budget.saturating_sub(started.elapsed());
            let attempt =
                tokio::time::timeout(self.config.connect.timeout.min(remaining), pool.get()).await;
            let (err, transient): (BoxError, bool) = match attempt {
                Ok(Ok(client)) => {
                    // A connection whose check was handed over is proven only by that check's
                    // answer, which `get_with_first` reports.
                    if !check_handed_over() {
                        self.breaker.succeeded();
                    }
                    return Ok(client);
                }
                // Every connection is busy serving this process: the database is fine.
                Ok(Err(PoolError::Timeout(TimeoutType::Wait))) => {
                    return Err(AppError::database_busy(PoolError::Timeout(
                        TimeoutType::Wait,
                    )))
                }
                Ok(Err(err)) => {
                    let transient = is_transient(&err);
                    (err.into(), transient)
                }
                Err(elapsed) => (elapsed.into(), true),
            };
            let delay = retry::delay(&self.config.connect, retry, None).unwrap_or_default();
            if !transient
                || retry >= max_retries
                || started.elapsed() + delay >= self.config.connect_budget
            {
                tracing::warn!(error = %err, attempts = retry + 1, "could not connect to the database");
                self.breaker.failed(Instant::now());
                return Err(AppError::database_unavailable(
                    self.config.breaker.cool_down,
                    err,
                ));
            }
            tracing::debug!(error = %err, retry, "database connect failed; retrying");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    pub fn breaker_status(&self) -> BreakerStatus {
        self.breaker.status(Instant::now())
    }

    /// Whether a connection can be had now (a pooled one when the database is up; at once
    /// refused when its circuit is open). Consumers of queued work ask before taking any, so
    /// an outage does not spend the work's delivery attempts.
    pub async fn ready(&self) -> AppResult<()> {
        self.get().await.map(drop)
    }

    /// A full round trip to the database (what /health reports).
    pub async fn ping(&self) -> AppResult<()> {
        self.get().await?.query_one(sql::PING, &[]).await?;
        Ok(())
    }
}

tokio::task_local! {
    static REQUEST_CONNECTION: RefCell<Option<(Instant, Client)>>;
    /// Set around a checkout whose caller awaits the liveness check itself
    /// ([`Database::get_with_first`]): the check is handed over unanswered.
    static CHECK_SENT: RefCell<Option<CheckAnswer>>;
}

/// The answer to a liveness check sent on a connection, bounded by the connect timeout.
type CheckAnswer = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send>>;

/// `work`'s output once `check` has passed; the check's failure as soon as it fails (the
/// work may be waiting behind it in the pooler).
async fn beside<T>(check: CheckAnswer, work: impl Future<Output = T>) -> Result<T, HookError> {
    match future::select(check, pin!(work)).await {
        Either::Left((passed, work)) => {
            passed?;
            Ok(work.await)
        }
        Either::Right((done, check)) => check.await.map(|()| done),
    }
}

/// How long a connection kept for its request is handed out again unchecked. A handler asks
/// for it microseconds after authentication; one that first waited on another service gets a
/// checked connection instead, as it would have without the slot.
pub const KEPT_UNCHECKED_FOR: Duration = Duration::from_millis(100);

/// Runs one request with room for the connection [`Database::keep_for_request`] keeps for it
/// (one pool, one state per process: the slot does not say whose connection it holds). A
/// connection its handler never took goes back to the pool when the request is answered.
pub async fn with_request_connection<F: Future>(request: F) -> F::Output {
    REQUEST_CONNECTION.scope(RefCell::new(None), request).await
}

/// The connection kept for this request, unless kept too long ago (then it goes back to the
/// pool, to be checked at its next checkout).
fn take_request_connection() -> Option<Client> {
    let (kept_at, client) = REQUEST_CONNECTION
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()?;
    (kept_at.elapsed() < KEPT_UNCHECKED_FOR).then_some(client)
}

/// A pool without the breaker, for tools and tests that manage their own connections.
pub fn pool(database_url: &str, max_size: usize) -> Result<Pool, BoxError> {
    Ok(builder(database_url, max_size)?.build()?)
}

fn builder(
    database_url: &str,
    max_size: usize,
) -> Result<deadpool_postgres::PoolBuilder, BoxError> {
    let mut pg: tokio_postgres::Config = database_url.parse()?;
    pg.connect_timeout(Duration::from_secs(5));
    if pg.get_application_name().is_none() {
        pg.application_name("ai-calling-backend");
    }
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config());
    let manager = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .post_create(first_round_trip()))
}

/// A new connection counts as made only once Postgres has answered on it: through a pooler
/// the login succeeds while Postgres behind it is down (PgBouncer answers it alone), and the
/// failure would otherwise surface in the request's first query instead of the connect's
/// retries and the breaker.
fn first_round_trip() -> deadpool_postgres::Hook {
    deadpool_postgres::Hook::async_fn(|client, _| {
        Box::pin(async move {
            client
                .simple_query(sql::IDLE_CHECK)
                .await
                .map(drop)
                .map_err(HookError::Backend)
        })
    })
}

/// Checks a connection that sat idle at least `after` before handing it out; a dead one is
/// dropped and the pool makes a new one, so the request never sees the stale connection. A
/// caller that awaits the check itself ([`Database::get_with_first`]) gets the connection at
/// once and the check's answer with it.
fn idle_check(after: Option<Duration>, timeout: Duration) -> deadpool_postgres::Hook {
    deadpool_postgres::Hook::async_fn(move |client, metrics| {
        Box::pin(async move {
            if after.is_none_or(|after| metrics.last_used() < after) {
                return Ok(());
            }
            match hand_over(send_check(client, timeout).await?) {
                Some(check) => check.await,
                None => Ok(()),
            }
        })
    })
}

/// Whether this checkout's check was handed to its caller ([`hand_over`]).
fn check_handed_over() -> bool {
    CHECK_SENT
        .try_with(|sent| sent.borrow().is_some())
        .unwrap_or(false)
}

/// Hands a check just sent to the caller that awaits it itself, if there is one (and it holds
/// none yet); gives it back otherwise.
fn hand_over(check: CheckAnswer) -> Option<CheckAnswer> {
    let mut check = Some(check);
    let _ = CHECK_SENT.try_with(|sent| {
        let mut sent = sent.borrow_mut();
        if sent.is_none() {
            *sent = check.take();
        }
    });
    check
}

/// Sends the empty statement on `client` without waiting for its answer (statements sent after
/// it share its round trip); the answer, bounded by `timeout`.
async fn send_check(
    client: &tokio_postgres::Client,
    timeout: Duration,
) -> Result<CheckAnswer, HookError> {
    use futures::TryStreamExt;
    let answer = client
        .simple_query_raw(sql::IDLE_CHECK)
        .await
        .map_err(HookError::Backend)?;
    Ok(Box::pin(async move {
        match tokio::time::timeout(timeout, answer.try_for_each(|_| future::ok(()))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(HookError::Backend(err)),
            Err(_) => Err(HookError::message("idle connection check timed out")),
        }
    }))
}

/// Whether another connect attempt may succeed where this one failed: the server was
/// unreachable, went away, is starting (a waking Neon compute) or is out of connections.
/// A wrong password or database name is not, and is not retried.
fn is_transient(err: &PoolError) -> bool {
    match err {
        PoolError::Timeout(_) => true,
        PoolError::Backend(err) | PoolError::PostCreateHook(HookError::Backend(err)) => {
            match err.code() {
                None => true,
                Some(code) => {
                    let code = code.code();
                    code.starts_with("08")
                        || code.starts_with("53")
                        || code == SqlState::ADMIN_SHUTDOWN.code()
                        || code == SqlState::CRASH_SHUTDOWN.code()
                        || code == SqlState::CANNOT_CONNECT_NOW.code()
                        // Neon's proxy while it wakes a suspended compute.
                        || err.to_string().to_lowercase().contains("compute")
                }
            }
        }
        PoolError::Closed
        | PoolError::NoRuntimeSpecified
        | PoolError::PostCreateHook(HookError::Message(_)) => false,
    }
}

pub mod sql {
    crate::db::statements! {
        /// The empty statement: the cheapest round trip that proves a connection is alive.
        pub const IDLE_CHECK = "";
        pub const PING = "SELECT 1";
        /// For the rest of the transaction, plans without parallel workers
        /// ([`Filter::page_stream`](super::filter::Filter::page_stream) says when that pays).
        pub const SERIAL_PLANS = "SET LOCAL max_parallel_workers_per_gather = 0";
    }
}

fn tls_config() -> rustls::ClientConfig {
    crate::telemetry::install_crypto_provider();
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}
