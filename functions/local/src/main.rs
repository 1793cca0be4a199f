//! Not deployed. `local serve` runs every router in one axum server on PORT (default 3000) for
//! scripts/dev and scripts/test, with a poller that feeds the webhook queue to the processor;
//! and one that sends the queued emails (every EMAIL_POLL_MS, default 1000); `local migrate`
//! applies the migrations and exits; `local dlq list|replay`, `local reconcile [HOURS]` and
//! `local send-emails` are the operator commands; `local openapi` prints the OpenAPI document
//! (no configuration needed) for tests/contract.

use shared::http::{app, Group};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    shared::telemetry::init();
    if let Err(err) = run().await {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    if command == "openapi" {
        println!(
            "{}",
            serde_json::to_string_pretty(shared::http::openapi_document())?
        );
        return Ok(());
    }
    let state = shared::AppState::from_env().await?;
    match command.as_str() {
        "migrate" => {
            let applied = shared::db::migrate(&mut state.db().get_direct().await?).await?;
            tracing::info!(applied, "migrations up to date");
            Ok(())
        }
        "serve" => serve(state).await,
        "dlq" => dlq(&state, std::env::args().nth(2).as_deref()).await,
        "reconcile" => reconcile(&state, std::env::args().nth(2).as_deref()).await,
        "send-emails" => {
            let report = shared::email::outbox::send_due(&state, 500).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        other => Err(format!(
            "unknown command {other:?}; use serve, migrate, openapi, dlq list, dlq replay, reconcile [HOURS] or send-emails"
        )
        .into()),
    }
}

async fn serve(state: shared::AppState) -> Result<(), BoxError> {
    let port: u16 = match std::env::var("PORT") {
        Ok(raw) => raw
            .parse()
            .map_err(|_| format!("PORT is malformed: {raw:?}"))?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    // The local stand-in for the processor's SQS trigger.
    if let Some(queue_url) = state.config().aws.webhook_queue_url.clone() {
        tokio::spawn(shared::webhooks::batch::poll(state.clone(), queue_url));
    }
    // The local stand-in for the scheduled email sender.
    let email_poll_ms: u64 = match std::env::var("EMAIL_POLL_MS") {
        Ok(raw) => raw
            .parse()
            .map_err(|_| format!("EMAIL_POLL_MS is malformed: {raw:?}"))?,
        Err(_) => 1000,
    };
    tokio::spawn(shared::email::outbox::poll(
        state.clone(),
        std::time::Duration::from_millis(email_poll_ms),
    ));
    tracing::info!("serving the whole API on http://127.0.0.1:{port}");
    axum::serve(listener, app(state, &Group::ALL.map(Group::served)))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// `local reconcile [HOURS]` queues the conversations of the last HOURS (default: the
/// configured lookback) that the database lacks, as the scheduled reconciler does.
async fn reconcile(state: &shared::AppState, hours: Option<&str>) -> Result<(), BoxError> {
    use shared::webhooks::reconcile;
    let report = match hours {
        None => reconcile::run_recent(state).await?,
        Some(raw) => {
            let hours: i64 = raw
                .parse()
                .ok()
                .filter(|h| (1..=720).contains(h))
                .ok_or_else(|| {
                    format!("HOURS must be a whole number from 1 to 720, not {raw:?}")
                })?;
            reconcile::run(state, chrono::Utc::now() - chrono::Duration::hours(hours)).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `local dlq list` shows what sits in the dead-letter queue; `local dlq replay` moves it back
/// to the webhook queue (the processor is idempotent, so a replay never double-applies).
async fn dlq(state: &shared::AppState, action: Option<&str>) -> Result<(), BoxError> {
    use shared::aws::queue;
    let aws = &state.config().aws;
    let dlq = aws
        .webhook_dlq_url
        .as_deref()
        .ok_or("WEBHOOK_DLQ_URL is not set")?;
    let sqs = state.aws();
    match action {
        Some("list") => {
            let messages = queue::peek(sqs, dlq, 10).await?;
            println!("{} message(s) shown (at most 10)", messages.len());
            for message in messages {
                let event: Option<queue::QueuedEvent> = serde_json::from_str(&message.body).ok();
                match event {
                    Some(e) => println!(
                        "{}  received {}  {:?} {}  key {}  {} bytes{}",
                        message.message_id,
                        e.received_at,
                        e.source,
                        e.route,
                        e.event_key,
                        e.body.as_ref().map_or(0, String::len),
                        e.body_s3_key
                            .map(|k| format!(" (body in s3://{k})"))
                            .unwrap_or_default()
                    ),
                    None => println!(
                        "{}  unreadable body of {} bytes",
                        message.message_id,
                        message.body.len()
                    ),
                }
            }
            Ok(())
        }
        Some("replay") => {
            let queue_url = state.webhook_queue_url()?;
            let moved = queue::replay(sqs, dlq, queue_url, usize::MAX, std::time::Duration::MAX)
                .await?
                .moved;
            println!("replayed {moved} message(s) to the webhook queue");
            Ok(())
        }
        _ => Err("usage: local dlq list|replay".into()),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
