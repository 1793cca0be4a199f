//! What ingest costs per webhook: the router the webhook-ingest Lambda serves, called in this
//! process against the stack's moto, with every AWS operation it makes recorded from the span
//! `shared::aws` opens around each.

use serde_json::json;
use tower::ServiceExt;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::SubscriberExt;

use crate::{
    aws_calls::AwsCalls,
    support::{
        app_state, call_row, conversation_id, eventually, phone, sign_now, transcription, Tenant,
    },
};

/// Posts `body` to the router as ElevenLabs would; the AWS operations ingest made for it.
async fn ingest(app: &axum::Router, body: Vec<u8>) -> Vec<String> {
    let calls = AwsCalls::default();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(calls.layer()));
    let request = axum::http::Request::post("/webhooks/elevenlabs/call-completed")
        .header("content-type", "application/json")
        .header("ElevenLabs-Signature", sign_now(&body))
        .body(axum::body::Body::from(body))
        .expect("a request");
    let response = app
        .clone()
        .oneshot(request)
        .with_subscriber(dispatch)
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    calls.take().into_iter().map(|(name, _)| name).collect()
}

#[tokio::test]
async fn a_webhook_costs_one_aws_call_and_a_body_too_big_for_sqs_adds_the_s3_put() {
    let tenant = Tenant::new().await;
    let state = app_state().await;
    // A warm instance has the signing secrets cached already.
    state.secrets().get().await.expect("the webhook secrets");
    let app = shared::http::app(state, &[shared::http::Group::Webhooks.served()]);

    let small = conversation_id();
    let event = transcription(&tenant.call_agent, &small, 61, &phone());
    let calls = ingest(&app, serde_json::to_vec(&event).expect("json")).await;
    assert_eq!(calls, ["SQS.SendMessage"], "only the queue send");

    let big = conversation_id();
    let mut event = transcription(&tenant.call_agent, &big, 61, &phone());
    event["data"]["analysis"]["transcript_summary"] =
        json!("x".repeat(shared::aws::queue::MAX_INLINE_BODY_BYTES));
    let calls = ingest(&app, serde_json::to_vec(&event).expect("json")).await;
    assert_eq!(
        calls,
        ["S3.PutObject", "SQS.SendMessage"],
        "the body parked in S3, then the queue send"
    );

    for conversation in [small, big] {
        eventually(30, "the call", || async { call_row(&conversation).await }).await;
    }
}
