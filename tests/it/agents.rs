//! Agents against the ElevenLabs simulator: create (with the lead-scoring data collection),
//! read, update, delete, the /agents aliases, tenant isolation, and ElevenLabs failures.

use reqwest::Method;
use serde_json::{json, Value};
use shared::agents::DATA_COLLECTION;

use crate::support::*;

fn unique(prefix: &str) -> String {
    format!(
        "{prefix} {}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn create(token: &str, body: Value) -> Value {
    let response = post("/api/agents", token, &body).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    json(response).await
}

fn call_agent(name: &str) -> Value {
    json!({
        "name": name,
        "type": "call",
        "system_prompt": "You sell solar panels. Be brief.",
        "first_message": "Hi {{customer_name}}, this is Sunny.",
        "language": "en",
    })
}

async fn remote_agent(remote_id: &str) -> Option<Value> {
    elevenlabs_sim::get(&format!("/v1/convai/agents/{remote_id}")).await
}

#[tokio::test]
async fn a_call_agent_is_created_remotely_with_lead_scoring_then_recorded() {
    let tenant = Account::new().await;
    let name = unique("Sunny");
    let agent = create(&tenant.token, call_agent(&name)).await;
    assert_eq!(agent["name"], name.as_str());
    assert_eq!(agent["type"], "call");
    assert_eq!(agent["is_active"], true);
    assert_eq!(agent["user_id"], tenant.id.to_string());
    assert_eq!(agent["remote_status"], "ok");
    assert_eq!(
        agent["config"]["first_message"],
        "Hi {{customer_name}}, this is Sunny."
    );
    // The workspace's first line that Twilio's outbound-call endpoint takes (the simulated
    // workspace lists a SIP trunk's first).
    assert_eq!(
        agent["phone_number_id"],
        simulators::elevenlabs::SIM_PHONE_NUMBER_ID,
        "{agent}"
    );

    let remote_id = agent["elevenlabs_agent_id"].as_str().expect("remote id");
    let remote = remote_agent(remote_id).await.expect("exists on ElevenLabs");
    assert_eq!(remote["name"], name.as_str());
    // ElevenLabs asks our contact lookup who is calling only for agents with this switch on.
    assert_eq!(
        remote["platform_settings"]["overrides"]
            ["enable_conversation_initiation_client_data_from_webhook"],
        true
    );
    let config = &remote["conversation_config"];
    assert_eq!(config["conversation"]["text_only"], false);
    assert_eq!(
        config["agent"]["prompt"]["prompt"],
        "You sell solar panels. Be brief."
    );
    assert!(config["tts"]["voice_id"].is_string());
    assert!(config["agent"]["prompt"]["llm"].is_string());
    let items = &remote["platform_settings"]["data_collection"];
    for (id, kind, _) in DATA_COLLECTION {
        assert_eq!(items[*id]["type"], *kind, "{id}");
    }

    // It is what the webhooks route by: the local row maps the remote id to this tenant.
    let owner: uuid::Uuid = db()
        .await
        .query_one(
            "SELECT user_id FROM agents WHERE elevenlabs_agent_id = $1",
            &[&remote_id],
        )
        .await
        .expect("row")
        .get(0);
    assert_eq!(owner, tenant.id);
}

#[tokio::test]
async fn an_agent_can_be_created_from_the_models_fields_alone() {
    let tenant = Account::new().await;
    let name = unique("Plain");
    // design.md's Agent has no type or prompt: a form that sends its fields is enough.
    let agent = create(&tenant.token, json!({"name": name, "is_active": true})).await;
    assert_eq!(agent["type"], "call");
    assert_eq!(agent["is_active"], true);
    let prompt = shared::agents::default_prompt(&name, shared::agents::AgentType::Call);
    assert_eq!(agent["config"]["system_prompt"], prompt.as_str());
    let remote = remote_agent(agent["elevenlabs_agent_id"].as_str().expect("id"))
        .await
        .expect("remote");
    assert_eq!(
        remote["conversation_config"]["agent"]["prompt"]["prompt"],
        prompt.as_str()
    );
    let chat = create(
        &tenant.token,
        json!({"name": unique("Plain chat"), "type": "chat"}),
    )
    .await;
    assert_eq!(chat["config"]["text_only"], true);
}

#[tokio::test]
async fn a_chat_agent_is_text_only_and_has_no_line() {
    let tenant = Account::new().await;
    let agent = create(
        &tenant.token,
        json!({"name": unique("Chatty"), "type": "chat", "system_prompt": "Answer questions."}),
    )
    .await;
    assert_eq!(agent["type"], "chat");
    assert!(agent["phone_number_id"].is_null());
    assert_eq!(agent["config"]["text_only"], true);
    let remote = remote_agent(agent["elevenlabs_agent_id"].as_str().expect("id"))
        .await
        .expect("remote");
    assert_eq!(
        remote["conversation_config"]["conversation"]["text_only"],
        true
    );
}

#[tokio::test]
async fn invalid_agents_are_refused_and_nothing_is_created() {
    let tenant = Account::new().await;
    // Every refused body carries this marker; none may reach ElevenLabs.
    let marker = unique("marker");
    let prompt = format!("x {marker}");
    for body in [
        json!({"name": "", "type": "call", "system_prompt": prompt}),
        json!({"name": marker, "type": "call", "system_prompt": "  "}),
        json!({"name": "A\u{0}", "type": "call", "system_prompt": prompt}),
        json!({"name": "x".repeat(101), "type": "call", "system_prompt": prompt}),
        json!({"name": "A", "type": "call", "system_prompt": prompt, "language": "klingon"}),
        json!({"name": "A", "type": "call", "system_prompt": prompt, "voice_id": "../../x"}),
        json!({"name": "A", "type": "call", "system_prompt": prompt, "phone_number_id": "phnum_nope"}),
    ] {
        let response = post("/api/agents", &tenant.token, &body).await;
        assert_eq!(
            error_code(response, 400).await,
            "validation_error",
            "{body}"
        );
    }
    let response = post(
        "/api/agents",
        &tenant.token,
        &json!({"name": "A", "type": "robot", "system_prompt": prompt}),
    )
    .await;
    assert!(response.status().is_client_error());
    let creates = elevenlabs_sim::requests("/v1/convai/agents/create").await;
    assert!(
        !creates
            .iter()
            .any(|r| r["body"].to_string().contains(&marker)),
        "nothing reached ElevenLabs"
    );
    let list = json(get("/api/agents", &tenant.token).await).await;
    assert_eq!(list["pagination"]["total"], 0);
}

#[tokio::test]
async fn update_changes_remote_and_local_and_keeps_the_rest() {
    let tenant = Account::new().await;
    let agent = create(&tenant.token, call_agent(&unique("Before"))).await;
    let id = agent["id"].as_str().expect("id");
    let renamed = unique("After");
    let response = put(
        &format!("/api/agents/{id}"),
        &tenant.token,
        &json!({"name": renamed, "system_prompt": "New prompt", "voice_id": "voice_two"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let updated = json(response).await;
    assert_eq!(updated["name"], renamed.as_str());
    assert_eq!(updated["config"]["system_prompt"], "New prompt");
    assert_eq!(updated["config"]["voice_id"], "voice_two");
    assert_eq!(
        updated["config"]["first_message"], "Hi {{customer_name}}, this is Sunny.",
        "untouched fields stay"
    );
    let remote = remote_agent(agent["elevenlabs_agent_id"].as_str().expect("id"))
        .await
        .expect("remote");
    assert_eq!(remote["name"], renamed.as_str());
    assert!(remote["platform_settings"]["data_collection"]["intent_score"].is_object());

    // Deactivate through the alias; a type change is refused.
    let response = put(
        &format!("/agents/{id}"),
        &tenant.token,
        &json!({"is_active": false}),
    )
    .await;
    assert_eq!(json(response).await["is_active"], false);
    let response = put(
        &format!("/api/agents/{id}"),
        &tenant.token,
        &json!({"type": "chat"}),
    )
    .await;
    assert_eq!(error_code(response, 400).await, "validation_error");
}

#[tokio::test]
async fn delete_removes_remotely_and_keeps_the_calls() {
    let tenant = Account::new().await;
    let agent = create(&tenant.token, call_agent(&unique("Doomed"))).await;
    let id = agent["id"].as_str().expect("id");
    let remote_id = agent["elevenlabs_agent_id"].as_str().expect("remote id");
    let conversation = conversation_id();
    assert_eq!(
        deliver(&transcription(remote_id, &conversation, 61, "+14155550111"))
            .await
            .status(),
        200
    );
    eventually(20, "the call", || call_row(&conversation)).await;

    assert_eq!(
        delete(&format!("/api/agents/{id}"), &tenant.token)
            .await
            .status(),
        204
    );
    assert!(
        remote_agent(remote_id).await.is_none(),
        "gone on ElevenLabs"
    );
    let code = error_code(get(&format!("/api/agents/{id}"), &tenant.token).await, 404).await;
    assert_eq!(code, "not_found");
    let code = error_code(
        delete(&format!("/api/agents/{id}"), &tenant.token).await,
        404,
    )
    .await;
    assert_eq!(code, "not_found");
    let call = call_row(&conversation).await.expect("the call stays");
    assert_eq!(call.get::<_, uuid::Uuid>("agent_id").to_string(), id);
    let list = json(get("/api/agents", &tenant.token).await).await;
    assert_eq!(list["pagination"]["total"], 0);
}

#[tokio::test]
async fn another_tenants_agents_are_not_found_anywhere() {
    let owner = Account::new().await;
    let other = Account::new().await;
    let agent = create(&owner.token, call_agent(&unique("Mine"))).await;
    let id = agent["id"].as_str().expect("id");
    let paths = [
        format!("/api/agents/{id}"),
        format!("/api/agents/{id}/config"),
        format!("/agents/{id}"),
        format!("/agents/{id}/config"),
    ];
    for path in &paths {
        let code = error_code(get(path, &other.token).await, 404).await;
        assert_eq!(code, "not_found", "{path}");
    }
    for path in [format!("/api/agents/{id}"), format!("/agents/{id}")] {
        let response = put(&path, &other.token, &json!({"name": "stolen"})).await;
        assert_eq!(error_code(response, 404).await, "not_found");
        let response = delete(&path, &other.token).await;
        assert_eq!(error_code(response, 404).await, "not_found");
    }
    for bad in [
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
        "%27%20OR%201=1--",
    ] {
        let code = error_code(get(&format!("/api/agents/{bad}"), &owner.token).await, 404).await;
        assert_eq!(code, "not_found");
    }
    let theirs = json(get("/api/agents", &other.token).await).await;
    assert_eq!(theirs["pagination"]["total"], 0, "{theirs}");
    let mine = json(get("/agents", &owner.token).await).await;
    assert_eq!(mine["pagination"]["total"], 1);
    assert_eq!(mine["data"][0]["id"], id);
    // Untouched by the other tenant's attempts.
    let remote = remote_agent(agent["elevenlabs_agent_id"].as_str().expect("id")).await;
    assert_eq!(remote.expect("still there")["name"], agent["name"]);
}

#[tokio::test]
async fn lists_filter_search_and_page() {
    let tenant = Account::new().await;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    for i in 0..3 {
        create(&tenant.token, call_agent(&format!("Caller {i} {tag}"))).await;
    }
    create(
        &tenant.token,
        json!({"name": format!("Chat 100%_ {tag}"), "type": "chat", "system_prompt": "x"}),
    )
    .await;
    let calls = json(get("/api/agents?type=call", &tenant.token).await).await;
    assert_eq!(calls["pagination"]["total"], 3);
    let search = json(get("/api/agents?search=100%25_", &tenant.token).await).await;
    assert_eq!(search["pagination"]["total"], 1, "% and _ are literal");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/agents?limit=3&cursor={c}"),
            None => "/api/agents?limit=3".to_owned(),
        };
        let page = json(get(&path, &tenant.token).await).await;
        assert_eq!(page["pagination"]["total"], 4);
        for agent in page["data"].as_array().expect("data") {
            assert_eq!(agent["remote_status"], "ok");
            seen.push(agent["id"].as_str().expect("id").to_owned());
        }
        match page["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut unique_ids = seen.clone();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!((seen.len(), unique_ids.len()), (4, 4));
    let code = error_code(get("/api/agents?cursor=garbage", &tenant.token).await, 400).await;
    assert_eq!(code, "invalid_cursor");
}

#[tokio::test]
async fn elevenlabs_failures_are_502s_and_leave_nothing_behind() {
    let tenant = Account::new().await;
    let name = unique("Unlucky");
    elevenlabs_sim::fault(json!({
        "path_prefix": "/v1/convai/agents/create",
        "body_contains": name,
        "responses": [{"status": 500}, {"status": 500}, {"status": 500}, {"status": 500}],
    }))
    .await;
    let response = post("/api/agents", &tenant.token, &call_agent(&name)).await;
    assert_eq!(response.status(), 502);
    let body = json(response).await;
    assert_eq!(body["error"]["code"], "upstream_error");
    assert_eq!(body["error"]["details"]["status"], 500);
    let sent = elevenlabs_sim::requests("/v1/convai/agents/create").await;
    let tries = sent
        .iter()
        .filter(|r| r["body"]["name"] == name.as_str())
        .count();
    assert_eq!(
        tries, 1,
        "creating is not repeated after a 500: it may have happened"
    );
    let list = json(get("/api/agents", &tenant.token).await).await;
    assert_eq!(list["pagination"]["total"], 0);

    // A 429 is retried and the agent is created once.
    let name = unique("Patient");
    elevenlabs_sim::fault(json!({
        "path_prefix": "/v1/convai/agents/create",
        "body_contains": name,
        "responses": [{"status": 429, "headers": {"retry-after-ms": "50"}}],
    }))
    .await;
    create(&tenant.token, call_agent(&name)).await;
    let list = json(get("/api/agents", &tenant.token).await).await;
    assert_eq!(list["pagination"]["total"], 1);
}

#[tokio::test]
async fn a_failed_local_write_deletes_the_remote_agent_again() {
    let tenant = Account::new().await;
    let name = unique("Orphan");
    // ElevenLabs answers with an id we already map to another agent: our insert fails.
    let taken = Tenant::new().await.call_agent;
    elevenlabs_sim::fault(json!({
        "path_prefix": "/v1/convai/agents/create",
        "body_contains": name,
        "responses": [{"status": 200, "body": {"agent_id": taken}}],
    }))
    .await;
    let response = post("/api/agents", &tenant.token, &call_agent(&name)).await;
    assert!(response.status().is_server_error(), "{}", response.status());
    let deletes = elevenlabs_sim::requests(&format!("/v1/convai/agents/{taken}")).await;
    assert!(
        deletes.iter().any(|r| r["method"] == "DELETE"),
        "the remote agent is deleted again: {deletes:?}"
    );
    let list = json(get("/api/agents", &tenant.token).await).await;
    assert_eq!(list["pagination"]["total"], 0);
}

#[tokio::test]
async fn the_config_route_answers_what_elevenlabs_holds() {
    let tenant = Account::new().await;
    let agent = create(&tenant.token, call_agent(&unique("Configured"))).await;
    let id = agent["id"].as_str().expect("id");
    for path in [
        format!("/api/agents/{id}/config"),
        format!("/agents/{id}/config"),
    ] {
        let config = json(send(Method::GET, &path, &tenant.token, None).await).await;
        assert_eq!(config["agent_id"], agent["elevenlabs_agent_id"]);
        assert!(config["conversation_config"]["agent"].is_object());
    }
}

/// Scripts the simulator's answers to GET of this agent only, so concurrent tests are unaffected.
async fn fault_reads(remote_id: &str, responses: Value) {
    elevenlabs_sim::fault(json!({
        "path_prefix": format!("/v1/convai/agents/{remote_id}"),
        "method": "GET",
        "responses": responses,
    }))
    .await;
}

async fn reads_of(remote_id: &str) -> usize {
    elevenlabs_sim::requests(&format!("/v1/convai/agents/{remote_id}"))
        .await
        .iter()
        .filter(|r| r["method"] == "GET")
        .count()
}

#[tokio::test]
async fn reads_retry_429_and_5xx_then_give_up_with_a_502() {
    let tenant = Account::new().await;
    let agent = create(&tenant.token, call_agent(&unique("Flaky"))).await;
    let id = agent["id"].as_str().expect("id");
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let config = format!("/api/agents/{id}/config");

    // 429 then success: retried, answered.
    fault_reads(
        remote,
        json!([{"status": 429, "headers": {"retry-after-ms": "20"}}]),
    )
    .await;
    let before = reads_of(remote).await;
    assert_eq!(get(&config, &tenant.token).await.status(), 200);
    assert_eq!(reads_of(remote).await - before, 2);

    // Four 500s: one try and three retries, then 502 with ElevenLabs' message.
    fault_reads(
        remote,
        json!([{"status": 500}, {"status": 500}, {"status": 500}, {"status": 500}]),
    )
    .await;
    let before = reads_of(remote).await;
    let response = get(&config, &tenant.token).await;
    assert_eq!(response.status(), 502);
    let body = json(response).await;
    assert_eq!(body["error"]["code"], "upstream_error");
    assert_eq!(body["error"]["details"]["status"], 500);
    assert!(body["error"]["details"]["message"]
        .as_str()
        .expect("message")
        .contains("Internal server error"));
    assert_eq!(reads_of(remote).await - before, 4);

    // The agent list still answers while ElevenLabs fails; the agent is marked.
    fault_reads(
        remote,
        json!([{"status": 503}, {"status": 503}, {"status": 503}, {"status": 503}]),
    )
    .await;
    let list = json(get("/api/agents", &tenant.token).await).await;
    assert_eq!(list["data"][0]["remote_status"], "unavailable");
    assert!(list["data"][0]["config"].is_null());
}

#[tokio::test]
async fn slow_and_malformed_answers_are_502s() {
    let tenant = Account::new().await;
    let agent = create(&tenant.token, call_agent(&unique("Slow"))).await;
    let id = agent["id"].as_str().expect("id");
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let config = format!("/api/agents/{id}/config");

    // Every attempt outlasts the timeout scripts/test sets (1.5 s).
    fault_reads(
        remote,
        json!([{"delay_ms": 2000}, {"delay_ms": 2000}, {"delay_ms": 2000}, {"delay_ms": 2000}]),
    )
    .await;
    let response = get(&config, &tenant.token).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        json(response).await["error"]["details"]["reason"],
        "timeout"
    );

    fault_reads(remote, json!([{"raw": "{\"agent_id\": tru"}])).await;
    let response = get(&config, &tenant.token).await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        json(response).await["error"]["details"]["reason"],
        "malformed_response"
    );
    assert_eq!(
        get(&config, &tenant.token).await.status(),
        200,
        "back to normal"
    );
}

#[tokio::test]
async fn agents_per_tenant_are_capped_exactly_even_when_created_at_once() {
    let tenant = Account::new().await;
    let limit = 25;
    for i in 0..limit - 5 {
        create(&tenant.token, call_agent(&unique(&format!("Cap {i}")))).await;
    }
    let creations = futures::future::join_all((0..10).map(|i| {
        let token = tenant.token.clone();
        async move {
            post(
                "/api/agents",
                &token,
                &call_agent(&unique(&format!("Race {i}"))),
            )
            .await
        }
    }))
    .await;
    let created = creations.iter().filter(|r| r.status() == 201).count();
    assert_eq!(created, 5, "exactly up to the limit");
    for response in creations.into_iter().filter(|r| r.status() != 201) {
        assert_eq!(error_code(response, 403).await, "agent_limit_reached");
    }
    let list = json(get("/api/agents?limit=100", &tenant.token).await).await;
    assert_eq!(list["pagination"]["total"], limit);
    // Past the limit nothing is created at ElevenLabs any more (other tests create agents
    // meanwhile, so only this request's creation is looked for).
    let one_more = unique("One more");
    let refused = post("/api/agents", &tenant.token, &call_agent(&one_more)).await;
    assert_eq!(error_code(refused, 403).await, "agent_limit_reached");
    let reached = elevenlabs_sim::requests("/v1/convai/agents/create")
        .await
        .iter()
        .filter(|request| request["body"]["name"] == one_more.as_str())
        .count();
    assert_eq!(reached, 0);
}

#[tokio::test]
async fn listing_agents_reads_elevenlabs_a_few_at_a_time() {
    let tenant = Account::new().await;
    let mut remotes = Vec::new();
    for i in 0..16 {
        let agent = create(&tenant.token, call_agent(&unique(&format!("Fan {i}")))).await;
        remotes.push(
            agent["elevenlabs_agent_id"]
                .as_str()
                .expect("remote")
                .to_owned(),
        );
    }
    for remote in &remotes {
        fault_reads(remote, json!([{"delay_ms": 300}])).await;
    }
    let started = std::time::Instant::now();
    let list = json(get("/api/agents?limit=100", &tenant.token).await).await;
    let elapsed = started.elapsed();
    assert_eq!(list["data"].as_array().expect("data").len(), 16);
    assert!(list["data"]
        .as_array()
        .expect("data")
        .iter()
        .all(|a| a["remote_status"] == "ok"));
    // 16 reads of 300 ms, at most 8 at a time: two rounds at least (all at once would be one).
    assert!(
        elapsed >= std::time::Duration::from_millis(600),
        "the reads were not bounded: {elapsed:?}"
    );
}

#[tokio::test]
async fn agents_speak_other_languages_than_english() {
    let tenant = Account::new().await;
    let mut french = call_agent(&unique("Amélie"));
    french["language"] = json!("fr");
    let created = create(&tenant.token, french).await;
    assert_eq!(created["config"]["language"], "fr");
    let remote = remote_agent(created["elevenlabs_agent_id"].as_str().expect("id"))
        .await
        .expect("remote");
    assert_eq!(
        remote["conversation_config"]["tts"]["model_id"],
        "eleven_flash_v2_5"
    );
    // And back to English, whose agents ElevenLabs refuses with a v2.5 model.
    let remote_id = created["elevenlabs_agent_id"].as_str().expect("id");
    let back = put(
        &format!("/api/agents/{}", created["id"].as_str().expect("id")),
        &tenant.token,
        &json!({"language": "en"}),
    )
    .await;
    assert_eq!(back.status(), 200, "{:?}", back.text().await);
    let remote = remote_agent(remote_id).await.expect("remote");
    assert_eq!(
        remote["conversation_config"]["tts"]["model_id"],
        "eleven_flash_v2"
    );

    let english = create(&tenant.token, call_agent(&unique("Sunny"))).await;
    let response = put(
        &format!("/api/agents/{}", english["id"].as_str().expect("id")),
        &tenant.token,
        &json!({"language": "es"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["config"]["language"], "es");
}

#[tokio::test]
async fn settings_elevenlabs_refuses_are_400s_naming_its_reason() {
    let tenant = Account::new().await;
    let name = unique("Refused");
    let refusal = json!({"detail": {"status": "voice_not_found", "message": "A voice with the voice_id nope was not found."}});
    elevenlabs_sim::fault(json!({
        "path_prefix": "/v1/convai/agents/create",
        "body_contains": name,
        "responses": [{"status": 400, "body": refusal}],
    }))
    .await;
    let mut agent = call_agent(&name);
    agent["voice_id"] = json!("nope");
    let response = post("/api/agents", &tenant.token, &agent).await;
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_eq!(body["error"]["code"], "validation_error");
    assert!(
        body["error"]["details"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("voice_id nope")),
        "{body}"
    );
    let list = json(get("/api/agents", &tenant.token).await).await;
    assert_eq!(list["pagination"]["total"], 0);

    // The same on an update, and the agent is left as it was.
    let created = create(&tenant.token, call_agent(&unique("Kept"))).await;
    let remote = created["elevenlabs_agent_id"].as_str().expect("remote");
    elevenlabs_sim::fault(json!({
        "path_prefix": format!("/v1/convai/agents/{remote}"),
        "method": "PATCH",
        "responses": [{"status": 422, "body": refusal}],
    }))
    .await;
    let response = put(
        &format!("/api/agents/{}", created["id"].as_str().expect("id")),
        &tenant.token,
        &json!({"voice_id": "nope"}),
    )
    .await;
    assert_eq!(error_code(response, 400).await, "validation_error");
    let after = remote_agent(remote).await.expect("remote");
    assert_ne!(after["conversation_config"]["tts"]["voice_id"], "nope");
}

#[tokio::test]
async fn two_changes_of_an_agents_settings_at_once_both_stay() {
    let tenant = Account::new().await;
    let agent = create(&tenant.token, call_agent(&unique("Both"))).await;
    let path = format!("/api/agents/{}", agent["id"].as_str().expect("id"));
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote");
    let prompt = unique("You sell heat pumps.");
    // The prompt's write reaches ElevenLabs only after the greeting's has been sent.
    elevenlabs_sim::fault(json!({
        "path_prefix": format!("/v1/convai/agents/{remote}"),
        "method": "PATCH",
        "body_contains": prompt,
        "responses": [{"delay_ms": 800}],
    }))
    .await;
    let prompt_change = json!({"system_prompt": prompt});
    let first = put(&path, &tenant.token, &prompt_change);
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        put(
            &path,
            &tenant.token,
            &json!({"first_message": "Hello there."}),
        )
        .await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    let config = remote_agent(remote).await.expect("remote")["conversation_config"].clone();
    assert_eq!(config["agent"]["prompt"]["prompt"], prompt.as_str());
    assert_eq!(config["agent"]["first_message"], "Hello there.");
}

#[tokio::test]
async fn a_line_twilio_cannot_call_from_is_refused() {
    let tenant = Account::new().await;
    let mut agent = call_agent(&unique("Sip"));
    agent["phone_number_id"] = json!(simulators::elevenlabs::SIM_SIP_NUMBER_ID);
    let response = post("/api/agents", &tenant.token, &agent).await;
    assert_eq!(error_code(response, 400).await, "validation_error");
}
