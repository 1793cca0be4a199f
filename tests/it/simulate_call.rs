//! `scripts/simulate-call` against the running stack: the ElevenLabs simulator builds a
//! realistic call and delivers its signed webhooks to the API, which processes them.

use std::{path::Path, process::Command};

use serde_json::Value;

use crate::support::{call_row, db, eventually, get, json, Tenant};

/// The stack's name (`.local/<name>`), which the script takes as STACK to find its env file.
fn stack_name() -> String {
    let sim_state = std::env::var("SIM_STATE_DIR").expect("scripts/test sets SIM_STATE_DIR");
    Path::new(&sim_state)
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .expect("SIM_STATE_DIR is .local/<stack>/sim")
        .to_owned()
}

/// Runs the script and returns the conversation id the simulator made.
fn simulate_call(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/simulate-call");
    let output = Command::new(script)
        .args(args)
        .env("STACK", stack_name())
        .output()
        .expect("scripts/simulate-call runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scripts/simulate-call {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_str(&stdout).expect("the script prints JSON");
    answer["conversation_id"]
        .as_str()
        .expect("a conversation id")
        .to_owned()
}

#[tokio::test]
async fn a_simulated_call_is_completed_charged_transcribed_and_recorded() {
    let tenant = Tenant::new().await;
    let conversation = simulate_call(&[&tenant.call_agent, "--duration", "133"]);
    let call = eventually(30, "the completed call with its recording", || async {
        call_row(&conversation).await.filter(|r| {
            r.get::<_, String>("status") == "completed"
                && r.get::<_, Option<String>>("recording_key").is_some()
        })
    })
    .await;
    assert_eq!(call.get::<_, i32>("duration_seconds"), 133);
    assert_eq!(call.get::<_, i64>("credits_charged"), 3);
    assert_eq!(tenant.credits().await, 15 - 3);

    let id: uuid::Uuid = call.get("id");
    let segments: Value = db()
        .await
        .query_one(
            "SELECT speaker_segments FROM transcripts WHERE call_id = $1",
            &[&id],
        )
        .await
        .expect("a transcript")
        .get(0);
    let segments = segments.as_array().expect("segments");
    assert!(segments.len() > 2, "{segments:?}");
    assert_eq!(segments[0]["speaker"], "agent");
    assert_eq!(segments[1]["speaker"], "user");

    let recording = json(get(&format!("/api/calls/{id}/recording"), &tenant.token).await).await;
    let link = recording["recording_url"].as_str().expect("a URL");
    let mp3 = reqwest::get(link)
        .await
        .expect("the presigned URL answers")
        .bytes()
        .await
        .expect("bytes");
    assert!(mp3.starts_with(b"ID3"), "an MP3");
    assert_eq!(mp3.len(), 133 * 200, "the simulator's audio for 2:13");
}

#[tokio::test]
async fn a_simulated_initiation_failure_is_a_failed_call_without_charge() {
    let tenant = Tenant::new().await;
    let conversation = simulate_call(&[&tenant.call_agent, "--outcome", "initiation_failure"]);
    let call = eventually(30, "the failed call", || async {
        call_row(&conversation).await
    })
    .await;
    assert_eq!(call.get::<_, String>("status"), "failed");
    assert_eq!(
        call.get::<_, Option<String>>("failure_reason").as_deref(),
        Some("busy")
    );
    assert_eq!(call.get::<_, i64>("credits_charged"), 0);
    assert_eq!(call.get::<_, Option<String>>("recording_key"), None);
    assert_eq!(tenant.credits().await, 15);
}
