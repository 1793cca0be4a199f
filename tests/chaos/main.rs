//! Outage tests: they stop and start the stack's Postgres, so they run in their own test
//! binary (cargo runs test binaries one after another, never beside the main suite).

#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

use std::process::Command;

use support::{call_row, conversation_id, deliver, eventually, transcription, Tenant};

/// The outages here stop shared services, so they must not overlap: each test holds this.
static ONE_OUTAGE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn pg_ctl(action: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/pg-ctl");
    let status = Command::new(script)
        .arg(action)
        .status()
        .expect("pg-ctl runs");
    assert!(status.success(), "pg-ctl {action}");
}

#[tokio::test]
async fn events_that_arrive_while_postgres_is_down_are_processed_once_after_it_returns() {
    let _outage = ONE_OUTAGE_AT_A_TIME.lock().await;
    let tenant = Tenant::new().await;
    let conversations: Vec<String> = (0..5).map(|_| conversation_id()).collect();
    pg_ctl("stop");
    let mut accepted = Vec::new();
    for (i, conversation) in conversations.iter().enumerate() {
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
    // The processor fails and SQS redelivers while the database is away.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
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
    }
    // 0:30, 1:30, 2:30, 3:30, 4:30 -> 1 + 2 + 3 + 4 + 5 credits.
    assert_eq!(tenant.credits().await, 15 - 15);
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
    let _outage = ONE_OUTAGE_AT_A_TIME.lock().await;
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

async fn app_secret() -> String {
    shared::aws::Aws::from_env()
        .await
        .secrets
        .get_secret_value()
        .secret_id(std::env::var("APP_SECRET_ID").expect("APP_SECRET_ID"))
        .send()
        .await
        .expect("read the app secret")
        .secret_string()
        .expect("string")
        .to_owned()
}

/// Writes the original app secret back when dropped, panic or not.
struct RestoreSecret(String);

impl Drop for RestoreSecret {
    fn drop(&mut self) {
        let original = self.0.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(async {
                    shared::aws::Aws::from_env()
                        .await
                        .secrets
                        .put_secret_value()
                        .secret_id(std::env::var("APP_SECRET_ID").expect("APP_SECRET_ID"))
                        .secret_string(original)
                        .send()
                        .await
                        .expect("restore the app secret");
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
    let _outage = ONE_OUTAGE_AT_A_TIME.lock().await;
    let admin = support::Account::admin().await;
    let _restore = RestoreSecret(app_secret().await);
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
    let _outage = ONE_OUTAGE_AT_A_TIME.lock().await;
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
