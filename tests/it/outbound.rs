//! Placing calls through the ElevenLabs simulator: the credit gate (402, nothing sent), chat
//! and deactivated agents, suspended users, contacts of other tenants, and the webhook that
//! completes an outbound call.

use serde_json::{json, Value};

use crate::support::*;

async fn call_agent(account: &Account) -> Value {
    let response = post(
        "/api/agents",
        &account.token,
        &json!({"name": "Caller", "type": "call", "system_prompt": "Call politely."}),
    )
    .await;
    assert_eq!(response.status(), 201);
    json(response).await
}

async fn contact(account: &Account, name: &str, phone: &str) -> String {
    let response = post(
        "/api/contacts",
        &account.token,
        &json!({"name": name, "phone_number": phone, "company": "Acme"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    json(response).await["id"].as_str().expect("id").to_owned()
}

/// Outbound requests the simulator received for this ElevenLabs agent.
async fn calls_sent(remote_agent: &str) -> Vec<Value> {
    elevenlabs_sim::requests("/v1/convai/twilio/outbound-call")
        .await
        .into_iter()
        .filter(|r| r["body"]["agent_id"] == remote_agent)
        .collect()
}

/// How many credit holds of the account still hold.
async fn holds_held(account: &Account) -> i64 {
    db().await
        .query_one(
            "SELECT count(*) FROM credit_holds WHERE user_id = $1 AND status = 'held'",
            &[&account.id],
        )
        .await
        .expect("holds")
        .get(0)
}

#[tokio::test]
async fn a_call_to_a_contact_is_placed_recorded_and_completed_by_its_webhook() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let contact_id = contact(&account, "Grace Hopper", "+14155550142").await;
    let response = post(
        "/api/calls/outbound",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_id": contact_id}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let started = json(response).await;
    assert_eq!(started["status"], "in_progress");
    assert_eq!(started["phone_number"], "+14155550142");
    let conversation = started["conversation_id"].as_str().expect("conversation");

    let sent = calls_sent(remote).await;
    assert_eq!(sent.len(), 1);
    let variables = &sent[0]["body"]["conversation_initiation_client_data"]["dynamic_variables"];
    assert_eq!(variables["tenant_id"], account.id.to_string());
    assert_eq!(variables["contact_id"], contact_id.as_str());
    assert_eq!(variables["customer_name"], "Grace Hopper");
    assert_eq!(sent[0]["body"]["to_number"], "+14155550142");
    assert_eq!(
        sent[0]["body"]["agent_phone_number_id"],
        agent["phone_number_id"]
    );

    let call = call_row(conversation).await.expect("recorded");
    assert_eq!(call.get::<_, String>("status"), "in_progress");
    assert_eq!(call.get::<_, String>("direction"), "outbound");
    assert_eq!(
        call.get::<_, Option<uuid::Uuid>>("contact_id")
            .map(|c| c.to_string()),
        Some(contact_id)
    );

    // The simulator finishes the call and sends its webhooks: the same row completes.
    elevenlabs_sim::post(
        "/dev/simulate-call",
        &json!({"agent_id": remote, "conversation_id": conversation, "duration_secs": 95}),
    )
    .await;
    let done = eventually(20, "the completed call", || async {
        call_row(conversation)
            .await
            .filter(|row| row.get::<_, String>("status") == "completed")
    })
    .await;
    assert_eq!(done.get::<_, i64>("credits_charged"), 2);
    assert_eq!(account.credits().await, 15 - 2);
}

#[tokio::test]
async fn no_credits_means_402_and_nothing_sent() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    account.set_credits(0).await;
    let response = post(
        "/api/calls/outbound",
        &account.token,
        &json!({"agent_id": agent["id"], "phone_number": "+14155550199"}),
    )
    .await;
    assert_eq!(response.status(), 402);
    let body = json(response).await;
    assert_eq!(body["error"]["code"], "insufficient_credits");
    assert_eq!(body["error"]["details"]["balance"], 0);

    let contact_id = contact(&account, "Lin", "+14155550198").await;
    let response = post(
        "/api/calls/batch",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_ids": [contact_id]}),
    )
    .await;
    assert_eq!(error_code(response, 402).await, "insufficient_credits");
    assert!(
        calls_sent(remote).await.is_empty(),
        "nothing reached ElevenLabs"
    );
    let submitted = elevenlabs_sim::requests("/v1/convai/batch-calling/submit").await;
    assert!(!submitted.iter().any(|r| r["body"]["agent_id"] == remote));
}

#[tokio::test]
async fn simultaneous_calls_on_one_credit_place_one() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"]
        .as_str()
        .expect("remote")
        .to_owned();
    account.set_credits(1).await;
    let attempts = (0..6).map(|i| {
        let body =
            json!({"agent_id": agent["id"], "phone_number": format!("+1415555{:04}", 100 + i)});
        let token = account.token.clone();
        async move {
            post("/api/calls/outbound", &token, &body)
                .await
                .status()
                .as_u16()
        }
    });
    let mut statuses = futures::future::join_all(attempts).await;
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 402, 402, 402, 402, 402]);
    assert_eq!(calls_sent(&remote).await.len(), 1);
}

#[tokio::test]
async fn a_batch_needs_a_minute_per_contact_and_calls_each_number_once() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            contact(
                &account,
                &format!("Batch {i}"),
                &format!("+1415555{:04}", 300 + i),
            )
            .await,
        );
    }
    account.set_credits(3).await;
    let response = post(
        "/api/calls/batch",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_ids": ids}),
    )
    .await;
    let body = json(response).await;
    assert_eq!(body["error"]["code"], "insufficient_credits", "{body}");
    assert_eq!(body["error"]["details"]["required"], 4);

    account.set_credits(10).await;
    let mut with_repeat = ids.clone();
    with_repeat.push(ids[0].clone());
    let response = post(
        "/api/calls/batch",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_ids": with_repeat, "name": "Spring campaign"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let batch = json(response).await;
    assert_eq!(batch["recipients"], 4);
    assert_eq!(batch["name"], "Spring campaign");
    let submitted: Vec<Value> = elevenlabs_sim::requests("/v1/convai/batch-calling/submit")
        .await
        .into_iter()
        .filter(|r| r["body"]["agent_id"] == remote)
        .collect();
    assert_eq!(submitted.len(), 1);
    let recipients = submitted[0]["body"]["recipients"]
        .as_array()
        .expect("recipients");
    assert_eq!(recipients.len(), 4);
    assert!(recipients.iter().all(|r| {
        r["conversation_initiation_client_data"]["dynamic_variables"]["tenant_id"]
            == account.id.to_string()
    }));
    let remote_batch = elevenlabs_sim::get(&format!(
        "/v1/convai/batch-calling/{}",
        batch["elevenlabs_batch_id"].as_str().expect("id")
    ))
    .await;
    assert!(remote_batch.is_some());
}

#[tokio::test]
async fn calls_need_a_voice_agent_an_active_one_and_the_tenants_own_contacts() {
    let account = Account::new().await;
    let other = Account::new().await;
    let agent = call_agent(&account).await;
    let theirs = contact(&other, "Not yours", "+14155550177").await;
    let chat = json(
        post(
            "/api/agents",
            &account.token,
            &json!({"name": "Chat", "type": "chat", "system_prompt": "Chat."}),
        )
        .await,
    )
    .await;
    let cases = [
        (
            json!({"agent_id": chat["id"], "phone_number": "+14155550101"}),
            400,
        ),
        (json!({"agent_id": agent["id"], "contact_id": theirs}), 404),
        (json!({"agent_id": agent["id"]}), 400),
        (json!({"agent_id": agent["id"], "phone_number": "+1"}), 400),
        (
            json!({"agent_id": agent["id"], "phone_number": "+14155550101", "contact_id": theirs}),
            400,
        ),
        (
            json!({"agent_id": "00000000-0000-0000-0000-000000000000", "phone_number": "+14155550101"}),
            404,
        ),
    ];
    for (body, status) in cases {
        let response = post("/api/calls/outbound", &account.token, &body).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
    }
    // Another tenant's agent, and a batch with another tenant's contact.
    let response = post(
        "/api/calls/outbound",
        &other.token,
        &json!({"agent_id": agent["id"], "phone_number": "+14155550101"}),
    )
    .await;
    assert_eq!(error_code(response, 404).await, "not_found");
    let response = post(
        "/api/calls/batch",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_ids": [theirs]}),
    )
    .await;
    assert_eq!(error_code(response, 404).await, "not_found");

    let id = agent["id"].as_str().expect("id");
    put(
        &format!("/api/agents/{id}"),
        &account.token,
        &json!({"is_active": false}),
    )
    .await;
    let response = post(
        "/api/calls/outbound",
        &account.token,
        &json!({"agent_id": id, "phone_number": "+14155550101"}),
    )
    .await;
    assert_eq!(error_code(response, 409).await, "agent_inactive");
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    assert!(calls_sent(remote).await.is_empty());
}

#[tokio::test]
async fn suspended_users_cannot_call() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    db().await
        .execute(
            "UPDATE users SET status = 'suspended' WHERE id = $1",
            &[&account.id],
        )
        .await
        .expect("suspend");
    let response = post(
        "/api/calls/outbound",
        &account.token,
        &json!({"agent_id": agent["id"], "phone_number": "+14155550101"}),
    )
    .await;
    assert_eq!(error_code(response, 403).await, "account_suspended");
}

#[tokio::test]
async fn an_unverified_email_cannot_place_calls() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let contact_id = contact(&account, "Ada", "+14155550177").await;
    let unverified = account
        .user
        .token_with(|claims| claims["email_verified"] = json!(false));
    let single = post(
        "/api/calls/outbound",
        &unverified,
        &json!({"agent_id": agent["id"], "phone_number": "+14155550177"}),
    )
    .await;
    assert_eq!(error_code(single, 403).await, "email_not_verified");
    let batch = post(
        "/api/calls/batch",
        &unverified,
        &json!({"agent_id": agent["id"], "contact_ids": [contact_id]}),
    )
    .await;
    assert_eq!(error_code(batch, 403).await, "email_not_verified");
    assert!(
        calls_sent(remote).await.is_empty(),
        "nothing reached ElevenLabs"
    );
    let batches = elevenlabs_sim::requests("/v1/convai/batch-calling")
        .await
        .into_iter()
        .filter(|r| r["body"]["agent_id"] == remote)
        .count();
    assert_eq!(batches, 0);
}

#[tokio::test]
async fn premium_rate_and_foreign_numbers_are_not_dialled() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    // By default only the default region's country (US) and ordinary number types.
    for (number, country, kind) in [
        ("+19002345678", "US", "premium_rate"),
        ("+449012345678", "GB", "premium_rate"),
        ("+33884012345", "FR", "shared_cost"),
        ("+447400123456", "GB", "mobile"),
    ] {
        let response = post(
            "/api/calls/outbound",
            &account.token,
            &json!({"agent_id": agent["id"], "phone_number": number}),
        )
        .await;
        assert_eq!(response.status(), 403, "{number}");
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "destination_not_allowed", "{number}");
        assert_eq!(body["error"]["details"]["country"], country, "{number}");
        assert_eq!(body["error"]["details"]["number_type"], kind, "{number}");
    }
    let ordinary = contact(&account, "Ordinary", "+14155550178").await;
    let premium = contact(&account, "Premium", "+19002345679").await;
    let batch = post(
        "/api/calls/batch",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_ids": [ordinary, premium]}),
    )
    .await;
    assert_eq!(batch.status(), 403);
    let body = json(batch).await;
    assert_eq!(body["error"]["code"], "destination_not_allowed");
    assert_eq!(
        body["error"]["details"]["refused"][0]["contact_id"],
        premium.as_str()
    );
    assert_eq!(body["error"]["details"]["refused_count"], 1);
    assert!(
        calls_sent(remote).await.is_empty(),
        "nothing reached ElevenLabs"
    );
}

/// A batch call's transcription webhook: outbound, naming its batch and recipient.
fn batch_call_completed(
    remote_agent: &str,
    batch: &str,
    contact_id: &str,
    number: &str,
    seconds: i64,
) -> Value {
    let mut event = transcription(remote_agent, &conversation_id(), seconds, number);
    event["data"]["metadata"]["batch_call"] =
        json!({"batch_call_id": batch, "batch_call_recipient_id": contact_id});
    event
}

#[tokio::test]
async fn a_batch_holds_its_credits_so_one_balance_cannot_back_two() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let mut contacts = Vec::new();
    let base = rand_digits() % 9_000;
    for i in 0..15 {
        let number = format!("+1415556{:04}", base + i);
        contacts.push((
            contact(&account, &format!("Held {i}"), &number).await,
            number,
        ));
    }
    let ids: Vec<&str> = contacts.iter().map(|(id, _)| id.as_str()).collect();
    let batch = |scheduled: Option<String>| {
        let body = json!({"agent_id": agent["id"], "contact_ids": ids, "scheduled_at": scheduled});
        let token = account.token.clone();
        async move { post("/api/calls/batch", &token, &body).await }
    };
    // 15 free credits back one batch of 15 ...
    let first = batch(None).await;
    assert_eq!(first.status(), 201);
    let first = json(first).await;
    // ... not a second one, now or scheduled for tomorrow, nor a single call.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    for again in [batch(None).await, batch(Some(tomorrow.clone())).await] {
        let body = json(again).await;
        assert_eq!(body["error"]["code"], "insufficient_credits", "{body}");
        assert_eq!(body["error"]["details"]["held_by_batches"], 15);
    }
    let single = post(
        "/api/calls/outbound",
        &account.token,
        &json!({"agent_id": agent["id"], "phone_number": "+14155550188"}),
    )
    .await;
    assert_eq!(error_code(single, 402).await, "insufficient_credits");

    // Five calls end unanswered (nothing charged): their holds are settled and freed.
    let batch_id = first["elevenlabs_batch_id"].as_str().expect("batch id");
    for (contact_id, number) in contacts.iter().take(5) {
        let event = batch_call_completed(remote, batch_id, contact_id, number, 0);
        assert_eq!(deliver(&event).await.status(), 200);
    }
    let five: Vec<&str> = ids[..5].to_vec();
    eventually(20, "five holds to be settled", || async {
        let response = post(
            "/api/calls/batch",
            &account.token,
            &json!({"agent_id": agent["id"], "contact_ids": five}),
        )
        .await;
        (response.status() == 201).then_some(())
    })
    .await;
    assert_eq!(account.credits().await, 15, "unanswered calls cost nothing");
}

#[tokio::test]
async fn suspending_a_tenant_cancels_its_scheduled_batches_and_frees_their_holds() {
    let account = Account::new().await;
    let admin = Account::admin().await;
    let agent = call_agent(&account).await;
    let contact_id = contact(
        &account,
        "Later",
        &format!("+1415557{:04}", rand_digits() % 10_000),
    )
    .await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let response = post(
        "/api/calls/batch",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_ids": [contact_id], "scheduled_at": tomorrow}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let remote_batch = json(response).await["elevenlabs_batch_id"]
        .as_str()
        .expect("batch id")
        .to_owned();
    let suspended = post(
        &format!("/admin/users/{}/suspend", account.id),
        &admin.token,
        &json!({"reason": "abuse"}),
    )
    .await;
    assert_eq!(suspended.status(), 200);
    assert_eq!(json(suspended).await["batches_cancelled"], 1);
    let remote = elevenlabs_sim::get(&format!("/v1/convai/batch-calling/{remote_batch}"))
        .await
        .expect("batch");
    assert_eq!(remote["status"], "cancelled", "cancelled at ElevenLabs");
    // Repeating the suspension finds nothing left to cancel.
    let again = post(
        &format!("/admin/users/{}/suspend", account.id),
        &admin.token,
        &json!({}),
    )
    .await;
    assert_eq!(json(again).await["batches_cancelled"], 0);
    let held = holds_held(&account).await;
    assert_eq!(held, 0, "the cancelled batch holds nothing");
}

#[tokio::test]
async fn a_single_call_to_a_number_in_a_scheduled_batch_leaves_the_batchs_hold() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let base = rand_digits() % 9_000;
    let numbers: Vec<String> = (0..3).map(|i| format!("+1415557{:04}", base + i)).collect();
    let mut ids = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        ids.push(contact(&account, &format!("Batched {i}"), number).await);
    }
    account.set_credits(6).await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let batch = post(
        "/api/calls/batch",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_ids": ids, "scheduled_at": tomorrow}),
    )
    .await;
    assert_eq!(batch.status(), 201);

    // Three credits are free: each number of the batch called once on its own.
    for (number, kind) in
        numbers
            .iter()
            .zip(["transcription", "initiation failure", "transcription"])
    {
        let single = post(
            "/api/calls/outbound",
            &account.token,
            &json!({"agent_id": agent["id"], "phone_number": number}),
        )
        .await;
        if single.status() != 201 {
            panic!("{kind}: {}", json(single).await);
        }
        let conversation = json(single).await["conversation_id"]
            .as_str()
            .expect("conversation")
            .to_owned();
        let ended = match kind {
            "transcription" => {
                elevenlabs_sim::post(
                    "/dev/simulate-call",
                    &json!({"agent_id": remote, "conversation_id": conversation, "duration_secs": 0}),
                )
                .await;
                None
            }
            _ => Some(
                deliver(&json!({"type": "call_initiation_failure",
                    "event_timestamp": chrono::Utc::now().timestamp(),
                    "data": {"agent_id": remote, "conversation_id": conversation,
                        "failure_reason": "no-answer", "metadata": {"type": "twilio", "body": {"To": number}}}}))
                .await,
            ),
        };
        if let Some(response) = ended {
            assert_eq!(response.status(), 200);
        }
        eventually(20, "the single call ended", || async {
            call_row(&conversation)
                .await
                .filter(|row| row.get::<_, String>("status") != "in_progress")
        })
        .await;
    }
    let held = holds_held(&account).await;
    assert_eq!(
        held, 3,
        "the batch still holds a credit for each of its calls"
    );
}

#[tokio::test]
async fn a_batch_elevenlabs_no_longer_knows_does_not_stop_a_suspension_cancelling_the_rest() {
    let account = Account::new().await;
    let admin = Account::admin().await;
    let agent = call_agent(&account).await;
    let base = rand_digits() % 9_000;
    let mut batches = Vec::new();
    for i in 0..2 {
        let contact_id = contact(&account, "Later", &format!("+1415558{:04}", base + i)).await;
        let response = post(
            "/api/calls/batch",
            &account.token,
            &json!({"agent_id": agent["id"], "contact_ids": [contact_id],
                    "scheduled_at": (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339()}),
        )
        .await;
        assert_eq!(response.status(), 201);
        batches.push(
            json(response).await["elevenlabs_batch_id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    // A date more than 30 days ahead would hold its credits that long.
    let later = post(
        "/api/calls/batch",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_ids": [uuid::Uuid::new_v4()],
                "scheduled_at": (chrono::Utc::now() + chrono::Duration::days(31)).to_rfc3339()}),
    )
    .await;
    assert_eq!(error_code(later, 400).await, "validation_error");
    // The first batch is gone at ElevenLabs (deleted there, or already over).
    elevenlabs_sim::fault(
        json!({"path_prefix": format!("/v1/convai/batch-calling/{}/cancel", batches[0]),
        "responses": [{"status": 404}]}),
    )
    .await;
    let suspended = post(
        &format!("/admin/users/{}/suspend", account.id),
        &admin.token,
        &json!({"reason": "abuse"}),
    )
    .await;
    assert_eq!(suspended.status(), 200);
    assert_eq!(json(suspended).await["batches_cancelled"], 2);
    let remote = elevenlabs_sim::get(&format!("/v1/convai/batch-calling/{}", batches[1]))
        .await
        .expect("batch");
    assert_eq!(remote["status"], "cancelled");
    let held = holds_held(&account).await;
    assert_eq!(held, 0);
}

#[tokio::test]
async fn a_batch_submitted_while_its_tenant_is_suspended_is_cancelled_too() {
    let account = Account::new().await;
    let admin = Account::admin().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"]
        .as_str()
        .expect("remote")
        .to_owned();
    let contact_id = contact(
        &account,
        "Racing",
        &format!("+1415559{:04}", rand_digits() % 10_000),
    )
    .await;
    // ElevenLabs takes its time to accept this tenant's batch (within our timeout).
    elevenlabs_sim::fault(json!({"path_prefix": "/v1/convai/batch-calling/submit",
        "body_contains": remote, "responses": [{"delay_ms": 900}]}))
    .await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let body =
        json!({"agent_id": agent["id"], "contact_ids": [contact_id], "scheduled_at": tomorrow});
    let submit = post("/api/calls/batch", &account.token, &body);
    let suspend = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        post(
            &format!("/admin/users/{}/suspend", account.id),
            &admin.token,
            &json!({"reason": "abuse"}),
        )
        .await
    };
    let (submitted, suspended) = tokio::join!(submit, suspend);
    let cancelled = json(suspended).await["batches_cancelled"].clone();
    // Either the placement was in flight (the suspension waits for it, then cancels its
    // batch) or, on a slow machine, it started after the suspension and was refused.
    if submitted.status() == 403 {
        assert_eq!(error_code(submitted, 403).await, "account_suspended");
        assert_eq!(cancelled, 0);
        return;
    }
    assert_eq!(submitted.status(), 201);
    let batch = json(submitted).await["elevenlabs_batch_id"]
        .as_str()
        .expect("batch id")
        .to_owned();
    assert_eq!(cancelled, 1, "the batch placed while the suspension ran");
    let remote_batch = elevenlabs_sim::get(&format!("/v1/convai/batch-calling/{batch}"))
        .await
        .expect("batch");
    assert_eq!(remote_batch["status"], "cancelled");
}

#[tokio::test]
async fn a_batch_still_calling_after_six_hours_keeps_its_holds() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let base = rand_digits() % 9_000;
    let mut contacts = Vec::new();
    for i in 0..3 {
        let number = format!("+1415558{:04}", base + i);
        contacts.push((
            contact(&account, &format!("Slow {i}"), &number).await,
            number,
        ));
    }
    let ids: Vec<&str> = contacts.iter().map(|(id, _)| id.as_str()).collect();
    let response = post(
        "/api/calls/batch",
        &account.token,
        &json!({"agent_id": agent["id"], "contact_ids": ids}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let batch = json(response).await;
    let batch_id = batch["batch_id"].as_str().expect("batch id");
    let remote_batch = batch["elevenlabs_batch_id"].as_str().expect("remote batch");
    // The first call ends unanswered (nothing charged) ...
    let (first, number) = &contacts[0];
    let event = batch_call_completed(remote, remote_batch, first, number, 0);
    assert_eq!(deliver(&event).await.status(), 200);
    eventually(20, "the first hold settled", || async {
        (holds_held(&account).await == 2).then_some(())
    })
    .await;
    // ... and six hours pass since the batch's start: the two credits the batch has yet to
    // spend stay held while it is still calling.
    account.set_credits(2).await;
    let batch_uuid: uuid::Uuid = batch_id.parse().expect("uuid");
    let db = db().await;
    db.execute(
        "UPDATE credit_holds SET expires_at = now() - interval '1 minute' WHERE batch_id = $1",
        &[&batch_uuid],
    )
    .await
    .expect("six hours on");
    let call = json!({"agent_id": agent["id"], "phone_number": "+14155550177"});
    let single = || post("/api/calls/outbound", &account.token, &call);
    let refused = json(single().await).await;
    assert_eq!(
        refused["error"]["code"], "insufficient_credits",
        "{refused}"
    );
    assert_eq!(refused["error"]["details"]["held_by_batches"], 2);

    // Six hours without a call of the batch reporting: its holds lapse.
    db.execute(
        "UPDATE call_batches SET last_settled_at = now() - interval '6 hours 1 minute' WHERE id = $1",
        &[&batch_uuid],
    )
    .await
    .expect("six more hours on");
    assert_eq!(single().await.status(), 201);

    // A late report of the batch's second call settles its hold, and does not bring back the
    // third's: one credit is still free for another call.
    let (second, number) = &contacts[1];
    let event = batch_call_completed(remote, remote_batch, second, number, 0);
    assert_eq!(deliver(&event).await.status(), 200);
    eventually(20, "the second hold settled", || async {
        (holds_held(&account).await == 1).then_some(())
    })
    .await;
    let another = json!({"agent_id": agent["id"], "phone_number": "+14155550178"});
    let placed = post("/api/calls/outbound", &account.token, &another).await;
    assert_eq!(placed.status(), 201, "{:?}", placed.text().await);
}

#[tokio::test]
async fn a_call_elevenlabs_does_not_answer_in_time_may_have_been_placed_and_the_answer_says_so() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    // Longer than the timeout scripts/test sets (1.5 s); the simulator places it all the same.
    elevenlabs_sim::fault(json!({"path_prefix": "/v1/convai/twilio/outbound-call",
        "body_contains": remote, "responses": [{"delay_ms": 2000}]}))
    .await;
    let response = post(
        "/api/calls/outbound",
        &account.token,
        &json!({"agent_id": agent["id"], "phone_number": "+14155550166"}),
    )
    .await;
    assert_eq!(response.status(), 502);
    let body = json(response).await;
    assert_eq!(body["error"]["code"], "upstream_error");
    assert_eq!(body["error"]["details"]["reason"], "timeout");
    assert_eq!(
        body["error"]["details"]["may_have_been_placed"], true,
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("check the calls list")),
        "{body}"
    );
    // Not sent twice: a request that may have placed a call is not retried.
    eventually(10, "the slow request reached the simulator", || async {
        (calls_sent(remote).await.len() == 1).then_some(())
    })
    .await;

    // A refusal is no such doubt.
    elevenlabs_sim::fault(json!({"path_prefix": "/v1/convai/twilio/outbound-call",
        "body_contains": remote, "responses": [{"status": 400}]}))
    .await;
    let refused = post(
        "/api/calls/outbound",
        &account.token,
        &json!({"agent_id": agent["id"], "phone_number": "+14155550166"}),
    )
    .await;
    let body = json(refused).await;
    assert!(
        body["error"]["details"]["may_have_been_placed"].is_null(),
        "{body}"
    );
}

#[tokio::test]
async fn every_call_is_given_the_same_variables_whoever_it_calls() {
    let account = Account::new().await;
    let agent = call_agent(&account).await;
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let with_contact = contact(&account, "Ada", "+14155550151").await;
    let placed = [
        json!({"agent_id": agent["id"], "contact_id": with_contact}),
        json!({"agent_id": agent["id"], "phone_number": "+14155550152"}),
    ];
    for body in &placed {
        let response = post("/api/calls/outbound", &account.token, body).await;
        assert_eq!(response.status(), 201);
    }
    // ElevenLabs ends a conversation whose prompt or first message uses a variable it was not
    // given: a number without a contact gets every name too, empty, as the lookup answers.
    let names = |variables: &Value| {
        let mut names: Vec<String> = variables
            .as_object()
            .expect("variables")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    };
    let sent = calls_sent(remote).await;
    assert_eq!(sent.len(), 2);
    let variables: Vec<&Value> = sent
        .iter()
        .map(|r| &r["body"]["conversation_initiation_client_data"]["dynamic_variables"])
        .collect();
    assert_eq!(names(variables[0]), names(variables[1]));
    for name in [
        "customer_name",
        "customer_company",
        "customer_notes",
        "customer_email",
        "customer_phone",
        "company",
        "contact_id",
        "tenant_id",
    ] {
        assert!(variables[1][name].is_string(), "{name}: {}", variables[1]);
    }
    assert_eq!(variables[0]["customer_name"], "Ada");
    assert_eq!(variables[1]["customer_name"], "");
    assert_eq!(variables[1]["customer_phone"], "+14155550152");
    assert_eq!(variables[1]["contact_found"], false);
}
