//! The admin API against the running stack: the role matrix on every route, user search and
//! detail, credit adjustments (exact under concurrent usage), suspension, any tenant's agents,
//! settings validation, unmatched events matched to an agent, analytics and the audit log.
//! Changes to shared configuration (settings, secrets) are in the chaos binary, which runs
//! alone.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{
    self, call_row, conversation_id, deliver, error_code, eventually, generated_at, get,
    get_if_none_match, get_with, json, post, send, stack, transcription, url, Account, Tenant,
};

const SOME_ID: &str = "0b6bd1b4-4d1c-4a38-9a8e-1f1d6c1e2a11";

fn routes() -> Vec<(Method, String)> {
    let id = SOME_ID;
    vec![
        (Method::GET, "/admin/users".into()),
        (Method::GET, format!("/admin/users/{id}")),
        (Method::POST, format!("/admin/users/{id}/credits")),
        (Method::POST, format!("/admin/users/{id}/suspend")),
        (Method::POST, format!("/admin/users/{id}/reactivate")),
        (Method::GET, "/admin/agents".into()),
        (Method::GET, format!("/admin/agents/{id}")),
        (Method::PUT, format!("/admin/agents/{id}")),
        (Method::POST, format!("/admin/agents/{id}/deactivate")),
        (Method::GET, "/admin/config".into()),
        (Method::PUT, "/admin/config/settings".into()),
        (
            Method::PUT,
            "/admin/config/secrets/stripe_webhook_secret".into(),
        ),
        (Method::GET, "/admin/webhooks/dlq".into()),
        (Method::POST, "/admin/webhooks/dlq/replay".into()),
        (Method::GET, "/admin/webhooks/unmatched".into()),
        (Method::GET, format!("/admin/webhooks/unmatched/{id}")),
        (
            Method::POST,
            format!("/admin/webhooks/unmatched/{id}/replay"),
        ),
        (Method::GET, "/admin/purchases".into()),
        (Method::POST, format!("/admin/purchases/{id}/approve")),
        (Method::GET, "/admin/analytics".into()),
        (Method::GET, "/admin/audit-log".into()),
    ]
}

#[tokio::test]
async fn every_admin_route_needs_a_token_and_the_admin_role() {
    let user = Account::new().await;
    let body = json!({"amount": 5, "reason": "x", "value": "whsec_0123456789abcdef"});
    for (method, path) in routes() {
        let anonymous = stack()
            .http
            .request(method.clone(), url(&path))
            .json(&body)
            .send()
            .await
            .expect("answer");
        assert_eq!(anonymous.status(), 401, "{method} {path} without a token");
        let normal = send(method.clone(), &path, &user.token, Some(&body)).await;
        assert_eq!(
            error_code(normal, 403).await,
            "admin_required",
            "{method} {path}"
        );
    }
    // Nothing was changed by any of those.
    assert_eq!(user.credits().await, 15);
}

#[tokio::test]
async fn admins_search_users_and_see_one_users_whole_picture() {
    let admin = Account::admin().await;
    let tenant = Tenant::new().await;
    let email: String = support::db()
        .await
        .query_one("SELECT email FROM users WHERE id = $1", &[&tenant.id])
        .await
        .expect("email")
        .get(0);
    let fragment = &email[..12];
    let found = json(get(&format!("/admin/users?search={fragment}"), &admin.token).await).await;
    let ids: Vec<&str> = found["data"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert!(ids.contains(&tenant.id.to_string().as_str()), "{found}");
    let hostile = get("/admin/users?search=%25'%3B--", &admin.token).await;
    assert_eq!(
        hostile.status(),
        200,
        "search text is data, never SQL or a pattern"
    );
    let bad_status = get("/admin/users?status=deleted", &admin.token).await;
    assert_eq!(error_code(bad_status, 400).await, "validation_error");

    let detail = json(get(&format!("/admin/users/{}", tenant.id), &admin.token).await).await;
    assert_eq!(detail["credits"], 15);
    assert_eq!(detail["agents"].as_array().map(Vec::len), Some(2));
    assert_eq!(detail["usage"]["calls"], 0);
    assert_eq!(detail["recent_transactions"][0]["type"], "bonus");
    let missing = get(&format!("/admin/users/{SOME_ID}"), &admin.token).await;
    assert_eq!(error_code(missing, 404).await, "not_found");
}

/// A tenant's usage as the admin sees it, read from its days and its purchases: the figures of
/// its calls and ledger entries themselves.
#[tokio::test]
async fn one_users_usage_counts_its_finished_calls_and_its_purchases() {
    let admin = Account::admin().await;
    let account = Account::new().await;
    let tenant = Tenant::of(&account).await;
    let pool = support::pool(1);
    let seconds = [61, 125, 3_600];
    for duration in seconds {
        let event = transcription(
            &tenant.call_agent,
            &conversation_id(),
            duration,
            "+14155550123",
        );
        assert_eq!(deliver(&event).await.status(), 200);
    }
    support::queue_drained().await;
    for credits in [500, 2_000] {
        support::apply_change(
            &pool,
            account.tenant(&pool).await,
            shared::credits::CreditKind::Purchase,
            credits,
            format!("purchase-{}", uuid::Uuid::new_v4()),
        )
        .await;
    }
    // Placed, not yet finished (nor started): the latest call, not one of the finished ones.
    let placed: chrono::DateTime<chrono::Utc> = support::db()
        .await
        .query_one(
            "INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, type, status)
             SELECT user_id, id, $2, 'call', 'in_progress' FROM agents
             WHERE user_id = $1 AND type = 'call' RETURNING created_at",
            &[&tenant.id, &conversation_id()],
        )
        .await
        .expect("a placed call")
        .get(0);

    let detail = json(get(&format!("/admin/users/{}", tenant.id), &admin.token).await).await;
    let usage = &detail["usage"];
    assert_eq!(usage["calls"], 3, "{usage}");
    assert_eq!(
        usage["minutes"],
        seconds.iter().sum::<i64>() / 60,
        "{usage}"
    );
    // A credit per started minute of each: 2 + 3 + 60.
    assert_eq!(usage["credits_used"], 65, "{usage}");
    assert_eq!(usage["credits_purchased"], 2_500, "{usage}");
    let last: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(usage["last_call_at"].clone()).expect("a time");
    assert_eq!(last, placed, "{usage}");
    let ledger = support::db()
        .await
        .query_one(
            "SELECT (-sum(amount) FILTER (WHERE type = 'usage'))::bigint,
                    (sum(amount) FILTER (WHERE type = 'purchase'))::bigint
             FROM credit_transactions WHERE user_id = $1",
            &[&tenant.id],
        )
        .await
        .expect("the ledger");
    assert_eq!(usage["credits_used"], ledger.get::<_, i64>(0));
    assert_eq!(usage["credits_purchased"], ledger.get::<_, i64>(1));
}

/// The admin's unfiltered lists of every tenant's purchases and agents open newest first: a
/// first page reads its own rows in that order, not the whole table sorted (V0042).
#[tokio::test]
async fn the_admins_lists_read_their_first_page_in_order() {
    let database = support::ScratchDatabase::create("admin_lists").await;
    let client = database.migrated_connection().await;
    client
        .batch_execute(
            // No autovacuum reading the tables while the blocks are counted: vacuumed below.
            "ALTER TABLE users SET (autovacuum_enabled = false);
             ALTER TABLE purchases SET (autovacuum_enabled = false);
             ALTER TABLE agents SET (autovacuum_enabled = false);
             INSERT INTO users (auth_subject) SELECT 'owner_' || i FROM generate_series(1, 100) i;
             INSERT INTO purchases (user_id, package_id, package_name, credits, amount, currency,
                 status, created_at)
             SELECT u.id, 'starter', 'Starter ' || repeat('x', 200), 100, 900, 'usd', 'expired',
                    now() - (u.seq * 50 + i) * interval '1 minute'
             FROM users u, generate_series(1, 50) i;
             INSERT INTO agents (user_id, elevenlabs_agent_id, name, created_at, deleted_at)
             SELECT u.id, 'agent_' || u.seq || '_' || i, 'Agent ' || i || ' ' || repeat('x', 200),
                    now() - (u.seq * 50 + i) * interval '1 minute',
                    CASE WHEN i % 10 = 0 THEN now() END
             FROM users u, generate_series(1, 50) i",
        )
        .await
        .expect("5,000 purchases and agents");
    support::vacuumed(&client, &["users", "purchases", "agents"]).await;
    let newest: Vec<uuid::Uuid> = client
        .query(
            "SELECT id FROM purchases ORDER BY created_at DESC, id DESC LIMIT 20",
            &[],
        )
        .await
        .expect("the newest purchases")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let purchases = async || {
        shared::admin::purchases::list(&client, None, None, 20)
            .await
            .expect("the purchases")
    };
    purchases().await;
    let before = support::blocks_read(&client, "purchases").await;
    let (page, total) = purchases().await;
    let purchase_blocks = support::blocks_read(&client, "purchases").await - before;
    let agents = async || {
        shared::admin::agents::list(&client, None, None, None, 20)
            .await
            .expect("the agents")
    };
    agents().await;
    let before = support::blocks_read(&client, "agents").await;
    let (live, agents_total) = agents().await;
    let agent_blocks = support::blocks_read(&client, "agents").await - before;
    let (purchase_pages, agent_pages) = (
        support::table_pages(&client, "purchases").await,
        support::table_pages(&client, "agents").await,
    );
    drop(client);
    database.drop().await;

    let ids: Vec<uuid::Uuid> = page.iter().map(|p| p.purchase.id).collect();
    assert_eq!(ids, newest, "newest first");
    assert!(page.iter().all(|p| p.owner_email.is_none()));
    assert_eq!((total.count, total.exact), (5_000, true));
    assert_eq!(live.len(), 20);
    let number = |name: &str| name.split(' ').nth(1).and_then(|n| n.parse::<i32>().ok());
    assert!(
        live.iter()
            .all(|a| number(&a.name).is_some_and(|i| i % 10 != 0)),
        "no deleted agent"
    );
    assert!(live.windows(2).all(|w| w[0].created_at >= w[1].created_at));
    assert_eq!((agents_total.count, agents_total.exact), (4_500, true));
    // Rows of a few hundred bytes: tables far larger than a page's rows.
    assert!(purchase_pages > 150 && agent_pages > 150);
    // The page's own rows, and its count (bounded; on tables this small Postgres may read them
    // whole for it): not every page of the table again to sort it.
    assert!(
        purchase_blocks < purchase_pages + 60,
        "{purchase_blocks} blocks of {purchase_pages} pages of purchases read"
    );
    assert!(
        agent_blocks < agent_pages + 60,
        "{agent_blocks} blocks of {agent_pages} pages of agents read"
    );
}

#[tokio::test]
async fn credit_adjustments_need_a_reason_apply_once_per_key_and_are_audited() {
    let admin = Account::admin().await;
    let user = Account::new().await;
    let path = format!("/admin/users/{}/credits", user.id);
    let no_reason = post(&path, &admin.token, &json!({"amount": 10, "reason": " "})).await;
    assert_eq!(error_code(no_reason, 400).await, "validation_error");
    let zero = post(
        &path,
        &admin.token,
        &json!({"amount": 0, "reason": "nothing"}),
    )
    .await;
    assert_eq!(error_code(zero, 400).await, "validation_error");
    // Whose absolute value does not fit an i64 (schemathesis found it crashing the request).
    let most_negative = post(
        &path,
        &admin.token,
        &json!({"amount": i64::MIN, "reason": "too much"}),
    )
    .await;
    assert_eq!(error_code(most_negative, 400).await, "validation_error");
    let key = uuid::Uuid::new_v4().to_string();
    let adjust = || {
        stack()
            .http
            .post(url(&path))
            .bearer_auth(&admin.token)
            .header("Idempotency-Key", &key)
            .json(&json!({"amount": 10, "reason": "Goodwill for the outage"}))
            .send()
    };
    let first = adjust().await.expect("answer");
    assert_eq!(first.status(), 201);
    let second = adjust().await.expect("answer");
    assert_eq!(second.status(), 200);
    assert_eq!(json(second).await["duplicate"], true);
    assert_eq!(user.credits().await, 25);
    // The same key for another adjustment is a conflict, never a silent no-op.
    let reused = stack()
        .http
        .post(url(&path))
        .bearer_auth(&admin.token)
        .header("Idempotency-Key", &key)
        .json(&json!({"amount": 50, "reason": "Goodwill for the outage"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(error_code(reused, 409).await, "idempotency_key_reused");
    assert_eq!(user.credits().await, 25);
    let history = json(get("/billing/history?type=admin_adjustment", &user.token).await).await;
    assert_eq!(history["data"][0]["description"], "Goodwill for the outage");
    let audit = json(
        get(
            &format!(
                "/admin/audit-log?target_id={}&action=user.credits_adjusted",
                user.id
            ),
            &admin.token,
        )
        .await,
    )
    .await;
    assert_eq!(audit["pagination"]["total"], 1);
    let entry = &audit["data"][0];
    assert_eq!(entry["actor_id"], admin.id.to_string());
    assert_eq!(entry["details"]["amount"], 10);
    assert_eq!(entry["details"]["reason"], "Goodwill for the outage");
    let unknown = post(
        &format!("/admin/users/{SOME_ID}/credits"),
        &admin.token,
        &json!({"amount": 5, "reason": "x"}),
    )
    .await;
    assert_eq!(error_code(unknown, 404).await, "not_found");
}

#[tokio::test]
async fn credit_adjustments_under_concurrent_usage_keep_the_ledger_exact() {
    let admin = Account::admin().await;
    let tenant = Tenant::new().await;
    let path = format!("/admin/users/{}/credits", tenant.id);
    let bodies: Vec<Value> = (0..10)
        .map(|i| {
            let amount = if i % 3 == 0 { -2 } else { 5 };
            json!({"amount": amount, "reason": format!("adjustment {i}")})
        })
        .collect();
    let adjustments = bodies.iter().map(|body| post(&path, &admin.token, body));
    let calls: Vec<Value> = (0..10)
        .map(|_| transcription(&tenant.call_agent, &conversation_id(), 61, "+14155550142"))
        .collect();
    let (adjusted, delivered) =
        tokio::join!(join_all(adjustments), join_all(calls.iter().map(deliver)));
    assert!(adjusted.iter().all(|r| r.status() == 201));
    assert!(delivered.iter().all(|r| r.status() == 200));
    // 4 x -2 and 6 x +5 from the admin, 10 calls of 2 minutes each.
    let expected = 15 - 8 + 30 - 20;
    let entries = eventually(30, "every change applied", || async {
        let rows = support::db()
            .await
            .query(
                "SELECT amount, balance_after FROM credit_transactions WHERE user_id = $1 ORDER BY id",
                &[&tenant.id],
            )
            .await
            .expect("ledger");
        (rows.len() == 21).then_some(rows)
    })
    .await;
    let mut running = 0;
    for row in &entries {
        running += row.get::<_, i64>(0);
        assert_eq!(row.get::<_, i64>(1), running, "balance_after is exact");
    }
    assert_eq!(running, expected);
    assert_eq!(tenant.credits().await, expected);
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_but_its_calls_are_still_billed() {
    let admin = Account::admin().await;
    let tenant = Tenant::new().await;
    let suspend = post(
        &format!("/admin/users/{}/suspend", tenant.id),
        &admin.token,
        &json!({"reason": "chargeback"}),
    )
    .await;
    assert_eq!(json(suspend).await["changed"], true);
    assert_eq!(
        error_code(get("/auth/profile", &tenant.token).await, 403).await,
        "account_suspended"
    );
    let outbound = post(
        "/api/calls/outbound",
        &tenant.token,
        &json!({"agent_id": SOME_ID, "phone_number": "+14155550143"}),
    )
    .await;
    assert_eq!(outbound.status(), 403);
    let conversation = conversation_id();
    deliver(&transcription(
        &tenant.call_agent,
        &conversation,
        125,
        "+14155550144",
    ))
    .await;
    eventually(20, "the call of the suspended tenant", || async {
        call_row(&conversation).await
    })
    .await;
    let balance: i64 = support::db()
        .await
        .query_one("SELECT credits FROM users WHERE id = $1", &[&tenant.id])
        .await
        .expect("credits")
        .get(0);
    assert_eq!(balance, 15 - 3);
    let again = post(
        &format!("/admin/users/{}/suspend", tenant.id),
        &admin.token,
        &json!({}),
    )
    .await;
    assert_eq!(json(again).await["changed"], false);
    let reactivate = send(
        Method::POST,
        &format!("/admin/users/{}/reactivate", tenant.id),
        &admin.token,
        None,
    )
    .await;
    assert_eq!(reactivate.status(), 200);
    assert_eq!(get("/auth/profile", &tenant.token).await.status(), 200);
    let audit = json(
        get(
            &format!("/admin/audit-log?target_id={}", tenant.id),
            &admin.token,
        )
        .await,
    )
    .await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["user.reactivated", "user.suspended"]);
    let myself = post(
        &format!("/admin/users/{}/suspend", admin.id),
        &admin.token,
        &json!({}),
    )
    .await;
    assert_eq!(error_code(myself, 409).await, "cannot_suspend_self");
}

#[tokio::test]
async fn admins_see_and_deactivate_any_tenants_agent() {
    let admin = Account::admin().await;
    let owner = Account::new().await;
    let created = post(
        "/api/agents",
        &owner.token,
        &json!({"name": "Front desk", "type": "chat", "system_prompt": "Be helpful."}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let agent = json(created).await;
    let id = agent["id"].as_str().expect("id");
    let listed =
        json(get(&format!("/admin/agents?user_id={}", owner.id), &admin.token).await).await;
    assert_eq!(listed["data"][0]["id"], id);
    assert_eq!(listed["data"][0]["owner_email"], owner.user.email);
    let seen = json(get(&format!("/admin/agents/{id}"), &admin.token).await).await;
    assert_eq!(seen["name"], "Front desk");
    let renamed = send(
        Method::PUT,
        &format!("/admin/agents/{id}"),
        &admin.token,
        Some(&json!({"name": "Reception"})),
    )
    .await;
    assert_eq!(json(renamed).await["name"], "Reception");
    let deactivated = post(
        &format!("/admin/agents/{id}/deactivate"),
        &admin.token,
        &json!({}),
    )
    .await;
    assert_eq!(json(deactivated).await["is_active"], false);
    let owners_view = json(get(&format!("/api/agents/{id}"), &owner.token).await).await;
    assert_eq!(owners_view["name"], "Reception");
    assert_eq!(owners_view["is_active"], false);
    let audit = json(
        get(
            &format!("/admin/audit-log?target_type=agent&target_id={id}"),
            &admin.token,
        )
        .await,
    )
    .await;
    assert_eq!(audit["pagination"]["total"], 2);
}

#[tokio::test]
async fn invalid_settings_are_refused_and_nothing_changes() {
    let admin = Account::admin().await;
    let before = json(get("/admin/config", &admin.token).await).await;
    for bad in [
        json!({"low_credit_threshold": -1}),
        json!({"price_per_credit": 0}),
        json!({"currency": "US Dollars"}),
        json!({"credit_packages": []}),
        json!({"credit_packages": [{"id": "a", "name": "A", "credits": 1}]}),
        json!({"credit_packages": [{"id": "a", "name": "A", "credits": 10, "bonus": 5}]}),
        json!({"no_such_setting": 1}),
        json!([1, 2]),
    ] {
        let response = send(
            Method::PUT,
            "/admin/config/settings",
            &admin.token,
            Some(&bad),
        )
        .await;
        assert_eq!(response.status(), 400, "{bad}");
    }
    let after = json(get("/admin/config", &admin.token).await).await;
    assert_eq!(before["settings"], after["settings"]);
    let secrets = after["secrets"].as_array().expect("secrets");
    assert!(secrets
        .iter()
        .any(|s| s["name"] == "stripe_webhook_secret" && s["configured"] == true));
    let text = after.to_string();
    let stripe_secret = std::env::var("STRIPE_WEBHOOK_SECRET").expect("secret");
    assert!(
        !text.contains(&stripe_secret),
        "the config never shows a secret value"
    );
    let unknown = send(
        Method::PUT,
        "/admin/config/secrets/database_password",
        &admin.token,
        Some(&json!({"value": "0123456789abcdef"})),
    )
    .await;
    assert_eq!(error_code(unknown, 404).await, "not_found");
    let malformed = send(
        Method::PUT,
        "/admin/config/secrets/stripe_secret_key",
        &admin.token,
        Some(&json!({"value": "pk_live_not_a_secret_key"})),
    )
    .await;
    assert_eq!(error_code(malformed, 400).await, "validation_error");
}

#[tokio::test]
async fn an_unmatched_event_is_matched_to_an_agent_and_billed_once() {
    let admin = Account::admin().await;
    let tenant = Tenant::new().await;
    let conversation = conversation_id();
    let stray = format!(
        "agent_unknown_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    deliver(&transcription(&stray, &conversation, 90, "+14155550145")).await;
    let event_id = eventually(20, "the unmatched event", || async {
        let list = json(get("/admin/webhooks/unmatched?limit=100", &admin.token).await).await;
        list["data"]
            .as_array()?
            .iter()
            .find(|e| e["conversation_id"] == conversation.as_str())
            .and_then(|e| e["id"].as_str().map(str::to_owned))
    })
    .await;
    let event = json(
        get(
            &format!("/admin/webhooks/unmatched/{event_id}"),
            &admin.token,
        )
        .await,
    )
    .await;
    assert_eq!(event["elevenlabs_agent_id"], stray);
    assert!(event["payload"]["data"].is_object());
    let agent_id: uuid::Uuid = support::agent_id_of(&tenant.call_agent).await;
    let path = format!("/admin/webhooks/unmatched/{event_id}/replay");
    let matched = post(&path, &admin.token, &json!({"agent_id": agent_id})).await;
    assert_eq!(matched.status(), 200);
    let call = eventually(20, "the matched call", || async {
        call_row(&conversation).await
    })
    .await;
    assert_eq!(call.get::<_, uuid::Uuid>("user_id"), tenant.id);
    // Matching again replays the same event: billed once.
    let again = json(post(&path, &admin.token, &json!({"agent_id": agent_id})).await).await;
    assert_eq!(again["duplicate"], true, "nothing new queued: {again}");
    support::queue_drained().await;
    assert_eq!(tenant.credits().await, 15 - 2);
    let open = json(get("/admin/webhooks/unmatched?limit=100", &admin.token).await).await;
    assert!(open["data"]
        .as_array()
        .expect("events")
        .iter()
        .all(|e| e["id"] != event_id.as_str()));
}

#[tokio::test]
async fn system_analytics_count_what_happened() {
    let admin = Account::admin().await;
    let tenant = Tenant::new().await;
    // Ten hours: more than any other test uses, so this tenant is among the top ten.
    deliver(&transcription(
        &tenant.call_agent,
        &conversation_id(),
        36_000,
        "+14155550146",
    ))
    .await;
    let analytics = eventually(20, "the call in the analytics", || async {
        let afresh = get_with(
            "/admin/analytics?days=7",
            &admin.token,
            "cache-control",
            "no-cache",
        );
        let body = json(afresh.await).await;
        let top = body["top_tenants"].as_array()?.clone();
        top.iter()
            .any(|t| t["user_id"] == tenant.id.to_string())
            .then_some(body)
    })
    .await;
    assert!(analytics["users"]["total"].as_i64().expect("total") >= 2);
    assert!(analytics["users"]["new"].as_i64().expect("new") >= 2);
    assert!(analytics["calls"]["minutes"].as_i64().expect("minutes") >= 600);
    assert!(analytics["credits"]["used"].as_i64().expect("used") >= 600);
    assert!(analytics["revenue"]["by_day"].is_array());
    assert_eq!(analytics["days"], 7);
    // A request without `Cache-Control` is answered from the snapshot the last one kept.
    let kept = get("/admin/analytics?days=7", &admin.token).await;
    let etag = kept.headers()["etag"].to_str().expect("etag").to_owned();
    let kept = json(kept).await;
    assert_eq!(generated_at(&kept), generated_at(&analytics));
    let unchanged = get_if_none_match("/admin/analytics?days=7", &admin.token, &etag).await;
    // Only this test reads 7 days afresh, so the snapshot is still the one tagged.
    assert_eq!(unchanged.status(), 304);
    let bad = get("/admin/analytics?days=0", &admin.token).await;
    assert_eq!(error_code(bad, 400).await, "validation_error");
}

/// The analytics' ledger totals: each closed hour is totalled once (V0026), a request totals
/// 31 days of hours at most, and once a period is caught up a request reads the entries of the
/// open hours only. 100 days of entries, each day 1,000 usages and a purchase in its first
/// second, written in time order. The totals must be exact for any period at every step, also
/// after two requests closed the same hours at once, and a caught-up 100-day period must read a
/// small part of the ledger; before the hour totals it read every page. Each day's row sums
/// its hours (V0038), and a caught-up 100-day period reads the hours of one day at most
/// (before the days' rows: all 2,400 of them, twice, 72 blocks; now 3). The database is the
/// test's own, so the block counts are these statements' alone.
#[tokio::test]
async fn system_analytics_total_each_closed_ledger_hour_once() {
    use chrono::{DateTime, Days, Utc};
    use shared::admin::analytics::{close_ledger_hours, sql::CREDITS};
    let database = support::ScratchDatabase::create("ledger_hours").await;
    let client = database.migrated_connection().await;
    client
        .batch_execute(
            "INSERT INTO users (auth_subject) VALUES ('ledger_hours');
             INSERT INTO credit_transactions
                 (user_id, type, amount, balance_after, description, reference, created_at)
             SELECT (SELECT id FROM users), type, amount, 0, 'entry',
                    type || '_' || day || '_' || i,
                    (date_trunc('day', now() AT TIME ZONE 'UTC') - day * interval '1 day'
                        + i * interval '1 ms') AT TIME ZONE 'UTC'
             FROM generate_series(99, 0, -1) day, generate_series(0, 1000) i,
                 LATERAL (SELECT CASE WHEN i = 0 THEN 'purchase' ELSE 'usage' END AS type,
                                 CASE WHEN i = 0 THEN 500 ELSE -1 END AS amount) entry
             ORDER BY day DESC, i",
        )
        .await
        .expect("100 days of ledger");
    support::vacuumed(&client, &["credit_transactions"]).await;
    let pages = support::table_pages(&client, "credit_transactions").await;
    let since = |days: u64| {
        (Utc::now().date_naive() - Days::new(days - 1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
    };
    // The hours of the last `days` days that have their totals, and how many hours lie before
    // `read_from` in that period.
    let hours = async |days: u64, read_from: DateTime<Utc>| -> (i64, i64) {
        let stored: i64 = client
            .query_one(
                "SELECT count(*) FROM ledger_hours WHERE hour >= $1",
                &[&since(days)],
            )
            .await
            .expect("the hour totals")
            .get(0);
        (stored, (read_from - since(days)).num_hours())
    };
    /// A request's credit totals over the last `days` days, and what it read.
    #[derive(Clone, Copy)]
    struct Totals {
        sold: i64,
        used: i64,
        /// The ledger's blocks its totals read.
        ledger_blocks: i64,
        /// The hour from which they read the ledger's entries.
        read_from: DateTime<Utc>,
        /// The hour totals' blocks the request read, closing hours and totalling.
        hour_blocks: i64,
    }
    let totals = async |days: i32| {
        let hours_before = support::blocks_read(&client, "ledger_hours").await;
        let read_from = close_ledger_hours(&client, days)
            .await
            .expect("closed hours");
        let before = support::blocks_read(&client, "credit_transactions").await;
        let row = client
            .query_one(CREDITS, &[&days, &read_from])
            .await
            .expect("the period's totals");
        Totals {
            sold: row.get("sold"),
            used: row.get("used"),
            ledger_blocks: support::blocks_read(&client, "credit_transactions").await - before,
            read_from,
            hour_blocks: support::blocks_read(&client, "ledger_hours").await - hours_before,
        }
    };

    let week_totals = totals(7).await;
    let open = week_totals.read_from;
    let week = hours(7, open).await;
    let again = totals(7).await;
    // Two requests closing the same hours at once: each inserts or waits and skips, no error.
    let other = database.migrated_connection().await;
    let (ours, theirs) = tokio::join!(
        close_ledger_hours(&client, 100),
        close_ledger_hours(&other, 100)
    );
    let first_span = ours.expect("closed");
    assert_eq!(first_span, theirs.expect("closed at once"));
    drop(other);
    // Caught up a span at a time, exact at every step.
    let mut steps = vec![totals(100).await];
    while steps.last().expect("a step").read_from < open {
        assert!(steps.len() < 5, "100 days in spans of 31");
        steps.push(totals(100).await);
    }
    let caught_up = *steps.last().expect("a step");
    // Again, with nothing left to close (the last step closed the last span).
    let hours_read_100 = totals(100).await.hour_blocks;
    let hundred = hours(100, caught_up.read_from).await;
    let used_1 = totals(1).await.used;
    client
        .batch_execute(
            "INSERT INTO credit_transactions
                 (user_id, type, amount, balance_after, description, reference)
             SELECT id, 'usage', -3, 0, 'entry', 'usage_now' FROM users",
        )
        .await
        .expect("an entry now");
    let used_now = totals(100).await.used;
    let unsummed_days = unsummed_days(&client).await;
    drop(client);
    database.drop().await;

    assert_eq!(
        (week_totals.sold, week_totals.used),
        (7 * 500, 7 * 1_000),
        "today and the six days before"
    );
    assert_eq!(
        (again.sold, again.used),
        (week_totals.sold, week_totals.used),
        "the same from the hour totals"
    );
    let (stored, before_open) = week;
    assert_eq!(stored, before_open, "every closed hour of the week, once");
    assert!(
        (6 * 24 - 1..7 * 24).contains(&before_open),
        "{before_open} closed hours"
    );
    assert_eq!(
        (first_span - since(100)).num_days(),
        31,
        "the first request totals one span"
    );
    for step in &steps {
        assert_eq!(
            (step.sold, step.used),
            (100 * 500, 100 * 1_000),
            "read from {}",
            step.read_from
        );
    }
    let (stored, before_open) = hundred;
    assert_eq!(
        (caught_up.read_from, stored),
        (open, before_open),
        "caught up, each hour once"
    );
    let read_100 = caught_up.ledger_blocks;
    assert!(
        read_100 * 5 < pages,
        "{read_100} blocks read of the ledger's {pages} for 100 caught-up days"
    );
    assert!(
        hours_read_100 <= 6,
        "{hours_read_100} blocks of the hour totals read for 100 caught-up days"
    );
    let (unsummed, days_summed) = unsummed_days;
    assert_eq!(unsummed, 0, "each day's row sums its hours");
    assert!(days_summed >= 99, "{days_summed} days summed");
    assert_eq!(used_1, 1_000, "today's alone");
    assert_eq!(
        used_now,
        100 * 1_000 + 3,
        "an entry of the open hour counts at once"
    );
}

/// How many days' rows of the ledger's hour totals (V0038) do not sum that day's hours, or
/// are missing, and how many there are.
async fn unsummed_days(client: &tokio_postgres::Client) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE (d.hours, d.purchase, d.usage, d.bonus, d.refund,
                        d.admin_adjustment)
                    IS DISTINCT FROM (h.hours, h.purchase, h.usage, h.bonus, h.refund,
                        h.admin_adjustment)),
                 count(d.day)
             FROM ledger_days d FULL JOIN (
                 SELECT (hour AT TIME ZONE 'UTC')::date AS day, count(*)::int AS hours,
                     sum(purchase)::bigint AS purchase, sum(usage)::bigint AS usage,
                     sum(bonus)::bigint AS bonus, sum(refund)::bigint AS refund,
                     sum(admin_adjustment)::bigint AS admin_adjustment
                 FROM ledger_hours GROUP BY 1) h USING (day)",
            &[],
        )
        .await
        .expect("the days' sums");
    (row.get(0), row.get(1))
}

/// The analytics' revenue is read from a row per day, currency and package (V0039), kept by a
/// trigger on the purchases. 1,200 purchases over 400 days, three packages, two currencies, a
/// fifth of them pending; then, from eight connections at once, each changed as the product
/// changes purchases (paid, refunded in part and in whole, held for review and paid again,
/// left to expire) and one deleted. Every period's revenue must equal the same figures summed
/// from the purchases themselves, each day's row too, and so must the migration's own sums of
/// purchases written before it.
#[tokio::test]
async fn system_analytics_revenue_follows_every_change_to_a_purchase() {
    use shared::admin::analytics::sql::{REVENUE_BY_DAY, REVENUE_BY_PACKAGE, REVENUE_TOTAL};
    use tokio_postgres::types::ToSql;
    fn boxed<T: ToSql + Sync + 'static>(value: T) -> Box<dyn ToSql + Sync> {
        Box::new(value)
    }
    use shared::billing::payments::sql::{
        HOLD_FOR_REVIEW, MARK_PAID, SET_AMOUNT_REFUNDED, SET_CREDITS_REFUNDED, SET_STATUS,
    };
    let database = support::ScratchDatabase::create("revenue_days").await;
    let client = database.migrated_connection().await;
    let purchases = |status_of_pending: &str| {
        format!(
            "INSERT INTO purchases (user_id, package_id, package_name, credits, amount, currency,
                 status, paid_at, created_at)
             SELECT (SELECT id FROM users), package, package, credits, credits * 9, currency,
                 CASE WHEN i % 5 = 0 THEN '{status_of_pending}' ELSE 'paid' END,
                 CASE WHEN i % 5 <> 0 THEN now() - i * interval '8 hours' END,
                 now() - i * interval '8 hours' - interval '1 minute'
             FROM generate_series(1, 1200) i,
                 LATERAL (SELECT (ARRAY['starter', 'growth', 'scale'])[1 + i % 3] AS package,
                                 (ARRAY[100, 500, 2000])[1 + i % 3] AS credits,
                                 CASE WHEN i % 7 = 0 THEN 'eur' ELSE 'usd' END AS currency) p"
        )
    };
    client
        .batch_execute(&format!(
            "INSERT INTO users (auth_subject) VALUES ('revenue_days'); {}",
            purchases("pending")
        ))
        .await
        .expect("400 days of purchases");
    let ids: Vec<(uuid::Uuid, i64, i64, String)> = client
        .query(
            "SELECT id, amount, credits, status FROM purchases ORDER BY created_at",
            &[],
        )
        .await
        .expect("the purchases")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    // Each connection changes every eighth purchase, one statement at a time: the day rows
    // are shared, the purchases not.
    let changes = (0..8).map(|lane| {
        let ids = ids
            .iter()
            .skip(lane)
            .step_by(8)
            .cloned()
            .collect::<Vec<_>>();
        let database = &database;
        async move {
            let client = database.migrated_connection().await;
            for (n, (id, amount, credits, status)) in ids.into_iter().enumerate() {
                let statements: Vec<(&str, Vec<Box<dyn ToSql + Sync>>)> =
                    match (status.as_str(), n % 6) {
                        ("pending", 0) => vec![(
                            SET_STATUS,
                            vec![boxed(id), boxed("expired"), boxed(None::<String>)],
                        )],
                        ("pending", _) => vec![(MARK_PAID, vec![boxed(id)])],
                        (_, 1) => vec![
                            (SET_AMOUNT_REFUNDED, vec![boxed(id), boxed(amount / 3)]),
                            (SET_CREDITS_REFUNDED, vec![boxed(id), boxed(credits / 3)]),
                        ],
                        (_, 2) => vec![
                            (SET_AMOUNT_REFUNDED, vec![boxed(id), boxed(amount)]),
                            (SET_CREDITS_REFUNDED, vec![boxed(id), boxed(credits)]),
                        ],
                        // Held for review, and the one in three of those paid again.
                        (_, 3..) => {
                            let held = vec![boxed(id), boxed("dispute"), boxed(None::<String>)];
                            let mut changes = vec![(HOLD_FOR_REVIEW, held)];
                            if n % 6 == 4 {
                                changes.push((MARK_PAID, vec![boxed(id)]));
                            }
                            changes
                        }
                        _ => Vec::new(),
                    };
                for (sql, params) in &statements {
                    let params = params
                        .iter()
                        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                        .collect::<Vec<_>>();
                    client.execute(*sql, &params).await.expect(sql);
                }
            }
        }
    });
    futures::future::join_all(changes).await;
    client
        .execute(
            "DELETE FROM purchases WHERE id = (SELECT id FROM purchases
                 WHERE status = 'paid' ORDER BY paid_at LIMIT 1)",
            &[],
        )
        .await
        .expect("a purchase deleted");
    let periods = [1, 7, 30, 365, 400];
    let mut read = Vec::new();
    for days in periods {
        read.push(revenue(&client, days).await);
    }
    let unsummed = unsummed_revenue_days(&client).await;
    // The rows before V0039: written without its trigger, then summed by the migration.
    client
        .batch_execute(&format!(
            "SET session_replication_role = replica; {}; RESET session_replication_role;
             DROP TABLE revenue_days; DROP FUNCTION revenue_days_follow_purchases CASCADE;
             DELETE FROM schema_migrations WHERE version = 39",
            purchases("expired")
        ))
        .await
        .expect("purchases from before V0039");
    drop(client);
    let client = database.migrated_connection().await;
    let mut backfilled = Vec::new();
    for days in periods {
        backfilled.push(revenue(&client, days).await);
    }
    let unsummed_after_backfill = unsummed_revenue_days(&client).await;
    drop(client);
    database.drop().await;

    for (days, (rollup, purchases)) in periods.iter().zip(&read) {
        assert_eq!(rollup, purchases, "revenue of {days} days");
    }
    let (year, _) = &read[3];
    assert_eq!(year[0].len(), 2, "both currencies: {:?}", year[0]);
    let (month, _) = &read[2];
    // Every eighth purchase per connection, six ways in turn: each connection's purchases 3 to
    // 5 of a turn held, so of every 16 days about 8 have none (7 to 8, by the time of day).
    assert!(
        month[1].len() > 12,
        "a month's days with revenue: {:?}",
        month[1]
    );
    assert_eq!(unsummed, (0, true), "each day's row sums its purchases");
    for (days, (rollup, purchases)) in periods.iter().zip(&backfilled) {
        assert_eq!(
            rollup, purchases,
            "revenue of {days} days after the backfill"
        );
    }
    assert_eq!(
        unsummed_after_backfill,
        (0, true),
        "the migration sums the purchases before it"
    );

    /// Each statement's rows of a period's revenue as read from the days' rows, then as summed
    /// from the purchases themselves (the statements before V0039), each row as its text.
    async fn revenue(
        client: &tokio_postgres::Client,
        days: i32,
    ) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
        const PAID: &str = "FROM purchases WHERE status = 'paid' AND paid_at >=
            ((now() AT TIME ZONE 'UTC')::date - ($1::int - 1))::timestamp AT TIME ZONE 'UTC'";
        let from_purchases = [
            format!(
                "SELECT currency, sum(amount - amount_refunded)::bigint AS amount {PAID}
                 GROUP BY currency ORDER BY currency"
            ),
            format!(
                "SELECT (paid_at AT TIME ZONE 'UTC')::date AS day, currency,
                     sum(amount - amount_refunded)::bigint AS amount, count(*) AS purchases
                 {PAID} GROUP BY 1, 2 ORDER BY 1, 2"
            ),
            format!(
                "SELECT package_id, currency, sum(amount - amount_refunded)::bigint AS amount,
                     count(*) AS purchases, sum(credits - credits_refunded)::bigint AS credits
                 {PAID} GROUP BY 1, 2 ORDER BY amount DESC, package_id, currency"
            ),
        ];
        let mut rollup = Vec::new();
        let mut purchases = Vec::new();
        for (ours, theirs) in [REVENUE_TOTAL, REVENUE_BY_DAY, REVENUE_BY_PACKAGE]
            .iter()
            .zip(&from_purchases)
        {
            for (sql, read) in [(*ours, &mut rollup), (theirs.as_str(), &mut purchases)] {
                let text = format!("SELECT r::text FROM ({sql}) r");
                let rows = client.query(&text, &[&days]).await.expect(sql);
                read.push(rows.iter().map(|row| row.get(0)).collect());
            }
        }
        (rollup, purchases)
    }
}

/// How many rows of the revenue's days (V0039) differ from the paid purchases of their day,
/// currency and package, or are missing (a row at zero stands for none), and whether there
/// are any.
async fn unsummed_revenue_days(client: &tokio_postgres::Client) -> (i64, bool) {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE (COALESCE(d.purchases, 0), COALESCE(d.amount, 0),
                        COALESCE(d.credits, 0))
                    IS DISTINCT FROM (COALESCE(p.purchases, 0), COALESCE(p.amount, 0),
                        COALESCE(p.credits, 0))),
                 count(p.day) > 0
             FROM revenue_days d FULL JOIN (
                 SELECT (paid_at AT TIME ZONE 'UTC')::date AS day, currency, package_id,
                     count(*) AS purchases, sum(amount - amount_refunded)::bigint AS amount,
                     sum(credits - credits_refunded)::bigint AS credits
                 FROM purchases WHERE status = 'paid' AND paid_at IS NOT NULL
                 GROUP BY 1, 2, 3) p USING (day, currency, package_id)",
            &[],
        )
        .await
        .expect("the revenue's days");
    (row.get(0), row.get(1))
}

/// The analytics' users are counted from a row per day of sign-ups (V0040), kept by a trigger
/// on the users, and the suspended ones from their index. 400 days of users, then sign-ups
/// from eight connections at once through provisioning's own statement, each subject twice
/// (the second skipped), a fifth of the users suspended and one of them active again, one
/// user deleted: every period's counts must equal the users counted one by one, and so must
/// the migration's own counts of users written before it.
#[tokio::test]
async fn system_analytics_count_users_from_their_days() {
    use shared::admin::analytics::sql::USERS;
    use shared::{admin::users::sql::SET_STATUS, users::sql::INSERT_ONCE};
    let database = support::ScratchDatabase::create("user_days").await;
    let client = database.migrated_connection().await;
    let earlier = |prefix: &str| {
        format!(
            "INSERT INTO users (auth_subject, created_at)
             SELECT '{prefix}' || i, now() - i * interval '7 hours'
             FROM generate_series(1, 1400) i"
        )
    };
    client
        .batch_execute(&earlier("earlier-"))
        .await
        .expect("400 days of users");
    let signups = (0..8).map(|lane| {
        let database = &database;
        async move {
            let client = database.migrated_connection().await;
            for n in 0..40 {
                // Every subject twice, by two lanes: provisioning skips the second.
                let subject = format!("today-{}-{n}", lane % 4);
                let email = format!("{subject}@example.com");
                client
                    .query(INSERT_ONCE, &[&subject, &email, &None::<String>])
                    .await
                    .expect("a sign-up");
            }
        }
    });
    futures::future::join_all(signups).await;
    client
        .batch_execute("DELETE FROM users WHERE auth_subject = 'earlier-1000'")
        .await
        .expect("a user deleted");
    let ids: Vec<uuid::Uuid> = client
        .query("SELECT id FROM users ORDER BY auth_subject", &[])
        .await
        .expect("the users")
        .iter()
        .map(|row| row.get(0))
        .collect();
    for id in ids.iter().step_by(5) {
        client
            .execute(SET_STATUS, &[id, &"suspended"])
            .await
            .expect("suspended");
    }
    client
        .execute(SET_STATUS, &[&ids[0], &"active"])
        .await
        .expect("active again");
    let periods = [1, 30, 365, 400];
    let mut read = Vec::new();
    for days in periods {
        read.push(counts(&client, days).await);
    }
    // The users before V0040: written without its trigger, then counted by the migration.
    client
        .batch_execute(&format!(
            "SET session_replication_role = replica; {}; RESET session_replication_role;
             DROP TABLE user_days; DROP FUNCTION user_days_follow_users CASCADE;
             DROP INDEX users_suspended_idx; DELETE FROM schema_migrations WHERE version = 40",
            earlier("before-")
        ))
        .await
        .expect("users from before V0040");
    drop(client);
    let client = database.migrated_connection().await;
    let mut migrated = Vec::new();
    for days in periods {
        migrated.push(counts(&client, days).await);
    }
    drop(client);
    database.drop().await;

    for (days, (from_days, one_by_one)) in periods.iter().zip(&read) {
        assert_eq!(from_days, one_by_one, "users of {days} days");
    }
    let ((total, new, suspended), _) = read[2];
    assert_eq!(
        total,
        1_400 - 1 + 160,
        "the earlier users but one, and 160 sign-ups"
    );
    assert!((1_400..total).contains(&new), "{new} of them new in a year");
    assert_eq!(
        suspended,
        (total + 4) / 5 - 1,
        "every fifth user, but the first"
    );
    for (days, (from_days, one_by_one)) in periods.iter().zip(&migrated) {
        assert_eq!(
            from_days, one_by_one,
            "users of {days} days, counted by the migration"
        );
    }

    /// A period's users, new users and suspended users as the analytics count them, then
    /// counted one by one.
    async fn counts(
        client: &tokio_postgres::Client,
        days: i32,
    ) -> ((i64, i64, i64), (i64, i64, i64)) {
        let ours = client.query_one(USERS, &[&days]).await.expect("USERS");
        let theirs = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE created_at >=
                        ((now() AT TIME ZONE 'UTC')::date - ($1::int - 1))::timestamp
                            AT TIME ZONE 'UTC'),
                    count(*) FILTER (WHERE status = 'suspended')
                 FROM users",
                &[&days],
            )
            .await
            .expect("the users one by one");
        (
            (ours.get("total"), ours.get("new"), ours.get("suspended")),
            (theirs.get(0), theirs.get(1), theirs.get(2)),
        )
    }
}

/// A period's figures answer requests from their snapshot for five minutes
/// (`analytics::MAX_AGE`), unless a request asks for them afresh; the reconciler's warming
/// re-reads the periods asked for in the last day and the default one. Checked on the test's
/// own database, where nothing else reads or writes the figures.
#[tokio::test]
async fn system_analytics_answer_from_a_snapshot_until_it_expires() {
    use shared::admin::analytics::{cached, sum_closed_days, warm, MAX_AGE};
    let database = support::ScratchDatabase::create("analytics_snapshots").await;
    let mut client = database.migrated_connection().await;
    client
        .batch_execute(
            "INSERT INTO users (auth_subject) VALUES ('analytics_snapshots');
             INSERT INTO agents (user_id, elevenlabs_agent_id, name)
             SELECT id, 'agent_snapshots', 'agent' FROM users;
             INSERT INTO daily_agent_stats (user_id, agent_id, day, calls, chats)
             SELECT user_id, id, (now() AT TIME ZONE 'UTC')::date, 3, 0 FROM agents",
        )
        .await
        .expect("a day of calls");
    let calls_become = |calls: i64| format!("UPDATE daily_agent_stats SET calls = {calls}");
    let age = format!(
        "UPDATE system_analytics SET generated_at = generated_at - interval '{} seconds'",
        MAX_AGE.as_secs() + 1
    );

    // The calls a period's answer counts, and when they were read.
    let figures = |body: &str| {
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
        let read_at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(body["generated_at"].clone()).expect("generated_at");
        (body["calls"]["calls"].as_i64().expect("calls"), read_at)
    };
    let first = figures(&cached(&mut client, 7, false).await.expect("read"));
    client
        .batch_execute(&calls_become(7))
        .await
        .expect("more calls");
    let kept = figures(&cached(&mut client, 7, false).await.expect("kept"));
    let afresh_body = cached(&mut client, 7, true).await.expect("afresh");
    let kept_afresh_body = cached(&mut client, 7, false).await.expect("kept afresh");
    let (afresh, kept_afresh) = (figures(&afresh_body), figures(&kept_afresh_body));
    client
        .batch_execute(&calls_become(8))
        .await
        .expect("more calls");
    client.batch_execute(&age).await.expect("aged");
    let expired = figures(&cached(&mut client, 7, false).await.expect("expired"));
    // A snapshot a release with other figures kept is read again, not sent.
    client
        .batch_execute("UPDATE system_analytics SET shape = shape + 1")
        .await
        .expect("another shape");
    let other_shape = figures(&cached(&mut client, 7, false).await.expect("other shape"));
    // So is one the release before kept (V0044), in its own column, over this one's.
    client
        .batch_execute("UPDATE system_analytics SET figures = body::jsonb, generated_at = now()")
        .await
        .expect("kept by the release before");
    let release_before = figures(&cached(&mut client, 7, false).await.expect("release before"));
    // Warming: 7 was asked for now, 90 two days ago, 30 is the default.
    client
        .batch_execute(
            "INSERT INTO system_analytics (days, generated_at, body, shape, requested_at)
             SELECT 90, generated_at - interval '1 hour', body, shape, now() - interval '2 days'
             FROM system_analytics WHERE days = 7;
             UPDATE system_analytics SET requested_at = now() - interval '2 hours' WHERE days = 7",
        )
        .await
        .expect("older requests");
    let touched = figures(&cached(&mut client, 7, false).await.expect("touched"));
    client
        .batch_execute(&calls_become(9))
        .await
        .expect("more calls");
    // 90's closed days summed, as its request two days ago did.
    sum_closed_days(&mut client, 90).await.expect("summed");
    let warmed = warm(&mut client).await.expect("warmed");
    let summed: Vec<i32> = client
        .query(
            "SELECT days FROM closed_day_periods
             UNION SELECT days FROM closed_day_sums ORDER BY days",
            &[],
        )
        .await
        .expect("the periods summed")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let snapshots: Vec<(i32, bool, i64)> = client
        .query(
            "SELECT days, requested_at > now() - interval '1 minute',
                 (body::jsonb #>> '{calls,calls}')::bigint
             FROM system_analytics ORDER BY days",
            &[],
        )
        .await
        .expect("snapshots")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let after_warming = figures(&cached(&mut client, 7, false).await.expect("warm"));
    // Asked for two days ago: warming 30 does not count as asking for it, and a period only
    // ever read afresh (a browser's reload) is asked for all the same.
    client
        .batch_execute("UPDATE system_analytics SET requested_at = now() - interval '2 days'")
        .await
        .expect("asked for long ago");
    let warmed_alone = warm(&mut client).await.expect("warmed").periods;
    cached(&mut client, 7, true).await.expect("afresh");
    let asked_for: Vec<(i32, bool)> = client
        .query(
            "SELECT days, requested_at > now() - interval '1 minute'
             FROM system_analytics ORDER BY days",
            &[],
        )
        .await
        .expect("when asked for")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    drop(client);
    database.drop().await;

    assert_eq!(first.0, 3);
    assert_eq!(kept, first);
    assert_eq!(afresh.0, 7);
    assert!(afresh.1 > first.1);
    assert_eq!(kept_afresh, afresh);
    assert_eq!(
        kept_afresh_body, afresh_body,
        "a snapshot is sent as the request that read it was"
    );
    assert_eq!(expired.0, 8, "read again once older than MAX_AGE");
    assert!(expired.1 > afresh.1);
    assert_eq!(other_shape.0, 8);
    assert!(other_shape.1 > expired.1);
    assert!(release_before.1 > other_shape.1);
    assert_eq!(touched, release_before);
    assert_eq!(warmed.periods, vec![7, 30]);
    assert_eq!(summed, vec![7, 30], "90's closed days forgotten");
    assert_eq!(
        snapshots,
        vec![(7, true, 9), (30, true, 9), (90, false, 8)],
        "7 and 30 warmed (7's request moved its time forward), 90 left alone"
    );
    assert_eq!(after_warming.0, 9);
    assert_eq!(warmed_alone, vec![30], "the default alone");
    assert_eq!(
        asked_for,
        vec![(7, true), (30, false), (90, false)],
        "read afresh for a request, 7 is asked for; warmed, 30 is not"
    );
}

/// The rollups' single pass: the call totals, the active tenants and the top ten come from the
/// same sums per tenant, and a period with no call still has its (zero) totals.
#[tokio::test]
async fn system_analytics_sum_each_tenant_over_the_period() {
    use shared::admin::analytics::sql::TENANTS;
    let database = support::ScratchDatabase::create("tenant_sums").await;
    let client = database.migrated_connection().await;
    let empty = client.query(TENANTS, &[&30_i32]).await.expect("no calls");
    // Twelve tenants, tenant n with n calls of n minutes yesterday and 100 calls 40 days ago
    // (outside the period); tenant 0 had only a row emptied by a call that changed day.
    numbered_tenants(&client, "tenant_sums_", 0..=11).await;
    client
        .batch_execute(
            "INSERT INTO daily_agent_stats
                 (user_id, agent_id, day, calls, chats, duration_seconds, credits_used)
             SELECT u.id, a.id, d.day, n * d.weight, 0, n * d.weight * n * 60,
                    n * d.weight * n
             FROM users u JOIN agents a ON a.user_id = u.id,
                 LATERAL (SELECT substr(u.auth_subject, 13)::int AS n) tenant,
                 (SELECT (now() AT TIME ZONE 'UTC')::date - ago, weight
                  FROM (VALUES (1, 1), (40, 100)) v (ago, weight)) d (day, weight)",
        )
        .await
        .expect("the rollups");
    let rows = client.query(TENANTS, &[&30_i32]).await.expect("the sums");
    // Fewer than ten tenants with calls: the top ten are those, not tenant 0 with nothing.
    client
        .batch_execute(
            "DELETE FROM daily_agent_stats d USING users u
             WHERE u.id = d.user_id AND substr(u.auth_subject, 13)::int > 4",
        )
        .await
        .expect("tenants 5 to 11 gone");
    let few: Vec<String> = client
        .query(TENANTS, &[&30_i32])
        .await
        .expect("the sums of five")
        .iter()
        .map(|row| row.get("email"))
        .collect();
    drop(client);
    database.drop().await;

    assert_eq!(
        few,
        (1..5)
            .rev()
            .map(|n| format!("tenant{n}@example.test"))
            .collect::<Vec<_>>(),
        "the four with calls"
    );
    assert_eq!(empty.len(), 1, "the totals' row alone");
    assert_eq!(empty[0].get::<_, i64>("calls"), 0);
    assert_eq!(empty[0].get::<_, Option<uuid::Uuid>>("user_id"), None);
    let first = &rows[0];
    let calls: i64 = (0..12).sum();
    let minutes: i64 = (0..12).map(|n| n * n).sum();
    assert_eq!(first.get::<_, i64>("active"), 11, "tenant 0's row is empty");
    assert_eq!(first.get::<_, i64>("calls"), calls);
    assert_eq!(first.get::<_, i64>("minutes"), minutes);
    assert_eq!(first.get::<_, i64>("billed_minutes"), minutes);
    let top: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|row| {
            (
                row.get("email"),
                row.get("tenant_credits_used"),
                row.get("tenant_calls"),
            )
        })
        .collect();
    let expected: Vec<(String, i64, i64)> = (2..12)
        .rev()
        .map(|n| (format!("tenant{n}@example.test"), n * n, n))
        .collect();
    assert_eq!(top, expected, "the ten who used the most, in order");
}

/// The rollups' closed days (V0028): a period's days up to `LAST_CLOSED_DAY` are summed per
/// tenant once, and a read adds the rows of the days after them to those sums. The figures must be those of
/// every row summed, read from a small part of the rollups. A change to a closed day's rollup,
/// made by the processor's own statement, counts at once and has the sums read again; a change
/// to today's is not a late one. Two readers summing a period at once take turns. On the test's
/// own database: 100 tenants, tenant n with n calls of n minutes on each of the last 60 days,
/// written a day at a time.
#[tokio::test]
async fn system_analytics_sum_closed_days_once() {
    use shared::admin::analytics::{
        sql::{LAST_CLOSED_DAY, TENANTS},
        sum_closed_days, system,
    };
    use shared::calls::rollup::sql::ADD_TO_DAY;
    let database = support::ScratchDatabase::create("closed_days").await;
    let mut client = database.migrated_connection().await;
    numbered_tenants(&client, "closed_days_", 1..=100).await;
    client
        .batch_execute(
            "INSERT INTO daily_agent_stats
                 (user_id, agent_id, day, calls, chats, duration_seconds, credits_used)
             SELECT a.user_id, a.id, (now() AT TIME ZONE 'UTC')::date - ago, t.n, 0,
                    t.n * t.n * 60, t.n * t.n
             FROM generate_series(59, 0, -1) ago, agents a JOIN users u ON u.id = a.user_id,
                 LATERAL (SELECT substr(u.auth_subject, 13)::int AS n) t
             ORDER BY ago DESC, t.n",
        )
        .await
        .expect("60 days of rollups");
    support::vacuumed(&client, &["daily_tenant_stats"]).await;
    // The 30 days' sums (the totals, the first of the top ten) and the tenants' days' blocks
    // read.
    let tenants = async |client: &deadpool_postgres::Client| {
        let before = support::blocks_read(client, "daily_tenant_stats").await;
        let rows = client.query(TENANTS, &[&30_i32]).await.expect("the sums");
        let read = support::blocks_read(client, "daily_tenant_stats").await - before;
        let top = &rows[0];
        let sums: (i64, i64, i64, String, i64) = (
            top.get("active"),
            top.get("calls"),
            top.get("minutes"),
            top.get("email"),
            top.get("tenant_credits_used"),
        );
        (sums, read)
    };
    // The period's sums: from its first day through its last closed one?, the late changes
    // they hold, and how many tenants they have; then the late changes counted.
    let state = async |client: &deadpool_postgres::Client| -> (bool, i64, i64, i64) {
        let row = client
            .query_one(
                &format!(
                    "SELECT p.through = {LAST_CLOSED_DAY}
                             AND p.since = (now() AT TIME ZONE 'UTC')::date - 29, p.late,
                         (SELECT count(*) FROM closed_day_sums WHERE days = 30),
                         (SELECT late FROM closed_day_changes)
                     FROM closed_day_periods p WHERE days = 30"
                ),
                &[],
            )
            .await
            .expect("the period's sums");
        (row.get(0), row.get(1), row.get(2), row.get(3))
    };
    // The processor's statement: `calls` more on the rollup of tenant n's day `ago` days back.
    let add = async |client: &deadpool_postgres::Client, n: i32, ago: i32, calls: i32| {
        let tenant = client
            .query_one(
                "SELECT a.user_id, a.id, (now() AT TIME ZONE 'UTC')::date - $2::int
                 FROM agents a JOIN users u ON u.id = a.user_id
                 WHERE u.auth_subject = 'closed_days_' || $1",
                &[&n.to_string(), &ago],
            )
            .await
            .expect("the tenant");
        let (user, agent, day): (uuid::Uuid, uuid::Uuid, chrono::NaiveDate) =
            (tenant.get(0), tenant.get(1), tenant.get(2));
        client
            .execute(
                ADD_TO_DAY,
                &[&user, &agent, &day, &calls, &0, &0, &0, &0, &0_i64, &0_i64],
            )
            .await
            .expect("added");
    };

    let (every_row, read_every) = tenants(&client).await;
    system(&mut client, 30).await.expect("read");
    let summed_once = state(&client).await;
    let (summed, read_summed) = tenants(&client).await;
    add(&client, 1, 10, 5).await;
    let after_late = state(&client).await;
    let (late_unsummed, _) = tenants(&client).await;
    system(&mut client, 30).await.expect("read again");
    let summed_again = state(&client).await;
    let (late_summed, read_late) = tenants(&client).await;
    add(&client, 2, 0, 7).await;
    let after_today = state(&client).await;
    let (today, read_today) = tenants(&client).await;
    let one_day = system(&mut client, 1).await.expect("a day").calls.calls;
    let two_days = system(&mut client, 2).await.expect("two days").calls.calls;
    // A day later, two readers at once: one sums, the other waits its turn and finds them. A
    // third session holds the old sums until both are waiting (one to clear them, one for its
    // turn), so that they do overlap.
    client
        .batch_execute("UPDATE closed_day_periods SET through = through - 1")
        .await
        .expect("a day passed");
    let mut other = database.migrated_connection().await;
    let holder = database.migrated_connection().await;
    holder
        .batch_execute("BEGIN; SELECT FROM closed_day_sums WHERE days = 30 FOR UPDATE")
        .await
        .expect("the old sums held");
    let watcher = database.migrated_connection().await;
    let release = async {
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .expect("the sessions waiting")
                .get(0);
            if waiting == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        holder.batch_execute("COMMIT").await.expect("released");
    };
    let ((ours, theirs), ()) = tokio::join!(
        async {
            tokio::join!(
                sum_closed_days(&mut client, 30),
                sum_closed_days(&mut other, 30)
            )
        },
        release
    );
    ours.expect("summed");
    theirs.expect("summed at once");
    drop((other, holder, watcher));
    let next_day = state(&client).await;
    let (next_day_sums, _) = tenants(&client).await;
    // Between midnight and 02:00 UTC the period's first day has moved on and its last closed
    // day not yet: sums read the evening before began a day early. Here that day held one
    // call of every tenant's.
    client
        .batch_execute(
            "UPDATE closed_day_periods
             SET since = since - 1, totals_since = totals_since - 1, calls = calls + 100;
             UPDATE closed_day_sums SET calls = calls + 1 WHERE days = 30",
        )
        .await
        .expect("summed the evening before");
    let (evening_sums, _) = tenants(&client).await;
    system(&mut client, 30).await.expect("read after midnight");
    let after_midnight = state(&client).await;
    drop(client);
    database.drop().await;

    let calls: i64 = 30 * 5_050;
    let minutes: i64 = 30 * (1..=100).map(|n: i64| n * n).sum::<i64>();
    let top = |calls| {
        (
            100,
            calls,
            minutes,
            "tenant100@example.test".into(),
            300_000,
        )
    };
    assert_eq!(every_row, top(calls), "every row of 30 days");
    assert_eq!(summed_once, (true, 0, 100, 0), "each tenant's closed days");
    assert_eq!(summed, every_row, "the same from the sums");
    assert!(
        read_summed * 5 < read_every,
        "{read_summed} blocks of the rollups read, against {read_every}"
    );
    assert_eq!(after_late, (true, 0, 100, 1), "a late change counted");
    assert_eq!(
        late_unsummed,
        top(calls + 5),
        "counted at once, without the sums"
    );
    assert_eq!(summed_again, (true, 1, 100, 1), "summed again");
    assert_eq!(late_summed, top(calls + 5));
    assert!(read_late * 5 < read_every, "{read_late} blocks read");
    assert_eq!(
        after_today, summed_again,
        "today's change is not a late one"
    );
    assert_eq!(today, top(calls + 12));
    assert!(read_today * 5 < read_every, "{read_today} blocks read");
    assert_eq!(
        (one_day, two_days),
        (5_057, 10_107),
        "today, and yesterday too"
    );
    assert_eq!(next_day, (true, 1, 100, 1), "summed once more, no error");
    assert_eq!(next_day_sums, top(calls + 12));
    assert_eq!(
        evening_sums,
        top(calls + 12),
        "not the day that left the period"
    );
    assert_eq!(
        after_midnight,
        (true, 1, 100, 1),
        "summed from the first day"
    );
}

/// The top ten among few candidates (V0033): the closed days' tenth highest use of credits,
/// less the open days' tenth highest, bounds the closed sums worth looking at, and the open days'
/// uses above theirs are looked at too. Read from the sums and from every row, the figures are
/// the same, and the ones expected. Five days ago: tenants 1 to 4 used 5,100 to 5,400 credits,
/// 5 and 6 3,300 and 3,250, 7 to 10 3,000 each (the tenth highest), 11 2,900, 12 2,800, 13
/// 2,700, 14 500, 15 to 21 100, tenant n with n calls (15 to 21 one), and tenant 32's row was
/// emptied by a call that changed day. Today 15 to 21 use 300 each, 11 and 22 200 (the tenth
/// highest), 14 3,000, 25 3,400; 32 chats. So 11 is in the ten though its sum is under the
/// tenth highest and its use of today not above that of today's tenth, 14 and 25 though
/// their sums are far under it (25 has none), and of 7 to 10 only 10, with the most calls.
#[tokio::test]
async fn system_analytics_find_the_top_ten_among_few_candidates() {
    use shared::admin::analytics::sum_closed_days;
    use shared::calls::rollup::sql::ADD_TO_DAY;
    let database = support::ScratchDatabase::create("top_ten").await;
    let mut client = database.migrated_connection().await;
    numbered_tenants(&client, "top_ten_", 1..=32).await;
    numbered_rollups(
        &client,
        "top_ten_",
        "VALUES (1, 5, 1, 0, 5100), (2, 5, 2, 0, 5200), (3, 5, 3, 0, 5300),
                (4, 5, 4, 0, 5400), (5, 5, 5, 0, 3300), (6, 5, 6, 0, 3250),
                (7, 5, 7, 0, 3000), (8, 5, 8, 0, 3000), (9, 5, 9, 0, 3000),
                (10, 5, 10, 0, 3000), (11, 5, 11, 0, 2900), (12, 5, 12, 0, 2800),
                (13, 5, 13, 0, 2700), (14, 5, 14, 0, 500), (32, 5, 0, 0, 0),
                (11, 0, 1, 0, 200), (14, 0, 3, 0, 3000),
                (25, 0, 4, 0, 3400), (32, 0, 0, 1, 0)
         UNION ALL
         SELECT n, ago, 1, 0, CASE ago WHEN 5 THEN 100 ELSE 300 END
         FROM generate_series(15, 21) n, (VALUES (5), (0)) d (ago)",
    )
    .await;
    // Tenant 22's through the processor's statement; its tenant's day follows with the
    // tenant's number (V0035), as those of the rows above did.
    let tenant_22 = client
        .query_one(
            "SELECT a.user_id, a.id, (now() AT TIME ZONE 'UTC')::date
             FROM agents a JOIN users u ON u.id = a.user_id WHERE u.auth_subject = 'top_ten_22'",
            &[],
        )
        .await
        .expect("tenant 22");
    let (user, agent, today): (uuid::Uuid, uuid::Uuid, chrono::NaiveDate) =
        (tenant_22.get(0), tenant_22.get(1), tenant_22.get(2));
    client
        .execute(
            ADD_TO_DAY,
            &[
                &user,
                &agent,
                &today,
                &1,
                &0,
                &0,
                &0,
                &0,
                &12_000_i64,
                &200_i64,
            ],
        )
        .await
        .expect("tenant 22's call");
    let numbered: bool = client
        .query_one(
            "SELECT t.tenant_seq = u.seq FROM daily_tenant_stats t JOIN users u ON u.id = t.user_id
             WHERE u.auth_subject = 'top_ten_22'",
            &[],
        )
        .await
        .expect("its row")
        .get(0);
    let every_row = thirty_days(&client).await;
    let unsummed = thirty_days_summed(&client).await;
    sum_closed_days(&mut client, 30).await.expect("summed");
    let summed = thirty_days_summed(&client).await;
    let from_sums = thirty_days(&client).await;
    drop(client);
    database.drop().await;

    assert!(numbered, "the tenant's day carries its number");
    assert_eq!(
        (unsummed, summed),
        (false, true),
        "read from every row, then from the sums"
    );
    assert_eq!(from_sums, every_row, "the same figures either way");
    let tenant =
        |n: i32, credits: i64, calls: i64| (format!("tenant{n}@example.test"), credits, calls);
    assert_eq!(
        every_row,
        (
            (24, 128, 1, 58_050, 58_050),
            vec![
                tenant(4, 5400, 4),
                tenant(3, 5300, 3),
                tenant(2, 5200, 2),
                tenant(1, 5100, 1),
                tenant(14, 3500, 17),
                tenant(25, 3400, 4),
                tenant(5, 3300, 5),
                tenant(6, 3250, 6),
                tenant(11, 3100, 12),
                tenant(10, 3000, 10),
            ]
        ),
        "24 active: 1 to 22, 25, and 32 with its chat of today"
    );
}

/// The top ten and the active tenants at their edges, each state read from every row (the sums
/// set aside by a late change) and then from the sums: a tenant active only today whose number
/// is inside the sums' bitmap; ten tenants of distinct uses and nothing open (the tenth highest
/// is the tenth's own); ten of the same use (the bound is reached, not passed); a tenant in the
/// ten through two open days (today and tomorrow, as yesterday and today are until 02:00),
/// each under the open days' tenth highest day and its closed days under the bound that makes
/// (V0035). Then the sums' totals as the release before V0033 leaves them, moving the sums'
/// days on but not theirs: not trusted.
#[tokio::test]
async fn system_analytics_top_ten_and_active_tenants_at_their_edges() {
    use shared::admin::analytics::sum_closed_days;
    let database = support::ScratchDatabase::create("top_ten_edges").await;
    let mut client = database.migrated_connection().await;
    numbered_tenants(&client, "edges_", 1..=21).await;
    // (tenant, days ago, calls, chats, credits); how many active, how many in the top ten.
    let states = [
        (
            "tenant 1 new today, tenant 3 five days ago",
            "VALUES (3, 5, 1, 0, 100), (1, 0, 1, 0, 50)",
            2,
            2,
        ),
        (
            "ten distinct uses",
            "SELECT n, 5, 1, 0, n * 100 FROM generate_series(1, 10) n",
            10,
            10,
        ),
        (
            "ten equal uses",
            "SELECT n, 5, 1, 0, 100 FROM generate_series(1, 10) n",
            10,
            10,
        ),
        (
            "tenant 21 in the ten through two open days",
            "VALUES (21, 5, 1, 0, 1500), (21, 0, 1, 0, 800), (21, -1, 1, 0, 800)
             UNION ALL SELECT n, 5, 1, 0, 3000 FROM generate_series(1, 10) n
             UNION ALL SELECT n, 0, 1, 0, 1000 FROM generate_series(11, 20) n",
            21,
            10,
        ),
    ];
    let mut read = Vec::new();
    for (state, rows, _, _) in states {
        client
            .batch_execute("DELETE FROM daily_agent_stats")
            .await
            .expect(state);
        numbered_rollups(&client, "edges_", rows).await;
        client
            .batch_execute("UPDATE closed_day_changes SET late = late + 1")
            .await
            .expect(state);
        let every_row = thirty_days(&client).await;
        sum_closed_days(&mut client, 30).await.expect(state);
        read.push((state, every_row, thirty_days(&client).await));
    }
    client
        .batch_execute(
            "UPDATE closed_day_periods
             SET totals_since = totals_since - 1, totals_through = totals_through - 1,
                 active = 0, calls = 0, credits_used = 0, active_tenants = B''
             WHERE days = 30",
        )
        .await
        .expect("the release before's sums");
    let before_v0033 = (
        thirty_days_summed(&client).await,
        thirty_days(&client).await,
    );
    drop(client);
    database.drop().await;

    for ((state, _, active, top), (_, every_row, from_sums)) in states.iter().zip(&read) {
        assert_eq!(from_sums, every_row, "{state}: the same either way");
        assert_eq!(
            (every_row.0 .0, every_row.1.len()),
            (*active, *top),
            "{state}: active, in the top ten"
        );
    }
    assert_eq!(
        read[3].1 .1[0],
        ("tenant21@example.test".into(), 3_100, 3),
        "tenant 21 first"
    );
    assert_eq!(
        before_v0033,
        (false, read[3].1.clone()),
        "the release before's sums are read again"
    );
}

/// A tenant's day (V0035) is the sum of its agents' rows of that day, whoever writes them and
/// however: the processor's statement adding a call and taking one back, a row moved to
/// another day, a row deleted. Each tenant's day carries its number.
#[tokio::test]
async fn a_tenants_day_follows_its_agents_rows() {
    use shared::calls::rollup::sql::ADD_TO_DAY;
    let database = support::ScratchDatabase::create("tenant_days").await;
    let client = database.migrated_connection().await;
    numbered_tenants(&client, "tenant_days_", 1..=2).await;
    client
        .batch_execute(
            "INSERT INTO agents (user_id, elevenlabs_agent_id, name)
             SELECT id, 'agent_second_' || auth_subject, 'second' FROM users",
        )
        .await
        .expect("a second agent each");
    let agents: Vec<(uuid::Uuid, uuid::Uuid)> = client
        .query("SELECT user_id, id FROM agents ORDER BY user_id, id", &[])
        .await
        .expect("the agents")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let today: chrono::NaiveDate = client
        .query_one("SELECT (now() AT TIME ZONE 'UTC')::date", &[])
        .await
        .expect("today")
        .get(0);
    let add = async |(user, agent): (uuid::Uuid, uuid::Uuid), calls: i32, credits: i64| {
        client
            .execute(
                ADD_TO_DAY,
                &[
                    &user,
                    &agent,
                    &today,
                    &calls,
                    &0,
                    &calls,
                    &0,
                    &0,
                    &(credits * 60),
                    &credits,
                ],
            )
            .await
            .expect("the processor's statement");
    };
    // The tenants' days with a figure (and whether each carries its tenant's number), and the
    // same summed from the agents' rows.
    let days = "SELECT user_id, day, calls::bigint, chats::bigint, duration_seconds, credits_used,
                    tenant_seq = (SELECT seq FROM users WHERE id = user_id)
                FROM daily_tenant_stats
                WHERE (calls, chats, duration_seconds, credits_used) <> (0, 0, 0, 0)
                ORDER BY 1, 2";
    let summed = "SELECT user_id, day, sum(calls)::bigint, sum(chats)::bigint,
                      sum(duration_seconds)::bigint, sum(credits_used)::bigint, true
                  FROM daily_agent_stats GROUP BY 1, 2
                  HAVING (sum(calls), sum(chats), sum(duration_seconds), sum(credits_used))
                      <> (0, 0, 0, 0)
                  ORDER BY 1, 2";
    type Day = (uuid::Uuid, chrono::NaiveDate, i64, i64, i64, i64, bool);
    let rows = async |sql: &str| -> Vec<Day> {
        client
            .query(sql, &[])
            .await
            .expect("the days")
            .iter()
            .map(|row| {
                (
                    row.get(0),
                    row.get(1),
                    row.get(2),
                    row.get(3),
                    row.get(4),
                    row.get(5),
                    row.get(6),
                )
            })
            .collect()
    };
    let both = async || (rows(days).await, rows(summed).await);

    let mut states = Vec::new();
    add(agents[0], 1, 3).await;
    add(agents[1], 1, 5).await;
    add(agents[2], 2, 7).await;
    states.push(("three agents' first calls", both().await));
    add(agents[1], 1, 4).await;
    add(agents[0], -1, -3).await;
    states.push(("a call added, one taken back", both().await));
    client
        .batch_execute(&format!(
            "UPDATE daily_agent_stats SET day = day - 1 WHERE agent_id = '{}'",
            agents[1].1
        ))
        .await
        .expect("moved a day back");
    states.push(("a row moved to the day before", both().await));
    client
        .batch_execute(&format!(
            "DELETE FROM daily_agent_stats WHERE agent_id = '{}'",
            agents[2].1
        ))
        .await
        .expect("deleted");
    states.push(("a row deleted", both().await));
    drop(client);
    database.drop().await;

    for (state, (days, summed)) in &states {
        assert_eq!(days, summed, "{state}");
    }
    let (first, second) = (agents[0].0, agents[2].0);
    let yesterday = today.pred_opt().expect("a day before");
    assert_eq!(
        states[2]
            .1
             .0
            .iter()
            .map(|d| (d.0, d.1, d.2, d.5))
            .collect::<Vec<_>>(),
        vec![(first, yesterday, 2, 9), (second, today, 2, 7)],
        "the moved row's figures on the day before"
    );
}

/// The 30 days' call totals (active, calls, chats, minutes, billed minutes) and top ten
/// (e-mail, credits, calls), as `TENANTS` answers them.
async fn thirty_days(
    client: &deadpool_postgres::Client,
) -> ((i64, i64, i64, i64, i64), Vec<(String, i64, i64)>) {
    use shared::admin::analytics::sql::TENANTS;
    let rows = client.query(TENANTS, &[&30_i32]).await.expect("the sums");
    let totals = (
        rows[0].get("active"),
        rows[0].get("calls"),
        rows[0].get("chats"),
        rows[0].get("minutes"),
        rows[0].get("billed_minutes"),
    );
    let top = rows
        .iter()
        .filter_map(|row| {
            Some((
                row.get::<_, Option<String>>("email")?,
                row.get("tenant_credits_used"),
                row.get("tenant_calls"),
            ))
        })
        .collect();
    (totals, top)
}

/// Whether the 30 days' closed days have their sums, with their totals, in a new snapshot.
async fn thirty_days_summed(client: &deadpool_postgres::Client) -> bool {
    use shared::admin::analytics::sql::CLOSED_DAYS_SUMMED;
    client
        .query_one(CLOSED_DAYS_SUMMED, &[&30_i32])
        .await
        .expect("summed?")
        .get("summed")
}

/// Every day the admin's analytics hold as closed (`LAST_CLOSED_DAY`, as of a reader's `now()`)
/// is one the processor's rollup statement counts a change to as late (`LATE_BEFORE`, as of its
/// transaction's `now()`), for a transaction begun up to an hour before the reader: else a
/// change the reader's snapshot misses would stay out of the sums. Today's changes are never
/// late, and yesterday is closed from 02:00 UTC. Every minute of two days.
#[tokio::test]
async fn the_processor_counts_a_change_to_every_closed_day_as_late() {
    use shared::{admin::analytics::sql::LAST_CLOSED_DAY, calls::rollup::sql::LATE_BEFORE};
    let at = |expression: &str, instant: &str| expression.replace("now()", instant);
    let row = support::db()
        .await
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE NOT {closed} < {late}),
                     count(*) FILTER (WHERE (r AT TIME ZONE 'UTC')::date < {late_then}),
                     count(*) FILTER (WHERE ago = 0 AND ({closed} = (r AT TIME ZONE 'UTC')::date - 1)
                         <> (extract(hour FROM r AT TIME ZONE 'UTC') >= 2)),
                     count(*)
                 FROM generate_series(timestamptz '2026-03-01 00:00Z', '2026-03-03 00:00Z',
                         interval '1 minute') r,
                     generate_series(0, 59) ago,
                     LATERAL (SELECT r - ago * interval '1 minute' AS t) begun",
                closed = at(LAST_CLOSED_DAY, "r"),
                late = at(LATE_BEFORE, "t"),
                late_then = at(LATE_BEFORE, "r"),
            ),
            &[],
        )
        .await
        .expect("the two rules over two days");
    let counts: (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        counts,
        (0, 0, 0, 2_881 * 60),
        "(a closed day's change not late, today's change late, yesterday's closing off 02:00, \
         the instants and beginnings)"
    );
}

/// Tenants `{prefix}{n}` for each n of `numbers` (e-mail `tenant{n}@example.test`), each with
/// one agent, on a test's own database.
async fn numbered_tenants(
    client: &tokio_postgres::Client,
    prefix: &str,
    numbers: std::ops::RangeInclusive<i32>,
) {
    client
        .execute(
            "INSERT INTO users (auth_subject, email)
             SELECT $1::text || n, 'tenant' || n || '@example.test' FROM generate_series($2::int, $3::int) n",
            &[&prefix, numbers.start(), numbers.end()],
        )
        .await
        .expect("the tenants");
    client
        .execute(
            "INSERT INTO agents (user_id, elevenlabs_agent_id, name)
             SELECT id, 'agent_' || auth_subject, 'agent' FROM users
             WHERE starts_with(auth_subject, $1)",
            &[&prefix],
        )
        .await
        .expect("an agent each");
}

/// Rollup rows of the tenants `numbered_tenants` made with `prefix`: a row per row of `rows`
/// (tenant, days ago, calls, chats, credits), as many minutes as credits.
async fn numbered_rollups(client: &tokio_postgres::Client, prefix: &str, rows: &str) {
    client
        .batch_execute(&format!(
            "INSERT INTO daily_agent_stats
                 (user_id, agent_id, day, calls, chats, duration_seconds, credits_used)
             SELECT a.user_id, a.id, (now() AT TIME ZONE 'UTC')::date - v.ago, v.calls, v.chats,
                    v.credits * 60, v.credits
             FROM ({rows}) v (n, ago, calls, chats, credits)
             JOIN users u ON u.auth_subject = '{prefix}' || v.n
             JOIN agents a ON a.user_id = u.id"
        ))
        .await
        .expect("the rollups");
}

#[tokio::test]
async fn an_admin_cannot_lock_the_other_admins_or_the_owners_out() {
    let admin = Account::admin().await;
    let other = Account::admin().await;
    let refused = post(
        &format!("/admin/users/{}/suspend", other.id),
        &admin.token,
        &json!({"reason": "takeover"}),
    )
    .await;
    assert_eq!(error_code(refused, 409).await, "cannot_suspend_admin");
    assert_eq!(get("/auth/profile", &other.token).await.status(), 200);

    // An owner listed in ADMIN_EMAILS (their row says user) is suspended, and still gets in.
    let owner = crate::support::NewUser {
        sub: uuid::Uuid::new_v4().to_string(),
        email: std::env::var("TEST_ADMIN_EMAIL").expect("scripts/test sets TEST_ADMIN_EMAIL"),
    };
    let profile = json(get("/auth/profile", &owner.token()).await).await;
    let suspended = post(
        &format!(
            "/admin/users/{}/suspend",
            profile["id"].as_str().expect("id")
        ),
        &admin.token,
        &json!({"reason": "takeover"}),
    )
    .await;
    assert_eq!(json(suspended).await["changed"], true);
    let again = json(get("/auth/profile", &owner.token()).await).await;
    assert_eq!(again["role"], "admin", "{again}");
}

#[tokio::test]
async fn audit_filters_with_a_nul_are_400s() {
    let admin = Account::admin().await;
    for field in ["action", "target_type", "target_id"] {
        let response = get(&format!("/admin/audit-log?{field}=a%00b"), &admin.token).await;
        assert_eq!(
            error_code(response, 400).await,
            "validation_error",
            "{field}"
        );
    }
    let fine = get("/admin/audit-log?action=user.suspended", &admin.token).await;
    assert_eq!(fine.status(), 200);
}
