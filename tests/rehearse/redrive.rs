//! The webhook queue's redrive as the deployed event source mapping does it: a record the
//! processor reports in `batchItemFailures` comes back after the queue's visibility timeout,
//! alone (its batch's other records are not retried), and lands in the dead-letter queue after
//! the template's `maxReceiveCount` receives.

use serde_json::{json, Value};
use shared::aws::Service::Sqs;

use reqwest::Method;

use super::{control, support, var};
use support::{conversation_id, db, eventually, transcription};

/// Each time the fixture's poller received the message: (received at, in the batch of,
/// reported failed), in order.
async fn receives(message_id: &str) -> Vec<(f64, Vec<String>, bool)> {
    let listed = control(Method::GET, &format!("/receives/{message_id}")).await;
    listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            let batch = r["batch"].as_array().expect("batch").iter();
            (
                r["received_at"].as_f64().expect("received_at"),
                batch
                    .map(|id| id.as_str().expect("id").to_owned())
                    .collect(),
                r["failed"].as_bool().expect("failed"),
            )
        })
        .collect()
}

fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("a number: {value}"))
}

/// The queued event of `raw` (as ingest sends it) with its body parked in S3 at `key`.
fn parked(raw: &Value, key: &str) -> String {
    let mut event: Value = serde_json::from_str(&support::queued(raw)).expect("json");
    let fields = event.as_object_mut().expect("an object");
    fields.remove("body");
    fields.insert("body_s3_key".into(), key.into());
    event.to_string()
}

#[tokio::test]
#[ignore = "run by scripts/rehearse against the rehearsal's queue and processor"]
async fn a_failing_record_is_retried_alone_then_dead_lettered() {
    let queue_url = var("WEBHOOK_QUEUE_URL");
    let dlq_url = var("WEBHOOK_DLQ_URL");

    // The template's redrive policy, and the queue the rehearsal made from it.
    let template = control(Method::GET, "/resources/WebhookQueue").await;
    let max_receives = number(&template["RedrivePolicy"]["maxReceiveCount"]);
    let attributes = support::queue_attributes(&queue_url).await;
    let redrive: Value = serde_json::from_str(
        attributes
            .get("RedrivePolicy")
            .expect("the queue has a redrive policy"),
    )
    .expect("json");
    assert_eq!(number(&redrive["maxReceiveCount"]), max_receives);
    assert_eq!(
        redrive["deadLetterTargetArn"],
        template["RedrivePolicy"]["deadLetterTargetArn"]
    );
    let visibility: f64 = attributes
        .get("VisibilityTimeout")
        .and_then(|v| v.parse().ok())
        .expect("a visibility timeout");

    // One batch: an event whose parked body is not in the bucket (the processor's S3 read
    // fails, which it reports for a retry) and two it applies (unknown agents: kept as
    // unmatched and acknowledged).
    let agent = format!("agent_redrive_{}", uuid::Uuid::new_v4().simple());
    let missing = format!("webhook-bodies/redrive-{}.json", uuid::Uuid::new_v4());
    let failing = parked(
        &transcription(&agent, &conversation_id(), 30, "+14155550190"),
        &missing,
    );
    let fine: Vec<(String, String)> = (0..2)
        .map(|_| {
            let conversation = conversation_id();
            let raw = transcription(&agent, &conversation, 30, "+14155550191");
            (conversation, support::queued(&raw))
        })
        .collect();
    let mut entries = vec![json!({"Id": "failing", "MessageBody": failing})];
    for (index, (_, body)) in fine.iter().enumerate() {
        entries.push(json!({"Id": format!("fine{index}"), "MessageBody": body}));
    }
    let input = json!({"QueueUrl": queue_url, "Entries": entries});
    let sent = support::aws(Sqs, "SendMessageBatch", input).await;
    assert!(
        sent["Failed"].as_array().is_none_or(Vec::is_empty),
        "{sent}"
    );
    let id_of = |entry: &str| {
        sent["Successful"]
            .as_array()
            .and_then(|ok| ok.iter().find(|s| s["Id"] == entry))
            .and_then(|s| s["MessageId"].as_str())
            .map(str::to_owned)
            .expect("sent")
    };
    let failing_id = id_of("failing");

    let patience = (max_receives as f64 * (visibility + 2.0)) as u64 + 20;
    let dead = eventually(
        patience,
        "the failing record in the dead-letter queue",
        || {
            let (dlq_url, failing_id) = (&dlq_url, &failing_id);
            async move {
                let input = json!({
                    "QueueUrl": dlq_url,
                    "MaxNumberOfMessages": 10,
                    "WaitTimeSeconds": 1,
                });
                let got = support::aws(Sqs, "ReceiveMessage", input).await;
                got["Messages"]
                    .as_array()?
                    .iter()
                    .find(|m| m["MessageId"] == failing_id.as_str())
                    .cloned()
            }
        },
    )
    .await;
    // Out of the way of the journey's replay of the dead-letter queue.
    let input = json!({"QueueUrl": dlq_url, "ReceiptHandle": dead["ReceiptHandle"]});
    support::aws(Sqs, "DeleteMessage", input).await;
    assert_eq!(dead["Body"].as_str(), Some(failing.as_str()));

    let seen = receives(&failing_id).await;
    assert_eq!(
        seen.len() as u64,
        max_receives,
        "received {} times before the dead-letter queue, the template says {max_receives}: {seen:?}",
        seen.len()
    );
    assert!(
        seen.iter().all(|(_, _, failed)| *failed),
        "every receive reported in batchItemFailures: {seen:?}"
    );
    // Invisible for the visibility timeout after each receive (moto marks it at the receive,
    // the fixture notes the time once the answer is back: a few ms later).
    for pair in seen.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= visibility - 0.1,
            "received again {gap:.2} s after a failure, the visibility timeout is {visibility} s: {seen:?}"
        );
    }
    // Its first batch held the other two records, applied once and never received again.
    let first_batch = &seen[0].1;
    for (index, (conversation, _)) in fine.iter().enumerate() {
        let id = id_of(&format!("fine{index}"));
        assert!(
            first_batch.contains(&id),
            "sent in one batch, received in one: {first_batch:?} lacks {id}"
        );
        let theirs = receives(&id).await;
        assert_eq!(
            theirs.len(),
            1,
            "a record that succeeded was retried: {theirs:?}"
        );
        assert!(!theirs[0].2, "{theirs:?}");
        let kept = db()
            .await
            .query_opt(
                "SELECT outcome FROM processed_events WHERE conversation_id = $1",
                &[conversation],
            )
            .await
            .expect("query");
        assert!(kept.is_some(), "the processor kept {conversation}");
    }
}
