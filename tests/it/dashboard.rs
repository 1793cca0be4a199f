//! Dashboards against the raw rows: after a random stream of events (duplicates, re-sent
//! transcriptions, separate analytics, failures), the rollup answers equal the same figures
//! computed from calls and lead_analytics. ETags, isolation and ranges.

use std::collections::HashSet;

use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{json, Value};

use crate::support::*;

/// One event of the stream: which conversation, its duration and intent score, and how it is
/// delivered.
#[derive(Debug, Clone)]
struct Step {
    conversation: usize,
    duration: i64,
    intent: i64,
    kind: u8,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (0..6usize, 1..400i64, 0..=20i64, 0..4u8).prop_map(
            |(conversation, duration, intent, kind)| Step {
                conversation,
                duration,
                intent,
                kind,
            },
        ),
        4..14,
    )
}

fn event_for(tenant: &Tenant, conversations: &[String], step: &Step) -> Value {
    let conversation = &conversations[step.conversation];
    let mut event = transcription(
        &tenant.call_agent,
        conversation,
        step.duration,
        "+14155550142",
    );
    event["data"]["analysis"]["data_collection_results"]["intent_score"]["value"] =
        json!(step.intent);
    match step.kind {
        // A later analysis of the same conversation (sent to the analytics route).
        1 => {
            event["event_timestamp"] = json!(chrono::Utc::now().timestamp() + 1);
        }
        // A call that failed: no credits, no analysis.
        2 => {
            event["data"]["status"] = json!("failed");
            event["data"]["analysis"] = Value::Null;
        }
        _ => {}
    }
    event
}

/// The overview's figures computed straight from the tenant's rows.
async fn from_raw_rows(tenant: uuid::Uuid) -> Value {
    let db = db().await;
    let calls = db
        .query_one(
            "SELECT count(*) FILTER (WHERE type = 'call' AND status <> 'in_progress'),
                    coalesce(sum(duration_seconds) FILTER (WHERE status <> 'in_progress'), 0)::bigint,
                    coalesce(sum(credits_charged), 0)::bigint,
                    count(*) FILTER (WHERE status <> 'in_progress' AND call_successful = 'success')
             FROM calls WHERE user_id = $1",
            &[&tenant],
        )
        .await
        .expect("calls");
    let leads = db
        .query_one(
            "SELECT count(*) FILTER (WHERE la.lead_status_tag = 'hot'),
                    count(*) FILTER (WHERE la.lead_status_tag = 'warm'),
                    count(*) FILTER (WHERE la.lead_status_tag = 'cold'),
                    count(*) FILTER (WHERE (la.cta_interactions ->> 'pricing_clicked')::boolean),
                    count(*)
             FROM lead_analytics la JOIN calls c ON c.id = la.call_id WHERE c.user_id = $1",
            &[&tenant],
        )
        .await
        .expect("leads");
    json!({
        "calls": calls.get::<_, i64>(0) as f64,
        "duration_seconds": calls.get::<_, i64>(1),
        "credits_used": calls.get::<_, i64>(2) as f64,
        "successful": calls.get::<_, i64>(3),
        "hot": leads.get::<_, i64>(0), "warm": leads.get::<_, i64>(1), "cold": leads.get::<_, i64>(2),
        "pricing": leads.get::<_, i64>(3), "analyzed": leads.get::<_, i64>(4),
    })
}

/// The processor's rollups hold exactly what migration V0012's functions recompute from the
/// tenant's rows (the definition the read benchmark seeds with); rows a moved or replaced
/// figure left at zero do not count, and a row with any figure left is compared.
async fn assert_rollups_match_recomputed(tenant: uuid::Uuid) {
    assert_rollups_match_recomputed_in(&db().await, tenant).await;
}

async fn assert_rollups_match_recomputed_in(db: &tokio_postgres::Client, tenant: uuid::Uuid) {
    let counted = |table: &str, recomputed: &str, figures: &str| {
        (
            table.to_owned(),
            format!("SELECT * FROM {table} WHERE user_id = $1 AND {figures}"),
            format!("SELECT * FROM {recomputed}(ARRAY[$1::uuid])"),
        )
    };
    for (kept, kept_rows, recomputed_rows) in [
        counted(
            "daily_agent_stats",
            "daily_agent_stats_recomputed",
            "(calls, chats, completed, failed, successful, duration_seconds, credits_used)
                <> (0, 0, 0, 0, 0, 0, 0)",
        ),
        counted(
            "daily_lead_stats",
            "daily_lead_stats_recomputed",
            "analyzed > 0",
        ),
        // The tenant's days (V0035), as its agents' rows recomputed add up.
        (
            "daily_tenant_stats".to_owned(),
            "SELECT user_id, day, calls::bigint, chats::bigint, duration_seconds, credits_used
             FROM daily_tenant_stats WHERE user_id = $1
                 AND (calls, chats, duration_seconds, credits_used) <> (0, 0, 0, 0)"
                .to_owned(),
            "SELECT user_id, day, sum(calls), sum(chats), sum(duration_seconds)::bigint,
                 sum(credits_used)::bigint
             FROM daily_agent_stats_recomputed(ARRAY[$1::uuid]) GROUP BY 1, 2"
                .to_owned(),
        ),
    ] {
        let differing: Vec<String> = db
            .query(
                &format!(
                    "SELECT 'kept ' || d::text FROM ({kept_rows} EXCEPT ALL {recomputed_rows}) d
                     UNION ALL
                     SELECT 'recomputed ' || d::text FROM ({recomputed_rows} EXCEPT ALL {kept_rows}) d"
                ),
                &[&tenant],
            )
            .await
            .expect(&kept)
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(differing.is_empty(), "{kept}: {differing:#?}");
    }
}

async fn run_stream(steps: Vec<Step>) {
    let tenant = Tenant::new().await;
    let conversations: Vec<String> = (0..6).map(|_| conversation_id()).collect();
    let mut sent = HashSet::new();
    for step in &steps {
        let event = event_for(&tenant, &conversations, step);
        // Every event twice: the second is an exact redelivery.
        let route = if step.kind == 1 {
            "call-analytics"
        } else {
            "call-completed"
        };
        let bytes = serde_json::to_vec(&event).expect("json");
        for _ in 0..2 {
            let response = post_webhook(route, &bytes, Some(sign_now(&bytes))).await;
            assert_eq!(response.status(), 200);
        }
        sent.insert(serde_json::to_string(&event).expect("json"));
    }
    let touched: HashSet<&String> = steps
        .iter()
        .map(|s| &conversations[s.conversation])
        .collect();
    for conversation in &touched {
        eventually(30, "the stream's calls", || call_row(conversation)).await;
    }
    // Let the last events land (each event is one transaction; the queue is drained).
    let expected = sent.len() as i64;
    eventually(30, "every event processed", || async {
        let mut done = 0;
        for conversation in &touched {
            done += processed_count(conversation).await;
        }
        (done >= expected).then_some(())
    })
    .await;

    assert_rollups_match_recomputed(tenant.id).await;
    let raw = from_raw_rows(tenant.id).await;
    let overview = json(get("/api/dashboard/overview?days=2", &tenant.token).await).await;
    assert_eq!(
        overview["calls"]["value"], raw["calls"],
        "{overview}\n{raw}"
    );
    assert_eq!(overview["credits_used"]["value"], raw["credits_used"]);
    let minutes =
        (raw["duration_seconds"].as_i64().expect("secs") as f64 / 60.0 * 100.0).round() / 100.0;
    assert_eq!(overview["minutes"]["value"], minutes);
    for tag in ["hot", "warm", "cold"] {
        assert_eq!(overview["leads_by_tag"][tag], raw[tag], "{tag}");
    }
    let analytics = json(get("/api/dashboard/analytics?days=2", &tenant.token).await).await;
    let funnel = &analytics["cta_funnel"];
    assert_eq!(funnel[0]["count"], raw["analyzed"]);
    assert_eq!(funnel[1]["count"], raw["pricing"]);
    let successful: i64 = analytics["daily"]
        .as_array()
        .expect("daily")
        .iter()
        .map(|d| d["successful"].as_i64().expect("n"))
        .sum();
    assert_eq!(successful, raw["successful"].as_i64().expect("n"));
    let bucketed: i64 = analytics["score_distribution"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["count"].as_i64().expect("n"))
        .sum();
    let scored = raw["hot"].as_i64().unwrap_or(0)
        + raw["warm"].as_i64().unwrap_or(0)
        + raw["cold"].as_i64().unwrap_or(0);
    assert_eq!(bucketed, scored);
}

#[test]
fn rollups_match_the_raw_rows_after_random_event_streams() {
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 4,
        ..ProptestConfig::default()
    });
    runner
        .run(&steps(), |steps| {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(run_stream(steps));
            Ok(())
        })
        .expect("rollups equal raw rows");
}

/// A call is charged once, by its first transcription; when a later one moves its start to
/// another day, its credits move with its count. (The random streams above only met this when
/// they ran across midnight, UTC: each event starts its call `duration` seconds before now.)
#[tokio::test]
async fn a_call_moved_to_another_day_takes_its_credits_along() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let today = chrono::Utc::now().timestamp();
    // Two days back: yesterday could still be today's date 90 seconds ago.
    for (events, started) in [(1, today - 2 * 86_400), (2, today - 90)] {
        let mut event = transcription(&tenant.call_agent, &conversation, 90, "+14155550142");
        event["data"]["metadata"]["start_time_unix_secs"] = json!(started);
        deliver(&event).await;
        eventually(30, "the event processed", || async {
            (processed_count(&conversation).await >= events).then_some(())
        })
        .await;
    }
    let row = call_row(&conversation).await.expect("the call");
    assert_eq!(row.get::<_, i64>("credits_charged"), 2, "charged once");
    assert_rollups_match_recomputed(tenant.id).await;
}

/// The rollups count a call under the agent its row names, as V0012 recomputes them, even
/// when a later event of the conversation names another of the tenant's agents.
#[tokio::test]
async fn a_call_counts_under_its_own_agent_whatever_a_later_event_names() {
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let mut first = transcription(&tenant.call_agent, &conversation, 60, "+14155550146");
    first["data"]["analysis"] = Value::Null;
    let mut analysis = transcription(&tenant.chat_agent, &conversation, 60, "+14155550146");
    analysis["event_timestamp"] = json!(chrono::Utc::now().timestamp() + 1);
    for (events, (route, event)) in [("call-completed", first), ("call-analytics", analysis)]
        .into_iter()
        .enumerate()
    {
        let bytes = serde_json::to_vec(&event).expect("json");
        let response = post_webhook(route, &bytes, Some(sign_now(&bytes))).await;
        assert_eq!(response.status(), 200);
        eventually(30, "the event processed", || async {
            (processed_count(&conversation).await > events as i64).then_some(())
        })
        .await;
    }
    let row = call_row(&conversation).await.expect("the call");
    assert_eq!(
        row.get::<_, Option<String>>("call_successful").as_deref(),
        Some("success")
    );
    assert_rollups_match_recomputed(tenant.id).await;
}

/// ElevenLabs' answer to an outbound call can land after the webhook that says the call never
/// started. The answer gives the call its start, so a failure from another day moves to
/// today, its rollup with it.
#[tokio::test]
async fn a_late_answer_moves_a_failed_call_to_its_start_day() {
    use shared::calls::event::{CallEvent, CallRef, Placed};
    let tenant = Tenant::new().await;
    let state = app_state().await;
    let settings = state.settings().await.expect("settings");
    let mut client = state.db().get().await.expect("a connection");
    let agent = shared::calls::owner::of_agent(&client, &tenant.call_agent)
        .await
        .expect("lookup")
        .expect("the agent");
    let call = CallRef {
        agent,
        conversation_id: conversation_id(),
        event_at: chrono::Utc::now(),
    };
    let failed = CallEvent::InitiationFailed {
        to: Some("+14155550145".into()),
        reason: "busy".into(),
    };
    apply(&mut client, &settings, &call, &failed).await;
    // The failure two days back, its rollup recomputed to match.
    client
        .batch_execute(&format!(
            "UPDATE calls SET created_at = created_at - interval '2 days'
                WHERE elevenlabs_conversation_id = '{conversation}';
             DELETE FROM daily_agent_stats WHERE user_id = '{tenant}';
             INSERT INTO daily_agent_stats
                SELECT * FROM daily_agent_stats_recomputed(ARRAY['{tenant}'::uuid])",
            conversation = call.conversation_id,
            tenant = tenant.id,
        ))
        .await
        .expect("the failure two days back");
    let placed = CallEvent::Placed(Placed {
        to_number: "+14155550145".into(),
        line: "phnum_1".into(),
        contact_id: None,
        call_sid: None,
    });
    apply(&mut client, &settings, &call, &placed).await;
    let row = call_row(&call.conversation_id).await.expect("the call");
    let started: chrono::DateTime<chrono::Utc> = row.get("started_at");
    assert_eq!(started.date_naive(), chrono::Utc::now().date_naive());
    assert_rollups_match_recomputed(tenant.id).await;
}

/// Applies `event` to `call` in a transaction of its own, as the processor does.
async fn apply(
    client: &mut deadpool_postgres::Client,
    settings: &shared::settings::Settings,
    call: &shared::calls::event::CallRef,
    event: &shared::calls::event::CallEvent,
) {
    let tx = client.transaction().await.expect("tx");
    shared::calls::lifecycle::apply(&tx, settings, call, event)
        .await
        .expect("applied");
    tx.commit().await.expect("commit");
}

/// Days are UTC days whatever time zone the database's sessions run in: Neon's default is not
/// ours to set, and the rollup's recompute (V0012) counts UTC days. The processor and the
/// dashboard's top leads run here on a database whose sessions are at UTC+14, where noon UTC
/// is already the next day.
#[tokio::test]
async fn days_are_utc_days_whatever_the_sessions_time_zone() {
    let database = ScratchDatabase::create("zone").await;
    database
        .admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET timezone TO 'Pacific/Kiritimati'",
            database.name
        ))
        .await
        .expect("the database's time zone");
    let config = shared::Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(database.url(&stack().database_url)),
        "DATABASE_DIRECT_URL" => Some(database.url(&direct_url())),
        other => std::env::var(other).ok(),
    })
    .expect("config");
    let state = shared::AppState::new(config).await.expect("state");
    let mut client = state.db().get_direct().await.expect("a direct connection");
    shared::db::migrate(&mut client).await.expect("migrate");
    drop(client);

    let mut client = state.db().get().await.expect("a pooled connection");
    let zone: String = client
        .query_one("SHOW timezone", &[])
        .await
        .expect("the session's time zone")
        .get(0);
    assert_eq!(zone, "Pacific/Kiritimati");
    let identity = shared::users::Identity {
        subject: "zone",
        email: Some("zone@example.com"),
        name: None,
        email_verified: true,
    };
    let tenant = shared::users::provision(&mut client, &identity)
        .await
        .expect("the tenant")
        .tenant();
    client
        .execute(
            "INSERT INTO agents (user_id, elevenlabs_agent_id, name) VALUES ($1, 'agent_zone', 'zone')",
            &[tenant.as_uuid()],
        )
        .await
        .expect("an agent");

    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    let noon = day.and_hms_opt(12, 0, 0).expect("noon").and_utc();
    let mut event = transcription("agent_zone", &conversation_id(), 60, "+14155550144");
    event["data"]["metadata"]["start_time_unix_secs"] = json!(noon.timestamp());
    let body = event.to_string();
    let queued = shared::aws::queue::QueuedEvent {
        version: 1,
        source: shared::aws::queue::EventSource::Elevenlabs,
        route: "call-completed".into(),
        event_key: shared::webhooks::event_key(
            shared::aws::queue::EventSource::Elevenlabs,
            body.as_bytes(),
        ),
        received_at: chrono::Utc::now(),
        body: Some(body),
        body_s3_key: None,
    };
    let message = serde_json::to_string(&queued).expect("a queued event");
    let outcome = shared::webhooks::process::process_message(&state, &message)
        .await
        .expect("processed");
    assert_eq!(outcome, shared::webhooks::Outcome::Applied);

    let days: Vec<chrono::NaiveDate> = client
        .query(
            "SELECT day FROM daily_agent_stats WHERE user_id = $1 AND calls > 0",
            &[tenant.as_uuid()],
        )
        .await
        .expect("the rollup")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(days, [day], "the call counts on its UTC day");
    assert_rollups_match_recomputed_in(&client, *tenant.as_uuid()).await;

    let on = |day| shared::dashboard::Range { from: day, to: day }.instants();
    let top_of = |contacted| shared::leads::read::top_scored(&client, tenant, contacted, None, 5);
    assert_eq!(top_of(on(day)).await.expect("top leads").len(), 1);
    let next_day = day + chrono::Duration::days(1);
    assert!(top_of(on(next_day)).await.expect("top leads").is_empty());

    drop(client);
    drop(state);
    database.drop().await;
}

#[tokio::test]
async fn an_unchanged_dashboard_is_a_304_until_a_call_lands() {
    let tenant = Tenant::new().await;
    let first = get("/api/dashboard/overview", &tenant.token).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("etag").to_owned();
    // The computed answer is cached in DynamoDB under its ETag.
    let aws = shared::aws::Client::default();
    let table = std::env::var("DYNAMODB_TABLE").expect("table");
    let key = format!("dashboard#{}#{etag}", tenant.id);
    let cached = shared::aws::cache::get(&aws, &table, &key).await;
    let body = json(first).await;
    assert_eq!(
        serde_json::from_str::<Value>(&cached.expect("cached")).expect("json"),
        body
    );
    // The API keeps it too: asked again, it answers without reading the table.
    shared::aws::cache::put(
        &aws,
        &table,
        &key,
        "{\"from\": \"the table\"}".into(),
        std::time::Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        json(get("/api/dashboard/overview", &tenant.token).await).await,
        body
    );
    let again = get_if_none_match("/api/dashboard/overview", &tenant.token, &etag).await;
    assert_eq!(again.status(), 304);

    let conversation = conversation_id();
    deliver(&transcription(
        &tenant.call_agent,
        &conversation,
        70,
        "+14155550143",
    ))
    .await;
    eventually(20, "the call", || call_row(&conversation)).await;
    let changed = get_if_none_match("/api/dashboard/overview", &tenant.token, &etag).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().expect("etag"), etag);
    let body = json(changed).await;
    assert_eq!(body["calls"]["value"], 1.0);
    assert_eq!(body["credits_left"], 15 - 2);

    // Another query of the same data has its own tag.
    let other = get("/api/dashboard/overview?days=7", &tenant.token).await;
    assert_ne!(other.headers()["etag"].to_str().expect("etag"), etag);
}

/// The ETag's version and balance come with the user authentication reads, so a change of
/// either ends the 304 at once.
#[tokio::test]
async fn a_balance_change_alone_ends_the_304() {
    let tenant = Tenant::new().await;
    let admin = Account::admin().await;
    let path = "/api/dashboard/overview";
    let first = get(path, &tenant.token).await;
    let etag = first.headers()["etag"].to_str().expect("etag").to_owned();
    assert_eq!(json(first).await["credits_left"], 15);
    assert_eq!(
        get_if_none_match(path, &tenant.token, &etag).await.status(),
        304
    );

    let grant = post(
        &format!("/admin/users/{}/credits", tenant.id),
        &admin.token,
        &json!({"amount": 10, "reason": "Goodwill"}),
    )
    .await;
    assert_eq!(grant.status(), 201);
    let changed = get_if_none_match(path, &tenant.token, &etag).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().expect("etag"), etag);
    assert_eq!(json(changed).await["credits_left"], 25);
}

#[tokio::test]
async fn dashboards_never_count_another_tenants_calls() {
    let busy = Tenant::new().await;
    let quiet = Tenant::new().await;
    let conversation = conversation_id();
    deliver(&transcription(
        &busy.call_agent,
        &conversation,
        130,
        "+14155550144",
    ))
    .await;
    eventually(20, "the call", || call_row(&conversation)).await;
    for path in [
        "/api/dashboard/overview",
        "/analytics/dashboard",
        "/api/dashboard/analytics",
        "/analytics/calls",
        "/analytics/leads",
        "/analytics/reports",
    ] {
        let body = json(get(path, &quiet.token).await).await;
        let text = body.to_string();
        assert!(!text.contains(&busy.id.to_string()), "{path}");
        if let Some(calls) = body["calls"]["value"].as_f64() {
            assert_eq!(calls, 0.0, "{path}");
        }
        if let Some(agents) = body["by_agent"].as_array() {
            assert!(agents.is_empty(), "{path}: {body}");
        }
    }
    let analytics = json(get("/api/dashboard/analytics?days=14", &busy.token).await).await;
    assert_eq!(analytics["daily"].as_array().expect("days").len(), 14);
    assert_eq!(analytics["by_agent"][0]["calls"], 1);
    assert_eq!(analytics["by_agent"][0]["agent_name"], "call agent");
    // RFC 3339 times, as the calls list takes them, mean their days.
    let from = (chrono::Utc::now() - chrono::Duration::days(6))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let timed = json(
        get(
            &format!("/api/dashboard/analytics?from={from}&to={to}"),
            &busy.token,
        )
        .await,
    )
    .await;
    assert_eq!(timed["daily"].as_array().expect("days").len(), 7, "{timed}");
    assert_eq!(timed["by_agent"][0]["calls"], 1);

    for (query, status) in [
        ("?days=0", 400),
        ("?days=400", 400),
        ("?from=2026-02-30", 400),
        ("?from=last-week", 400),
        ("?from=2030-01-01&to=2029-01-01", 400),
    ] {
        let response = get(&format!("/api/dashboard/overview{query}"), &busy.token).await;
        let got = response.status().as_u16();
        assert!(got == status, "{query}: {got}");
    }
}

/// A merge, an assignment and an agent renamed change what reports show (their leads, agent
/// names) without a call event: each ends the 304 too.
#[tokio::test]
async fn a_merge_an_assignment_or_a_rename_ends_the_304() {
    let tenant = Tenant::new().await;
    let mut leads = Vec::new();
    for _ in 0..2 {
        let conversation = conversation_id();
        deliver(&transcription(
            &tenant.call_agent,
            &conversation,
            61,
            &phone(),
        ))
        .await;
        let row = eventually(20, "the call's lead", || async {
            call_row(&conversation)
                .await
                .filter(|row| row.get::<_, Option<uuid::Uuid>>("lead_id").is_some())
        })
        .await;
        leads.push(row.get::<_, uuid::Uuid>("lead_id").to_string());
    }
    let agent: uuid::Uuid = agent_id_of(&tenant.call_agent).await;
    // An agent made through the API (the tenant's own have no ElevenLabs agent to rename).
    let made = post(
        "/api/agents",
        &tenant.token,
        &json!({"name": "Before", "type": "call", "system_prompt": "Be brief."}),
    )
    .await;
    let made = json(made).await["id"].as_str().expect("id").to_owned();
    let path = "/api/dashboard/overview";
    let changes = [
        (
            format!("/api/leads/{}", leads[0]),
            json!({"agent_id": agent}),
            "assign",
        ),
        (
            format!("/api/leads/{}/merge", leads[0]),
            json!({"duplicate_id": leads[1]}),
            "merge",
        ),
        (
            format!("/api/agents/{made}"),
            json!({"name": "Renamed"}),
            "rename",
        ),
    ];
    for (change, body, what) in changes {
        let etag = get(path, &tenant.token).await.headers()["etag"]
            .to_str()
            .expect("etag")
            .to_owned();
        assert_eq!(
            get_if_none_match(path, &tenant.token, &etag).await.status(),
            304
        );
        let response = if what == "merge" {
            post(&change, &tenant.token, &body).await
        } else {
            put(&change, &tenant.token, &body).await
        };
        assert_eq!(response.status(), 200, "{what}");
        assert_eq!(
            get_if_none_match(path, &tenant.token, &etag).await.status(),
            200,
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_years_analytics_of_many_agents_fits_a_lambda_response_gzipped() {
    use std::io::Read;

    let tenant = Tenant::new().await;
    // 60 agents, each with a call this year: a daily series per agent over 365 days.
    db().await
        .execute(
            "WITH made AS (
                INSERT INTO agents (user_id, elevenlabs_agent_id, name)
                SELECT $1, 'agent_year_' || gen_random_uuid(), 'Agent ' || i
                FROM generate_series(1, 60) i RETURNING id, user_id)
             INSERT INTO daily_agent_stats (user_id, agent_id, day, calls, completed)
             SELECT user_id, id, current_date - 100, 1, 1 FROM made",
            &[&tenant.id],
        )
        .await
        .expect("agents and their rollups");
    let path = "/api/dashboard/analytics?days=365";
    let response = get_with(path, &tenant.token, "accept-encoding", "gzip").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.expect("body");
    // Lambda's limit is 6 MB, for the base64 of a binary body.
    assert!(compressed.len() * 4 / 3 < 6_000_000, "{}", compressed.len());
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .expect("gzip");
    assert!(
        text.len() > 6_000_000,
        "sent whole, it would not fit: {}",
        text.len()
    );
    let analytics: Value = serde_json::from_str(&text).expect("json");
    assert!(analytics["by_agent"].as_array().expect("agents").len() >= 60);
    // Small answers are sent as they are.
    let small = get_with(
        "/api/dashboard/analytics?days=2",
        &tenant.token,
        "accept-encoding",
        "gzip",
    )
    .await;
    assert!(small.headers().get("content-encoding").is_none());
}
