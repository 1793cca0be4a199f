//! List totals past the count's bound: `pagination.total` stops at `TOTAL_BOUND` (a search's
//! at `SEARCH_TOTAL_BOUND`) with `total_exact: false`, the cursors still reach every row, and
//! a filter matching fewer rows is counted exactly; and a page's statement keeps one plan per
//! connection. The rows are stored straight in the tables: only their number matters here
//! (the processor's path to them is tested with the webhooks).

use serde_json::Value;
use shared::{
    calls::read::sql as calls_sql,
    db::filter::{Filter, Keyset, SEARCH_TOTAL_BOUND, TOTAL_BOUND},
};

use crate::support::*;

/// Stores `n` finished calls on the tenant's call agent, every one with the same lead, the
/// last `failed` of them failed; answers the lead's id.
async fn stored_calls(tenant: &Tenant, n: i64, failed: i64) -> uuid::Uuid {
    let db = db().await;
    let number = phone();
    let lead: uuid::Uuid = db
        .query_one(
            "INSERT INTO leads (user_id, phone_number, name, interaction_count, last_contact_at)
             VALUES ($1, $2, 'Busy lead', $3, now()) RETURNING id",
            &[&tenant.id, &number, &(n as i32)],
        )
        .await
        .expect("lead")
        .get(0);
    db.execute(
        "INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, type, direction, status,
                            phone_number, lead_id, started_at, duration_seconds, created_at,
                            updated_at, completed_at)
         SELECT $1, a.id, 'conv_totals_' || gen_random_uuid(), 'call', 'outbound',
                CASE WHEN i > $4 - $5 THEN 'failed' ELSE 'completed' END,
                $3, $2, now() - i * interval '1 second', 30,
                now() - i * interval '1 second', now(), now()
         FROM agents a, generate_series(1, $4::bigint) i
         WHERE a.user_id = $1 AND a.type = 'call'",
        &[&tenant.id, &lead, &number, &n, &failed],
    )
    .await
    .expect("calls");
    lead
}

async fn page(tenant: &Tenant, path: &str) -> Value {
    let response = get(path, &tenant.token).await;
    assert_eq!(response.status(), 200, "{path}");
    json(response).await
}

fn total(page: &Value) -> (i64, bool) {
    let pagination = &page["pagination"];
    (
        pagination["total"].as_i64().expect("total"),
        pagination["total_exact"].as_bool().expect("total_exact"),
    )
}

#[tokio::test]
async fn totals_stop_at_the_bound_and_the_cursors_go_on() {
    let tenant = Tenant::new().await;
    let lead = stored_calls(&tenant, TOTAL_BOUND + 5, 3).await;

    for path in ["/api/calls?limit=100", "/analytics/calls?limit=100"] {
        let first = page(&tenant, path).await;
        assert_eq!(total(&first), (TOTAL_BOUND, false), "{path}");
        let cursor = first["pagination"]["next_cursor"].as_str().expect("more");
        let next = page(&tenant, &format!("{path}&cursor={cursor}")).await;
        assert_eq!(next["data"].as_array().expect("rows").len(), 100, "{path}");
    }
    // Filtered to fewer rows than the bound: counted exactly.
    let failed = page(&tenant, "/api/calls?status=failed").await;
    assert_eq!(total(&failed), (3, true));
    let leads = page(&tenant, "/api/leads").await;
    assert_eq!(total(&leads), (1, true));

    let timeline = page(&tenant, &format!("/api/leads/{lead}/timeline")).await;
    assert_eq!(total(&timeline), (TOTAL_BOUND, false));
    let profile = page(&tenant, &format!("/api/leads/{lead}")).await;
    assert_eq!(profile["timeline_total"], TOTAL_BOUND);
    assert_eq!(profile["timeline_total_exact"], false);
}

#[tokio::test]
async fn a_total_up_to_the_bound_is_exact() {
    let tenant = Tenant::new().await;
    stored_calls(&tenant, TOTAL_BOUND, 0).await;
    let calls = page(&tenant, "/api/calls").await;
    assert_eq!(total(&calls), (TOTAL_BOUND, true));
}

#[tokio::test]
async fn contacts_are_counted_the_same_way() {
    let tenant = Tenant::new().await;
    db().await
        .execute(
            "INSERT INTO contacts (user_id, name, phone_number)
             SELECT $1, 'Contact ' || i, '+1555' || lpad(i::text, 7, '0')
             FROM generate_series(1, $2::bigint) i",
            &[&tenant.id, &(TOTAL_BOUND + 1)],
        )
        .await
        .expect("contacts");
    let contacts = page(&tenant, "/api/contacts").await;
    assert_eq!(total(&contacts), (TOTAL_BOUND, false));
    let one = page(&tenant, "/api/contacts?search=5550000042").await;
    assert_eq!(total(&one), (1, true));
    // Contact 1, 10 to 19, 100 to 199, 1,000 to 1,999, 10,000 and 10,001: a search counts to
    // its own bound.
    let many = page(&tenant, "/api/contacts?search=contact%201").await;
    assert_eq!(total(&many), (SEARCH_TOTAL_BOUND, false));
    assert!(many["pagination"]["next_cursor"].is_string());
}

/// A list's page is planned once per connection, not again at every request. Postgres weighs
/// a prepared statement's generic plan after five custom ones, and keeps it only when it does
/// not look costlier; a generic plan must assume that `LIMIT $n` keeps a tenth of the matching
/// rows, so where a tenant has many (here, a database of its own with one tenant of 3,000
/// calls) a page cut at `LIMIT $n` alone was planned at every run. After seven runs on one
/// connection, the page's statement must be running on its generic plan.
#[tokio::test]
async fn a_page_keeps_one_plan_per_connection() {
    let database = ScratchDatabase::create("plans").await;
    let client = database.migrated_connection().await;
    client
        .batch_execute(
            "WITH tenant AS (INSERT INTO users (auth_subject) VALUES ('plans') RETURNING id),
             agent AS (INSERT INTO agents (user_id, elevenlabs_agent_id, name)
                       SELECT id, 'agent_plans', 'agent' FROM tenant RETURNING id, user_id)
             INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, status, created_at)
             SELECT agent.user_id, agent.id, 'conv_plans_' || i, 'completed',
                    now() - i * interval '1 second'
             FROM agent, generate_series(1, 3000) i;
             ANALYZE",
        )
        .await
        .expect("one tenant's calls");
    let tenant: uuid::Uuid = client
        .query_one("SELECT id FROM users", &[])
        .await
        .expect("the tenant")
        .get(0);
    let mut its_calls = Filter::default();
    its_calls.and("c.user_id = $", vec![Box::new(tenant)]);
    let newest = Keyset {
        time: "c.created_at",
        id: "c.id",
    };
    for _ in 0..7 {
        let rows = its_calls
            .page(&client, calls_sql::LIST_SELECT, &newest, None, 20)
            .await
            .expect("a page");
        assert_eq!(rows.len(), 20);
    }
    let plans = client
        .query_one(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements
             WHERE statement = $1",
            &[&its_calls.page_statement(calls_sql::LIST_SELECT, &newest, false)],
        )
        .await
        .expect("the page's prepared statement");
    let (generic, custom): (i64, i64) = (plans.get(0), plans.get(1));
    drop(client);
    database.drop().await;
    assert!(
        generic >= 1,
        "{generic} generic and {custom} custom plans in 7 runs"
    );
}
