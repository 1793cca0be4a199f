//! Rotating the ElevenLabs webhook secret in Secrets Manager (moto): the API picks the new
//! values up within SECRETS_TTL_SECONDS, and the previous secret works only during its grace
//! period. Other tests sign with the original secret at the same time, so every state written
//! here keeps the original valid, and the original JSON is put back even if a case panics.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    call_row, conversation_id, error_code, eventually, phone, post_webhook, processed_count,
    queue_drained, transcription, webhook_secret, Tenant,
};

/// The tests here rewrite the one webhook secret document: one at a time, so that neither
/// puts back a document missing the other's change.
static ROTATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The secret holding the webhook signing keys.
fn secret_id() -> String {
    std::env::var("WEBHOOK_SECRET_ID").expect("scripts/test sets WEBHOOK_SECRET_ID")
}

async fn read_secret() -> String {
    shared::aws::secrets::get_string(&shared::aws::Client::default(), &secret_id())
        .await
        .expect("read the webhook secret")
}

async fn write_secret(value: &str) {
    let input = json!({"SecretId": secret_id(), "SecretString": value});
    crate::support::aws(
        shared::aws::Service::SecretsManager,
        "PutSecretValue",
        input,
    )
    .await;
}

/// Puts the original secret back when dropped, panic or not. Drop cannot await, and the
/// test's runtime is the one unwinding, so the write runs on a runtime of its own.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let original = self.0.clone();
        let restored = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(write_secret(&original));
        })
        .join();
        if restored.is_err() && !std::thread::panicking() {
            panic!("could not restore the webhook secret");
        }
    }
}

/// Writes the webhook secret fields over the original JSON (every other key kept) and waits
/// until the API's cache must have expired: its next request reads what was written.
async fn rotate(original: &Value, current: &str, previous: &str, previous_until: i64) {
    let mut secret = original.clone();
    secret["elevenlabs_webhook_secret"] = json!(current);
    secret["elevenlabs_webhook_secret_previous"] = json!(previous);
    secret["elevenlabs_webhook_secret_previous_until"] = json!(previous_until);
    write_secret(&secret.to_string()).await;
    let ttl: u64 = std::env::var("SECRETS_TTL_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    tokio::time::sleep(Duration::from_secs(ttl) + Duration::from_millis(300)).await;
}

/// A fresh call of `tenant` signed with `secret`: its body and the API's answer.
async fn signed_call(tenant: &Tenant, secret: &str) -> (String, Vec<u8>, reqwest::Response) {
    let conversation = conversation_id();
    let body = serde_json::to_vec(&transcription(
        &tenant.call_agent,
        &conversation,
        42,
        &phone(),
    ))
    .expect("json");
    let response = post_webhook("call-completed", &body, Some(sign(secret, &body))).await;
    (conversation, body, response)
}

fn sign(secret: &str, body: &[u8]) -> String {
    shared::webhooks::signature::sign(
        shared::webhooks::signature::ELEVENLABS,
        secret,
        chrono::Utc::now().timestamp(),
        body,
    )
}

async fn assert_processed(conversation: &str) {
    eventually(20, "the call", || async { call_row(conversation).await }).await;
}

#[tokio::test]
async fn a_rotated_webhook_secret_is_picked_up_and_the_previous_one_expires() {
    let _one_at_a_time = ROTATING.lock().await;
    let original_text = read_secret().await;
    let _restore = Restore(original_text.clone());
    let original: Value = serde_json::from_str(&original_text).expect("the webhook secret is JSON");
    let old = webhook_secret();
    assert_eq!(original["elevenlabs_webhook_secret"], old.as_str());
    let new = format!("wsec_rotated_{}", uuid::Uuid::new_v4().simple());
    let other = format!("wsec_other_{}", uuid::Uuid::new_v4().simple());
    let tenant = Tenant::new().await;
    let now = || chrono::Utc::now().timestamp();

    // (a) Rotated: the new secret is current and the old one is still in its grace period.
    rotate(&original, &new, &old, now() + 600).await;
    for secret in [&new, &old] {
        let (conversation, _, response) = signed_call(&tenant, secret).await;
        assert_eq!(response.status(), 200, "signed with {secret}");
        assert_processed(&conversation).await;
    }

    // (b) The grace period of a previous secret is over: it is refused, nothing is kept.
    rotate(&original, &old, &other, now() - 1).await;
    let (conversation, body, response) = signed_call(&tenant, &other).await;
    assert_eq!(error_code(response, 401).await, "invalid_signature");
    queue_drained().await;
    assert!(
        call_row(&conversation).await.is_none(),
        "nothing was stored"
    );
    assert_eq!(
        processed_count(&conversation).await,
        0,
        "nothing was queued"
    );

    // ... and accepted again, the same event, once its grace period is extended.
    rotate(&original, &old, &other, now() + 600).await;
    let response = post_webhook("call-completed", &body, Some(sign(&other, &body))).await;
    assert_eq!(response.status(), 200);
    assert_processed(&conversation).await;
    assert_eq!(tenant.credits().await, 15 - 3, "three calls of 0:42");
}

/// ElevenLabs' conversation-initiation request for `agent`, with `secret` in the header.
async fn lookup(agent: &str, secret: &str) -> reqwest::StatusCode {
    crate::support::stack()
        .http
        .post(crate::support::url("/api/contact-lookup"))
        .header("x-contact-lookup-secret", secret)
        .json(&json!({"caller_id": phone(), "agent_id": agent, "called_number": "+15550100000"}))
        .send()
        .await
        .expect("the API answers")
        .status()
}

#[tokio::test]
async fn a_rotated_contact_lookup_secret_keeps_the_previous_one_until_elevenlabs_has_the_new_one() {
    let _one_at_a_time = ROTATING.lock().await;
    let _restore = Restore(read_secret().await);
    let old =
        std::env::var("CONTACT_LOOKUP_SECRET").expect("scripts/test sets CONTACT_LOOKUP_SECRET");
    let new = format!("lookup_rotated_{}", uuid::Uuid::new_v4().simple());
    let admin = crate::support::Account::admin().await;
    let tenant = Tenant::new().await;
    let response = crate::support::send(
        reqwest::Method::PUT,
        "/admin/config/secrets/contact_lookup_secret",
        &admin.token,
        Some(&json!({"value": new, "grace_seconds": 600})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let rotated = crate::support::json(response).await;
    assert!(rotated["previous_valid_until"].is_string(), "{rotated}");
    let ttl: u64 = std::env::var("SECRETS_TTL_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    tokio::time::sleep(Duration::from_secs(ttl) + Duration::from_millis(300)).await;
    for (secret, status) in [
        (new.as_str(), 200),
        (old.as_str(), 200),
        ("lookup_never_set_1234", 401),
    ] {
        assert_eq!(lookup(&tenant.call_agent, secret).await, status, "{secret}");
    }
}

#[tokio::test]
async fn a_signature_with_a_just_rotated_secret_is_checked_against_the_secret_read_again() {
    let _one_at_a_time = ROTATING.lock().await;
    let original_text = read_secret().await;
    let _restore = Restore(original_text.clone());
    let original: Value = serde_json::from_str(&original_text).expect("the webhook secret is JSON");
    let old = webhook_secret();
    // An ingest function that keeps its secrets ten minutes, as a warm one may for a minute.
    let config = shared::Config::from_lookup(|name| match name {
        "SECRETS_TTL_SECONDS" => Some("600".into()),
        other => std::env::var(other).ok(),
    })
    .expect("config");
    let state = shared::AppState::new(config).await.expect("state");
    let tenant = Tenant::new().await;
    let receive = |secret: String| {
        let state = &state;
        let agent = tenant.call_agent.clone();
        async move {
            let conversation = conversation_id();
            let body = serde_json::to_vec(&transcription(&agent, &conversation, 42, &phone()))
                .expect("json");
            shared::webhooks::ingest::receive(
                state,
                shared::webhooks::ingest::Sender::Elevenlabs,
                "call-completed",
                Some(&sign(&secret, &body)),
                "192.0.2.7",
                &body,
            )
            .await
            .map(|()| conversation)
        }
    };
    receive(old.clone()).await.expect("the cached secret");
    let new = format!("wsec_rotated_{}", uuid::Uuid::new_v4().simple());
    let mut secret = original.clone();
    secret["elevenlabs_webhook_secret"] = json!(new);
    secret["elevenlabs_webhook_secret_previous"] = json!(old);
    secret["elevenlabs_webhook_secret_previous_until"] =
        json!(chrono::Utc::now().timestamp() + 600);
    write_secret(&secret.to_string()).await;
    // Read again only once the cached copy is a few seconds old.
    tokio::time::sleep(Duration::from_millis(5_300)).await;
    let conversation = receive(new.clone()).await.expect("the secret read again");
    assert_processed(&conversation).await;
    let refused = receive(format!("wsec_wrong_{}", uuid::Uuid::new_v4().simple())).await;
    assert_eq!(refused.expect_err("a wrong secret").status, 401);
}
