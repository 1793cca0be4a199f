//! List totals past the count's bound: `pagination.total` stops at `TOTAL_BOUND` with
//! `total_exact: false`, the cursors still reach every row, and a filter matching fewer rows
//! is counted exactly. The rows are stored straight in the tables: only their number matters
//! here (the processor's path to them is tested with the webhooks).

use serde_json::Value;
use shared::db::filter::TOTAL_BOUND;

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
}
