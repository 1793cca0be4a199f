//! Outage tests: they stop and start the stack's Postgres, so they run in their own test
//! binary (cargo runs test binaries one after another, never beside the main suite).

#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

use std::process::Command;

use support::{call_row, conversation_id, deliver, eventually, transcription, Tenant};

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
