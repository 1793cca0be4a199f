//! Billing stays exactly-once over random event streams with duplicates, replays and
//! concurrency: charged credits == sum of ceil(duration / 60) over distinct conversations.
//! Events go straight into the product's processor (the code the SQS trigger runs).

use std::collections::HashMap;

use futures::future::join_all;
use proptest::prelude::*;
use shared::webhooks::process::process_message;

use crate::support::{app_state, conversation_id, db, queued, transcription, Tenant};

#[derive(Debug, Clone)]
struct Delivery {
    conversation: usize,
    /// Deliveries of one conversation differ in their timestamp (a retry an hour later).
    shift: i64,
}

async fn run(durations: Vec<i64>, deliveries: Vec<Delivery>) {
    let state = app_state().await;
    let tenant = Tenant::new().await;
    let conversations: Vec<String> = durations.iter().map(|_| conversation_id()).collect();
    let messages: Vec<String> = deliveries
        .iter()
        .map(|d| {
            let index = d.conversation % durations.len();
            let mut event = transcription(
                &tenant.call_agent,
                &conversations[index],
                durations[index],
                "+14155550100",
            );
            event["event_timestamp"] = serde_json::json!(1_700_000_000 + d.shift);
            queued(&event)
        })
        .collect();
    // Every message twice, all at once: SQS delivers at least once, in any order.
    let all = messages.iter().chain(messages.iter());
    let results = join_all(all.map(|m| process_message(&state, m))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let delivered: HashMap<usize, i64> = deliveries
        .iter()
        .map(|d| {
            (
                d.conversation % durations.len(),
                durations[d.conversation % durations.len()],
            )
        })
        .collect();
    let expected: i64 = delivered.values().map(|d| (d + 59) / 60).sum();
    let charged: i64 = db()
        .await
        .query_one(
            "SELECT COALESCE(-sum(amount), 0)::bigint FROM credit_transactions WHERE user_id = $1 AND type = 'usage'",
            &[&tenant.id],
        )
        .await
        .expect("sum")
        .get(0);
    assert_eq!(charged, expected);
    assert_eq!(tenant.credits().await, 15 - expected);
    let calls: i64 = db()
        .await
        .query_one(
            "SELECT count(*) FROM calls WHERE user_id = $1",
            &[&tenant.id],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(calls, i64::try_from(delivered.len()).expect("small"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 50, ..ProptestConfig::default() })]
    #[test]
    fn credits_charged_equal_the_started_minutes_of_distinct_conversations(
        durations in prop::collection::vec(0_i64..1_000, 1..8),
        deliveries in prop::collection::vec((0_usize..8, prop_oneof![Just(0_i64), Just(3600_i64)]), 1..20),
    ) {
        let deliveries = deliveries.into_iter().map(|(conversation, shift)| Delivery { conversation, shift }).collect();
        tokio::runtime::Runtime::new().expect("runtime").block_on(run(durations, deliveries));
    }
}
