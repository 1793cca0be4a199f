//! ElevenLabs webhooks through the real pipeline: HTTP ingest -> SQS (moto) -> the local
//! poller -> the processor (which applies each exact event once) -> Postgres.

use base64::{engine::general_purpose::STANDARD, Engine};
use futures::future::join_all;
use serde_json::{json, Value};

use crate::support::{
    call_row, chat_transcription, conversation_id, db, deliver, error_code, eventually, get, json,
    phone, post_webhook, processed_count, queue_drained, rand_digits, sign_now, stack,
    transcription, url, usage_rows, webhook_secret, Tenant,
};

#[tokio::test]
async fn the_same_webhook_five_times_and_again_later_is_one_call_and_one_charge() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let event = transcription(&tenant.call_agent, &conversation, 133, &phone());
    let body = serde_json::to_vec(&event).expect("json");
    let signature = sign_now(&body);
    let responses =
        join_all((0..5).map(|_| post_webhook("call-completed", &body, Some(signature.clone()))))
            .await;
    for response in responses {
        assert_eq!(response.status(), 200);
    }
    let call = eventually(20, "the call", || async {
        call_row(&conversation)
            .await
            .filter(|r| r.get::<_, String>("status") == "completed")
    })
    .await;
    assert_eq!(call.get::<_, i32>("duration_seconds"), 133);
    assert_eq!(
        call.get::<_, i64>("credits_charged"),
        3,
        "2:13 is three started minutes"
    );
    assert_eq!(tenant.credits().await, 12);
    // All five were queued; the processor applied the event once.
    queue_drained().await;
    assert_eq!(processed_count(&conversation).await, 1);
    assert_eq!(usage_rows(tenant.id).await.len(), 1, "one charge");

    // An hour later ElevenLabs retries with a new timestamp: another body, another event key.
    let mut later = event.clone();
    later["event_timestamp"] = json!(event["event_timestamp"].as_i64().expect("ts") + 3600);
    assert_eq!(deliver(&later).await.status(), 200);
    eventually(20, "the retry to be processed", || async {
        (processed_count(&conversation).await == 2).then_some(())
    })
    .await;
    assert_eq!(usage_rows(tenant.id).await.len(), 1, "still one charge");
    assert_eq!(tenant.credits().await, 12);
    let calls: i64 = db()
        .await
        .query_one(
            "SELECT count(*) FROM calls WHERE elevenlabs_conversation_id = $1",
            &[&conversation],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(calls, 1);
}

/// A transcription still in progress (`processing`) stores the call, unfinished and not
/// charged; the final one, longer, charges the conversation once, for its own duration.
#[tokio::test]
async fn a_transcription_in_progress_is_charged_once_final_for_the_whole_call() {
    let tenant = Tenant::new().await;
    let (conversation, number) = (conversation_id(), phone());
    let mut early = transcription(&tenant.call_agent, &conversation, 30, &number);
    early["data"]["status"] = json!("processing");
    assert_eq!(deliver(&early).await.status(), 200);
    let call = eventually(20, "the unfinished call", || async {
        call_row(&conversation).await
    })
    .await;
    assert_eq!(call.get::<_, String>("status"), "in_progress");
    assert_eq!(call.get::<_, i64>("credits_charged"), 0);
    assert_eq!(tenant.credits().await, 15);

    let done = transcription(&tenant.call_agent, &conversation, 130, &number);
    assert_eq!(deliver(&done).await.status(), 200);
    let call = eventually(20, "the finished call", || async {
        call_row(&conversation)
            .await
            .filter(|r| r.get::<_, String>("status") == "completed")
    })
    .await;
    assert_eq!(call.get::<_, i32>("duration_seconds"), 130);
    assert_eq!(
        call.get::<_, i64>("credits_charged"),
        3,
        "2:10 is three started minutes"
    );
    assert_eq!(tenant.credits().await, 12);
    assert_eq!(usage_rows(tenant.id).await.len(), 1, "one charge");
}

#[tokio::test]
async fn the_call_is_stored_with_transcript_analytics_lead_and_rollup() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let number = phone();
    assert_eq!(
        deliver(&transcription(
            &tenant.call_agent,
            &conversation,
            61,
            &number
        ))
        .await
        .status(),
        200
    );
    let call = eventually(20, "the call", || async { call_row(&conversation).await }).await;
    let call_id: uuid::Uuid = call.get("id");
    assert_eq!(call.get::<_, String>("type"), "call");
    assert_eq!(
        call.get::<_, Option<String>>("direction").as_deref(),
        Some("outbound")
    );
    assert_eq!(
        call.get::<_, Option<String>>("phone_number"),
        Some(number.clone())
    );
    assert_eq!(
        call.get::<_, Option<String>>("summary").as_deref(),
        Some("Asked about pricing.")
    );
    let db = db().await;
    let transcript = db
        .query_one(
            "SELECT content, speaker_segments FROM transcripts WHERE call_id = $1",
            &[&call_id],
        )
        .await
        .expect("transcript");
    let segments: Value = transcript.get(1);
    assert_eq!(segments.as_array().map(Vec::len), Some(3));
    assert_eq!(
        segments[1],
        json!({"speaker": "user", "text": "Sure, what is the price?", "timestamp": 4})
    );
    let analytics = db
        .query_one(
            "SELECT intent_level, intent_score, total_score, lead_status_tag, cta_interactions FROM lead_analytics WHERE call_id = $1",
            &[&call_id],
        )
        .await
        .expect("analytics");
    assert_eq!(
        analytics.get::<_, Option<String>>(0).as_deref(),
        Some("high")
    );
    assert_eq!(analytics.get::<_, Option<i32>>(1), Some(16));
    assert_eq!(
        analytics.get::<_, Option<i32>>(2),
        Some(16 + 12 + 14 + 17 + 15)
    );
    assert_eq!(
        analytics.get::<_, Option<String>>(3).as_deref(),
        Some("hot")
    );
    assert_eq!(analytics.get::<_, Value>(4)["pricing_clicked"], true);
    let lead = db
        .query_one(
            "SELECT name, interaction_count, lead_status_tag FROM leads WHERE user_id = $1 AND phone_number = $2",
            &[&tenant.id, &number],
        )
        .await
        .expect("lead");
    assert_eq!(lead.get::<_, Option<String>>(0).as_deref(), Some("Dana"));
    assert_eq!(lead.get::<_, i32>(1), 1);
    let rollup = db
        .query_one(
            "SELECT sum(calls)::bigint, sum(completed)::bigint, sum(successful)::bigint, sum(duration_seconds)::bigint, sum(credits_used)::bigint
             FROM daily_agent_stats WHERE user_id = $1",
            &[&tenant.id],
        )
        .await
        .expect("rollup");
    assert_eq!(rollup.get::<_, Option<i64>>(0), Some(1));
    assert_eq!(rollup.get::<_, Option<i64>>(1), Some(1));
    assert_eq!(rollup.get::<_, Option<i64>>(2), Some(1));
    assert_eq!(rollup.get::<_, Option<i64>>(3), Some(61));
    assert_eq!(rollup.get::<_, Option<i64>>(4), Some(2));
}

#[tokio::test]
async fn audio_before_transcription_and_the_recording_url() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let mp3 = [b"ID3".as_slice(), &[7_u8; 4096]].concat();
    let audio = json!({"type": "post_call_audio", "event_timestamp": chrono::Utc::now().timestamp(),
        "data": {"agent_id": tenant.call_agent, "conversation_id": conversation, "full_audio": STANDARD.encode(&mp3)}});
    assert_eq!(deliver(&audio).await.status(), 200);
    let placeholder = eventually(20, "the audio", || async {
        call_row(&conversation)
            .await
            .filter(|r| r.get::<_, Option<String>>("recording_key").is_some())
    })
    .await;
    assert_eq!(placeholder.get::<_, String>("status"), "in_progress");
    let call_id: uuid::Uuid = placeholder.get("id");

    assert_eq!(
        deliver(&transcription(
            &tenant.call_agent,
            &conversation,
            30,
            &phone()
        ))
        .await
        .status(),
        200
    );
    let call = eventually(20, "the transcription", || async {
        call_row(&conversation)
            .await
            .filter(|r| r.get::<_, String>("status") == "completed")
    })
    .await;
    assert_eq!(
        call.get::<_, uuid::Uuid>("id"),
        call_id,
        "the same call row"
    );
    assert!(
        call.get::<_, Option<String>>("recording_key").is_some(),
        "the recording survived"
    );

    let recording =
        json(get(&format!("/api/calls/{call_id}/recording"), &tenant.token).await).await;
    let link = recording["recording_url"].as_str().expect("url");
    let bytes = reqwest::get(link)
        .await
        .expect("presigned url answers")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(bytes.as_ref(), mp3.as_slice());
    // List and detail rows carry a link an <audio> element can play, not an API path.
    let detail = json(get(&format!("/api/calls/{call_id}"), &tenant.token).await).await;
    let list = json(get("/api/calls", &tenant.token).await).await;
    for link in [&detail["recording_url"], &list["data"][0]["recording_url"]] {
        let link = link.as_str().expect("a recording_url");
        let audio = reqwest::get(link).await.expect("presigned url answers");
        assert_eq!(audio.status(), 200, "{link}");
        assert_eq!(audio.bytes().await.expect("bytes").as_ref(), mp3.as_slice());
    }
    assert_eq!(
        detail["recording_url"], list["data"][0]["recording_url"],
        "the same link within its window, so the list's ETag holds"
    );

    let other = Tenant::new().await;
    let response = get(&format!("/api/calls/{call_id}/recording"), &other.token).await;
    assert_eq!(
        error_code(response, 404).await,
        "not_found",
        "another tenant's call does not exist for them"
    );
}

#[tokio::test]
async fn recording_is_404_when_there_is_none() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    deliver(&transcription(
        &tenant.call_agent,
        &conversation,
        10,
        &phone(),
    ))
    .await;
    let call = eventually(20, "the call", || async { call_row(&conversation).await }).await;
    let id: uuid::Uuid = call.get("id");
    let detail = json(get(&format!("/api/calls/{id}"), &tenant.token).await).await;
    assert!(detail["recording_url"].is_null(), "{detail}");
    let response = get(&format!("/api/calls/{id}/recording"), &tenant.token).await;
    assert_eq!(error_code(response, 404).await, "not_found");
    let response = get("/api/calls/not-a-uuid/recording", &tenant.token).await;
    assert_eq!(error_code(response, 404).await, "not_found");
}

/// An analytics event for `conversation` at `at` (unix seconds), scoring each of the five
/// dimensions `each` (so the total is five times it), with its own verdict and summary.
fn analytics_event(agent: &str, conversation: &str, at: i64, each: i64, summary: &str) -> Value {
    let score = json!({"value": each});
    json!({"type": "call_analytics", "event_timestamp": at, "data": {
        "agent_id": agent, "conversation_id": conversation,
        "analysis": {"call_successful": "failure", "transcript_summary": summary,
            "data_collection_results": {"intent_score": score, "urgency_score": score,
                "budget_score": score, "fit_score": score, "engagement_score": score}}}})
}

async fn deliver_analytics(event: &Value) {
    let bytes = serde_json::to_vec(event).expect("json");
    assert_eq!(
        post_webhook("call-analytics", &bytes, Some(sign_now(&bytes)))
            .await
            .status(),
        200
    );
}

/// The call's verdict and summary, its analysis' total and tag, and its lead's.
async fn scored(conversation: &str) -> Value {
    let row = db()
        .await
        .query_one(
            "SELECT c.call_successful, c.summary, a.total_score, a.lead_status_tag,
                l.total_score AS lead_total, l.lead_status_tag AS lead_tag
             FROM calls c JOIN lead_analytics a ON a.call_id = c.id LEFT JOIN leads l ON l.id = c.lead_id
             WHERE c.elevenlabs_conversation_id = $1",
            &[&conversation],
        )
        .await
        .expect("the scored call");
    json!({
        "call_successful": row.get::<_, Option<String>>(0), "summary": row.get::<_, Option<String>>(1),
        "total": row.get::<_, Option<i32>>(2), "tag": row.get::<_, Option<String>>(3),
        "lead_total": row.get::<_, Option<i32>>(4), "lead_tag": row.get::<_, Option<String>>(5),
    })
}

#[tokio::test]
async fn analytics_before_the_call_keeps_the_newest_analysis() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let now = chrono::Utc::now().timestamp();
    deliver_analytics(&analytics_event(
        &tenant.call_agent,
        &conversation,
        now + 60,
        4,
        "Re-scored.",
    ))
    .await;
    eventually(20, "the analytics", || async {
        call_row(&conversation).await
    })
    .await;

    // The transcription's own analysis (74, hot, a success) is older than the one kept.
    let mut call = transcription(&tenant.call_agent, &conversation, 45, &phone());
    call["event_timestamp"] = json!(now);
    deliver(&call).await;
    eventually(20, "the call", || async {
        call_row(&conversation)
            .await
            .filter(|r| r.get::<_, String>("status") == "completed")
    })
    .await;
    let newest = json!({"call_successful": "failure", "summary": "Re-scored.", "total": 20,
        "tag": "cold", "lead_total": 20, "lead_tag": "cold"});
    assert_eq!(
        scored(&conversation).await,
        newest,
        "the newer analysis wins over the call's own, for the call and its lead"
    );
    assert_eq!(tenant.credits().await, 14);

    // Analytics older than both change nothing.
    deliver_analytics(&analytics_event(
        &tenant.call_agent,
        &conversation,
        now - 30,
        20,
        "Stale.",
    ))
    .await;
    queue_drained().await;
    assert_eq!(scored(&conversation).await, newest);
}

#[tokio::test]
async fn an_event_naming_another_tenants_conversation_is_kept_not_retried() {
    let (owner, other) = (Tenant::new().await, Tenant::new().await);
    let conversation = conversation_id();
    deliver(&transcription(
        &owner.call_agent,
        &conversation,
        45,
        &phone(),
    ))
    .await;
    eventually(20, "the owner's call", || async {
        call_row(&conversation).await
    })
    .await;
    let mut stray = transcription(&other.call_agent, &conversation, 50, &phone());
    stray["event_timestamp"] = json!(chrono::Utc::now().timestamp() + 5);
    deliver(&stray).await;
    let reason: String = eventually(20, "the event kept as unmatched", || async {
        db().await
            .query_opt(
                "SELECT reason FROM unmatched_events WHERE conversation_id = $1",
                &[&conversation],
            )
            .await
            .expect("query")
            .map(|row| row.get(0))
    })
    .await;
    assert!(reason.contains("another tenant"), "{reason}");
    let row = call_row(&conversation).await.expect("the call");
    assert_eq!(row.get::<_, uuid::Uuid>("user_id"), owner.id);
    assert_eq!(
        other.credits().await,
        15,
        "nothing charged to the other tenant"
    );
}

#[tokio::test]
async fn analytics_naming_no_agent_wait_for_their_call() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let now = chrono::Utc::now().timestamp();
    let mut bare = analytics_event(&tenant.call_agent, &conversation, now + 60, 4, "Re-scored.");
    bare["data"]
        .as_object_mut()
        .expect("data")
        .remove("agent_id");
    deliver_analytics(&bare).await;
    let mut call = transcription(&tenant.call_agent, &conversation, 45, &phone());
    call["event_timestamp"] = json!(now);
    deliver(&call).await;
    let scored = eventually(
        30,
        "the analytics applied once the call is stored",
        || async {
            let row = call_row(&conversation).await?;
            row.get::<_, Option<String>>("summary")
                .filter(|summary| summary == "Re-scored.")
                .map(|_| ())
        },
    )
    .await;
    assert_eq!(scored, ());
    let unmatched: i64 = db()
        .await
        .query_one(
            "SELECT count(*) FROM unmatched_events WHERE conversation_id = $1",
            &[&conversation],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(unmatched, 0);
}

/// Analytics naming no agent wait 30 minutes from the processor's first look, not from when
/// they came in (V0034): after a database outage, or replayed from the dead-letter queue, the
/// transcription queued beside them may be a moment behind. Here, analytics that came in 40
/// minutes ago are retried until their call is stored, then applied; analytics of a
/// conversation never stored are kept unmatched once 30 minutes have passed since the first
/// look.
#[tokio::test]
async fn analytics_naming_no_agent_wait_from_the_first_look_not_from_their_arrival() {
    use shared::aws::queue::{EventSource, QueuedEvent};
    use shared::webhooks::{process::process_message, Outcome};
    let state = crate::support::app_state().await;
    let tenant = Tenant::new().await;
    let now = chrono::Utc::now();
    // The analytics as the queue hands them back after the outage.
    let came_in_40_minutes_ago = |conversation: &str| {
        let mut event = analytics_event(
            &tenant.call_agent,
            conversation,
            now.timestamp(),
            4,
            "After the outage.",
        );
        event["data"]
            .as_object_mut()
            .expect("data")
            .remove("agent_id");
        let body = event.to_string();
        let key = shared::webhooks::event_key(EventSource::Elevenlabs, body.as_bytes());
        let message = serde_json::to_string(&QueuedEvent {
            version: 1,
            source: EventSource::Elevenlabs,
            route: "call-analytics".into(),
            event_key: key.clone(),
            received_at: now - chrono::Duration::minutes(40),
            body: Some(body),
            body_s3_key: None,
        })
        .expect("json");
        (key, message)
    };
    let awaited = async |key: &str| -> i64 {
        db().await
            .query_one(
                "SELECT count(*) FROM awaited_events WHERE event_key = $1",
                &[&key],
            )
            .await
            .expect("awaited")
            .get(0)
    };

    let conversation = conversation_id();
    let (key, analytics) = came_in_40_minutes_ago(&conversation);
    let first_look = process_message(&state, &analytics).await;
    let waiting = awaited(&key).await;
    let transcription = crate::support::queued(&transcription(
        &tenant.call_agent,
        &conversation,
        45,
        &phone(),
    ));
    let stored = process_message(&state, &transcription)
        .await
        .expect("the call");
    let applied = process_message(&state, &analytics)
        .await
        .expect("the analytics");
    let summary = scored(&conversation).await["summary"].clone();
    let waiting_after = awaited(&key).await;

    let never_stored = conversation_id();
    let (lost_key, lost) = came_in_40_minutes_ago(&never_stored);
    let lost_first_look = process_message(&state, &lost).await;
    db().await
        .execute(
            "UPDATE awaited_events SET first_seen_at = now() - interval '31 minutes'
             WHERE event_key = $1",
            &[&lost_key],
        )
        .await
        .expect("31 minutes later");
    let kept = process_message(&state, &lost).await.expect("kept");
    let lost_waiting_after = awaited(&lost_key).await;

    assert!(
        first_look.is_err(),
        "retried at the first look, not kept unmatched"
    );
    assert_eq!(waiting, 1);
    assert_eq!((stored, applied), (Outcome::Applied, Outcome::Applied));
    assert_eq!(summary, json!("After the outage."));
    assert_eq!(waiting_after, 0, "no longer awaited once applied");
    assert!(lost_first_look.is_err(), "waiting too");
    assert_eq!(kept, Outcome::Unmatched, "kept after 30 minutes of looking");
    assert_eq!(lost_waiting_after, 0, "no longer awaited once kept");
}

#[tokio::test]
async fn a_lead_keeps_its_latest_calls_score_when_an_earlier_call_is_scored_again() {
    let tenant = Tenant::new().await;
    let number = phone();
    let now = chrono::Utc::now().timestamp();
    let (earlier, latest) = (conversation_id(), conversation_id());
    let mut first = transcription(&tenant.call_agent, &earlier, 45, &number);
    first["event_timestamp"] = json!(now - 600);
    first["data"]["metadata"]["start_time_unix_secs"] = json!(now - 645);
    deliver(&first).await;
    eventually(20, "the earlier call", || async {
        call_row(&earlier).await
    })
    .await;
    deliver(&transcription(&tenant.call_agent, &latest, 45, &number)).await;
    eventually(20, "the latest call", || async { call_row(&latest).await }).await;
    assert_eq!(scored(&latest).await["lead_total"], 74);

    // The earlier call re-scored after both: its own analysis changes, the lead's does not.
    deliver_analytics(&analytics_event(
        &tenant.call_agent,
        &earlier,
        now + 60,
        4,
        "Re-scored.",
    ))
    .await;
    eventually(20, "the earlier call re-scored", || async {
        let scored = scored(&earlier).await;
        (scored["total"] == 20).then_some(scored)
    })
    .await;
    let lead = scored(&latest).await;
    assert_eq!(
        (&lead["lead_total"], &lead["lead_tag"]),
        (&json!(74), &json!("hot"))
    );
}

#[tokio::test]
async fn initiation_failures_and_chats() {
    let tenant = Tenant::new().await;
    let failed = conversation_id();
    let number = phone();
    let failure = json!({"type": "call_initiation_failure", "event_timestamp": chrono::Utc::now().timestamp(),
        "data": {"agent_id": tenant.call_agent, "conversation_id": failed, "failure_reason": "busy",
            "metadata": {"type": "twilio", "body": {"CallSid": "CA9", "CallStatus": "busy", "To": number, "From": "+15550100000"}}}});
    assert_eq!(deliver(&failure).await.status(), 200);
    let row = eventually(20, "the failed call", || async { call_row(&failed).await }).await;
    assert_eq!(row.get::<_, String>("status"), "failed");
    assert_eq!(
        row.get::<_, Option<String>>("failure_reason").as_deref(),
        Some("busy")
    );
    assert_eq!(row.get::<_, Option<String>>("phone_number"), Some(number));

    // A failure reported after the call completed (out of order) changes nothing of it.
    let completed = conversation_id();
    let number = phone();
    deliver(&transcription(&tenant.call_agent, &completed, 30, &number)).await;
    eventually(20, "the completed call", || async {
        call_row(&completed).await
    })
    .await;
    let mut late = failure.clone();
    late["data"]["conversation_id"] = json!(completed);
    late["data"]["metadata"]["body"]["To"] = json!(number);
    assert_eq!(deliver(&late).await.status(), 200);
    eventually(20, "the late failure to be processed", || async {
        (processed_count(&completed).await == 2).then_some(())
    })
    .await;
    let row = call_row(&completed).await.expect("the call");
    assert_eq!(
        (
            row.get::<_, String>("status"),
            row.get::<_, Option<String>>("failure_reason")
        ),
        ("completed".to_owned(), None),
        "still completed, without a failure's reason"
    );

    let chat = conversation_id();
    let mut event = transcription(&tenant.chat_agent, &chat, 90, "");
    event["data"]["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("phone_call");
    event["data"]["metadata"]["text_only"] = json!(true);
    deliver(&event).await;
    let row = eventually(20, "the chat", || async { call_row(&chat).await }).await;
    assert_eq!(row.get::<_, String>("type"), "chat");
    assert_eq!(row.get::<_, Option<String>>("phone_number"), None);
    assert_eq!(
        tenant.credits().await,
        15 - 1 - 2,
        "the completed 0:30 and the chat's 1:30 are charged, the failed call is not"
    );
}

#[tokio::test]
async fn bad_signatures_are_401_and_nothing_is_stored_or_queued() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let body = serde_json::to_vec(&transcription(
        &tenant.call_agent,
        &conversation,
        60,
        &phone(),
    ))
    .expect("json");
    let now = chrono::Utc::now().timestamp();
    let secret = webhook_secret();
    let sign = |secret: &str, at: i64, body: &[u8]| {
        shared::webhooks::signature::sign(shared::webhooks::signature::ELEVENLABS, secret, at, body)
    };
    let tampered = {
        let mut b = body.clone();
        let at = b.iter().position(|c| *c == b'6').expect("a digit");
        b[at] = b'9';
        b
    };
    let cases: Vec<(Option<String>, &[u8], &str)> = vec![
        (None, &body, "missing_signature"),
        (Some("nonsense".into()), &body, "malformed_signature"),
        (Some(format!("t={now}")), &body, "malformed_signature"),
        (
            Some(sign("wsec_wrong_secret_value", now, &body)),
            &body,
            "invalid_signature",
        ),
        (
            Some(sign(&secret, now - 31 * 60, &body)),
            &body,
            "stale_signature",
        ),
        (
            Some(sign(&secret, now + 10 * 60, &body)),
            &body,
            "stale_signature",
        ),
        (
            Some(sign(&secret, now, &body)),
            &tampered,
            "invalid_signature",
        ),
    ];
    for (signature, payload, code) in cases {
        let response = post_webhook("call-completed", payload, signature.clone()).await;
        assert_eq!(error_code(response, 401).await, code, "{signature:?}");
    }
    let response = post_webhook("call-analytics", &body, Some(sign("nope", now, &body))).await;
    assert_eq!(error_code(response, 401).await, "invalid_signature");
    queue_drained().await;
    assert!(call_row(&conversation).await.is_none());
    assert_eq!(processed_count(&conversation).await, 0);
    assert_eq!(tenant.credits().await, 15);
}

#[tokio::test]
async fn a_flood_of_bad_signatures_is_throttled_but_valid_events_still_get_through() {
    let tenant = Tenant::new().await;
    let source = format!("203.0.113.{}", rand_digits() % 250);
    let body = b"{\"type\":\"post_call_transcription\"}".to_vec();
    let mut statuses = Vec::new();
    // The limit counts in fixed windows of a minute, and the flood may cross from one into the
    // next: with twice the limit and one more, one of the two holds more than the limit.
    for _ in 0..2 * shared::webhooks::ingest::FAILED_VERIFICATIONS_PER_MINUTE + 1 {
        let response = stack()
            .http
            .post(url("/webhooks/elevenlabs/call-completed"))
            .header("x-forwarded-for", &source)
            .header("ElevenLabs-Signature", "t=1,v0=00")
            .body(body.clone())
            .send()
            .await
            .expect("answers");
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429));
    assert!(statuses.contains(&429), "the flood was throttled");
    let conversation = conversation_id();
    let event = serde_json::to_vec(&transcription(
        &tenant.call_agent,
        &conversation,
        5,
        &phone(),
    ))
    .expect("json");
    let response = stack()
        .http
        .post(url("/webhooks/elevenlabs/call-completed"))
        .header("x-forwarded-for", &source)
        .header("ElevenLabs-Signature", sign_now(&event))
        .body(event)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        response.status(),
        200,
        "a signed event from the same source is never turned away"
    );
    eventually(20, "the call", || async { call_row(&conversation).await }).await;
}

#[tokio::test]
async fn unknown_agents_and_malformed_events_are_kept_not_retried() {
    let conversation = conversation_id();
    let unknown = transcription("agent_nobody_knows", &conversation, 30, &phone());
    assert_eq!(deliver(&unknown).await.status(), 200);
    let db = db().await;
    eventually(20, "the unmatched event", || async {
        db.query_opt(
            "SELECT reason FROM unmatched_events WHERE conversation_id = $1 AND elevenlabs_agent_id = 'agent_nobody_knows'",
            &[&conversation],
        )
        .await
        .expect("query")
    })
    .await;
    assert!(call_row(&conversation).await.is_none());

    for body in [
        b"{not json at all".to_vec(),
        b"{\"type\":\"post_call_transcription\",\"data\":{}}".to_vec(),
    ] {
        let response = post_webhook("call-completed", &body, Some(sign_now(&body))).await;
        assert_eq!(response.status(), 200, "verified, so acknowledged");
        let key = shared::webhooks::event_key(shared::aws::queue::EventSource::Elevenlabs, &body);
        eventually(20, "the rejected event", || async {
            db.query_opt(
                "SELECT reason FROM rejected_events WHERE event_key = $1",
                &[&key],
            )
            .await
            .expect("query")
        })
        .await;
    }

    let future_type = json!({"type": "post_call_summary_v9", "event_timestamp": 1, "data": {"conversation_id": conversation_id()}});
    assert_eq!(deliver(&future_type).await.status(), 200);
}

#[tokio::test]
async fn huge_transcripts_and_hostile_strings_are_stored_verbatim() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let hostile = "Robert'); DROP TABLE calls;-- <script>alert('x')</script> \u{0007}\u{001b}[31m ☎️ Zoë \\ \" \t";
    let mut event = transcription(&tenant.call_agent, &conversation, 600, &phone());
    let turns: Vec<Value> = (0..4000)
        .map(|i| json!({"role": if i % 2 == 0 {"agent"} else {"user"}, "message": format!("{i}: {hostile}"), "time_in_call_secs": i / 7}))
        .collect();
    event["data"]["transcript"] = Value::Array(turns);
    event["data"]["analysis"]["transcript_summary"] = json!(hostile);
    let bytes = serde_json::to_vec(&event).expect("json");
    assert!(bytes.len() > 256 * 1024, "bigger than an SQS message");
    assert_eq!(
        post_webhook("call-completed", &bytes, Some(sign_now(&bytes)))
            .await
            .status(),
        200
    );
    let call = eventually(30, "the huge call", || async {
        call_row(&conversation).await
    })
    .await;
    assert_eq!(
        call.get::<_, Option<String>>("summary").as_deref(),
        Some(hostile)
    );
    let id: uuid::Uuid = call.get("id");
    let segments: Value = db()
        .await
        .query_one(
            "SELECT speaker_segments FROM transcripts WHERE call_id = $1",
            &[&id],
        )
        .await
        .expect("transcript")
        .get(0);
    let segments = segments.as_array().expect("array");
    assert_eq!(segments.len(), 4000);
    assert_eq!(segments[3999]["text"], format!("3999: {hostile}"));
    let still_there: i64 = db()
        .await
        .query_one("SELECT count(*) FROM calls", &[])
        .await
        .expect("calls table")
        .get(0);
    assert!(still_there > 0);
}

#[tokio::test]
async fn a_nul_in_a_chat_or_its_variables_is_dropped_and_the_chat_kept() {
    let tenant = Tenant::new().await;
    let chat = conversation_id();
    let mut event = chat_transcription(
        &tenant.chat_agent,
        &chat,
        None,
        json!({"customer_name": "Ann\u{0}", "note\u{0}": "x"}),
        json!({}),
    );
    event["data"]["transcript"][1]["message"] = json!("Sure,\u{0} what is the price?");
    event["data"]["analysis"]["transcript_summary"] = json!("Asked\u{0} about pricing.");
    assert!(
        event.to_string().contains("\\u0000"),
        "sent as JSON sends it"
    );
    assert_eq!(deliver(&event).await.status(), 200);
    let call = eventually(20, "the chat stored", || async { call_row(&chat).await }).await;
    assert_eq!(
        call.get::<_, Option<String>>("summary").as_deref(),
        Some("Asked about pricing.")
    );
    let call_id: uuid::Uuid = call.get("id");
    let segments: Value = db()
        .await
        .query_one(
            "SELECT speaker_segments FROM transcripts WHERE call_id = $1",
            &[&call_id],
        )
        .await
        .expect("transcript")
        .get(0);
    assert_eq!(segments[1]["text"], "Sure, what is the price?");
    assert_eq!(processed_count(&chat).await, 1);
}
