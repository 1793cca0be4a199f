//! The calls read API: list filters, keyset pages while calls keep arriving, detail with lead
//! analytics, transcript order, and tenant isolation on every route.

use std::collections::HashSet;

use serde_json::Value;

use crate::support::*;

/// Delivers a finished call and waits until it is stored; answers its conversation id.
async fn finished_call(agent: &str, duration: i64, phone_number: &str) -> String {
    let conversation = conversation_id();
    let event = transcription(agent, &conversation, duration, phone_number);
    assert_eq!(deliver(&event).await.status(), 200);
    eventually(20, "the call", || call_row(&conversation)).await;
    conversation
}

async fn list(tenant: &Tenant, query: &str) -> Value {
    let response = get(&format!("/api/calls{query}"), &tenant.token).await;
    assert_eq!(response.status(), 200, "{query}");
    json(response).await
}

#[tokio::test]
async fn a_call_reads_back_with_its_analytics_and_transcript() {
    let tenant = Tenant::new().await;
    let conversation = finished_call(&tenant.call_agent, 133, &phone()).await;
    let id = call_id(&conversation).await;

    let call = json(get(&format!("/api/calls/{id}"), &tenant.token).await).await;
    assert_eq!(call["id"], id.as_str());
    assert_eq!(call["elevenlabs_conversation_id"], conversation.as_str());
    assert_eq!(call["status"], "completed");
    assert_eq!(call["type"], "call");
    assert_eq!(call["duration_seconds"], 133);
    assert_eq!(call["duration_minutes"], 2.22);
    assert_eq!(call["credits_charged"], 3);
    assert_eq!(call["summary"], "Asked about pricing.");
    let analytics = &call["lead_analytics"];
    assert_eq!(analytics["intent_score"], 16);
    assert_eq!(analytics["total_score"], 16 + 12 + 14 + 17 + 15);
    assert_eq!(analytics["lead_status_tag"], "hot");
    assert_eq!(analytics["cta_interactions"]["pricing_clicked"], true);
    assert_eq!(call["lead_status_tag"], "hot");

    let transcript = json(get(&format!("/api/calls/{id}/transcript"), &tenant.token).await).await;
    let segments = transcript["speaker_segments"].as_array().expect("segments");
    let speakers: Vec<&str> = segments
        .iter()
        .map(|s| s["speaker"].as_str().expect("speaker"))
        .collect();
    assert_eq!(speakers, ["agent", "user", "agent"]);
    let times: Vec<i64> = segments
        .iter()
        .map(|s| s["timestamp"].as_i64().expect("time"))
        .collect();
    assert_eq!(times, [0, 4, 9]);
    assert_eq!(segments[1]["text"], "Sure, what is the price?");
}

#[tokio::test]
async fn lists_filter_by_what_the_logs_tab_offers() {
    let tenant = Tenant::new().await;
    let known = phone();
    let other = std::iter::repeat_with(phone)
        .find(|n| *n != known)
        .expect("another number");
    finished_call(&tenant.call_agent, 61, &known).await;
    finished_call(&tenant.call_agent, 30, &other).await;
    // A chat (no phone) and a failed call.
    let chat = conversation_id();
    let mut event = transcription(&tenant.chat_agent, &chat, 20, "");
    event["data"]["metadata"]["phone_call"] = Value::Null;
    deliver(&event).await;
    eventually(20, "the chat", || call_row(&chat)).await;

    assert_eq!(list(&tenant, "").await["pagination"]["total"], 3);
    assert_eq!(list(&tenant, "?type=chat").await["pagination"]["total"], 1);
    assert_eq!(
        list(&tenant, "?type=call&status=completed").await["pagination"]["total"],
        2
    );
    assert_eq!(
        list(&tenant, "?status=failed").await["pagination"]["total"],
        0
    );
    assert_eq!(
        list(&tenant, "?lead_status=hot&min_score=70").await["pagination"]["total"],
        3
    );
    assert_eq!(
        list(&tenant, "?min_score=99").await["pagination"]["total"],
        0
    );
    // Ten digits: the numbers share their first seven, so a shorter part of one can occur
    // in the other.
    let digits = &known[known.len() - 10..];
    let found = list(&tenant, &format!("?search={digits}")).await;
    assert_eq!(found["pagination"]["total"], 1);
    assert_eq!(found["data"][0]["phone_number"], known.as_str());
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let from = list(&tenant, &format!("?from={}", urlencode(&future))).await;
    assert_eq!(from["pagination"]["total"], 0);
    // Days as the dashboards take them: today's calls are within from=today&to=today.
    let today = chrono::Utc::now().date_naive();
    let all = list(&tenant, "").await["pagination"]["total"].clone();
    let by_day = list(&tenant, &format!("?from={today}&to={today}")).await;
    assert_eq!(by_day["pagination"]["total"], all);
    let tomorrow = today.succ_opt().expect("tomorrow");
    let later = list(&tenant, &format!("?from={tomorrow}")).await;
    assert_eq!(later["pagination"]["total"], 0);

    for (query, code) in [
        ("?status=ringing", 400),
        ("?min_score=101", 400),
        ("?from=yesterday", 400),
        ("?agent_id=not-a-uuid", 400),
        ("?cursor=abc", 400),
        ("?limit=0", 400),
    ] {
        let response = get(&format!("/api/calls{query}"), &tenant.token).await;
        let status = response.status().as_u16();
        assert!(status == code, "{query}: {status}");
        error_code(response, status).await;
    }
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn pages_have_no_duplicates_or_gaps_while_calls_arrive() {
    let tenant = Tenant::new().await;
    let mut expected = HashSet::new();
    for _ in 0..7 {
        expected.insert(finished_call(&tenant.call_agent, 45, &phone()).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut arrived = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=3&cursor={c}"),
            None => "?limit=3".to_owned(),
        };
        let page = list(&tenant, &query).await;
        for call in page["data"].as_array().expect("data") {
            seen.push(
                call["elevenlabs_conversation_id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            );
        }
        // New calls land between pages: they are newer, so they belong before page one.
        if arrived < 2 {
            finished_call(&tenant.call_agent, 45, &phone()).await;
            arrived += 1;
        }
        match page["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert_eq!(
        unique, expected,
        "every call that existed at the start, once"
    );
}

#[tokio::test]
async fn another_tenants_calls_are_not_found_anywhere() {
    let owner = Tenant::new().await;
    let other = Tenant::new().await;
    let conversation = finished_call(&owner.call_agent, 61, &phone()).await;
    let id = call_id(&conversation).await;
    for path in [
        format!("/api/calls/{id}"),
        format!("/api/calls/{id}/transcript"),
        format!("/api/calls/{id}/recording"),
    ] {
        let code = error_code(get(&path, &other.token).await, 404).await;
        assert_eq!(code, "not_found", "{path}");
    }
    let owner_agent: uuid::Uuid = agent_id_of(&owner.call_agent).await;
    let response = get(&format!("/api/calls?agent_id={owner_agent}"), &other.token).await;
    assert_eq!(error_code(response, 404).await, "not_found");
    assert_eq!(list(&other, "").await["pagination"]["total"], 0);
    let export = get("/api/calls/export", &other.token)
        .await
        .text()
        .await
        .expect("csv");
    assert_eq!(export.lines().count(), 1, "header only: {export}");
    let response = get(
        &format!("/api/calls/export?agent_id={owner_agent}"),
        &other.token,
    )
    .await;
    assert_eq!(error_code(response, 404).await, "not_found");
    let mine = list(&owner, &format!("?agent_id={owner_agent}")).await;
    assert_eq!(mine["pagination"]["total"], 1);
    assert_eq!(mine["data"][0]["id"], id.as_str());
}

#[tokio::test]
async fn a_token_reads_the_account_its_subject_names_now() {
    let first = Tenant::new().await;
    let second = Tenant::new().await;
    finished_call(&first.call_agent, 61, &phone()).await;
    let lists = [
        "/api/calls",
        "/api/leads",
        "/analytics/calls",
        "/analytics/leads",
    ];
    let total = |path: &'static str| {
        let token = first.token.clone();
        async move {
            let response = get(path, &token).await;
            assert_eq!(response.status(), 200, "{path}");
            json(response).await["pagination"]["total"].clone()
        }
    };
    // The API now knows the first token's subject as the first account.
    for path in lists {
        assert_eq!(total(path).await, 1, "{path}");
    }
    let lead = json(get("/api/leads", &first.token).await).await["data"][0]["id"]
        .as_str()
        .expect("the call's lead")
        .to_owned();
    let lead_paths = [
        format!("/api/leads/{lead}"),
        format!("/api/leads/{lead}/timeline"),
    ];
    for path in &lead_paths {
        assert_eq!(get(path, &first.token).await.status(), 200, "{path}");
    }

    // The subject now names the second account (an operator re-linking an identity).
    let db = db().await;
    let subject: String = db
        .query_one("SELECT auth_subject FROM users WHERE id = $1", &[&first.id])
        .await
        .expect("the first account")
        .get(0);
    db.execute(
        "UPDATE users SET auth_subject = auth_subject || '-moved' WHERE id = $1",
        &[&first.id],
    )
    .await
    .expect("move the first account away");
    db.execute(
        "UPDATE users SET auth_subject = $2 WHERE id = $1",
        &[&second.id, &subject],
    )
    .await
    .expect("give the subject to the second account");
    for path in lists {
        assert_eq!(total(path).await, 0, "{path}: the second account's, empty");
    }
    for path in &lead_paths {
        let code = error_code(get(path, &first.token).await, 404).await;
        assert_eq!(code, "not_found", "{path}: not the second account's lead");
    }
}
