//! The client against a scripted HTTP fake: each request takes the next scripted answer.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
    Router,
};

use super::*;

#[derive(Clone)]
struct Scripted {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static str,
    delay: Duration,
}

fn answer(status: u16, body: &'static str) -> Scripted {
    Scripted {
        status,
        headers: vec![("content-type", "application/json")],
        body,
        delay: Duration::ZERO,
    }
}

#[derive(Default)]
struct Fake {
    script: Mutex<VecDeque<Scripted>>,
    seen: Mutex<Vec<(String, HeaderMap, Instant)>>,
}

impl Fake {
    fn requests(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }
}

async fn serve_next(State(fake): State<Arc<Fake>>, request: Request) -> Response {
    fake.seen.lock().expect("lock").push((
        format!("{} {}", request.method(), request.uri()),
        request.headers().clone(),
        Instant::now(),
    ));
    let next = fake.script.lock().expect("lock").pop_front();
    let next = next.unwrap_or_else(|| answer(200, "{}"));
    tokio::time::sleep(next.delay).await;
    let mut response = (
        StatusCode::from_u16(next.status).expect("status"),
        next.body,
    )
        .into_response();
    for (name, value) in next.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

async fn client_with(script: Vec<Scripted>) -> (ElevenLabs, Arc<Fake>) {
    crate::telemetry::install_crypto_provider();
    let fake = Arc::new(Fake::default());
    fake.script.lock().expect("lock").extend(script);
    let app = Router::new().fallback(serve_next).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = ElevenLabs::new(
        reqwest::Client::new(),
        format!("http://{addr}").parse().expect("url"),
        "xi-test-key".into(),
        RetryPolicy {
            timeout: Duration::from_millis(300),
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        },
    );
    (client, fake)
}

const AGENT: &str = r#"{"agent_id":"agent_1","name":"A","conversation_config":{}}"#;

#[tokio::test]
async fn sends_the_key_and_reads_the_answer() {
    let (client, fake) = client_with(vec![answer(200, AGENT)]).await;
    let agent = client.get_agent("agent_1").await.expect("agent");
    assert_eq!(agent["name"], "A");
    let seen = fake.seen.lock().expect("lock");
    assert_eq!(seen[0].0, "GET /v1/convai/agents/agent_1");
    assert_eq!(seen[0].1["xi-api-key"], "xi-test-key");
}

#[tokio::test]
async fn ids_cannot_escape_their_path_segment() {
    let (client, fake) = client_with(vec![answer(200, AGENT)]).await;
    client
        .get_agent("../phone-numbers?x=1")
        .await
        .expect("agent");
    let seen = fake.seen.lock().expect("lock");
    assert_eq!(seen[0].0, "GET /v1/convai/agents/..%2Fphone-numbers%3Fx=1");
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_it_asks_for() {
    let mut limited = answer(
        429,
        r#"{"detail":{"code":"rate_limit_exceeded","message":"slow down"}}"#,
    );
    limited.headers.push(("retry-after-ms", "150"));
    let (client, fake) = client_with(vec![limited, answer(200, AGENT)]).await;
    client.get_agent("agent_1").await.expect("retried");
    let seen = fake.seen.lock().expect("lock");
    assert_eq!(seen.len(), 2);
    assert!(seen[1].2 - seen[0].2 >= Duration::from_millis(150));
}

#[tokio::test]
async fn a_wait_longer_than_the_policy_allows_is_not_retried_early() {
    let mut limited = answer(429, r#"{"detail":{"status":"system_busy"}}"#);
    limited.headers.push(("retry-after", "120"));
    let (client, fake) = client_with(vec![limited, answer(200, AGENT)]).await;
    let err = client.get_agent("agent_1").await.expect_err("gave up");
    assert_eq!(fake.requests(), 1);
    assert!(
        matches!(err, ElevenLabsError::Api { ref code, .. } if code.as_deref() == Some("system_busy"))
    );
}

#[tokio::test]
async fn four_server_errors_become_a_502_with_elevenlabs_message() {
    let failing = answer(
        500,
        r#"{"detail":{"type":"server_error","code":"internal","message":"boom inside"}}"#,
    );
    let (client, fake) = client_with(vec![failing; 4]).await;
    let err = client.get_agent("agent_1").await.expect_err("gave up");
    assert_eq!(fake.requests(), 4, "one try and three retries");
    let err = AppError::from(err);
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    assert_eq!(err.code, "upstream_error");
    let details = err.details.expect("details");
    assert_eq!(details["message"], "boom inside");
    assert_eq!(details["status"], 500);
}

#[tokio::test]
async fn three_server_errors_then_success_succeeds() {
    let failing = answer(503, "upstream connect error");
    let mut script = vec![failing; 3];
    script.push(answer(200, AGENT));
    let (client, fake) = client_with(script).await;
    client.get_agent("agent_1").await.expect("fourth try");
    assert_eq!(fake.requests(), 4);
}

#[tokio::test]
async fn timeouts_are_retried_then_reported() {
    let slow = Scripted {
        delay: Duration::from_millis(800),
        ..answer(200, AGENT)
    };
    let (client, fake) = client_with(vec![slow; 4]).await;
    let err = client.get_agent("agent_1").await.expect_err("timed out");
    assert!(matches!(err, ElevenLabsError::Timeout(_)), "{err:?}");
    assert_eq!(fake.requests(), 4);
    assert_eq!(AppError::from(err).status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_call_that_may_have_been_placed_is_never_placed_twice() {
    let slow = Scripted {
        delay: Duration::from_millis(800),
        ..answer(200, r#"{"success":true}"#)
    };
    let (client, fake) = client_with(vec![slow, answer(500, "{}"), answer(200, "{}")]).await;
    let call = OutboundCall {
        agent_id: "agent_1",
        agent_phone_number_id: "phnum_1",
        to_number: "+14155552671",
        conversation_initiation_client_data: ClientData {
            dynamic_variables: Map::new(),
        },
    };
    client.outbound_call(&call).await.expect_err("timed out");
    assert_eq!(fake.requests(), 1);
    client.outbound_call(&call).await.expect_err("500");
    assert_eq!(fake.requests(), 2, "a 500 after sending is not retried");
}

#[tokio::test]
async fn a_refused_call_is_retried() {
    let (client, fake) = client_with(vec![
        answer(429, r#"{"detail":{"code":"concurrent_limit_exceeded"}}"#),
        answer(
            200,
            r#"{"success":true,"conversation_id":"conv_1","callSid":"CA1"}"#,
        ),
    ])
    .await;
    let call = OutboundCall {
        agent_id: "agent_1",
        agent_phone_number_id: "phnum_1",
        to_number: "+14155552671",
        conversation_initiation_client_data: ClientData {
            dynamic_variables: Map::new(),
        },
    };
    let started = client.outbound_call(&call).await.expect("placed");
    assert_eq!(started.conversation_id.as_deref(), Some("conv_1"));
    assert_eq!(started.call_sid.as_deref(), Some("CA1"));
    assert_eq!(fake.requests(), 2);
}

#[tokio::test]
async fn a_malformed_answer_is_an_upstream_error_not_retried() {
    let (client, fake) = client_with(vec![answer(200, "{\"agents\": [tru")]).await;
    let err = client.list_agents(None).await.expect_err("malformed");
    assert!(matches!(err, ElevenLabsError::Malformed(_)), "{err:?}");
    assert_eq!(fake.requests(), 1);
    let err = AppError::from(err);
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        err.details.expect("details")["reason"],
        "malformed_response"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_and_keep_their_message() {
    let (client, fake) = client_with(vec![
        answer(
            422,
            r#"{"detail":[{"loc":["body","conversation_config","tts","voice_id"],"msg":"unknown voice","type":"value_error"}]}"#,
        ),
        answer(401, r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#),
    ])
    .await;
    let err = client.create_agent(&json!({})).await.expect_err("422");
    let ElevenLabsError::Api {
        status, message, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        message,
        "body.conversation_config.tts.voice_id: unknown voice"
    );
    let err = client.get_agent("a").await.expect_err("401");
    assert!(
        matches!(err, ElevenLabsError::Api { ref code, .. } if code.as_deref() == Some("invalid_api_key"))
    );
    assert_eq!(fake.requests(), 2);
}

#[tokio::test]
async fn deleting_a_missing_agent_counts_as_deleted() {
    let (client, fake) =
        client_with(vec![answer(404, r#"{"detail":{"message":"not found"}}"#)]).await;
    client.delete_agent("agent_gone").await.expect("idempotent");
    let seen = fake.seen.lock().expect("lock");
    let asked: Vec<&str> = seen
        .iter()
        .map(|(request, _, _)| request.as_str())
        .collect();
    assert_eq!(
        asked,
        ["DELETE /v1/convai/agents/agent_gone"],
        "ElevenLabs was asked once, and its 404 taken as done"
    );
}

#[tokio::test]
async fn only_a_404_counts_as_deleted() {
    let (client, _) = client_with(vec![answer(400, r#"{"detail":{"message":"bad id"}}"#)]).await;
    let err = client
        .delete_agent("agent_bad")
        .await
        .expect_err("a 400 is an error");
    assert!(
        matches!(err, ElevenLabsError::Api { status, .. } if status == StatusCode::BAD_REQUEST),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_audio_is_none() {
    let (client, _) = client_with(vec![
        answer(404, r#"{"detail":"no audio"}"#),
        Scripted {
            headers: vec![("content-type", "audio/mpeg")],
            ..answer(200, "ID3-bytes")
        },
    ])
    .await;
    assert_eq!(client.conversation_audio("c1").await.expect("ok"), None);
    assert_eq!(
        client.conversation_audio("c2").await.expect("ok"),
        Some(b"ID3-bytes".to_vec())
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_502() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = ElevenLabs::new(
        reqwest::Client::new(),
        format!("http://{addr}").parse().expect("url"),
        "k".into(),
        RetryPolicy {
            timeout: Duration::from_millis(200),
            max_retries: 1,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
        },
    );
    let err = client.get_agent("a").await.expect_err("refused");
    assert!(matches!(err, ElevenLabsError::Unreachable(_)), "{err:?}");
}
