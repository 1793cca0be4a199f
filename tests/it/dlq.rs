//! The dead-letter queue command (`local dlq list|replay`, what scripts/dlq runs) against the
//! stack's queues: a dead-lettered event is listed, replayed into the webhook queue and
//! processed once, however often it is replayed. Other tests may dead-letter messages too,
//! so only this test's own message is asserted on.

use std::process::Command;

use serde_json::json;
use shared::aws::queue;

use crate::support::{
    aws, call_row, conversation_id, eventually, phone, processed_count, queue_attributes, queued,
    transcription, usage_rows, Tenant,
};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("scripts/test sets {name}"))
}

/// Runs `local dlq <action>` with the stack's environment (inherited from scripts/test) and
/// returns its standard output.
fn dlq_command(action: &str) -> String {
    let output = Command::new(var("LOCAL_BIN"))
        .args(["dlq", action])
        .env("RUST_LOG", "warn")
        .output()
        .expect("the local binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "local dlq {action} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn dead_letter(message: &str) {
    let input = json!({"QueueUrl": var("WEBHOOK_DLQ_URL"), "MessageBody": message});
    aws(shared::aws::Service::Sqs, "SendMessage", input).await;
}

/// How many copies of the event `key` sit visible in the DLQ right now.
async fn in_dlq(key: &str) -> usize {
    queue::peek(&shared::aws::Client::default(), &var("WEBHOOK_DLQ_URL"), 10)
        .await
        .expect("peek the DLQ")
        .iter()
        .filter(|m| m.body.contains(key))
        .count()
}

/// Messages of the queue at `url`: (visible, in flight). In flight means received and not
/// yet deleted, which peeking cannot see.
async fn counts(url: &str) -> (u64, u64) {
    let attributes = queue_attributes(url).await;
    let count = |name| {
        attributes
            .get(name)
            .and_then(|n| n.parse().ok())
            .expect("a count")
    };
    (
        count("ApproximateNumberOfMessages"),
        count("ApproximateNumberOfMessagesNotVisible"),
    )
}

/// Waits until no copy of the event `key` is left in the DLQ. Nothing may be in flight there
/// either: a replay that received a message without deleting it would hide it from a peek.
async fn gone_from_dlq(key: &str) {
    eventually(10, "the DLQ to let go of the event", || async {
        let in_flight = counts(&var("WEBHOOK_DLQ_URL")).await.1;
        (in_flight == 0 && in_dlq(key).await == 0).then_some(())
    })
    .await;
}

/// Waits until the webhook queue holds nothing, visible or in flight: every replayed copy has
/// been taken and deleted by the processor.
async fn webhook_queue_drained() {
    eventually(30, "the replayed copies to be consumed", || async {
        (counts(&var("WEBHOOK_QUEUE_URL")).await == (0, 0)).then_some(())
    })
    .await;
}

// One function: a replay moves every dead letter, so two tests would replay each other's.
#[tokio::test]
async fn a_dead_lettered_event_is_listed_and_replayed_and_charged_once() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let message = queued(&transcription(
        &tenant.call_agent,
        &conversation,
        133,
        &phone(),
    ));
    let event: queue::QueuedEvent = serde_json::from_str(&message).expect("queued event");
    dead_letter(&message).await;

    let listed = dlq_command("list");
    assert!(
        listed.contains(&event.event_key),
        "the list shows the event: {listed}"
    );
    assert!(listed.contains("call-completed"), "{listed}");
    assert!(
        call_row(&conversation).await.is_none(),
        "listing takes nothing"
    );

    let replayed = dlq_command("replay");
    assert!(replayed.contains("replayed"), "{replayed}");
    let call = eventually(30, "the replayed call", || async {
        call_row(&conversation)
            .await
            .filter(|r| r.get::<_, String>("status") == "completed")
    })
    .await;
    assert_eq!(call.get::<_, i64>("credits_charged"), 3);
    gone_from_dlq(&event.event_key).await;
    assert_eq!(processed_count(&conversation).await, 1);

    // Dead-lettered again (twice, as SQS may), and replayed again: nothing changes.
    dead_letter(&message).await;
    dead_letter(&message).await;
    assert_eq!(in_dlq(&event.event_key).await, 2);
    dlq_command("replay");
    gone_from_dlq(&event.event_key).await;
    webhook_queue_drained().await;
    assert_eq!(processed_count(&conversation).await, 1);
    assert_eq!(usage_rows(tenant.id).await.len(), 1, "charged once");
    assert_eq!(tenant.credits().await, 15 - 3);
}

/// A replay stops once its time is spent (the admin's request has 15 s; each message takes two
/// SQS calls) and says whether it emptied the queue; the next one moves the rest.
#[tokio::test]
async fn a_replay_stops_when_its_time_is_spent_and_says_so() {
    let name = format!("replay-{}", uuid::Uuid::new_v4().simple());
    let made = |suffix: &'static str| {
        let name = format!("{name}-{suffix}");
        async move {
            aws(
                shared::aws::Service::Sqs,
                "CreateQueue",
                json!({"QueueName": name}),
            )
            .await["QueueUrl"]
                .as_str()
                .expect("queue url")
                .to_owned()
        }
    };
    let (dlq, target) = (made("dlq").await, made("queue").await);
    for i in 0..12 {
        let input = json!({"QueueUrl": dlq, "MessageBody": format!("message {i}")});
        aws(shared::aws::Service::Sqs, "SendMessage", input).await;
    }
    let client = shared::aws::Client::default();
    let first = queue::replay(&client, &dlq, &target, 1000, std::time::Duration::ZERO)
        .await
        .expect("a replay");
    assert!(!first.emptied, "{first:?}");
    assert!(
        (1..12).contains(&first.moved),
        "one batch at most: {first:?}"
    );
    let rest = queue::replay(
        &client,
        &dlq,
        &target,
        1000,
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("a replay");
    assert!(rest.emptied, "{rest:?}");
    assert_eq!(first.moved + rest.moved, 12);
    assert_eq!(counts(&target).await.0, 12);
}
