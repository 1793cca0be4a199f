//! Reconciliation: a call ElevenLabs finished but never reported is found through the
//! conversations API, processed through the queue, and charged once however often the
//! reconciler runs and whether or not the webhook shows up late.

use serde_json::{json, Value};
use shared::{calls::event::usage_reference, webhooks::reconcile};

use crate::support::*;

/// Stores a finished call in the ElevenLabs simulator without delivering its webhooks.
async fn undelivered_call(agent: &str, duration: i64) -> String {
    let answer = elevenlabs_sim::post(
        "/dev/simulate-call",
        &json!({
            "agent_id": agent,
            "duration_secs": duration,
            "deliver": false,
            "audio": false,
        }),
    )
    .await;
    answer["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_owned()
}

async fn usage_entries(conversation: &str) -> i64 {
    db().await
        .query_one(
            "SELECT count(*) FROM credit_transactions WHERE type = 'usage' AND reference = $1",
            &[&usage_reference(conversation)],
        )
        .await
        .expect("count")
        .get(0)
}

fn an_hour_ago() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::hours(1)
}

#[tokio::test]
async fn a_missed_call_is_recorded_and_charged_once() {
    let tenant = Tenant::new().await;
    let conversation = undelivered_call(&tenant.call_agent, 133).await;
    assert!(call_row(&conversation).await.is_none());
    let state = app_state().await;

    // Two overlapping runs (two schedules firing at once) queue it at most twice.
    let (first, second) = tokio::join!(
        reconcile::run(&state, an_hour_ago()),
        reconcile::run(&state, an_hour_ago())
    );
    let (first, second) = (first.expect("first run"), second.expect("second run"));
    // Each run finds it missing and queues it, or finds it queued already (by the other run,
    // or by another test's run: the simulator is shared).
    for report in [&first, &second] {
        assert!(report.missing >= 1, "{report:?}");
        assert!(report.queued + report.already_processed >= 1, "{report:?}");
    }

    let call = eventually(20, "the reconciled call", || async {
        call_row(&conversation)
            .await
            .filter(|row| row.get::<_, String>("status") == "completed")
    })
    .await;
    assert_eq!(call.get::<_, i32>("duration_seconds"), 133);
    assert_eq!(call.get::<_, i64>("credits_charged"), 3);
    assert_eq!(tenant.credits().await, 15 - 3);

    // Later runs find nothing of ours to do; the webhook arriving late changes nothing.
    reconcile::run(&state, an_hour_ago())
        .await
        .expect("third run");
    let late = transcription(&tenant.call_agent, &conversation, 133, "+14155550123");
    assert_eq!(deliver(&late).await.status(), 200);
    queue_drained().await;
    assert_eq!(usage_entries(&conversation).await, 1);
    assert_eq!(tenant.credits().await, 15 - 3);
}

#[tokio::test]
async fn conversations_of_unknown_agents_and_old_ones_are_left_alone() {
    let stranger = format!("agent_not_ours_{}", uuid::Uuid::new_v4().simple());
    let conversation = undelivered_call(&stranger, 60).await;
    let state = app_state().await;
    reconcile::run(&state, an_hour_ago()).await.expect("run");
    queue_drained().await;
    assert!(call_row(&conversation).await.is_none());
    let unmatched: i64 = db()
        .await
        .query_one(
            "SELECT count(*) FROM unmatched_events WHERE conversation_id = $1",
            &[&conversation],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(unmatched, 0, "not fetched, not queued");

    // A window that ends before the call started does not see it.
    let tenant = Tenant::new().await;
    let conversation = undelivered_call(&tenant.call_agent, 60).await;
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let report = reconcile::run(&state, future).await.expect("run");
    assert_eq!(report.listed, 0, "{report:?}");
    assert!(call_row(&conversation).await.is_none());
}

#[tokio::test]
async fn the_reconcile_command_reports_what_it_did() {
    let tenant = Tenant::new().await;
    let conversation = undelivered_call(&tenant.call_agent, 61).await;
    let bin = std::env::var("LOCAL_BIN").expect("scripts/test sets LOCAL_BIN");
    let output = std::process::Command::new(&bin)
        .args(["reconcile", "1"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert!(
        report["missing"].as_u64().expect("missing") >= 1,
        "{report}"
    );
    eventually(20, "the reconciled call", || async {
        call_row(&conversation)
            .await
            .filter(|row| row.get::<_, i64>("credits_charged") == 2)
    })
    .await;

    let bad = std::process::Command::new(&bin)
        .args(["reconcile", "forever"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("HOURS"));
}

#[tokio::test]
async fn a_conversation_elevenlabs_does_not_give_back_does_not_hold_up_the_others() {
    let tenant = Tenant::new().await;
    let older = undelivered_call(&tenant.call_agent, 61).await;
    let newer = undelivered_call(&tenant.call_agent, 61).await;
    // Listed first (newest first), and gone when fetched; other tests' runs may ask for it too.
    elevenlabs_sim::fault(json!({
        "path_prefix": format!("/v1/convai/conversations/{newer}"),
        "method": "GET",
        "responses": vec![json!({"status": 404}); 20],
    }))
    .await;
    let report = reconcile::run(&app_state().await, an_hour_ago())
        .await
        .expect("the run goes on");
    assert!(report.unavailable >= 1, "{report:?}");
    eventually(20, "the older call", || async {
        call_row(&older)
            .await
            .filter(|row| row.get::<_, i64>("credits_charged") == 2)
    })
    .await;
    assert!(call_row(&newer).await.is_none());
}
