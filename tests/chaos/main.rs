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
