//! Per-agent dashboards (`agent_id`, `type`) and the design's `/analytics/*` endpoints: the
//! scored-conversation list, per-call metrics and the period report, JSON and CSV.

use serde_json::{json, Value};

use crate::support::*;

/// Two scored calls and one scored chat, processed; the tenant's agents' row ids.
async fn two_calls_and_a_chat(tenant: &Tenant) -> (String, String) {
    for duration in [61, 130] {
        let conversation = conversation_id();
        deliver(&transcription(
            &tenant.call_agent,
            &conversation,
            duration,
            &phone(),
        ))
        .await;
        // The processor takes a batch's records concurrently: each is stored before the next
        // is sent, so that the newer is reliably the newer.
        completed(&conversation).await;
    }
    let chat = conversation_id();
    deliver(&chat_transcription(
        &tenant.chat_agent,
        &chat,
        Some("visitor-1"),
        json!({}),
        json!({}),
    ))
    .await;
    completed(&chat).await;
    (
        agent_id_of(&tenant.call_agent).await.to_string(),
        agent_id_of(&tenant.chat_agent).await.to_string(),
    )
}

async fn completed(conversation: &str) {
    eventually(20, "the conversation", || async {
        call_row(conversation)
            .await
            .filter(|row| row.get::<_, String>("status") == "completed")
    })
    .await;
}

async fn overview(tenant: &Tenant, query: &str) -> Value {
    json(get(&format!("/api/dashboard/overview{query}"), &tenant.token).await).await
}

#[tokio::test]
async fn dashboards_answer_for_one_agent_or_one_type() {
    let tenant = Tenant::new().await;
    let (call_agent, chat_agent) = two_calls_and_a_chat(&tenant).await;

    let all = overview(&tenant, "").await;
    assert_eq!(
        (
            all["calls"]["value"].as_f64(),
            all["chats"]["value"].as_f64()
        ),
        (Some(2.0), Some(1.0))
    );
    for query in [format!("?agent_id={call_agent}"), "?type=call".into()] {
        let calls = overview(&tenant, &query).await;
        assert_eq!(calls["calls"]["value"], 2.0, "{query}");
        assert_eq!(calls["chats"]["value"], 0.0, "{query}");
    }
    for query in [format!("?agent_id={chat_agent}"), "?type=chat".into()] {
        let chats = overview(&tenant, &query).await;
        assert_eq!(chats["calls"]["value"], 0.0, "{query}");
        assert_eq!(chats["chats"]["value"], 1.0, "{query}");
    }
    let mismatched = overview(&tenant, &format!("?agent_id={call_agent}&type=chat")).await;
    assert_eq!(mismatched["calls"]["value"], 0.0);

    let analytics = json(
        get(
            &format!("/api/dashboard/analytics?days=7&agent_id={call_agent}"),
            &tenant.token,
        )
        .await,
    )
    .await;
    let by_agent = analytics["by_agent"].as_array().expect("by_agent");
    assert_eq!(by_agent.len(), 1, "{analytics}");
    assert_eq!(by_agent[0]["agent_id"], call_agent.as_str());
    assert_eq!(by_agent[0]["type"], "call");
    let daily = by_agent[0]["daily"]
        .as_array()
        .expect("the agent's own series");
    assert_eq!(daily.len(), 7);
    let calls: i64 = daily
        .iter()
        .map(|d| d["calls"].as_i64().expect("calls"))
        .sum();
    assert_eq!(calls, 2);
    let everyone = json(get("/api/dashboard/analytics?days=7", &tenant.token).await).await;
    assert_eq!(everyone["by_agent"].as_array().map(Vec::len), Some(2));

    let other = Tenant::new().await;
    for path in [
        format!("/api/dashboard/overview?agent_id={call_agent}"),
        format!("/api/dashboard/analytics?agent_id={call_agent}"),
        format!("/analytics/reports?agent_id={call_agent}"),
        format!("/analytics/leads?agent_id={call_agent}"),
        format!("/analytics/calls?agent_id={call_agent}"),
    ] {
        let answer = get(&path, &other.token).await;
        assert_eq!(
            error_code(answer, 404).await,
            "not_found",
            "{path}: another tenant's agent"
        );
    }
    let bad = get("/api/dashboard/overview?type=fax", &tenant.token).await;
    assert_eq!(error_code(bad, 400).await, "invalid_query");
}

#[tokio::test]
async fn analytics_lists_scored_conversations_and_call_metrics() {
    let tenant = Tenant::new().await;
    let (call_agent, _) = two_calls_and_a_chat(&tenant).await;

    let scored = every_page("/analytics/leads", &tenant.token, 2).await;
    assert_eq!(scored.len(), 3);
    assert_eq!(scored[0]["type"], "chat", "newest first");
    for row in &scored {
        assert_eq!(row["total_score"], 74, "{row}");
        assert_eq!(row["cta_interactions"]["pricing_clicked"], true);
        assert!(row["reasoning"].is_object() && row["call_id"].is_string());
    }
    let calls_only = json(
        get(
            &format!("/analytics/leads?agent_id={call_agent}&lead_status=hot"),
            &tenant.token,
        )
        .await,
    )
    .await;
    assert_eq!(calls_only["pagination"]["total"], 2);
    // Counted from the analyses' own tenant column when no filter reads the call: only this
    // tenant's, while other tests' tenants have analyses too.
    for query in ["", "?lead_status=hot", "?min_score=74&limit=1"] {
        let all = json(get(&format!("/analytics/leads{query}"), &tenant.token).await).await;
        assert_eq!(all["pagination"]["total"], 3, "{query}");
    }
    let none = json(get("/analytics/leads?min_score=75", &tenant.token).await).await;
    assert_eq!(none["pagination"]["total"], 0);
    let bad = get("/analytics/leads?min_score=101", &tenant.token).await;
    assert_eq!(error_code(bad, 400).await, "validation_error");

    let today = chrono::Utc::now().date_naive();
    let metrics = every_page(
        &format!("/analytics/calls?from={today}&to={today}"),
        &tenant.token,
        2,
    )
    .await;
    assert_eq!(metrics.len(), 3);
    let durations: Vec<i64> = metrics
        .iter()
        .filter(|m| m["type"] == "call")
        .map(|m| m["duration_seconds"].as_i64().expect("duration"))
        .collect();
    assert_eq!(durations, [130, 61]);
    assert!(metrics
        .iter()
        .all(|m| m["status"] == "completed" && m["total_score"] == 74));
    let chats = json(get("/analytics/calls?type=chat", &tenant.token).await).await;
    assert_eq!(chats["pagination"]["total"], 1);
    let yesterday = today - chrono::Duration::days(1);
    let before = json(get(&format!("/analytics/calls?to={yesterday}"), &tenant.token).await).await;
    assert_eq!(before["pagination"]["total"], 0);
}

#[tokio::test]
async fn reports_come_as_json_and_as_a_csv_download() {
    let tenant = Tenant::new().await;
    let (_, chat_agent) = two_calls_and_a_chat(&tenant).await;

    let report = json(get("/analytics/reports?days=7", &tenant.token).await).await;
    assert_eq!(report["kpis"]["calls"]["value"], 2.0);
    assert_eq!(report["kpis"]["chats"]["value"], 1.0);
    assert_eq!(report["agents"].as_array().map(Vec::len), Some(2));
    let top = report["top_leads"].as_array().expect("top leads");
    assert_eq!(
        top.len(),
        3,
        "the two called numbers and the chat's visitor: {report}"
    );
    assert!(top.iter().all(|lead| lead["total_score"] == 74));

    let chats = json(
        get(
            &format!("/analytics/reports?agent_id={chat_agent}"),
            &tenant.token,
        )
        .await,
    )
    .await;
    assert_eq!(chats["agents"].as_array().map(Vec::len), Some(1));
    assert_eq!(chats["kpis"]["calls"]["value"], 0.0);

    let response = get("/analytics/reports?days=7&format=csv", &tenant.token).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(headers["content-disposition"]
        .to_str()
        .expect("ascii")
        .starts_with("attachment"));
    let csv = response.text().await.expect("csv");
    let tables: Vec<&str> = csv.split("\n\n").collect();
    assert_eq!(tables.len(), 3, "{csv}");
    assert!(
        tables[0].starts_with("kpi,value,previous,change_percent\ncalls,2,"),
        "{csv}"
    );
    assert_eq!(tables[1].lines().count(), 3, "header and two agents: {csv}");
    assert!(tables[2].starts_with("lead_id,name,phone_number"), "{csv}");
    assert_eq!(
        tables[2].trim_end().lines().count(),
        4,
        "header and three leads: {csv}"
    );
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    let again =
        get_if_none_match("/analytics/reports?days=7&format=csv", &tenant.token, &etag).await;
    assert_eq!(again.status(), 304);
    let bad = get("/analytics/reports?format=pdf", &tenant.token).await;
    assert_eq!(error_code(bad, 400).await, "invalid_query");
}
