//! What a request costs the pool: its handler reuses the connection its authentication checked
//! out, so behind the pooler it pays one checkout and one liveness check, not two; unless the
//! handler asks for it only after `KEPT_UNCHECKED_FOR`. And the check costs no round trip of
//! its own: the first statements are sent beside it (`Database::get_with_first`), and run
//! again on another connection if it fails. Such a connection proves nothing to the database's
//! circuit until its check has passed, and a half-open circuit's trial awaits its check. An
//! unchanged dashboard's 304 sends nothing after the user lookup.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use deadpool_postgres::Object;
use tower::ServiceExt;

use crate::support::{app_state, NewUser};

#[tokio::test]
async fn an_authenticated_request_checks_out_one_connection() {
    let state = app_state().await;
    let app = shared::http::app(state.clone(), &[shared::http::Group::Calls.served()]);
    let token = NewUser::new().token();
    let list_calls = || async {
        let request = axum::http::Request::get("/api/calls?limit=20")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("a request");
        let response = app.clone().oneshot(request).await.expect("an answer");
        assert_eq!(response.status(), 200);
    };
    // Used one at a time, the state's pool holds one connection: each checkout recycles it.
    let checkouts = || async {
        let client = state.db().get().await.expect("a connection");
        Object::metrics(&client).recycle_count
    };

    // The first request creates the user (and the pool's connection).
    list_calls().await;
    let before = checkouts().await;
    list_calls().await;
    let after = checkouts().await;
    assert_eq!(
        after - before,
        2,
        "one checkout for the request (authentication and handler), one for this count"
    );
}

#[tokio::test]
async fn a_connection_kept_too_long_is_checked_out_again() {
    let state = app_state().await;
    let db = state.db();
    let recycles = |client: &Object| Object::metrics(client).recycle_count;
    shared::db::with_request_connection(async {
        let client = db.get().await.expect("a connection");
        let checked_out = recycles(&client);
        db.keep_for_request(client);
        let again = db.get().await.expect("the kept connection");
        assert_eq!(recycles(&again), checked_out, "handed out again as it was");

        db.keep_for_request(again);
        tokio::time::sleep(shared::db::KEPT_UNCHECKED_FOR + Duration::from_millis(20)).await;
        // Used one at a time, the state's pool holds this one connection: it comes back
        // through a checkout.
        let later = db.get().await.expect("a connection");
        assert_eq!(recycles(&later), checked_out + 1, "checked out again");
    })
    .await;
}

/// A TCP relay to the stack's pooler that can hold back the pooler's answers (passing on the
/// client's statements all the while), as a slow or stalled network would, and close each new
/// connection at once, as a pooler that has gone away would.
struct Relay {
    url: String,
    held: tokio::sync::watch::Sender<bool>,
    refusing: Arc<AtomicBool>,
    /// The pooler's `ReadyForQuery` messages: one per statement the client synced, one per
    /// simple query (the liveness check), one after each connection's startup.
    ready: Arc<AtomicUsize>,
    /// The client's `Sync` messages: one per statement sent with the extended protocol.
    synced: Arc<AtomicUsize>,
}

impl Relay {
    async fn start() -> Self {
        let pooled = crate::support::stack().database_url.clone();
        let config: tokio_postgres::Config = pooled.parse().expect("the stack's database URL");
        let upstream = format!("127.0.0.1:{}", config.get_ports()[0]);
        assert!(pooled.contains(&upstream), "{pooled} names {upstream}");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = pooled.replace(
            &upstream,
            &listener.local_addr().expect("bound").to_string(),
        );
        let (held, holding) = tokio::sync::watch::channel(false);
        let refusing = Arc::new(AtomicBool::new(false));
        let refuse = refusing.clone();
        let ready = Arc::new(AtomicUsize::new(0));
        let readies = ready.clone();
        let synced = Arc::new(AtomicUsize::new(0));
        let syncs = synced.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let server = tokio::net::TcpStream::connect(&upstream)
                    .await
                    .expect("the pooler");
                let (from_client, to_client) = client.into_split();
                let (from_server, to_server) = server.into_split();
                let mut client_messages = ClientMessages::default();
                tokio::spawn(forward(
                    (from_client, to_server),
                    move |bytes| client_messages.syncs_in(bytes),
                    syncs.clone(),
                    None,
                ));
                let mut server_messages = ServerMessages::default();
                tokio::spawn(forward(
                    (from_server, to_client),
                    move |bytes| server_messages.ready_in(bytes),
                    readies.clone(),
                    Some(holding.clone()),
                ));
            }
        });
        Self {
            url,
            held,
            refusing,
            ready,
            synced,
        }
    }

    /// How many statements clients have sent so far (their `Sync`s), over every connection.
    fn sync_count(&self) -> usize {
        self.synced.load(Ordering::SeqCst)
    }

    /// How many `ReadyForQuery` the pooler has sent so far, over every connection.
    fn ready_count(&self) -> usize {
        self.ready.load(Ordering::SeqCst)
    }

    fn hold(&self, held: bool) {
        self.held.send_replace(held);
    }

    /// `request`'s answer, and how many statements it sent while every answer was held back:
    /// up to 2 s for `expected` of them, then a moment for any more.
    async fn sent_before_any_answer<T: Send + 'static>(
        &self,
        expected: usize,
        request: impl std::future::Future<Output = T> + Send + 'static,
    ) -> (usize, T) {
        self.hold(true);
        let before = self.sync_count();
        let request = tokio::spawn(request);
        let sent = || self.sync_count() - before;
        for _ in 0..200 {
            if sent() >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Anything more would come now.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let sent = sent();
        self.hold(false);
        (sent, request.await.expect("the request"))
    }

    /// Whether new connections are closed as soon as they are made (open ones are kept).
    fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    /// The router api-calls serves, its pool of one connection through this relay: used one
    /// request at a time, each checks out the same connection.
    async fn calls_app_of_one_connection(&self) -> axum::Router {
        let state = self.app_state(&[("DATABASE_POOL_SIZE", "1")]).await;
        shared::http::app(state, &[shared::http::Group::Calls.served()])
    }

    /// An application state whose pooled connections go through this relay, with the test
    /// environment's settings but for `settings` (`DATABASE_CONNECT_TIMEOUT_MS` is also the
    /// liveness check's).
    async fn app_state(&self, settings: &[(&str, &str)]) -> shared::AppState {
        let config = shared::Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(self.url.clone()),
            other => settings
                .iter()
                .find(|(set, _)| *set == other)
                .map(|(_, value)| value.to_string())
                .or_else(|| std::env::var(other).ok()),
        })
        .expect("config");
        assert!(
            std::env::var("DATABASE_DIRECT_URL").is_ok(),
            "the stack names its pooler as such"
        );
        shared::AppState::new(config).await.expect("state")
    }
}

/// Copies one direction of a relayed connection as it arrives, adding what `count` finds in
/// each chunk to `counted`; while `held` says so, a chunk read waits before it is passed on.
async fn forward(
    (mut from, mut to): (
        tokio::net::tcp::OwnedReadHalf,
        tokio::net::tcp::OwnedWriteHalf,
    ),
    mut count: impl FnMut(&[u8]) -> usize,
    counted: Arc<AtomicUsize>,
    mut held: Option<tokio::sync::watch::Receiver<bool>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 16 * 1024];
    loop {
        let read = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        counted.fetch_add(count(&buf[..read]), Ordering::SeqCst);
        if let Some(held) = &mut held {
            if held.wait_for(|held| !held).await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..read]).await.is_err() {
            return;
        }
    }
}

/// The pooler's side of one connection, read as it arrives: its messages are a type byte and
/// a length that counts itself, but for the one-byte answer to the client's TLS request.
#[derive(Default)]
struct ServerMessages {
    started: bool,
    partial: Vec<u8>,
}

impl ServerMessages {
    /// How many `ReadyForQuery` (`Z`) messages `bytes` completes.
    fn ready_in(&mut self, bytes: &[u8]) -> usize {
        self.partial.extend_from_slice(bytes);
        if !self.started && self.partial.first() == Some(&b'N') {
            self.partial.remove(0);
        }
        self.started = true;
        let mut ready = 0;
        while self.partial.len() >= 5 {
            let length = u32::from_be_bytes(self.partial[1..5].try_into().expect("4 bytes"));
            let end = 1 + length as usize;
            if self.partial.len() < end {
                break;
            }
            ready += usize::from(self.partial[0] == b'Z');
            self.partial.drain(..end);
        }
        ready
    }
}

/// The client's side of one connection, read as it arrives: after the untyped requests that
/// open it (TLS, then startup), a type byte and a length that counts itself.
#[derive(Default)]
struct ClientMessages {
    started: bool,
    partial: Vec<u8>,
}

impl ClientMessages {
    /// The startup message's protocol version, 3.0.
    const STARTUP: u32 = 196_608;

    /// How many `Sync` (`S`) messages `bytes` completes.
    fn syncs_in(&mut self, bytes: &[u8]) -> usize {
        self.partial.extend_from_slice(bytes);
        let mut syncs = 0;
        loop {
            let typed = usize::from(self.started);
            let Some(length) = self.partial.get(typed..typed + 4) else {
                return syncs;
            };
            let end = typed + u32::from_be_bytes(length.try_into().expect("4 bytes")) as usize;
            if self.partial.len() < end {
                return syncs;
            }
            if self.started {
                syncs += usize::from(self.partial[0] == b'S');
            } else {
                let code = self.partial.get(4..8).expect("a request code");
                self.started =
                    u32::from_be_bytes(code.try_into().expect("4 bytes")) == Self::STARTUP;
            }
            self.partial.drain(..end);
        }
    }
}

/// Whether a statement containing `marker` is running in Postgres now.
async fn running(marker: &str) -> bool {
    let pattern = format!("%{marker}%");
    crate::support::db()
        .await
        .query_opt(
            "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 \
             AND pid <> pg_backend_pid()",
            &[&pattern],
        )
        .await
        .expect("pg_stat_activity")
        .is_some()
}

/// Runs one statement that sleeps for half a second and names `marker`, with the simple
/// protocol: sent at once (no prepare waiting on an answer first), as a cached statement is.
fn sleep_naming<'c>(
    client: &'c mut Object,
    marker: &'c String,
) -> futures::future::BoxFuture<'c, Result<(), shared::AppError>> {
    Box::pin(async move {
        let sql = format!("SELECT pg_sleep(0.5), '{marker}'");
        client.simple_query(&sql).await?;
        Ok(())
    })
}

/// `SELECT 1`, counting its runs; the connection's recycles.
fn counted_select<'c>(
    client: &'c mut Object,
    runs: &'c AtomicUsize,
) -> futures::future::BoxFuture<'c, Result<usize, shared::AppError>> {
    Box::pin(async move {
        runs.fetch_add(1, Ordering::SeqCst);
        client.query_one("SELECT 1", &[]).await?;
        Ok(Object::metrics(client).recycle_count)
    })
}

#[tokio::test]
async fn a_connections_first_statement_is_sent_beside_its_liveness_check() {
    let relay = Relay::start().await;
    let state = relay
        .app_state(&[("DATABASE_CONNECT_TIMEOUT_MS", "3000")])
        .await;
    let db = state.db();
    drop(db.get().await.expect("a connection, now in the pool"));

    // The check's answer is held back: had the checkout waited for it, the statement would
    // not reach Postgres while it is.
    relay.hold(true);
    let marker = format!("beside_{}", uuid::Uuid::new_v4().simple());
    let observer = async {
        crate::support::eventually(2, "the statement to reach Postgres", || async {
            running(&marker).await.then_some(())
        })
        .await;
        relay.hold(false);
    };
    let (answer, ()) = tokio::join!(db.get_with_first(&marker, sleep_naming), observer);
    let (client, ()) = answer.expect("the check passed and the statement ran");
    assert!(
        Object::metrics(&client).recycle_count > 0,
        "the pooled connection, not a new one"
    );
}

#[tokio::test]
async fn a_failed_check_closes_the_connection_and_runs_the_first_statement_on_another() {
    let relay = Relay::start().await;
    let state = relay
        .app_state(&[("DATABASE_CONNECT_TIMEOUT_MS", "300")])
        .await;
    let db = state.db();
    drop(db.get().await.expect("a connection, now in the pool"));

    // Held past the check's timeout; let through while the connect retries.
    relay.hold(true);
    let release = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        relay.hold(false);
    };
    let runs = AtomicUsize::new(0);
    let (answer, ()) = tokio::join!(db.get_with_first(&runs, counted_select), release);
    let (_client, recycles) = answer.expect("answered on another connection");
    assert_eq!(
        recycles, 0,
        "a new connection, not the one that failed its check"
    );
    assert_eq!(runs.into_inner(), 2, "the first statement ran again on it");
}

/// Through `relay`, a state with one connection checked out (so it stays open), then the
/// pooler gone for new connections: `failures` connects refused. No connect retries; the
/// circuit opens at the third failure in a row and cools down for a second.
async fn one_connection_then_refused(relay: &Relay, failures: usize) -> (shared::AppState, Object) {
    let state = relay
        .app_state(&[
            ("DATABASE_CONNECT_TIMEOUT_MS", "300"),
            ("DATABASE_CONNECT_RETRIES", "0"),
            ("DATABASE_BREAKER_FAILURES", "3"),
            ("DATABASE_BREAKER_COOL_DOWN_MS", "1000"),
            ("DATABASE_POOL_SIZE", "2"),
        ])
        .await;
    let pooled = state.db().get().await.expect("a connection");
    relay.refuse(true);
    for _ in 0..failures {
        assert_unavailable(state.db().get().await, "a new connection");
    }
    (state, pooled)
}

/// Asserts `result` failed with `database_unavailable`.
fn assert_unavailable<T>(result: Result<T, shared::AppError>, what: &str) {
    match result {
        Ok(_) => panic!("{what} succeeded"),
        Err(err) => assert_eq!(err.code, "database_unavailable", "{what}: {err:?}"),
    }
}

/// `counted_select` as the first statement of `db.get_with_first`, which fails unavailable:
/// how many times it was sent.
async fn first_statement_failing(db: &shared::db::Database) -> usize {
    let runs = AtomicUsize::new(0);
    assert_unavailable(
        db.get_with_first(&runs, counted_select).await,
        "get_with_first",
    );
    runs.into_inner()
}

#[tokio::test]
async fn a_failed_check_handed_over_counts_towards_opening_the_circuit() {
    let relay = Relay::start().await;
    // One failure short of opening.
    let (state, pooled) = one_connection_then_refused(&relay, 2).await;
    let db = state.db();
    assert_eq!(db.breaker_status(), shared::db::BreakerStatus::Closed);

    // The open connection goes back to the pool and stalls: the check handed over with it
    // times out, and the retry on a new connection is refused. The stalled connection proved
    // nothing, so that is the third failure in a row.
    drop(pooled);
    relay.hold(true);
    assert_eq!(
        first_statement_failing(db).await,
        1,
        "sent beside the check, never answered"
    );
    assert_eq!(
        db.breaker_status(),
        shared::db::BreakerStatus::Open,
        "a connection handed out with its check unanswered must not reset the failure count"
    );
}

#[tokio::test]
async fn a_half_open_circuits_trial_waits_for_its_check() {
    let relay = Relay::start().await;
    let (state, pooled) = one_connection_then_refused(&relay, 3).await;
    let db = state.db();
    assert_eq!(db.breaker_status(), shared::db::BreakerStatus::Open);

    // Once cooled down, the trial finds the open connection back in the pool, stalled. Its
    // check is the trial's one attempt: awaited, it fails and opens the circuit again. Had it
    // been handed over, the statement would have been sent beside it, and the retry after it
    // failed refused by the half-open circuit, recording nothing.
    drop(pooled);
    relay.hold(true);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(db.breaker_status(), shared::db::BreakerStatus::HalfOpen);
    assert_eq!(
        first_statement_failing(db).await,
        0,
        "nothing sent before the trial's check passed"
    );
    assert_eq!(
        db.breaker_status(),
        shared::db::BreakerStatus::Open,
        "the trial's failure reopens the circuit"
    );
}

/// An unchanged dashboard's ETag comes from the user its authentication read: after the user
/// lookup, sent beside the connection's liveness check, the 304 sends nothing more.
#[tokio::test]
async fn an_unchanged_dashboard_answers_304_after_the_user_lookup_alone() {
    let relay = Relay::start().await;
    let app = relay.calls_app_of_one_connection().await;
    let token = NewUser::new().token();
    let overview = |etag: Option<String>| {
        let mut request = axum::http::Request::get("/api/dashboard/overview")
            .header("authorization", format!("Bearer {token}"));
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        let request = request.body(axum::body::Body::empty()).expect("a request");
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.expect("an answer");
            let etag = response
                .headers()
                .get("etag")
                .map(|tag| tag.to_str().expect("an ASCII tag").to_owned());
            (response.status(), etag)
        }
    };
    // The first request creates the user; the second prepares the 304's statements on the
    // pool's one connection.
    let (status, etag) = overview(None).await;
    assert_eq!(status, 200);
    assert_eq!(overview(etag.clone()).await.0, 304);

    let before = relay.ready_count();
    assert_eq!(overview(etag).await.0, 304);
    assert_eq!(
        relay.ready_count() - before,
        2,
        "the liveness check and the user lookup, nothing else"
    );
}

#[tokio::test]
async fn a_known_accounts_list_is_sent_beside_its_lookup() {
    let relay = Relay::start().await;
    let app = relay.calls_app_of_one_connection().await;
    let token = NewUser::new().token();
    let list_calls = || {
        let request = axum::http::Request::get("/api/calls?limit=20")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("a request");
        let app = app.clone();
        async move { app.oneshot(request).await.expect("an answer").status() }
    };
    // The first request creates the user; the second sends the list beside the lookup for the
    // first time, preparing its statements on the pool's one connection.
    assert_eq!(list_calls().await, 200);
    assert_eq!(list_calls().await, 200);

    // The code before sent one and waited.
    let (sent, status) = relay.sent_before_any_answer(3, list_calls()).await;
    assert_eq!(status, 200);
    assert_eq!(
        sent, 3,
        "the user lookup, the page and its total, before any answer"
    );
}

/// ElevenLabs waits on the contact lookup while the caller hears ringing; with no user to look
/// up, its own statement rides with the connection's liveness check.
#[tokio::test]
async fn a_contact_lookup_is_sent_beside_the_liveness_check() {
    let relay = Relay::start().await;
    let state = relay.app_state(&[("DATABASE_POOL_SIZE", "1")]).await;
    let app = shared::http::app(state, &[shared::http::Group::Webhooks.served()]);
    let tenant = crate::support::Tenant::new().await;
    let secret =
        std::env::var("CONTACT_LOOKUP_SECRET").expect("scripts/test sets CONTACT_LOOKUP_SECRET");
    let lookup = || {
        let request = axum::http::Request::get(format!(
            "/api/contact-lookup/%2B15550100000?agent_id={}",
            tenant.call_agent
        ))
        .header("x-contact-lookup-secret", &secret)
        .body(axum::body::Body::empty())
        .expect("a request");
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.expect("an answer");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body");
            let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            (status, body)
        }
    };
    // The first lookup opens the pool's one connection and prepares the statement on it.
    let (status, body) = lookup().await;
    assert_eq!(status, 200, "{body}");

    // The code before waited for the check's answer first.
    let (sent, (status, body)) = relay.sent_before_any_answer(1, lookup()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["dynamic_variables"]["tenant_id"],
        tenant.id.to_string(),
        "the agent's owner found"
    );
    assert_eq!(sent, 1, "the lookup, before any answer");
}
