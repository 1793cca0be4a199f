use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use axum::{
    body::Bytes, extract::State, http::HeaderMap, response::IntoResponse, routing::post, Router,
};
use serde_json::{json, Value};

use super::*;

const KEY: &str = "sk_test_unit_key_5678";
const OLD_SECRET: &str = "whsec_unit_old";
const NEW_SECRET: &str = "whsec_unit_new";
/// What async-stripe sends for our purchase (brackets and braces raw, values percent-encoded).
const SAMPLE: &str = "mode=payment&client_reference_id=purchase-1\
    &line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1000\
    &line_items[0][price_data][product_data][name]=100%20credits&line_items[0][quantity]=1\
    &metadata[purchase_id]=purchase-1&payment_intent_data[metadata][purchase_id]=purchase-1\
    &payment_intent_data[metadata][tenant_id]=t1\
    &success_url=https://app.example/ok?session_id%3D{CHECKOUT_SESSION_ID}\
    &cancel_url=https://app.example/cancel&customer_email=buyer%40example.com";

/// Every field of the `checkout.session` fixture in Stripe's OpenAPI (async-stripe's copy).
const FIXTURE_FIELDS: &[&str] = &[
    "adaptive_pricing",
    "after_expiration",
    "allow_promotion_codes",
    "amount_subtotal",
    "amount_total",
    "automatic_tax",
    "billing_address_collection",
    "cancel_url",
    "client_reference_id",
    "client_secret",
    "collected_information",
    "consent",
    "consent_collection",
    "created",
    "currency",
    "currency_conversion",
    "custom_fields",
    "custom_text",
    "customer",
    "customer_account",
    "customer_creation",
    "customer_details",
    "customer_email",
    "discounts",
    "expires_at",
    "id",
    "invoice",
    "invoice_creation",
    "livemode",
    "locale",
    "metadata",
    "mode",
    "object",
    "origin_context",
    "payment_intent",
    "payment_link",
    "payment_method_collection",
    "payment_method_configuration_details",
    "payment_method_options",
    "payment_method_types",
    "payment_status",
    "permissions",
    "phone_number_collection",
    "recovered_from",
    "saved_payment_method_options",
    "setup_intent",
    "shipping_address_collection",
    "shipping_cost",
    "shipping_options",
    "status",
    "submit_type",
    "subscription",
    "success_url",
    "total_details",
    "ui_mode",
    "url",
    "wallet_options",
];

/// One webhook delivery as our API would receive it.
#[derive(Clone)]
struct Hook {
    headers: HeaderMap,
    body: String,
}

impl Hook {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn event(&self) -> Value {
        serde_json::from_str(&self.body).expect("event json")
    }

    /// `t` and every `v1` of the signature header.
    fn signature(&self) -> (i64, Vec<String>) {
        let mut t = None;
        let mut v1 = Vec::new();
        for item in self.header("stripe-signature").split(',') {
            match item.split_once('=') {
                Some(("t", value)) => t = value.parse().ok(),
                Some(("v1", value)) => v1.push(value.to_owned()),
                _ => {}
            }
        }
        (t.expect("t="), v1)
    }
}

type Received = Arc<Mutex<Vec<Hook>>>;

async fn record(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let body = String::from_utf8(body.to_vec()).expect("utf-8");
    received.lock().expect("lock").push(Hook { headers, body });
    "ok"
}

/// A stand-in for our API's webhook endpoint: its URL and what it received.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/billing/webhook/stripe",
        listener.local_addr().expect("addr")
    );
    let app = Router::new()
        .route("/billing/webhook/stripe", post(record))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn hooks(received: &Received) -> Vec<Hook> {
    received.lock().expect("lock").clone()
}

/// Starts the simulator on an ephemeral port, signing with both secrets.
async fn start(webhook_url: &str) -> (String, Arc<StripeSim>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let sim = Arc::new(
        StripeSim::new(Config {
            secret_key: KEY.into(),
            webhook_secrets: vec![OLD_SECRET.into(), NEW_SECRET.into()],
            webhook_url: webhook_url.into(),
            public_url: base.clone(),
        })
        .expect("http client"),
    );
    tokio::spawn(crate::faults::serve(listener, router(sim.clone())));
    (base, sim)
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn send(request: reqwest::RequestBuilder) -> (u16, HeaderMap, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// `POST /v1/checkout/sessions` with the given form body, as async-stripe sends it.
fn create(http: &reqwest::Client, base: &str, form: &str) -> reqwest::RequestBuilder {
    http.post(format!("{base}/v1/checkout/sessions"))
        .bearer_auth(KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("stripe-version", API_VERSION)
        .body(form.to_owned())
}

async fn new_session(http: &reqwest::Client, base: &str) -> String {
    let (status, _, session) = send(create(http, base, SAMPLE)).await;
    assert_eq!(status, 200, "{session}");
    session["id"].as_str().expect("id").to_owned()
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, message.as_bytes()).as_ref())
}

#[test]
fn signature_header_has_one_v1_per_secret_and_a_v0() {
    let secrets = vec!["whsec_a".to_owned(), "whsec_b".to_owned()];
    let header = signature_header(&secrets, 1_700_000_000, "{}");
    let parts: Vec<&str> = header.split(',').collect();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0], "t=1700000000");
    assert_eq!(
        parts[1],
        format!("v1={}", hmac_hex("whsec_a", "1700000000.{}"))
    );
    assert_eq!(
        parts[2],
        format!("v1={}", hmac_hex("whsec_b", "1700000000.{}"))
    );
    assert!(parts[3].starts_with("v0=") && parts[3].len() == 67);
    assert_eq!(redact_key("sk_test_abcdefgh1234"), "sk_test_****1234");
    assert_eq!(redact_key("short"), "****");
}

#[tokio::test]
async fn creates_a_complete_session_from_the_clients_form() {
    let (base, sim) = start("http://127.0.0.1:9/unused").await;
    let http = client();
    let (status, headers, session) = send(create(&http, &base, SAMPLE)).await;
    assert_eq!(status, 200, "{session}");
    assert!(headers.contains_key("request-id"));
    let id = session["id"].as_str().expect("id");
    assert!(id.starts_with("cs_test_") && id.len() > 60);
    for field in FIXTURE_FIELDS {
        assert!(session.get(*field).is_some(), "missing {field}");
    }
    assert_eq!(session["object"], "checkout.session");
    assert_eq!(session["status"], "open");
    assert_eq!(session["payment_status"], "unpaid");
    assert_eq!(session["mode"], "payment");
    assert_eq!(session["amount_subtotal"], 1000);
    assert_eq!(session["amount_total"], 1000);
    assert_eq!(session["currency"], "usd");
    assert_eq!(session["client_reference_id"], "purchase-1");
    assert_eq!(session["customer_email"], "buyer@example.com");
    assert_eq!(session["metadata"], json!({"purchase_id": "purchase-1"}));
    assert_eq!(session["payment_intent"], Value::Null);
    assert_eq!(
        session["success_url"],
        "https://app.example/ok?session_id={CHECKOUT_SESSION_ID}"
    );
    assert_eq!(session["cancel_url"], "https://app.example/cancel");
    assert_eq!(session["url"], format!("{base}/checkout/{id}"));
    assert_eq!(session["livemode"], false);
    let created = session["created"].as_i64().expect("created");
    assert_eq!(session["expires_at"], created + 24 * 3600);

    let (status, _, fetched) = send(
        http.get(format!("{base}/v1/checkout/sessions/{id}"))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!((status, &fetched), (200, &session));
    let (status, _, missing) = send(
        http.get(format!("{base}/v1/checkout/sessions/cs_test_nope"))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "resource_missing");

    let log = sim.requests("/v1/checkout/sessions");
    assert_eq!(log[0].body, SAMPLE);
    let headers = log[0].headers.as_ref().expect("Stripe records headers");
    assert_eq!(headers["authorization"], "Bearer ****5678");
    assert_eq!(headers["stripe-version"], API_VERSION);
    let (_, _, listed) = send(http.get(format!("{base}/dev/requests"))).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3));

    let page = http
        .get(format!("{base}/checkout/{id}"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("100 credits") && page.contains("10.00 USD"));
    assert!(page.contains(&format!("action=\"/checkout/{id}/pay\"")));
    assert!(
        page.contains("value=\"delayed_failure\"") && page.contains("https://app.example/cancel")
    );
}

#[tokio::test]
async fn rejects_bad_keys_and_invalid_parameters() {
    let (base, sim) = start("http://127.0.0.1:9/unused").await;
    let http = client();
    let url = format!("{base}/v1/checkout/sessions");
    let (status, _, body) = send(
        http.post(&url)
            .bearer_auth("sk_test_wrong_key_0000")
            .body(SAMPLE),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("Invalid API Key provided: sk_test_****0000"));
    assert!(!message.contains("wrong_key"));
    let (status, _, _) = send(http.post(&url).body(SAMPLE)).await;
    assert_eq!(status, 401);

    let cases = [
        ("mode=payment&success_url=https://a/ok", "parameter_missing", "line_items"),
        (
            "mode=payment&success_url=https://a/ok&line_items[0][quantity]=1",
            "parameter_missing",
            "line_items[0]",
        ),
        (
            "mode=payment&success_url=https://a/ok&line_items[0][price_data][currency]=usd\
             &line_items[0][price_data][unit_amount]=ten&line_items[0][price_data][product_data][name]=x\
             &line_items[0][quantity]=1",
            "parameter_invalid_integer",
            "line_items[0][price_data][unit_amount]",
        ),
        (
            "mode=payment&success_url=https://a/ok&line_items[0][price]=price_1&line_items[0][quantity]=0",
            "parameter_invalid_integer",
            "line_items[0][quantity]",
        ),
        (
            "mode=payment&line_items[0][price]=price_1&line_items[0][quantity]=1",
            "parameter_missing",
            "success_url",
        ),
        ("success_url=https://a/ok", "parameter_missing", "mode"),
    ];
    for (form, code, param) in cases {
        let (status, _, body) = send(create(&http, &base, form)).await;
        assert_eq!(status, 400, "{form}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], code, "{form}");
        assert_eq!(body["error"]["param"], param, "{form}");
    }
    let (status, _, body) = send(create(
        &http,
        &base,
        &SAMPLE.replace("mode=payment", "mode=setup"),
    ))
    .await;
    assert_eq!((status, &body["error"]["param"]), (400, &json!("mode")));
    assert_eq!(sim.session_count(), 0);

    // A `price` id stands for a simulated 10.00 USD Price.
    let (status, _, body) = send(create(
        &http,
        &base,
        "mode=payment&success_url=https://a/ok&line_items[0][price]=price_1&line_items[0][quantity]=3",
    ))
    .await;
    assert_eq!((status, &body["amount_total"]), (200, &json!(3000)));
}

#[tokio::test]
async fn idempotency_keys_replay_or_conflict() {
    let (base, sim) = start("http://127.0.0.1:9/unused").await;
    let http = client();
    let (status, headers, first) =
        send(create(&http, &base, SAMPLE).header("idempotency-key", "checkout:purchase-1")).await;
    assert_eq!(status, 200);
    assert!(!headers.contains_key("idempotent-replayed"));
    let (status, headers, again) =
        send(create(&http, &base, SAMPLE).header("idempotency-key", "checkout:purchase-1")).await;
    assert_eq!((status, &again), (200, &first));
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(sim.session_count(), 1);

    let other = SAMPLE.replace("unit_amount]=1000", "unit_amount]=2000");
    let (status, _, body) =
        send(create(&http, &base, &other).header("idempotency-key", "checkout:purchase-1")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "idempotency_error");
    assert_eq!(sim.session_count(), 1);

    // Validation errors are not stored: the key stays free for a corrected request.
    let (status, _, _) =
        send(create(&http, &base, "mode=payment").header("idempotency-key", "checkout:purchase-2"))
            .await;
    assert_eq!(status, 400);
    let (status, _, _) =
        send(create(&http, &base, SAMPLE).header("idempotency-key", "checkout:purchase-2")).await;
    assert_eq!(status, 200);
    assert_eq!(sim.session_count(), 2);
}

/// Checks one delivery: headers, and a `v1` that verifies for each of `secrets`.
fn assert_signed(hook: &Hook, secrets: &[&str]) {
    assert_eq!(
        hook.header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(hook.header("user-agent"), USER_AGENT);
    assert!(hook.header("stripe-signature").contains(",v0="));
    let (t, v1) = hook.signature();
    assert!((now() - t).abs() < 60);
    assert_eq!(v1.len(), secrets.len());
    for secret in secrets {
        let expected = hmac_hex(secret, &format!("{t}.{}", hook.body));
        assert!(v1.contains(&expected), "no v1 for {secret}");
    }
}

#[tokio::test]
async fn paying_delivers_signed_events_and_redirects() {
    let (webhook_url, received) = receiver().await;
    let (base, sim) = start(&webhook_url).await;
    let http = client();
    let id = new_session(&http, &base).await;

    let response = http
        .post(format!("{base}/checkout/{id}/pay"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("outcome=paid")
        .send()
        .await
        .expect("pay");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("https://app.example/ok?session_id={id}").as_str()
    );

    let delivered = hooks(&received);
    assert_eq!(delivered.len(), 1);
    let hook = &delivered[0];
    assert_signed(hook, &[OLD_SECRET, NEW_SECRET]);
    assert!(!hook.body.contains('\n') && !hook.body.contains(": "));
    let event = hook.event();
    assert!(event["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("evt_")));
    assert_eq!(event["object"], "event");
    assert_eq!(event["type"], "checkout.session.completed");
    assert_eq!(event["api_version"], API_VERSION);
    assert_eq!(event["livemode"], false);
    assert_eq!(event["pending_webhooks"], 1);
    assert_eq!(
        event["request"],
        json!({"id": null, "idempotency_key": null})
    );
    let session = &event["data"]["object"];
    assert_eq!(session["id"], id.as_str());
    assert_eq!(session["status"], "complete");
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(session["client_reference_id"], "purchase-1");
    assert_eq!(session["customer_details"]["email"], "buyer@example.com");
    let payment_intent = session["payment_intent"].as_str().expect("pi");
    assert!(payment_intent.starts_with("pi_"));

    let (_, _, fetched) = send(
        http.get(format!("{base}/v1/checkout/sessions/{id}"))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(&fetched, session);

    let (_, _, events) = send(http.get(format!("{base}/dev/events"))).await;
    assert_eq!(events[0]["id"], event["id"]);
    assert_eq!(events[0]["type"], "checkout.session.completed");
    assert_eq!(events[0]["payload"], hook.body.as_str());
    assert_eq!(events[0]["delivery_status"], 200);

    // Paying again: 409, and no more events.
    let (status, _, _) = send(
        http.post(format!("{base}/checkout/{id}/pay"))
            .body("outcome=paid"),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _, _) = send(http.post(format!("{base}/dev/checkout/{id}/pay"))).await;
    assert_eq!(status, 409);
    assert_eq!(hooks(&received).len(), 1);
    assert_eq!(sim.events().len(), 1);
}

#[tokio::test]
async fn delayed_outcomes_send_two_events() {
    let (webhook_url, received) = receiver().await;
    let (base, _sim) = start(&webhook_url).await;
    let http = client();
    let cases = [
        (
            "delayed_success",
            "checkout.session.async_payment_succeeded",
            "paid",
        ),
        (
            "delayed_failure",
            "checkout.session.async_payment_failed",
            "unpaid",
        ),
    ];
    for (outcome, second, final_status) in cases {
        received.lock().expect("lock").clear();
        let id = new_session(&http, &base).await;
        let (status, _, answer) = send(
            http.post(format!("{base}/dev/checkout/{id}/pay"))
                .json(&json!({"outcome": outcome})),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["session"]["payment_status"], final_status);
        let types: Vec<&Value> = answer["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| &e["type"])
            .collect();
        assert_eq!(
            types,
            [&json!("checkout.session.completed"), &json!(second)]
        );
        assert!(answer["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["delivery_status"] == 200));

        let delivered = hooks(&received);
        assert_eq!(delivered.len(), 2);
        let (first, then) = (delivered[0].event(), delivered[1].event());
        assert_eq!(first["type"], "checkout.session.completed");
        assert_eq!(first["data"]["object"]["status"], "complete");
        assert_eq!(first["data"]["object"]["payment_status"], "unpaid");
        assert_eq!(then["type"], second);
        assert_eq!(then["data"]["object"]["payment_status"], final_status);
        assert_eq!(
            first["data"]["object"]["payment_intent"],
            then["data"]["object"]["payment_intent"]
        );
    }
    // A failed delayed payment has nothing to refund.
    let (_, _, events) = send(http.get(format!("{base}/dev/events"))).await;
    let failed: Value =
        serde_json::from_str(events[3]["payload"].as_str().expect("payload")).expect("json");
    let id = failed["data"]["object"]["id"].as_str().expect("id");
    let (status, _, _) = send(http.post(format!("{base}/dev/checkout/{id}/refund"))).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn partial_then_full_refund() {
    let (webhook_url, received) = receiver().await;
    let (base, _sim) = start(&webhook_url).await;
    let http = client();
    let id = new_session(&http, &base).await;
    let (status, _, _) = send(http.post(format!("{base}/dev/checkout/{id}/refund"))).await;
    assert_eq!(status, 409, "unpaid");
    let (_, _, paid) = send(
        http.post(format!("{base}/dev/checkout/{id}/pay"))
            .json(&json!({"outcome": "paid"})),
    )
    .await;
    let payment_intent = paid["session"]["payment_intent"].clone();

    let refund = |body: Value| {
        http.post(format!("{base}/dev/checkout/{id}/refund"))
            .json(&body)
    };
    let (status, _, answer) = send(refund(json!({"amount": 300}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["charge"]["amount_refunded"], 300);
    assert_eq!(answer["charge"]["refunded"], false);
    let (status, _, _) = send(refund(json!({"amount": 701}))).await;
    assert_eq!(status, 400, "more than is left");
    let (status, _, answer) = send(http.post(format!("{base}/dev/checkout/{id}/refund"))).await;
    assert_eq!(status, 200);
    assert_eq!(answer["charge"]["amount_refunded"], 1000);
    assert_eq!(answer["charge"]["refunded"], true);
    let (status, _, _) = send(refund(json!({"amount": 1}))).await;
    assert_eq!(status, 400, "nothing left");

    let delivered = hooks(&received);
    assert_eq!(delivered.len(), 3);
    for (hook, refunded, flag) in [(&delivered[1], 300, false), (&delivered[2], 1000, true)] {
        assert_signed(hook, &[OLD_SECRET, NEW_SECRET]);
        let event = hook.event();
        assert_eq!(event["type"], "charge.refunded");
        let charge = &event["data"]["object"];
        assert_eq!(charge["object"], "charge");
        assert!(charge["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ch_")));
        assert_eq!(charge["amount"], 1000);
        assert_eq!(charge["amount_captured"], 1000);
        assert_eq!(charge["amount_refunded"], refunded);
        assert_eq!(charge["refunded"], flag);
        assert_eq!(charge["currency"], "usd");
        assert_eq!(charge["payment_intent"], payment_intent);
        assert_eq!(
            charge["metadata"],
            json!({"purchase_id": "purchase-1", "tenant_id": "t1"})
        );
        assert_eq!(charge["status"], "succeeded");
        assert_eq!(charge["paid"], true);
        assert_eq!(charge["livemode"], false);
        assert!(charge["created"].is_i64());
    }
    assert_eq!(
        delivered[1].event()["data"]["object"]["id"],
        delivered[2].event()["data"]["object"]["id"]
    );
}

#[tokio::test]
async fn expiring_a_session() {
    let (webhook_url, received) = receiver().await;
    let (base, _sim) = start(&webhook_url).await;
    let http = client();
    let id = new_session(&http, &base).await;
    let (status, _, answer) = send(http.post(format!("{base}/dev/checkout/{id}/expire"))).await;
    assert_eq!(status, 200);
    assert_eq!(answer["session"]["status"], "expired");
    assert_eq!(answer["events"][0]["type"], "checkout.session.expired");
    assert_eq!(
        hooks(&received)[0].event()["data"]["object"]["status"],
        "expired"
    );
    let (status, _, _) = send(
        http.post(format!("{base}/checkout/{id}/pay"))
            .body("outcome=paid"),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _, body) = send(
        http.post(format!("{base}/v1/checkout/sessions/{id}/expire"))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["type"]),
        (400, &json!("invalid_request_error"))
    );

    let id = new_session(&http, &base).await;
    let (status, _, session) = send(
        http.post(format!("{base}/v1/checkout/sessions/{id}/expire"))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!((status, &session["status"]), (200, &json!("expired")));
}

#[tokio::test]
async fn faults_match_form_bodies_and_can_drop_the_connection() {
    let (base, sim) = start("http://127.0.0.1:9/unused").await;
    let http = client();
    let (status, _, body) = send(http.post(format!("{base}/dev/faults")).json(&json!({
        "path_prefix": "/v1/checkout/sessions",
        "method": "POST",
        "body_contains": "100 credits",
        "responses": [{"drop": true}, {"status": 500}],
    })))
    .await;
    assert_eq!((status, &body["queued"]), (200, &json!(2)));

    // Another request's body does not match.
    let (status, _, _) = send(create(
        &http,
        &base,
        &SAMPLE.replace("100%20credits", "50%20credits"),
    ))
    .await;
    assert_eq!(status, 200);

    let error = create(&http, &base, SAMPLE)
        .send()
        .await
        .expect_err("dropped");
    assert!(!error.is_timeout(), "{error}");
    let (status, _, body) = send(create(&http, &base, SAMPLE)).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "api_error");
    let (status, _, _) = send(create(&http, &base, SAMPLE)).await;
    assert_eq!(status, 200);
    assert_eq!(sim.session_count(), 2);
    assert_eq!(sim.requests("/v1/").len(), 4);

    let (_, _, cleared) = send(http.delete(format!("{base}/dev/faults"))).await;
    assert_eq!(cleared["cleared"], 0);
    let (_, _, cleared) = send(http.delete(format!("{base}/dev/requests"))).await;
    assert_eq!(cleared["cleared"], 4);
}

#[tokio::test]
async fn resend_redelivers_the_same_body_freshly_signed() {
    let (webhook_url, received) = receiver().await;
    let (base, _sim) = start(&webhook_url).await;
    let http = client();
    let id = new_session(&http, &base).await;
    let (_, _, paid) = send(http.post(format!("{base}/dev/checkout/{id}/pay"))).await;
    let event_id = paid["events"][0]["id"]
        .as_str()
        .expect("event id")
        .to_owned();

    let (status, _, _) = send(
        http.put(format!("{base}/dev/webhook-secrets"))
            .json(&json!({"secrets": ["whsec_rotated"]})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, answer) = send(http.post(format!("{base}/dev/events/{event_id}/resend"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"id": event_id, "type": "checkout.session.completed", "delivery_status": 200})
    );

    let delivered = hooks(&received);
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[1].body, delivered[0].body);
    assert_ne!(
        delivered[1].header("stripe-signature"),
        delivered[0].header("stripe-signature")
    );
    assert_signed(&delivered[1], &["whsec_rotated"]);

    let (status, _, _) = send(http.post(format!("{base}/dev/events/evt_nope/resend"))).await;
    assert_eq!(status, 404);
    let (status, _, _) = send(
        http.put(format!("{base}/dev/webhook-secrets"))
            .json(&json!({"secrets": []})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn unreachable_endpoint_is_recorded_as_null() {
    let (base, sim) = start("http://127.0.0.1:9/closed").await;
    let http = client();
    let id = new_session(&http, &base).await;
    let (status, _, answer) = send(http.post(format!("{base}/dev/checkout/{id}/pay"))).await;
    assert_eq!(status, 200);
    assert_eq!(answer["events"][0]["delivery_status"], Value::Null);
    assert_eq!(sim.events()[0].delivery_status, None);
}
