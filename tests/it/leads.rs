//! Leads (list, profile timeline, duplicates, merge, assignment), CSV exports, and the
//! recording fallback to ElevenLabs' audio endpoint; tenant isolation throughout.

use serde_json::{json, Value};

use crate::support::*;

async fn call_to(tenant: &Tenant, number: &str, duration: i64) -> String {
    let conversation = conversation_id();
    deliver(&transcription(
        &tenant.call_agent,
        &conversation,
        duration,
        number,
    ))
    .await;
    eventually(20, "the call", || async {
        call_row(&conversation)
            .await
            .filter(|row| row.get::<_, Option<uuid::Uuid>>("lead_id").is_some())
    })
    .await;
    conversation
}

async fn lead_of(conversation: &str) -> String {
    let row = call_row(conversation).await.expect("call");
    row.get::<_, uuid::Uuid>("lead_id").to_string()
}

#[tokio::test]
async fn calls_to_one_number_make_one_lead_with_a_timeline() {
    let tenant = Tenant::new().await;
    let number = phone();
    let first = call_to(&tenant, &number, 61).await;
    let second = call_to(&tenant, &number, 125).await;
    let id = lead_of(&first).await;
    assert_eq!(lead_of(&second).await, id);

    let list = json(get("/api/leads", &tenant.token).await).await;
    assert_eq!(list["pagination"]["total"], 1);
    let lead = &list["data"][0];
    assert_eq!(lead["phone_number"], number.as_str());
    assert_eq!(lead["interaction_count"], 2);
    assert_eq!(lead["lead_status_tag"], "hot");
    assert_eq!(lead["agent_name"], "call agent");
    assert_eq!(
        lead["latest_analytics"]["call_id"],
        call_id(&second).await,
        "the row embeds the newest LeadAnalytics"
    );
    assert_eq!(lead["latest_analytics"]["total_score"], 74);
    assert!(lead["latest_analytics"]["reasoning"]["intent"].is_string());
    assert_eq!(
        json(get("/api/leads?lead_status=cold", &tenant.token).await).await["pagination"]["total"],
        0
    );
    assert_eq!(
        json(get("/api/leads?min_score=70", &tenant.token).await).await["pagination"]["total"],
        1
    );

    let profile = json(get(&format!("/api/leads/{id}"), &tenant.token).await).await;
    let timeline = profile["timeline"].as_array().expect("timeline");
    assert_eq!(timeline.len(), 2);
    assert_eq!(timeline[0]["duration_seconds"], 125, "newest first");
    assert_eq!(timeline[0]["summary"], "Asked about pricing.");
    assert_eq!(timeline[0]["cta_interactions"]["pricing_clicked"], true);
    assert_eq!(profile["latest_analytics"]["total_score"], 74);
    assert_eq!(profile["timeline_total"], 2);

    call_to(&tenant, &number, 30).await;
    let pages = every_page(&format!("/api/leads/{id}/timeline"), &tenant.token, 2).await;
    let durations: Vec<i64> = pages
        .iter()
        .map(|i| i["duration_seconds"].as_i64().expect("duration"))
        .collect();
    assert_eq!(
        durations,
        [30, 125, 61],
        "every interaction once, newest first"
    );
    let other = Tenant::new().await;
    let theirs = get(&format!("/api/leads/{id}/timeline"), &other.token).await;
    assert_eq!(error_code(theirs, 404).await, "not_found");
}

#[tokio::test]
async fn lists_answer_304_until_their_page_changes() {
    let tenant = Tenant::new().await;
    let number = phone();
    call_to(&tenant, &number, 61).await;
    for path in ["/api/calls", "/api/leads", "/api/leads?lead_status=hot"] {
        let (status, etag) = poll(path, &tenant.token, None).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            poll(path, &tenant.token, Some(&etag)).await,
            (304, etag.clone()),
            "{path}"
        );
        let other = Tenant::new().await;
        assert_eq!(
            poll(path, &other.token, Some(&etag)).await.0,
            200,
            "{path}: another tenant's tag"
        );
    }
    let (_, calls) = poll("/api/calls", &tenant.token, None).await;
    let (_, leads) = poll("/api/leads", &tenant.token, None).await;
    call_to(&tenant, &number, 30).await;
    let (status, changed) = poll("/api/calls", &tenant.token, Some(&calls)).await;
    assert_eq!(status, 200, "a new call changes the calls page");
    assert_ne!(changed, calls);
    let (status, _) = poll("/api/leads", &tenant.token, Some(&leads)).await;
    assert_eq!(status, 200, "the lead's interaction count changed");
}

#[tokio::test]
async fn every_listed_lead_carries_its_own_newest_analysis_on_every_page() {
    let tenant = Tenant::new().await;
    let mut calls = Vec::new();
    for duration in [61, 62, 63] {
        calls.push(call_to(&tenant, &phone(), duration).await);
    }
    let unanalyzed = lead_of(&calls[1]).await;
    db().await
        .execute(
            "DELETE FROM lead_analytics WHERE lead_id = $1::text::uuid",
            &[&unanalyzed],
        )
        .await
        .expect("delete the analysis");

    let rows = every_page("/api/leads", &tenant.token, 2).await;
    let mut expected = Vec::new();
    for call in &calls {
        let lead = lead_of(call).await;
        let analysis = if lead == unanalyzed {
            Value::Null
        } else {
            json!(call_id(call).await)
        };
        expected.push((lead, analysis));
    }
    let mut listed: Vec<(String, Value)> = rows
        .iter()
        .map(|row| {
            let id = row["id"].as_str().expect("id").to_owned();
            (id, row["latest_analytics"]["call_id"].clone())
        })
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed, expected,
        "each lead once, with its own analysis or none"
    );
}

#[tokio::test]
async fn duplicates_are_found_and_merged() {
    let tenant = Tenant::new().await;
    let a = lead_of(&call_to(&tenant, &phone(), 61).await).await;
    let b_call = call_to(&tenant, &phone(), 61).await;
    let b = lead_of(&b_call).await;
    let db = db().await;
    for id in [&a, &b] {
        db.execute(
            "UPDATE leads SET email = 'Same@Example.com' WHERE id = $1::text::uuid",
            &[id],
        )
        .await
        .expect("email");
    }
    let profile = json(get(&format!("/api/leads/{a}"), &tenant.token).await).await;
    assert_eq!(profile["possible_duplicates"][0]["id"], b.as_str());

    let response = post(
        &format!("/api/leads/{a}/merge"),
        &tenant.token,
        &json!({"duplicate_id": b}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let merged = json(response).await;
    assert_eq!(merged["interaction_count"], 2);
    let code = error_code(get(&format!("/api/leads/{b}"), &tenant.token).await, 404).await;
    assert_eq!(code, "not_found");
    assert_eq!(
        lead_of(&b_call).await,
        a,
        "the duplicate's calls moved over"
    );
    let profile = json(get(&format!("/api/leads/{a}"), &tenant.token).await).await;
    assert_eq!(profile["timeline"].as_array().expect("timeline").len(), 2);
    let b_call_id = call_id(&b_call).await;
    assert_eq!(
        profile["latest_analytics"]["call_id"], b_call_id,
        "the duplicate's newer analysis moved over with its call"
    );
    let listed = json(get("/api/leads", &tenant.token).await).await;
    assert_eq!(listed["data"][0]["latest_analytics"]["call_id"], b_call_id);

    let response = post(
        &format!("/api/leads/{a}/merge"),
        &tenant.token,
        &json!({"duplicate_id": a}),
    )
    .await;
    assert_eq!(error_code(response, 400).await, "validation_error");
}

#[tokio::test]
async fn leads_are_assigned_to_the_tenants_own_agents() {
    let tenant = Tenant::new().await;
    let other = Tenant::new().await;
    let id = lead_of(&call_to(&tenant, &phone(), 30).await).await;
    let chat_agent = agent_id_of(&tenant.chat_agent).await;
    let response = put(
        &format!("/api/leads/{id}"),
        &tenant.token,
        &json!({"agent_id": chat_agent}),
    )
    .await;
    assert_eq!(json(response).await["agent_id"], chat_agent.to_string());
    let theirs = agent_id_of(&other.call_agent).await;
    let response = put(
        &format!("/api/leads/{id}"),
        &tenant.token,
        &json!({"agent_id": theirs}),
    )
    .await;
    assert_eq!(error_code(response, 400).await, "validation_error");
}

#[tokio::test]
async fn another_tenants_leads_are_not_found_anywhere() {
    let owner = Tenant::new().await;
    let other = Tenant::new().await;
    let id = lead_of(&call_to(&owner, &phone(), 30).await).await;
    let mine = lead_of(&call_to(&other, &phone(), 30).await).await;
    assert_eq!(
        error_code(get(&format!("/api/leads/{id}"), &other.token).await, 404).await,
        "not_found"
    );
    let response = put(
        &format!("/api/leads/{id}"),
        &other.token,
        &json!({"agent_id": uuid::Uuid::new_v4()}),
    )
    .await;
    assert_eq!(error_code(response, 404).await, "not_found");
    let response = post(
        &format!("/api/leads/{mine}/merge"),
        &other.token,
        &json!({"duplicate_id": id}),
    )
    .await;
    assert_eq!(error_code(response, 404).await, "not_found");
    let response = post(
        &format!("/api/leads/{id}/merge"),
        &other.token,
        &json!({"duplicate_id": mine}),
    )
    .await;
    assert_eq!(error_code(response, 404).await, "not_found");
    let list = json(get("/api/leads", &other.token).await).await;
    assert_eq!(list["pagination"]["total"], 1);
    assert_eq!(list["data"][0]["id"], mine.as_str());
    let export = get("/api/leads/export", &other.token)
        .await
        .text()
        .await
        .expect("csv");
    assert!(!export.contains(&id), "{export}");
    assert_eq!(export.lines().count(), 2);
}

#[tokio::test]
async fn exports_stream_csv_with_formulas_escaped() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let mut event = transcription(&tenant.call_agent, &conversation, 61, &phone());
    event["data"]["analysis"]["transcript_summary"] = json!("=HYPERLINK(\"http://evil\")");
    deliver(&event).await;
    eventually(20, "the call", || call_row(&conversation)).await;
    call_to(&tenant, &phone(), 30).await;

    let response = get("/api/calls/export", &tenant.token).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/csv"));
    let text = response.text().await.expect("csv");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("id,created_at,started_at,agent"),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "{text}");
    assert!(text.contains("'=HYPERLINK"), "{text}");
    assert!(
        !text.contains(",=HYPERLINK") && !text.contains("\"=HYPERLINK"),
        "{text}"
    );

    let filtered = get("/api/calls/export?min_score=99", &tenant.token)
        .await
        .text()
        .await
        .expect("csv");
    assert_eq!(filtered.lines().count(), 1, "header only");
    let leads = get("/api/leads/export", &tenant.token)
        .await
        .text()
        .await
        .expect("csv");
    assert_eq!(leads.lines().count(), 3);
}

#[tokio::test]
async fn a_missing_recording_is_fetched_once_from_elevenlabs() {
    let tenant = Tenant::new().await;
    // The simulator keeps the call and its audio but delivers nothing; we deliver only the
    // transcription, as if the audio webhook had been lost.
    let answer = elevenlabs_sim::post(
        "/dev/simulate-call",
        &json!({"agent_id": tenant.call_agent, "duration_secs": 42, "deliver": false, "audio": true}),
    )
    .await;
    let conversation = answer["conversation_id"].as_str().expect("id").to_owned();
    let data = elevenlabs_sim::get(&format!("/v1/convai/conversations/{conversation}"))
        .await
        .expect("conversation");
    let event = json!({"type": "post_call_transcription", "event_timestamp": chrono::Utc::now().timestamp(), "data": data});
    deliver(&event).await;
    let call = eventually(20, "the call", || async {
        call_row(&conversation)
            .await
            .filter(|row| row.get::<_, String>("status") == "completed")
    })
    .await;
    assert!(call.get::<_, Option<String>>("recording_key").is_none());
    let id = call.get::<_, uuid::Uuid>("id");
    let audio_path = format!("/v1/convai/conversations/{conversation}/audio");

    let link: Value = json(get(&format!("/api/calls/{id}/recording"), &tenant.token).await).await;
    let url = link["recording_url"].as_str().expect("url");
    let mp3 = stack()
        .http
        .get(url)
        .send()
        .await
        .expect("s3")
        .bytes()
        .await
        .expect("bytes");
    assert!(mp3.len() > 1000, "{} bytes", mp3.len());
    let fetched = elevenlabs_sim::requests(&audio_path).await.len();
    assert_eq!(fetched, 1);
    let again = get(&format!("/api/calls/{id}/recording"), &tenant.token).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        elevenlabs_sim::requests(&audio_path).await.len(),
        1,
        "stored, not fetched again"
    );

    // No audio anywhere: 404, and ElevenLabs is not asked on every request.
    let silent = elevenlabs_sim::post(
        "/dev/simulate-call",
        &json!({"agent_id": tenant.call_agent, "duration_secs": 42, "deliver": false, "audio": false}),
    )
    .await;
    let silent = silent["conversation_id"].as_str().expect("id").to_owned();
    let data = elevenlabs_sim::get(&format!("/v1/convai/conversations/{silent}"))
        .await
        .expect("conv");
    deliver(&json!({"type": "post_call_transcription", "event_timestamp": chrono::Utc::now().timestamp(), "data": data})).await;
    let row = eventually(20, "the silent call", || call_row(&silent)).await;
    let id = row.get::<_, uuid::Uuid>("id");
    for _ in 0..2 {
        let code = error_code(
            get(&format!("/api/calls/{id}/recording"), &tenant.token).await,
            404,
        )
        .await;
        assert_eq!(code, "not_found");
    }
    let asked = elevenlabs_sim::requests(&format!("/v1/convai/conversations/{silent}/audio"))
        .await
        .len();
    assert_eq!(asked, 1);
}

/// Delivers a chat and waits for it to be stored; its lead, if it has one.
async fn chat(
    tenant: &Tenant,
    user: Option<&str>,
    dynamic: Value,
    collected: Value,
) -> Option<uuid::Uuid> {
    let conversation = conversation_id();
    deliver(&chat_transcription(
        &tenant.chat_agent,
        &conversation,
        user,
        dynamic,
        collected,
    ))
    .await;
    let row = eventually(20, "the chat", || async {
        call_row(&conversation)
            .await
            .filter(|row| row.get::<_, String>("status") == "completed")
    })
    .await;
    assert_eq!(row.get::<_, String>("type"), "chat");
    row.get("lead_id")
}

#[tokio::test]
async fn chats_make_leads_keyed_by_what_identifies_the_person() {
    let tenant = Tenant::new().await;
    // An email the chat collected, then the same address (other case) the page passed in.
    let by_email = chat(
        &tenant,
        Some("visitor-a"),
        json!({}),
        json!({"email": "dana@example.com"}),
    )
    .await
    .expect("a lead for the email");
    let again = chat(
        &tenant,
        Some("visitor-b"),
        json!({"customer_email": "DANA@example.com"}),
        json!({}),
    )
    .await;
    assert_eq!(again, Some(by_email), "the same person by email");
    // Neither: ElevenLabs' user id, twice.
    let by_user = chat(&tenant, Some("visitor-9"), json!({}), json!({}))
        .await
        .expect("a lead");
    assert_ne!(by_user, by_email);
    assert_eq!(
        chat(&tenant, Some("visitor-9"), json!({}), json!({})).await,
        Some(by_user)
    );
    // A number the chat collected is the same person as a call to it.
    let number = phone();
    let by_phone = chat(
        &tenant,
        Some("visitor-c"),
        json!({}),
        json!({"phone_number": number}),
    )
    .await
    .expect("a lead for the number");
    let call = call_to(&tenant, &number, 40).await;
    assert_eq!(
        lead_of(&call).await,
        by_phone.to_string(),
        "the chat's number is the call's"
    );
    // Nothing to know them by: no lead.
    assert_eq!(chat(&tenant, None, json!({}), json!({})).await, None);

    let list = every_page("/api/leads", &tenant.token, 10).await;
    assert_eq!(list.len(), 3, "{list:?}");
    let email_lead = list
        .iter()
        .find(|l| l["id"] == by_email.to_string())
        .expect("listed");
    assert_eq!(email_lead["email"], "dana@example.com");
    assert!(email_lead["phone_number"].is_null());
    assert_eq!(email_lead["interaction_count"], 2);
    assert_eq!(
        email_lead["latest_analytics"]["total_score"], 74,
        "chats are scored like calls"
    );
    let phone_lead = list
        .iter()
        .find(|l| l["id"] == by_phone.to_string())
        .expect("listed");
    assert_eq!(phone_lead["interaction_count"], 2);

    let timeline = every_page(
        &format!("/api/leads/{by_email}/timeline"),
        &tenant.token,
        10,
    )
    .await;
    assert_eq!(timeline.len(), 2);
    for interaction in &timeline {
        assert_eq!(interaction["type"], "chat");
        let messages = interaction["messages"]
            .as_array()
            .expect("a chat's messages");
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1]["speaker"], "user");
        assert_eq!(messages[1]["text"], "Sure, what is the price?");
    }
    let mixed = every_page(
        &format!("/api/leads/{by_phone}/timeline"),
        &tenant.token,
        10,
    )
    .await;
    let kinds: Vec<(&str, bool)> = mixed
        .iter()
        .map(|i| (i["type"].as_str().expect("type"), i["messages"].is_null()))
        .collect();
    assert_eq!(
        kinds,
        [("call", true), ("chat", false)],
        "a call's transcript stays on its own route"
    );
}

#[tokio::test]
async fn a_merged_lead_keeps_the_duplicates_visitor_and_calls() {
    let tenant = Tenant::new().await;
    let visitor = format!("visitor-{}", uuid::Uuid::new_v4().simple());
    let chat_lead = chat(&tenant, Some(&visitor), json!({}), json!({}))
        .await
        .expect("a lead for the visitor");
    let kept = lead_of(&call_to(&tenant, &phone(), 61).await).await;
    let number = phone();
    let other_call = call_to(&tenant, &number, 61).await;
    for duplicate in [chat_lead.to_string(), lead_of(&other_call).await] {
        let response = post(
            &format!("/api/leads/{kept}/merge"),
            &tenant.token,
            &json!({ "duplicate_id": duplicate }),
        )
        .await;
        assert_eq!(response.status(), 200);
    }

    // The visitor's next chat finds the lead they were merged into.
    let next = chat(&tenant, Some(&visitor), json!({}), json!({})).await;
    assert_eq!(next.map(|id| id.to_string()), Some(kept.clone()));
    // A merged call transcribed again (the reconciler's copy of a late call) stays where it is.
    let mut again = transcription(&tenant.call_agent, &other_call, 62, &number);
    again["event_timestamp"] = json!(chrono::Utc::now().timestamp() + 5);
    deliver(&again).await;
    queue_drained().await;
    assert_eq!(lead_of(&other_call).await, kept);
    let listed = json(get("/api/leads", &tenant.token).await).await;
    assert_eq!(listed["pagination"]["total"], 1, "{listed}");
    assert_eq!(listed["data"][0]["interaction_count"], 4, "{listed}");
}

#[tokio::test]
async fn a_new_contact_for_a_number_brings_its_own_details_to_the_lead() {
    let tenant = Tenant::new().await;
    let number = phone();
    let contact = |name: &str, email: &str| json!({"name": name, "phone_number": number, "email": email, "company": format!("{name} Co")});
    let old = json(
        post(
            "/api/contacts",
            &tenant.token,
            &contact("Alice Old", "alice@old.example"),
        )
        .await,
    )
    .await;
    let lead = lead_of(&call_to(&tenant, &number, 61).await).await;
    let removed = delete(
        &format!("/api/contacts/{}", old["id"].as_str().expect("id")),
        &tenant.token,
    )
    .await;
    assert!(removed.status().is_success());
    let new = json(
        post(
            "/api/contacts",
            &tenant.token,
            &contact("Bob New", "bob@new.example"),
        )
        .await,
    )
    .await;
    assert_eq!(lead_of(&call_to(&tenant, &number, 61).await).await, lead);

    let row = db()
        .await
        .query_one(
            "SELECT name, email, company, contact_id::text FROM leads WHERE id = $1::text::uuid",
            &[&lead],
        )
        .await
        .expect("the lead");
    let details: (String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        details,
        (
            "Bob New".into(),
            "bob@new.example".into(),
            "Bob New Co".into(),
            new["id"].as_str().expect("id").to_owned()
        )
    );
}

#[tokio::test]
async fn a_visitor_known_by_email_is_found_again_when_anonymous() {
    let tenant = Tenant::new().await;
    let visitor = format!("visitor-{}", uuid::Uuid::new_v4().simple());
    let by_email = chat(
        &tenant,
        Some(&visitor),
        json!({}),
        json!({"email": format!("{visitor}@example.com")}),
    )
    .await
    .expect("a lead for the email");
    let anonymous = chat(&tenant, Some(&visitor), json!({}), json!({})).await;
    assert_eq!(anonymous, Some(by_email), "the same visitor");
    // Another lead holding the visitor's id already keeps it: a later lead by number does
    // not take it (one per tenant), and the chat still makes its lead.
    let number = phone();
    let by_phone = chat(
        &tenant,
        Some(&visitor),
        json!({}),
        json!({"phone_number": number}),
    )
    .await
    .expect("a lead for the number");
    assert_ne!(by_phone, by_email);
    assert_eq!(
        chat(&tenant, Some(&visitor), json!({}), json!({})).await,
        Some(by_email)
    );
}

/// The oracle for `top_scored`: every lead of the period sorted, as the report read them before
/// V0043.
async fn best_scored_sorted(
    client: &deadpool_postgres::Client,
    tenant: shared::tenant::TenantId,
    period: &std::ops::Range<chrono::DateTime<chrono::Utc>>,
    agents: &Option<Vec<uuid::Uuid>>,
    limit: i64,
) -> Vec<uuid::Uuid> {
    client
        .query(
            "SELECT id FROM leads
             WHERE user_id = $1 AND total_score IS NOT NULL AND last_contact_at >= $2
               AND last_contact_at < $3 AND ($4::uuid[] IS NULL OR agent_id = ANY($4))
             ORDER BY total_score DESC, last_contact_at DESC, id LIMIT $5",
            &[tenant.as_uuid(), &period.start, &period.end, agents, &limit],
        )
        .await
        .expect("the sorted leads")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn a_reports_best_leads_are_the_best_scored_of_its_period_read_from_the_score_index() {
    use chrono::{Duration, Utc};
    use shared::leads::read::top_scored;

    let database = ScratchDatabase::create("top_scored").await;
    let mut client = database.migrated_connection().await;
    let tenant = new_tenant(&mut client).await;
    let other = new_tenant(&mut client).await;
    let agent = |name: &'static str, owner: shared::tenant::TenantId| {
        let client = &client;
        async move {
            client
                .query_one(
                    "INSERT INTO agents (user_id, elevenlabs_agent_id, name)
                     VALUES ($1, $2, $3) RETURNING id",
                    &[
                        owner.as_uuid(),
                        &format!("agent_{}", uuid::Uuid::new_v4()),
                        &name,
                    ],
                )
                .await
                .expect("an agent")
                .get::<_, uuid::Uuid>(0)
        }
    };
    let (first, second, others) = (
        agent("First", tenant).await,
        agent("Second", tenant).await,
        agent("Other's", other).await,
    );
    // 20,000 leads over 55 days, every score from 0 to 100 and some unscored; 30 leads tied
    // on the best score and the same contact, told apart by their ids; another tenant's
    // leads, all better, contacted in the same period.
    client
        .batch_execute(&format!(
            "INSERT INTO leads (user_id, agent_id, name, total_score, last_contact_at)
             SELECT '{tenant}', CASE WHEN n % 2 = 0 THEN '{first}' ELSE '{second}' END::uuid,
                    'Lead ' || n, CASE WHEN n % 13 = 0 THEN NULL ELSE (n * 37) % 101 END,
                    now() - n * interval '4 minutes'
             FROM generate_series(1, 20000) n;
             INSERT INTO leads (user_id, agent_id, name, total_score, last_contact_at)
             SELECT '{tenant}', '{first}', 'Tied ' || n, 100, date_trunc('day', now()) - interval '1 day'
             FROM generate_series(1, 30) n;
             INSERT INTO leads (user_id, agent_id, name, total_score, last_contact_at)
             SELECT '{other}', '{others}', 'Other ' || n, 100, now() - n * interval '1 minute'
             FROM generate_series(1, 500) n;",
            tenant = tenant.as_uuid(),
            other = other.as_uuid(),
        ))
        .await
        .expect("the leads");
    vacuumed(&client, &["leads", "agents"]).await;

    let now = Utc::now();
    let month = now - Duration::days(30)..now;
    let an_hour = now - Duration::days(20) - Duration::hours(1)..now - Duration::days(20);
    let cases = [
        (month.clone(), None, 10),
        (month.clone(), None, 1),
        (month.clone(), None, 300),
        (month.clone(), Some(vec![second]), 10),
        (month.clone(), Some(vec![first, second]), 40),
        (month.clone(), Some(vec![others]), 10),
        (month.clone(), Some(vec![]), 10),
        (an_hour.clone(), None, 20),
        (now + Duration::days(1)..now + Duration::days(2), None, 10),
        (now - Duration::days(400)..now, None, 10),
    ];
    for (period, agents, limit) in cases {
        let expected = best_scored_sorted(&client, tenant, &period, &agents, limit).await;
        // Read a few times, so the cached statement runs its generic plan too.
        for _ in 0..7 {
            let best = top_scored(&client, tenant, period.clone(), agents.clone(), limit)
                .await
                .expect("the best leads");
            let ids: Vec<uuid::Uuid> = best.iter().map(|lead| lead.id).collect();
            assert_eq!(ids, expected, "{period:?} {agents:?} {limit}");
        }
    }
    let in_the_hour = best_scored_sorted(&client, tenant, &an_hour, &None, 20).await;
    assert!(
        (10..20).contains(&in_the_hour.len()),
        "the hour holds fewer scored leads than asked for: {}",
        in_the_hour.len()
    );
    let many = best_scored_sorted(&client, tenant, &month, &None, 300).await;
    let tied = client
        .query("SELECT id FROM leads WHERE name LIKE 'Tied %'", &[])
        .await
        .expect("the tied leads");
    assert!(
        tied.iter().all(|row| many.contains(&row.get(0))),
        "the 300 best hold the 30 tied leads"
    );

    // A month's best ten read from the score index: a few descents of it and ten rows (74
    // blocks here), where sorting the month's leads read every block of the table.
    let before = blocks_read(&client, "leads").await;
    top_scored(&client, tenant, month, None, 10)
        .await
        .expect("the best leads");
    let read = blocks_read(&client, "leads").await - before;
    let pages = table_pages(&client, "leads").await;
    assert!(read < 100, "{read} blocks read of a {pages}-page table");

    drop(client);
    database.drop().await;
}
