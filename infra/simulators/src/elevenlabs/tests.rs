use std::sync::{Arc, Mutex};

use axum::{
    body::Bytes, extract::State, http::HeaderMap, response::IntoResponse, routing::post, Router,
};
use base64::Engine;
use serde_json::{json, Value};

use super::*;

const KEY: &str = "test-key";
const SECRET: &str = "wsec_test_secret";

#[test]
fn signature_matches_known_vector() {
    assert_eq!(
        sign("secret", 1, b"{}"),
        "t=1,v0=1122767b193110cfec322b6f199b599edbf608ed087f2d27afb0b97d99523908"
    );
}

#[test]
fn transcription_payload_has_the_webhook_shape() {
    let mut params = CallParams::new("agent_x", Outcome::Success, 133);
    params.direction = Direction::Inbound;
    params.phone_number = "+15551234567".into();
    params
        .dynamic_variables
        .insert("tenant_id".into(), json!("t1"));
    params.scores = Some(
        json!({"intent_score": 18})
            .as_object()
            .cloned()
            .expect("object"),
    );
    let event = transcription_event(&params);
    assert_eq!(event["type"], "post_call_transcription");
    assert!(event["event_timestamp"].is_i64());
    let data = &event["data"];
    for key in [
        "agent_id",
        "conversation_id",
        "status",
        "user_id",
        "agent_name",
        "has_audio",
        "has_user_audio",
        "has_response_audio",
        "transcript",
        "metadata",
        "analysis",
        "conversation_initiation_client_data",
    ] {
        assert!(data.get(key).is_some(), "missing {key}");
    }
    assert_eq!(data["status"], "done");
    assert_eq!(data["has_audio"], true);
    let transcript = data["transcript"].as_array().expect("transcript");
    assert!(transcript.len() >= 4);
    assert_eq!(transcript[0]["role"], "agent");
    assert_eq!(transcript[1]["role"], "user");
    assert!(transcript
        .iter()
        .all(|t| t["time_in_call_secs"].as_i64().is_some_and(|s| s < 133)));
    let metadata = &data["metadata"];
    assert_eq!(metadata["call_duration_secs"], 133);
    assert_eq!(metadata["termination_reason"], "end_call tool was called.");
    assert_eq!(metadata["text_only"], false);
    let phone = &metadata["phone_call"];
    assert_eq!(phone["type"], "twilio");
    assert_eq!(phone["direction"], "inbound");
    assert_eq!(phone["external_number"], "+15551234567");
    assert_eq!(phone["agent_number"], SIM_PHONE_NUMBER);
    assert!(phone["call_sid"]
        .as_str()
        .is_some_and(|s| s.starts_with("CA")));
    let analysis = &data["analysis"];
    assert_eq!(analysis["call_successful"], "success");
    let collected = &analysis["data_collection_results"];
    assert_eq!(collected["intent_score"]["value"], 18);
    assert_eq!(
        collected["intent_score"]["data_collection_id"],
        "intent_score"
    );
    assert_eq!(collected["fit_score"]["value"], 17);
    assert_eq!(collected["cta_demo_clicked"]["value"], true);
    assert_eq!(collected["cta_sample_clicked"]["value"], false);
    let variables = &data["conversation_initiation_client_data"]["dynamic_variables"];
    assert_eq!(variables["tenant_id"], "t1");
    assert_eq!(variables["system__caller_id"], "+15551234567");
    assert_eq!(variables["system__called_number"], SIM_PHONE_NUMBER);

    let summary = summary(data);
    assert_eq!(summary["message_count"], transcript.len());
    assert_eq!(summary["direction"], "inbound");
    assert_eq!(summary["call_successful"], "success");
}

#[test]
fn other_outcomes_and_audio() {
    let failure = CallParams::new("agent_x", Outcome::Failure, 40);
    let data = conversation(&failure);
    assert_eq!(data["analysis"]["call_successful"], "failure");
    let score = &data["analysis"]["data_collection_results"]["intent_score"]["value"];
    assert!(score.as_i64().is_some_and(|s| (2..=5).contains(&s)));

    let chat = CallParams::new("agent_x", Outcome::Chat, 60);
    let data = conversation(&chat);
    assert_eq!(data["metadata"]["text_only"], true);
    assert!(data["metadata"].get("phone_call").is_none());
    assert_eq!(data["has_audio"], false);
    assert_eq!(events(&chat).len(), 1);

    let busy = CallParams::new("agent_x", Outcome::InitiationFailure, 60);
    let sent = events(&busy);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "call_initiation_failure");
    assert_eq!(sent[0]["data"]["failure_reason"], "busy");
    assert_eq!(sent[0]["data"]["metadata"]["body"]["CallStatus"], "busy");

    let call = CallParams::new("agent_x", Outcome::Success, 10);
    let sent = events(&call);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["type"], "post_call_audio");
    let audio = base64::engine::general_purpose::STANDARD
        .decode(sent[1]["data"]["full_audio"].as_str().expect("audio"))
        .expect("base64");
    assert!(audio.starts_with(b"ID3"));
    assert_eq!(audio.len(), 2000);
    assert_eq!(sent[1]["data"].as_object().map(|o| o.len()), Some(3));
}

/// Starts the simulator on an ephemeral port.
async fn start(webhook_target_url: &str) -> (String, Arc<ElevenLabsSim>) {
    let sim = Arc::new(
        ElevenLabsSim::new(Config {
            api_key: KEY.into(),
            webhook_secret: SECRET.into(),
            webhook_target_url: webhook_target_url.into(),
        })
        .expect("http client"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(sim.clone());
    tokio::spawn(crate::faults::serve(listener, app));
    (format!("http://{addr}"), sim)
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn agents_api_with_fault_injection() {
    let (base, sim) = start("http://127.0.0.1:9").await;
    let http = client();
    let agents = format!("{base}/v1/convai/agents");

    let (status, body) = send(http.get(&agents)).await;
    assert_eq!(status, 401);
    assert_eq!(body["detail"]["status"], "invalid_api_key");

    let (status, body) = send(
        http.post(format!("{agents}/create"))
            .header("xi-api-key", KEY)
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "conversation_config"])
    );
    assert_eq!(body["detail"][0]["type"], "value_error.missing");

    let (status, body) = send(
        http.post(format!("{agents}/create"))
            .header("xi-api-key", KEY)
            .json(&json!({"name": "Sales", "conversation_config": {"agent": {"first_message": "Hi"}}, "tags": ["t1"]})),
    )
    .await;
    assert_eq!(status, 200);
    let agent_id = body["agent_id"].as_str().expect("agent_id").to_owned();
    assert!(agent_id.starts_with("agent_"));

    let (status, body) = send(
        http.patch(format!("{agents}/{agent_id}"))
            .header("xi-api-key", KEY)
            .json(&json!({"name": "Sales 2"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "Sales 2");
    assert_eq!(body["conversation_config"]["agent"]["first_message"], "Hi");
    assert_eq!(body["phone_numbers"], json!([]));

    let (status, body) = send(http.post(format!("{base}/dev/faults")).json(&json!({
        "path_prefix": "/v1/convai/agents",
        "responses": [{"status": 429, "headers": {"retry-after": "1"}}],
    })))
    .await;
    assert_eq!((status, &body["queued"]), (200, &json!(1)));

    let response = http
        .get(&agents)
        .header("xi-api-key", KEY)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["detail"]["status"], "rate_limit_exceeded");

    let (status, body) = send(http.get(&agents).header("xi-api-key", KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(body["has_more"], false);
    assert_eq!(body["next_cursor"], Value::Null);
    assert_eq!(body["agents"][0]["agent_id"], agent_id.as_str());
    assert_eq!(body["agents"][0]["name"], "Sales 2");
    assert_eq!(body["agents"][0]["access_info"]["role"], "admin");

    let (_, log) =
        send(http.get(format!("{base}/dev/requests?path_prefix=/v1/convai/agents"))).await;
    let log = log.as_array().expect("array");
    assert_eq!(log.len(), 6);
    assert_eq!(log[2]["body"]["name"], "Sales");
    assert_eq!(sim.requests("/v1/convai/agents/create").len(), 2);

    let (status, body) = send(
        http.get(format!("{base}/v1/convai/phone-numbers"))
            .header("xi-api-key", KEY),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body[1]["phone_number_id"], SIM_PHONE_NUMBER_ID);
    assert_eq!(body[1]["provider"], "twilio");
}

type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

async fn receive(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let signature = headers
        .get("elevenlabs-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    received.lock().expect("lock").push((signature, body));
    "ok"
}

#[tokio::test]
async fn simulated_call_delivers_signed_webhooks() {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (base, _sim) = start(&target).await;
    let http = client();

    let (_, body) = send(
        http.post(format!("{base}/v1/convai/agents/create"))
            .header("xi-api-key", KEY)
            .json(&json!({"conversation_config": {}})),
    )
    .await;
    let agent_id = body["agent_id"].as_str().expect("agent_id").to_owned();
    let (status, call) = send(
        http.post(format!("{base}/v1/convai/twilio/outbound-call"))
            .header("xi-api-key", KEY)
            .json(&json!({
                "agent_id": agent_id, "agent_phone_number_id": SIM_PHONE_NUMBER_ID,
                "to_number": "+15551230000",
                "conversation_initiation_client_data": {"dynamic_variables": {"job_id": "j9"}},
            })),
    )
    .await;
    assert_eq!(status, 200);
    assert!(call["callSid"]
        .as_str()
        .is_some_and(|s| s.starts_with("CA")));
    let conversation_id = call["conversation_id"].as_str().expect("id").to_owned();
    let url = format!("{base}/v1/convai/conversations/{conversation_id}");
    let (_, stored) = send(http.get(&url).header("xi-api-key", KEY)).await;
    assert_eq!(stored["status"], "in-progress");

    let (status, answer) = send(http.post(format!("{base}/dev/simulate-call")).json(&json!({
        "agent_id": agent_id, "duration_secs": 20, "conversation_id": conversation_id,
    })))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["deliveries"],
        json!([{"type": "post_call_transcription", "status": 200}, {"type": "post_call_audio", "status": 200}])
    );

    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 2);
    for (signature, body) in &received {
        let t: i64 = signature
            .strip_prefix("t=")
            .and_then(|rest| rest.split(',').next())
            .and_then(|t| t.parse().ok())
            .expect("t=");
        assert_eq!(signature, &sign(SECRET, t, body));
    }
    let event: Value = serde_json::from_slice(&received[0].1).expect("json");
    assert_eq!(
        event["data"]["conversation_initiation_client_data"]["dynamic_variables"]["job_id"],
        "j9"
    );
    assert_eq!(
        event["data"]["metadata"]["phone_call"]["external_number"],
        "+15551230000"
    );
    assert_eq!(
        event["data"]["metadata"]["phone_call"]["call_sid"],
        call["callSid"]
    );

    let (_, stored) = send(http.get(&url).header("xi-api-key", KEY)).await;
    assert_eq!(stored, event["data"]);
    let audio = http
        .get(format!("{url}/audio"))
        .header("xi-api-key", KEY)
        .send()
        .await
        .expect("audio");
    assert_eq!(
        audio
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("audio/mpeg")
    );
    assert!(audio.bytes().await.expect("bytes").starts_with(b"ID3"));

    let (_, list) = send(
        http.get(format!(
            "{base}/v1/convai/conversations?agent_id={agent_id}"
        ))
        .header("xi-api-key", KEY),
    )
    .await;
    assert_eq!(list["conversations"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["conversations"][0]["status"], "done");
    assert_eq!(list["conversations"][0]["message_count"], 7);
}
