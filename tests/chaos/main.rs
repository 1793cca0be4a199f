//! Outage tests: they stop and start the stack's Postgres, so they run in their own test
//! binary (cargo runs test binaries one after another, never beside the main suite).

#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

use support::{call_row, conversation_id, deliver, eventually, transcription, Tenant};

/// The outages here stop shared services, so they must not overlap: each test holds this
/// (through [`one_outage_at_a_time`]).
static ONE_OUTAGE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The stack to this test alone, once the outage test before it has been recovered from:
/// its restart may leave the database unavailable for a moment (the circuit's cool-down,
/// PgBouncer reconnecting).
async fn one_outage_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    let outage = ONE_OUTAGE_AT_A_TIME.lock().await;
    database_healthy().await;
    outage
}

fn pg_ctl(action: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/pg-ctl");
    let status = Command::new(script)
        .arg(action)
        .status()
        .expect("pg-ctl runs");
    assert!(status.success(), "pg-ctl {action}");
}

/// Starts Postgres again when dropped, panic or not, so later tests have their database.
struct PostgresRestart;

impl Drop for PostgresRestart {
    fn drop(&mut self) {
        // Already running (the test started it) is fine; only a stopped cluster needs it.
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/pg-ctl");
        let _ = Command::new(script)
            .arg("start")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Stops Postgres; the guard starts it again at the latest when the test ends.
async fn stop_postgres() -> PostgresRestart {
    pg_ctl("stop");
    PostgresRestart
}

/// `GET /health`: its status and body.
async fn get_health() -> (u16, Value) {
    let response = support::stack()
        .http
        .get(support::url("/health"))
        .send()
        .await
        .expect("health answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// Waits until the API answers its health check with the database up and the circuit closed
/// (a previous outage test may have left it open for its cool-down).
async fn database_healthy() {
    eventually(30, "the API's database to be healthy", || async {
        let response = support::stack()
            .http
            .get(support::url("/health"))
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
}

struct Answer {
    status: u16,
    code: String,
    retry_after: Option<u64>,
    elapsed: Duration,
}

async fn timed_get(path: &str, token: &str) -> Answer {
    let started = Instant::now();
    let response = support::get(path, token).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body: Value = response.json().await.unwrap_or_default();
    Answer {
        status,
        code: body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        retry_after,
        elapsed,
    }
}

/// The API's own connect budget (scripts/test leaves the default).
const CONNECT_BUDGET: Duration = Duration::from_secs(5);
const COOL_DOWN: Duration = Duration::from_secs(5);
/// Slower than any refusal by the open circuit, faster than a try with the connect's retries.
const REFUSED_AT_ONCE: Duration = Duration::from_millis(500);

#[tokio::test]
async fn an_outage_opens_the_database_circuit_and_recovery_closes_it_without_a_restart() {
    let _outage = one_outage_at_a_time().await;
    let tenant = Tenant::new().await;
    let _restart = stop_postgres().await;

    // The first requests try (with retries) and fail within the budget; once the run of
    // failures opens the circuit, requests are refused at once.
    let mut answers = Vec::new();
    let mut fast = 0;
    while fast < 5 {
        let answer = timed_get("/api/calls", &tenant.token).await;
        assert_eq!(
            (answer.status, answer.code.as_str()),
            (500, "database_unavailable"),
            "design.md: database connection issues are server errors"
        );
        assert!(
            answer.retry_after.is_some_and(|s| s >= 1),
            "Retry-After is sent"
        );
        assert!(
            answer.elapsed < CONNECT_BUDGET + Duration::from_secs(2),
            "failed within the retry budget: {:?}",
            answer.elapsed
        );
        answers.push(answer.elapsed);
        // A refusal takes milliseconds and a try seconds (the connect's retries): the line
        // between them leaves room for a refusal delayed on a loaded machine.
        if answer.elapsed < REFUSED_AT_ONCE {
            fast += 1;
        } else {
            assert_eq!(
                fast, 0,
                "once open, the circuit answers at once until the cool-down: {answers:?}"
            );
        }
        assert!(answers.len() < 20, "the circuit never opened: {answers:?}");
    }

    let (status, health) = get_health().await;
    assert_eq!(status, 500);
    assert_eq!(health["error"]["code"], "database_unavailable");
    assert_eq!(health["error"]["details"]["database"], "down");
    assert_eq!(health["error"]["details"]["database_circuit"], "open");

    pg_ctl("start");
    let started = Instant::now();
    let recovered = eventually(
        30,
        "requests to succeed after Postgres returned",
        || async {
            let answer = timed_get("/api/calls", &tenant.token).await;
            (answer.status == 200).then_some(started.elapsed())
        },
    )
    .await;
    assert!(
        recovered < COOL_DOWN + Duration::from_secs(3),
        "the first trial after the cool-down closes the circuit: {recovered:?}"
    );
    let (status, health) = get_health().await;
    assert_eq!(status, 200);
    assert_eq!(health["database_circuit"], "closed");
}

/// A connection handed out moments ago is checked like any other behind the pooler: a restart
/// right after a request fails the next as the database being unavailable (500 with
/// Retry-After) within the connect budget. Trusted unchecked, its query would wait in
/// PgBouncer for the server until query_wait_timeout (120 s).
#[tokio::test]
async fn a_restart_right_after_a_request_fails_the_next_as_unavailable() {
    let _outage = one_outage_at_a_time().await;
    let tenant = Tenant::new().await;
    assert_eq!(timed_get("/api/calls", &tenant.token).await.status, 200);
    pg_ctl("stop");
    let _restart = PostgresRestart;
    let answer = timed_get("/api/calls", &tenant.token).await;
    assert_eq!(
        (answer.status, answer.code.as_str()),
        (500, "database_unavailable")
    );
    assert!(answer.retry_after.is_some(), "Retry-After is sent");
    assert!(
        answer.elapsed < CONNECT_BUDGET + Duration::from_secs(2),
        "failed within the connect budget: {:?}",
        answer.elapsed
    );
}

#[tokio::test]
async fn requests_during_a_slow_database_start_succeed_after_retrying() {
    let _outage = one_outage_at_a_time().await;
    let tenant = Tenant::new().await;
    let _restart = stop_postgres().await;
    // Postgres comes back only after a delay, as a waking Neon compute does.
    let delay = Duration::from_millis(700);
    let starter = std::thread::spawn(move || {
        std::thread::sleep(delay);
        pg_ctl("start");
    });
    let started = Instant::now();
    let answers = futures::future::join_all(
        (0..5).map(|_| async { timed_get("/api/calls", &tenant.token).await }),
    )
    .await;
    starter.join().expect("pg-ctl start");
    for answer in &answers {
        assert_eq!(
            (answer.status, answer.code.as_str()),
            (200, ""),
            "a request in the start window succeeds after retrying"
        );
    }
    assert!(
        started.elapsed() >= delay,
        "the requests waited for the database"
    );
}

#[tokio::test]
async fn webhooks_sent_during_a_two_minute_outage_are_processed_once_and_none_dead_letter() {
    let _outage = one_outage_at_a_time().await;
    let tenant = Tenant::new().await;
    let conversations: Vec<String> = (0..5).map(|_| conversation_id()).collect();
    let _restart = stop_postgres().await;
    let outage = Instant::now();
    let mut accepted = Vec::new();
    for (i, conversation) in conversations.iter().enumerate() {
        // Spread over the outage: each waits out many visibility timeouts in the queue.
        let send_at = Duration::from_secs(25) * u32::try_from(i).expect("small");
        tokio::time::sleep(send_at.saturating_sub(outage.elapsed())).await;
        let duration = 60 * i64::try_from(i).expect("small") + 30;
        let response = deliver(&transcription(
            &tenant.call_agent,
            conversation,
            duration,
            "+14155550199",
        ))
        .await;
        accepted.push(response.status().as_u16());
    }
    tokio::time::sleep(Duration::from_secs(120).saturating_sub(outage.elapsed())).await;
    pg_ctl("start");
    assert!(
        accepted.iter().all(|s| *s == 200),
        "ingest does not need the database: {accepted:?}"
    );
    for conversation in &conversations {
        eventually(60, "the call after the outage", || async {
            call_row(conversation)
                .await
                .filter(|r| r.get::<_, String>("status") == "completed")
        })
        .await;
        assert_eq!(
            support::processed_count(conversation).await,
            1,
            "applied once"
        );
    }
    // 0:30, 1:30, 2:30, 3:30, 4:30 -> 1 + 2 + 3 + 4 + 5 credits.
    assert_eq!(tenant.credits().await, 15 - 15);
    let state = support::app_state().await;
    let dlq = state.config().aws.webhook_dlq_url.clone().expect("DLQ url");
    let dead = shared::aws::queue::peek(state.aws(), &dlq, 10)
        .await
        .expect("peek the DLQ");
    for conversation in &conversations {
        assert!(
            !dead.iter().any(|m| m.body.contains(conversation.as_str())),
            "{conversation} reached the DLQ"
        );
    }
}

fn smtp_sink(action: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/smtp-sink");
    let status = Command::new(script)
        .arg(action)
        .status()
        .expect("smtp-sink runs");
    assert!(status.success(), "smtp-sink {action}");
}

/// Starts the sink again when dropped, panic or not, so later tests have their SMTP server.
struct SinkRestart;

impl Drop for SinkRestart {
    fn drop(&mut self) {
        smtp_sink("start");
    }
}

/// An SMTP server that accepts connections and never says a word, on the sink's port. Dropping
/// it closes the port and every connection it held.
struct SilentSmtp {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentSmtp {
    fn start() -> Self {
        let port: u16 = std::env::var("SMTP_PORT")
            .expect("scripts/test sets SMTP_PORT")
            .parse()
            .expect("port");
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("the sink's port is free");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                held.push(stream);
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentSmtp {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn a_silent_smtp_server_neither_fails_nor_loses_the_emails_of_a_login() {
    let _outage = one_outage_at_a_time().await;
    smtp_sink("stop");
    let restart = SinkRestart;
    let silent = SilentSmtp::start();
    let user = support::NewUser::new();
    let response = support::get("/auth/profile", &user.token()).await;
    assert_eq!(
        response.status(),
        200,
        "the first login does not wait for SMTP"
    );
    let id: uuid::Uuid = support::json(response).await["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    // The sender tried, timed out, and kept the email for later.
    let error = eventually(30, "a failed send attempt", || async {
        support::db()
            .await
            .query_opt(
                "SELECT last_error FROM email_outbox
                 WHERE user_id = $1 AND kind = 'welcome' AND status = 'pending' AND attempts >= 1
                   AND last_error IS NOT NULL",
                &[&id],
            )
            .await
            .expect("query")
            .map(|row| row.get::<_, String>(0))
    })
    .await;
    assert!(!error.is_empty());
    drop(silent);
    drop(restart);
    // Due now rather than after its backoff, so the test need not wait minutes.
    support::db()
        .await
        .execute(
            "UPDATE email_outbox SET next_attempt_at = now() WHERE user_id = $1",
            &[&id],
        )
        .await
        .expect("reschedule");
    eventually(30, "the welcome email after the outage", || async {
        support::mail::delivered_to(&user.email)
            .into_iter()
            .find(|m| m.subject.contains("Welcome"))
    })
    .await;
}

/// The webhook secret document (the webhook signing keys), as stored now.
async fn webhook_secret_document() -> String {
    let id = std::env::var("WEBHOOK_SECRET_ID").expect("WEBHOOK_SECRET_ID");
    shared::aws::secrets::get_string(&shared::aws::Client::default(), &id)
        .await
        .expect("read the webhook secret")
}

/// Writes the original webhook secret back when dropped, panic or not.
struct RestoreSecret(String);

impl Drop for RestoreSecret {
    fn drop(&mut self) {
        let original = self.0.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(async {
                    let id = std::env::var("WEBHOOK_SECRET_ID").expect("WEBHOOK_SECRET_ID");
                    let input = serde_json::json!({"SecretId": id, "SecretString": original});
                    support::aws(
                        shared::aws::Service::SecretsManager,
                        "PutSecretValue",
                        input,
                    )
                    .await;
                });
        })
        .join();
    }
}

async fn stripe_status(body: &str, secrets: &[&str]) -> u16 {
    let now = chrono::Utc::now().timestamp();
    let header = support::stripe::sign_with_stripe_library(&[(body, secrets, now)]).remove(0);
    support::stripe::post(body, Some(&header))
        .await
        .status()
        .as_u16()
}

fn ignored_event() -> String {
    support::stripe::event(
        "customer.created",
        serde_json::json!({"id": format!("cus_{}", uuid::Uuid::new_v4().simple()), "object": "customer"}),
    )
}

#[tokio::test]
async fn a_secret_rotated_through_the_admin_api_keeps_the_old_value_for_its_grace_period_only() {
    let _outage = one_outage_at_a_time().await;
    let admin = support::Account::admin().await;
    let _restore = RestoreSecret(webhook_secret_document().await);
    let old = support::stripe::webhook_secret();
    let new = format!("whsec_rotated_{}", uuid::Uuid::new_v4().simple());
    let grace = 6;
    let response = support::send(
        reqwest::Method::PUT,
        "/admin/config/secrets/stripe_webhook_secret",
        &admin.token,
        Some(&serde_json::json!({"value": new, "grace_seconds": grace})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(!text.contains(&new), "the response never shows the value");
    let info: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(info["last4"], new[new.len() - 4..]);
    assert!(info["previous_valid_until"].is_string());

    // Within the cache TTL the API uses the new secret; the old one still works.
    eventually(10, "the new secret in use", || async {
        (stripe_status(&ignored_event(), &[&new]).await == 200).then_some(())
    })
    .await;
    assert_eq!(
        stripe_status(&ignored_event(), &[&old]).await,
        200,
        "old during grace"
    );
    assert_eq!(stripe_status(&ignored_event(), &[&old, &new]).await, 200);
    // After the grace period only the new one works.
    eventually(grace + 10, "the old secret to expire", || async {
        (stripe_status(&ignored_event(), &[&old]).await == 401).then_some(())
    })
    .await;
    assert_eq!(stripe_status(&ignored_event(), &[&new]).await, 200);

    let audit = support::json(
        support::get(
            "/admin/audit-log?action=secret.rotated&target_id=stripe_webhook_secret",
            &admin.token,
        )
        .await,
    )
    .await;
    assert!(audit["pagination"]["total"].as_i64().expect("total") >= 1);
    assert_eq!(audit["data"][0]["actor_id"], admin.id.to_string());
    assert!(
        !audit.to_string().contains(&new),
        "the audit log never holds the value"
    );
    let config = support::get("/admin/config", &admin.token)
        .await
        .text()
        .await
        .expect("config");
    assert!(!config.contains(&new));
    let logs = std::path::PathBuf::from(std::env::var("MAIL_SINK_DIR").expect("MAIL_SINK_DIR"))
        .join("../logs/api.log");
    let logged = std::fs::read_to_string(&logs).expect("the API's log");
    assert!(logged.contains("secret.rotated"), "the rotation is logged");
    assert!(!logged.contains(&new), "no log line holds the value");
}

#[tokio::test]
async fn settings_changed_by_an_admin_apply_at_once_and_are_audited() {
    let _outage = one_outage_at_a_time().await;
    let admin = support::Account::admin().await;
    let user = support::Account::new().await;
    let change = |threshold: i64| {
        let token = admin.token.clone();
        async move {
            let body = serde_json::json!({"low_credit_threshold": threshold});
            support::send(
                reqwest::Method::PUT,
                "/admin/config/settings",
                &token,
                Some(&body),
            )
            .await
        }
    };
    let response = change(20).await;
    assert_eq!(response.status(), 200);
    let credits = support::json(support::get("/billing/credits", &user.token).await).await;
    change(5).await;
    assert_eq!(credits["low_credit_threshold"], 20);
    assert_eq!(credits["status"], "low");
    let audit =
        support::json(support::get("/admin/audit-log?action=settings.updated", &admin.token).await)
            .await;
    let latest = &audit["data"];
    assert_eq!(latest[0]["details"]["low_credit_threshold"], 5);
    assert_eq!(latest[1]["details"]["low_credit_threshold"], 20);
}
