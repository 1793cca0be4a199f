//! Credit purchases end to end: packages, Checkout through the Stripe simulator, Stripe's
//! signed events (signed here by the official stripe-python library) through ingest, SQS and
//! the processor, refunds, and the ledger staying exact under redeliveries and concurrency.

use futures::future::join_all;
use serde_json::{json, Value};

use crate::support::{
    self, deliver as deliver_elevenlabs, error_code, eventually, every_page, get, json, phone,
    post,
    stripe::{self, sim},
    transcription, Account, Tenant,
};

struct Bought {
    purchase_id: String,
    session_id: String,
    amount: i64,
    credits: i64,
}

async fn start_purchase(token: &str, package_id: &str) -> Bought {
    let response = post(
        "/billing/purchase",
        token,
        &json!({"package_id": package_id}),
    )
    .await;
    assert_eq!(response.status(), 200, "purchase started");
    let checkout = json(response).await;
    let purchase_id = checkout["purchase_id"]
        .as_str()
        .expect("purchase id")
        .to_owned();
    let purchase = json(get(&format!("/billing/purchases/{purchase_id}"), token).await).await;
    assert_eq!(purchase["status"], "pending");
    Bought {
        session_id: checkout["session_id"].as_str().expect("session").to_owned(),
        amount: purchase["amount"].as_i64().expect("amount"),
        credits: purchase["credits"].as_i64().expect("credits"),
        purchase_id,
    }
}

async fn purchase_status(token: &str, purchase_id: &str) -> Value {
    json(get(&format!("/billing/purchases/{purchase_id}"), token).await).await
}

async fn ledger(tenant: uuid::Uuid) -> Vec<(String, i64, i64)> {
    support::db()
        .await
        .query(
            "SELECT type, amount, balance_after FROM credit_transactions WHERE user_id = $1 ORDER BY id",
            &[&tenant],
        )
        .await
        .expect("ledger")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

/// Every entry's balance_after is the previous one plus its amount, and the last is the balance.
fn assert_ledger_exact(entries: &[(String, i64, i64)], balance: i64) {
    let mut running = 0;
    for (kind, amount, after) in entries {
        running += amount;
        assert_eq!(*after, running, "balance_after of a {kind} entry");
    }
    assert_eq!(running, balance, "the ledger sums to the balance");
}

async fn processed_outcome(event_body: &str) -> Option<String> {
    let id = serde_json::from_str::<Value>(event_body).expect("event")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    support::db()
        .await
        .query_opt(
            "SELECT outcome FROM processed_events WHERE event_key = $1",
            &[&format!("stripe:{id}")],
        )
        .await
        .expect("query")
        .map(|row| row.get(0))
}

/// The processor's outcomes of two delivered events, once it has recorded both.
async fn both_outcomes(first: &str, second: &str) -> (String, String) {
    eventually(20, "both events", || async {
        Some((
            processed_outcome(first).await?,
            processed_outcome(second).await?,
        ))
    })
    .await
}

#[tokio::test]
async fn packages_are_listed_with_prices_and_need_a_token() {
    let account = Account::new().await;
    let body = json(get("/billing/packages", &account.token).await).await;
    let packages = body["data"].as_array().expect("packages");
    assert!(!packages.is_empty());
    for package in packages {
        for field in ["id", "name", "credits", "price", "currency"] {
            assert!(!package[field].is_null(), "{field} in {package}");
        }
        assert!(package["price"].as_i64().expect("price") >= 50);
    }
    let anonymous = support::stack()
        .http
        .get(support::url("/billing/packages"))
        .send()
        .await
        .expect("answer");
    assert_eq!(error_code(anonymous, 401).await, "missing_token");
}

#[tokio::test]
async fn bad_purchase_requests_are_refused_and_nothing_reaches_stripe() {
    let account = Account::new().await;
    let unknown = post(
        "/billing/purchase",
        &account.token,
        &json!({"package_id": "gold-bars"}),
    )
    .await;
    assert_eq!(error_code(unknown, 400).await, "validation_error");
    let empty = post(
        "/billing/purchase",
        &account.token,
        &json!({"package_id": " "}),
    )
    .await;
    assert_eq!(error_code(empty, 400).await, "validation_error");
    let client_priced = post(
        "/billing/purchase",
        &account.token,
        &json!({"package_id": "starter", "credits": 1_000_000, "price": 1}),
    )
    .await;
    assert_eq!(
        client_priced.status(),
        400,
        "the client cannot set credits or a price"
    );
    let purchases = json(get("/billing/purchases", &account.token).await).await;
    assert_eq!(purchases["data"], json!([]));
    assert_eq!(purchases["pagination"]["total"], 0);
    let other = Account::new().await;
    let bought = start_purchase(&other.token, "starter").await;
    let mut started = vec![bought.purchase_id.clone()];
    for _ in 0..2 {
        started.push(start_purchase(&other.token, "starter").await.purchase_id);
    }
    let listed: Vec<String> = every_page("/billing/purchases", &other.token, 2)
        .await
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect();
    started.reverse();
    assert_eq!(listed, started, "newest first, two to a page");
    let theirs = get(
        &format!("/billing/purchases/{}", bought.purchase_id),
        &account.token,
    )
    .await;
    assert_eq!(error_code(theirs, 404).await, "not_found");
    let ours = sim::get("/dev/requests")
        .await
        .as_array()
        .expect("log")
        .iter()
        .filter(|r| {
            r["body"]
                .as_str()
                .unwrap_or_default()
                .contains(&account.id.to_string())
        })
        .count();
    assert_eq!(ours, 0, "no refused purchase reached Stripe");
}

#[tokio::test]
async fn a_checkout_walked_through_the_simulator_credits_once_and_sends_a_receipt() {
    let account = Account::new().await;
    let bought = start_purchase(&account.token, "starter").await;
    let requests = sim::get("/dev/requests").await;
    let ours = requests
        .as_array()
        .expect("log")
        .iter()
        .find(|r| {
            r["body"]
                .as_str()
                .unwrap_or_default()
                .contains(&bought.purchase_id)
        })
        .expect("the checkout request reached the simulator")
        .clone();
    let key = ours["headers"]["idempotency-key"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(key, format!("checkout:{}", bought.purchase_id));
    let form = ours["body"].as_str().expect("form body");
    assert!(form.contains("mode=payment"));
    assert!(form.contains(&format!("client_reference_id={}", bought.purchase_id)));
    assert!(form.contains(&format!(
        "payment_intent_data[metadata][purchase_id]={}",
        bought.purchase_id
    )));

    let paid = sim::post(
        &format!("/dev/checkout/{}/pay", bought.session_id),
        &json!({"outcome": "paid"}),
    )
    .await;
    assert_eq!(paid.status(), 200);
    eventually(20, "the purchase to be paid", || async {
        (purchase_status(&account.token, &bought.purchase_id).await["status"] == "paid")
            .then_some(())
    })
    .await;
    assert_eq!(account.credits().await, 15 + bought.credits);
    let history = json(get("/billing/history?type=purchase", &account.token).await).await;
    let entry = &history["data"][0];
    assert_eq!(entry["amount"], bought.credits);
    assert!(entry["stripe_payment_id"]
        .as_str()
        .is_some_and(|p| p.starts_with("pi_")));

    // Stripe redelivers the same event: nothing changes.
    let events = sim::get("/dev/events").await;
    let event = events
        .as_array()
        .expect("events")
        .iter()
        .rev()
        .find(|e| {
            e["payload"]
                .as_str()
                .unwrap_or_default()
                .contains(&bought.session_id)
        })
        .expect("the completed event")
        .clone();
    let resent = sim::post(
        &format!("/dev/events/{}/resend", event["id"].as_str().expect("id")),
        &json!({}),
    )
    .await;
    assert_eq!(resent.status(), 200);
    support::queue_drained().await;
    assert_eq!(account.credits().await, 15 + bought.credits);

    let receipt = eventually(20, "the receipt email", || async {
        support::mail::delivered_to(&account.user.email)
            .into_iter()
            .find(|m| m.subject.starts_with("Receipt"))
    })
    .await;
    assert!(receipt
        .body
        .contains(&format!("Credits: {}", bought.credits)));
    assert!(receipt
        .body
        .contains(&format!("Balance now: {} credits", 15 + bought.credits)));
}

#[tokio::test]
async fn delayed_payments_wait_for_the_money_and_failures_grant_nothing() {
    let account = Account::new().await;
    let good = start_purchase(&account.token, "starter").await;
    let bad = start_purchase(&account.token, "starter").await;
    sim::post(
        &format!("/dev/checkout/{}/pay", good.session_id),
        &json!({"outcome": "delayed_success"}),
    )
    .await;
    sim::post(
        &format!("/dev/checkout/{}/pay", bad.session_id),
        &json!({"outcome": "delayed_failure"}),
    )
    .await;
    eventually(20, "both purchases to settle", || async {
        let good = purchase_status(&account.token, &good.purchase_id).await;
        let bad = purchase_status(&account.token, &bad.purchase_id).await;
        (good["status"] == "paid" && bad["status"] == "failed").then_some(())
    })
    .await;
    assert_eq!(account.credits().await, 15 + good.credits);
}

#[tokio::test]
async fn each_event_delivered_five_times_concurrently_and_out_of_order_counts_once() {
    let account = Account::new().await;
    let bought = start_purchase(&account.token, "growth").await;
    let tenant = account.id.to_string();
    let session = |status: &str| {
        stripe::session(
            &bought.session_id,
            &bought.purchase_id,
            &tenant,
            bought.amount,
            status,
        )
    };
    let half = bought.amount / 2;
    let events = [
        stripe::event("checkout.session.completed", session("paid")),
        stripe::event("checkout.session.async_payment_succeeded", session("paid")),
        stripe::event(
            "charge.refunded",
            stripe::charge(&bought.session_id, &bought.purchase_id, bought.amount, half),
        ),
        stripe::event(
            "customer.created",
            json!({"id": "cus_1", "object": "customer"}),
        ),
    ];
    let secret = stripe::webhook_secret();
    let now = chrono::Utc::now().timestamp();
    // Refund first: the processor must remember it until the payment arrives.
    let mut deliveries: Vec<&String> = Vec::new();
    for round in 0..5 {
        for index in [2, 3, 0, 1] {
            deliveries.push(&events[(index + round) % events.len()]);
        }
    }
    let secrets = [secret.as_str()];
    let signing: Vec<(&str, &[&str], i64)> = deliveries
        .iter()
        .map(|body| (body.as_str(), &secrets[..], now))
        .collect();
    let headers = stripe::sign_with_stripe_library(&signing);
    let statuses = join_all(
        deliveries
            .iter()
            .zip(&headers)
            .map(|(body, header)| stripe::post(body, Some(header))),
    )
    .await;
    assert!(
        statuses.iter().all(|r| r.status() == 200),
        "every delivery acknowledged"
    );
    let expected = 15 + bought.credits
        - shared::billing::payments::refunded_credits(bought.credits, half, bought.amount);
    eventually(30, "the events to be applied", || async {
        let outcomes = join_all(events.iter().map(|e| processed_outcome(e))).await;
        outcomes.iter().all(Option::is_some).then_some(())
    })
    .await;
    assert_eq!(account.credits().await, expected);
    let entries = ledger(account.id).await;
    let kinds: Vec<&str> = entries.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(kinds, ["bonus", "purchase", "refund"]);
    assert_ledger_exact(&entries, expected);
    // design.md's types have no refund: the API serves it as a purchase taken back, with the
    // ledger's own type beside it, and a filter on purchases shows it.
    let purchases = json(get("/billing/history?type=purchase", &account.token).await).await;
    let served: Vec<(&str, &str, bool)> = purchases["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|entry| {
            (
                entry["type"].as_str().expect("type"),
                entry["ledger_type"].as_str().expect("ledger_type"),
                entry["amount"].as_i64().expect("amount") < 0,
            )
        })
        .collect();
    assert_eq!(
        served,
        [
            ("purchase", "refund", true),
            ("purchase", "purchase", false)
        ]
    );
    let refunds = json(get("/billing/history?type=refund", &account.token).await).await;
    assert_eq!(refunds["pagination"]["total"], 1);
    assert_eq!(
        processed_outcome(&events[3]).await.as_deref(),
        Some("ignored")
    );
    let purchase = purchase_status(&account.token, &bought.purchase_id).await;
    assert_eq!(purchase["amount_refunded"], half);
}

#[tokio::test]
async fn a_refund_after_the_credits_were_used_may_leave_a_negative_balance() {
    let tenant = Tenant::new().await;
    let bought = start_purchase(&tenant.token, "starter").await;
    let id = tenant.id.to_string();
    let completed = stripe::event(
        "checkout.session.completed",
        stripe::session(
            &bought.session_id,
            &bought.purchase_id,
            &id,
            bought.amount,
            "paid",
        ),
    );
    assert_eq!(stripe::deliver(&completed).await.status(), 200);
    eventually(20, "the credits", || async {
        (tenant.credits().await == 15 + bought.credits).then_some(())
    })
    .await;
    // 100 minutes of calls: 15 + 100 - 100 = 15 left.
    let conversation = support::conversation_id();
    deliver_elevenlabs(&transcription(
        &tenant.call_agent,
        &conversation,
        100 * 60,
        &phone(),
    ))
    .await;
    eventually(20, "the call's usage", || async {
        (tenant.credits().await == 15).then_some(())
    })
    .await;
    // A partial refund (30 %), then the rest: credits are taken back in two steps.
    for refunded in [bought.amount * 3 / 10, bought.amount] {
        let refund = stripe::event(
            "charge.refunded",
            stripe::charge(
                &bought.session_id,
                &bought.purchase_id,
                bought.amount,
                refunded,
            ),
        );
        assert_eq!(stripe::deliver(&refund).await.status(), 200);
        eventually(20, "the refund", || async {
            processed_outcome(&refund).await
        })
        .await;
    }
    let balance = tenant.credits().await;
    assert_eq!(balance, 15 - bought.credits);
    let entries = ledger(tenant.id).await;
    let refunds: Vec<i64> = entries
        .iter()
        .filter(|(k, _, _)| k == "refund")
        .map(|(_, a, _)| *a)
        .collect();
    assert_eq!(refunds, [-30, -70]);
    assert_ledger_exact(&entries, balance);
    let credits = json(get("/billing/credits", &tenant.token).await).await;
    assert_eq!(credits["status"], "exhausted");
}

#[tokio::test]
async fn bad_signatures_and_stale_timestamps_are_refused_without_credits() {
    let account = Account::new().await;
    let bought = start_purchase(&account.token, "starter").await;
    let body = stripe::event(
        "checkout.session.completed",
        stripe::session(
            &bought.session_id,
            &bought.purchase_id,
            &account.id.to_string(),
            bought.amount,
            "paid",
        ),
    );
    let secret = stripe::webhook_secret();
    let now = chrono::Utc::now().timestamp();
    let signed = stripe::sign_with_stripe_library(&[
        (body.as_str(), &["whsec_not_ours"], now),
        (body.as_str(), &[secret.as_str()], now - 301),
        (body.as_str(), &[secret.as_str()], now),
    ]);
    let cases = [
        ("wrong secret", body.clone(), Some(signed[0].clone())),
        ("stale timestamp", body.clone(), Some(signed[1].clone())),
        (
            "body changed after signing",
            body.replace("\"paid\"", "\"paid\" "),
            Some(signed[2].clone()),
        ),
        (
            "only a v0",
            body.clone(),
            Some(signed[2].replace("v1=", "v0=")),
        ),
        ("no header", body.clone(), None),
        ("garbage header", body.clone(), Some("t=abc,v1=xyz".into())),
    ];
    for (case, body, header) in cases {
        let response = stripe::post(&body, header.as_deref()).await;
        assert_eq!(response.status(), 401, "{case}");
        let error: Value = response.json().await.expect("error body");
        assert!(error["error"]["code"].as_str().is_some(), "{case}: {error}");
    }
    let huge = format!("{{\"id\":\"evt_big\",\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let too_big = stripe::post(&huge, Some(&signed[2])).await;
    assert_eq!(error_code(too_big, 413).await, "payload_too_large");
    support::queue_drained().await;
    assert_eq!(processed_outcome(&body).await, None);
    assert_eq!(account.credits().await, 15);
}

#[tokio::test]
async fn unknown_purchases_and_wrong_amounts_are_held_without_credits() {
    let account = Account::new().await;
    let bought = start_purchase(&account.token, "starter").await;
    let tenant = account.id.to_string();
    let underpaid = stripe::event(
        "checkout.session.completed",
        stripe::session(
            &bought.session_id,
            &bought.purchase_id,
            &tenant,
            bought.amount - 1,
            "paid",
        ),
    );
    let stranger = uuid::Uuid::new_v4().to_string();
    let unknown = stripe::event(
        "checkout.session.completed",
        stripe::session("cs_test_not_ours", &stranger, &tenant, 1000, "paid"),
    );
    for event in [&underpaid, &unknown] {
        assert_eq!(stripe::deliver(event).await.status(), 200);
    }
    let outcomes = both_outcomes(&underpaid, &unknown).await;
    assert_eq!(outcomes, ("review".to_owned(), "unmatched".to_owned()));
    let purchase = purchase_status(&account.token, &bought.purchase_id).await;
    assert_eq!(purchase["status"], "review");
    assert!(purchase["review_reason"]
        .as_str()
        .expect("reason")
        .contains("Stripe reports"));
    assert_eq!(account.credits().await, 15);
    let kept: i64 = support::db()
        .await
        .query_one(
            "SELECT count(*) FROM unmatched_events WHERE source = 'stripe' AND payload::text LIKE $1",
            &[&format!("%{stranger}%")],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(kept, 1, "the unknown purchase's event is kept for an admin");

    // An admin finds the held purchase, checks it at Stripe and approves it: credited once.
    let admin = Account::admin().await;
    let held = json(get("/admin/purchases?status=review&limit=100", &admin.token).await).await;
    assert!(held["data"]
        .as_array()
        .expect("purchases")
        .iter()
        .any(|p| p["id"] == bought.purchase_id.as_str() && p["user_id"] == tenant.as_str()));
    let path = format!("/admin/purchases/{}/approve", bought.purchase_id);
    let approved = post(
        &path,
        &admin.token,
        &json!({"reason": "paid in full per the Stripe dashboard"}),
    )
    .await;
    assert_eq!(json(approved).await["status"], "paid");
    assert_eq!(account.credits().await, 15 + bought.credits);
    let again = post(&path, &admin.token, &json!({"reason": "twice"})).await;
    assert_eq!(error_code(again, 409).await, "not_held_for_review");
    let correct = stripe::event(
        "checkout.session.completed",
        stripe::session(
            &bought.session_id,
            &bought.purchase_id,
            &tenant,
            bought.amount,
            "paid",
        ),
    );
    stripe::deliver(&correct).await;
    eventually(20, "the late payment event", || async {
        processed_outcome(&correct).await
    })
    .await;
    assert_eq!(
        account.credits().await,
        15 + bought.credits,
        "credited once"
    );
}

#[tokio::test]
async fn network_failures_are_retried_once_with_the_same_key_then_held_for_review() {
    let account = Account::new().await;
    let marker = account.id.to_string();
    // One dropped connection: the retry (same idempotency key) succeeds.
    sim::post("/dev/faults", &json!({"path_prefix": "/v1/checkout/sessions", "body_contains": marker, "responses": [{"drop": true}]})).await;
    let bought = start_purchase(&account.token, "starter").await;
    let attempts: Vec<Value> = sim::get("/dev/requests")
        .await
        .as_array()
        .expect("log")
        .iter()
        .filter(|r| {
            r["body"]
                .as_str()
                .unwrap_or_default()
                .contains(&bought.purchase_id)
        })
        .cloned()
        .collect();
    assert_eq!(attempts.len(), 2, "one retry");
    assert_eq!(
        attempts[0]["headers"]["idempotency-key"],
        attempts[1]["headers"]["idempotency-key"]
    );

    // Two dropped connections: the purchase is kept, held for review, and the buyer told.
    let held = held_for_review(&account).await;
    assert_eq!(
        purchase_status(&account.token, &held).await["status"],
        "review"
    );

    // Stripe refusing: the purchase failed, nothing to review.
    sim::post("/dev/faults", &json!({"path_prefix": "/v1/checkout/sessions", "body_contains": marker, "responses": [{"status": 400, "body": {"error": {"type": "invalid_request_error", "message": "No such thing"}}}]})).await;
    let refused = post(
        "/billing/purchase",
        &account.token,
        &json!({"package_id": "starter"}),
    )
    .await;
    assert_eq!(refused.status(), 502);
    let error: Value = refused.json().await.expect("error");
    let failed = error["error"]["details"]["purchase_id"]
        .as_str()
        .expect("purchase id")
        .to_owned();
    assert_eq!(
        purchase_status(&account.token, &failed).await["status"],
        "failed"
    );
    assert_eq!(error["error"]["details"]["stripe_status"], 400);
    assert_eq!(account.credits().await, 15);
}

/// A starter purchase whose Checkout request is dropped twice: kept, held for review, and the
/// buyer told (502 naming it). Its id.
async fn held_for_review(buyer: &Account) -> String {
    let marker = buyer.id.to_string();
    sim::post("/dev/faults", &json!({"path_prefix": "/v1/checkout/sessions", "body_contains": marker, "responses": [{"drop": true}, {"drop": true}]})).await;
    let response = post(
        "/billing/purchase",
        &buyer.token,
        &json!({"package_id": "starter"}),
    )
    .await;
    assert_eq!(response.status(), 502);
    let error: Value = response.json().await.expect("error");
    assert_eq!(error["error"]["code"], "upstream_error");
    error["error"]["details"]["purchase_id"]
        .as_str()
        .expect("purchase id")
        .to_owned()
}

#[tokio::test]
async fn concurrent_purchases_usage_and_refunds_keep_the_ledger_exact() {
    let tenant = Tenant::new().await;
    let id = tenant.id.to_string();
    let mut bought = Vec::new();
    for _ in 0..6 {
        bought.push(start_purchase(&tenant.token, "starter").await);
    }
    let mut bodies = Vec::new();
    for purchase in &bought {
        bodies.push(stripe::event(
            "checkout.session.completed",
            stripe::session(
                &purchase.session_id,
                &purchase.purchase_id,
                &id,
                purchase.amount,
                "paid",
            ),
        ));
    }
    // Two of the six are refunded in full.
    for purchase in &bought[..2] {
        bodies.push(stripe::event(
            "charge.refunded",
            stripe::charge(
                &purchase.session_id,
                &purchase.purchase_id,
                purchase.amount,
                purchase.amount,
            ),
        ));
    }
    let calls: Vec<(String, i64)> = (1..=8)
        .map(|minutes| (support::conversation_id(), minutes * 60 - 7))
        .collect();
    let stripe_deliveries = bodies.iter().map(|body| stripe::deliver(body));
    let call_bodies: Vec<Value> = calls
        .iter()
        .map(|(conversation, seconds)| {
            transcription(&tenant.call_agent, conversation, *seconds, "+14155550123")
        })
        .collect();
    let call_deliveries = call_bodies.iter().map(deliver_elevenlabs);
    let (stripe_results, call_results) =
        tokio::join!(join_all(stripe_deliveries), join_all(call_deliveries));
    assert!(stripe_results
        .iter()
        .chain(call_results.iter())
        .all(|r| r.status() == 200));
    let purchased: i64 = bought.iter().map(|b| b.credits).sum();
    let refunded: i64 = bought[..2].iter().map(|b| b.credits).sum();
    let usage: i64 = (1..=8).sum();
    let expected = 15 + purchased - usage - refunded;
    eventually(40, "every event applied", || async {
        let entries = ledger(tenant.id).await;
        (entries.len() == 1 + 6 + 2 + 8).then_some(())
    })
    .await;
    let balance = tenant.credits().await;
    assert_eq!(balance, expected);
    assert_ledger_exact(&ledger(tenant.id).await, balance);
}

fn dispute(bought: &Bought, dispute_id: &str, amount: i64, status: &str) -> Value {
    json!({
        "id": dispute_id, "object": "dispute", "amount": amount, "currency": "usd",
        "charge": format!("ch_{}", &bought.session_id[3..]),
        "payment_intent": format!("pi_{}", &bought.session_id[3..]),
        "is_charge_refundable": false, "livemode": false, "metadata": {},
        "reason": "fraudulent", "status": status
    })
}

/// Delivers the event and waits until the processor recorded it.
async fn deliver_processed(body: &str) {
    assert_eq!(stripe::deliver(body).await.status(), 200);
    eventually(20, "the event to be processed", || async {
        processed_outcome(body).await
    })
    .await;
}

/// Stripe's event that `bought`, of `tenant`, is paid.
fn paid_event(tenant: &Account, bought: &Bought) -> String {
    stripe::event(
        "checkout.session.completed",
        stripe::session(
            &bought.session_id,
            &bought.purchase_id,
            &tenant.id.to_string(),
            bought.amount,
            "paid",
        ),
    )
}

async fn paid_purchase(tenant: &Account) -> Bought {
    let bought = start_purchase(&tenant.token, "starter").await;
    deliver_processed(&paid_event(tenant, &bought)).await;
    assert_eq!(tenant.credits().await, 15 + bought.credits);
    bought
}

async fn review_reason(admin: &Account, tenant: &Account) -> Value {
    json(get(&format!("/admin/users/{}", tenant.id), &admin.token).await).await["review_reason"]
        .clone()
}

#[tokio::test]
async fn a_chargeback_takes_the_credits_back_once_and_a_won_dispute_returns_them() {
    let tenant = Account::new().await;
    let admin = Account::admin().await;
    let bought = paid_purchase(&tenant).await;
    let id = format!("du_{}", uuid::Uuid::new_v4().simple());
    // Stripe sends both when the money is withdrawn, and may send each more than once.
    for kind in [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.created",
    ] {
        let event = stripe::event(kind, dispute(&bought, &id, bought.amount, "needs_response"));
        deliver_processed(&event).await;
    }
    assert_eq!(
        tenant.credits().await,
        15,
        "the disputed credits are taken back once"
    );
    let reason = review_reason(&admin, &tenant).await;
    assert!(
        reason.as_str().is_some_and(|r| r.contains(&id)),
        "the tenant is flagged for review: {reason}"
    );

    let won = stripe::event(
        "charge.dispute.closed",
        dispute(&bought, &id, bought.amount, "won"),
    );
    deliver_processed(&won).await;
    deliver_processed(&stripe::event(
        "charge.dispute.closed",
        dispute(&bought, &id, bought.amount, "won"),
    ))
    .await;
    let balance = tenant.credits().await;
    assert_eq!(
        balance,
        15 + bought.credits,
        "a won dispute gives them back, once"
    );
    assert_ledger_exact(&ledger(tenant.id).await, balance);
}

/// A purchase whose Checkout answer was lost twice is held for review without a session; an
/// administrator who found the payment at Stripe approves it. Stripe's payment event comes
/// after: it grants nothing more, and leaves the payment on the purchase, so that a chargeback
/// still finds it and takes the credits back.
#[tokio::test]
async fn a_purchase_approved_before_its_payment_event_is_still_found_by_a_dispute() {
    let tenant = Account::new().await;
    let admin = Account::admin().await;
    let held = held_for_review(&tenant).await;
    let approved = post(
        &format!("/admin/purchases/{held}/approve"),
        &admin.token,
        &json!({"reason": "paid, seen in Stripe's dashboard"}),
    )
    .await;
    assert_eq!(approved.status(), 200);
    let purchase = json(approved).await;
    let bought = Bought {
        purchase_id: held,
        session_id: format!("cs_{}", uuid::Uuid::new_v4().simple()),
        amount: purchase["amount"].as_i64().expect("amount"),
        credits: purchase["credits"].as_i64().expect("credits"),
    };
    assert_eq!(tenant.credits().await, 15 + bought.credits);

    deliver_processed(&paid_event(&tenant, &bought)).await;
    assert_eq!(
        tenant.credits().await,
        15 + bought.credits,
        "granted once, by the approval"
    );
    let id = format!("du_{}", uuid::Uuid::new_v4().simple());
    let withdrawn = stripe::event(
        "charge.dispute.funds_withdrawn",
        dispute(&bought, &id, bought.amount, "needs_response"),
    );
    deliver_processed(&withdrawn).await;
    let balance = tenant.credits().await;
    assert_eq!(balance, 15, "the disputed credits are taken back");
    assert_ledger_exact(&ledger(tenant.id).await, balance);
}

#[tokio::test]
async fn a_lost_dispute_reported_before_it_opened_takes_the_credits_once() {
    let tenant = Account::new().await;
    let bought = paid_purchase(&tenant).await;
    let id = format!("du_{}", uuid::Uuid::new_v4().simple());
    // Half the payment disputed; the closing event overtakes the opening one.
    let half = bought.amount / 2;
    deliver_processed(&stripe::event(
        "charge.dispute.closed",
        dispute(&bought, &id, half, "lost"),
    ))
    .await;
    deliver_processed(&stripe::event(
        "charge.dispute.created",
        dispute(&bought, &id, half, "needs_response"),
    ))
    .await;
    let taken = shared::billing::payments::refunded_credits(bought.credits, half, bought.amount);
    let balance = tenant.credits().await;
    assert_eq!(balance, 15 + bought.credits - taken);
    assert_ledger_exact(&ledger(tenant.id).await, balance);
}

/// Visa's Rapid Dispute Resolution refunds the buyer instead of a chargeback: Stripe reports a
/// dispute `prevented` and the refund. The refund takes the credits back, the dispute nothing.
#[tokio::test]
async fn a_prevented_dispute_and_its_refund_take_the_credits_back_once() {
    for opened_as in ["needs_response", "prevented"] {
        let tenant = Account::new().await;
        let bought = paid_purchase(&tenant).await;
        let id = format!("du_{}", uuid::Uuid::new_v4().simple());
        let created = stripe::event(
            "charge.dispute.created",
            dispute(&bought, &id, bought.amount, opened_as),
        );
        deliver_processed(&created).await;
        deliver_processed(&stripe::event(
            "charge.refunded",
            stripe::charge(
                &bought.session_id,
                &bought.purchase_id,
                bought.amount,
                bought.amount,
            ),
        ))
        .await;
        deliver_processed(&stripe::event(
            "charge.dispute.closed",
            dispute(&bought, &id, bought.amount, "prevented"),
        ))
        .await;
        let balance = tenant.credits().await;
        assert_eq!(
            balance, 15,
            "opened as {opened_as}: the bought credits taken once"
        );
        assert_ledger_exact(&ledger(tenant.id).await, balance);
    }
}

/// Stripe's events carry what buyers typed (a name, an address) and may carry a NUL, which
/// Postgres holds neither in text nor in jsonb. An underpaid session whose buyer's name holds
/// one is held for review with its event kept, as any other; an unknown purchase's is kept for
/// an admin.
#[tokio::test]
async fn a_nul_in_a_stripe_event_is_dropped_and_the_event_still_applied() {
    let account = Account::new().await;
    let bought = start_purchase(&account.token, "starter").await;
    let tenant = account.id.to_string();
    let mut underpaid = stripe::session(
        &bought.session_id,
        &bought.purchase_id,
        &tenant,
        bought.amount - 1,
        "paid",
    );
    underpaid["customer_details"] = json!({"name": "Ann\u{0} Lee", "email": "ann@example.com"});
    let underpaid = stripe::event("checkout.session.completed", underpaid);
    let stranger = uuid::Uuid::new_v4().to_string();
    let mut unknown = stripe::session("cs_test_not_ours", &stranger, &tenant, 1000, "paid");
    unknown["metadata"]["note\u{0}"] = json!("\u{0}");
    let unknown = stripe::event("checkout.session.completed", unknown);
    for event in [&underpaid, &unknown] {
        assert!(event.contains("\\u0000"), "sent as JSON sends it");
        assert_eq!(stripe::deliver(event).await.status(), 200);
    }
    let outcomes = both_outcomes(&underpaid, &unknown).await;
    assert_eq!(outcomes, ("review".to_owned(), "unmatched".to_owned()));
    let purchase = purchase_status(&account.token, &bought.purchase_id).await;
    assert_eq!(purchase["status"], "review");
    let kept: Vec<Value> = support::db()
        .await
        .query(
            "SELECT payload FROM unmatched_events WHERE source = 'stripe' \
             AND (payload::text LIKE $1 OR payload::text LIKE $2)",
            &[
                &format!("%{stranger}%"),
                &format!("%{}%", bought.session_id),
            ],
        )
        .await
        .expect("kept events")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(kept.len(), 2, "both events kept for an admin: {kept:?}");
    let names: Vec<&Value> = kept
        .iter()
        .map(|payload| &payload["data"]["object"]["customer_details"]["name"])
        .filter(|name| !name.is_null())
        .collect();
    assert_eq!(names, [&json!("Ann Lee")]);
    assert_eq!(account.credits().await, 15);
}
