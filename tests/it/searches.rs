//! A list's search is planned for its own pattern: a fragment few rows hold is looked up in
//! the trigram indexes (V0020) even after the same statement has run for a fragment that a
//! third of the rows hold, where reading the tenant's rows in order was the better plan.

use shared::{
    contacts::{self, ContactFilter},
    leads::read::LeadFilter,
    tenant::TenantId,
};

use shared::db::filter::SEARCH_TOTAL_BOUND;

use crate::support::*;

const CONTACTS: i64 = 20_000;

/// Index scans of `index` so far, as the statistics show them once `client`'s own are flushed.
async fn index_scans(client: &tokio_postgres::Client, index: &str) -> i64 {
    client
        .batch_execute("SELECT pg_stat_force_next_flush(); SELECT pg_stat_clear_snapshot()")
        .await
        .expect("flush the statistics");
    client
        .query_one(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = $1",
            &[&index],
        )
        .await
        .expect("the index's statistics")
        .get(0)
}

#[tokio::test]
async fn a_rare_fragment_is_looked_up_in_the_trigram_index_after_common_ones() {
    let database = ScratchDatabase::create("searches").await;
    let mut client = database.migrated_connection().await;
    let identity = shared::users::Identity {
        subject: "searches",
        email: Some("searches@example.com"),
        name: None,
    };
    let tenant: TenantId = shared::users::provision(&mut client, &identity)
        .await
        .expect("the tenant")
        .tenant();
    client
        .execute(
            "INSERT INTO contacts (user_id, name, phone_number, email, company, created_at)
             SELECT $1, 'Person ' || n, '+1415' || lpad(n::text, 7, '0'), 'p' || n || '@example.test',
                    CASE WHEN n % 3 = 0 THEN 'Acme ' ELSE 'Globex ' END || (n % 100),
                    now() - n * interval '1 minute'
             FROM generate_series(1, $2::bigint) n",
            &[tenant.as_uuid(), &CONTACTS],
        )
        .await
        .expect("contacts");
    client
        .execute(
            "INSERT INTO leads (user_id, name, phone_number, email, company, last_contact_at)
             SELECT user_id, name, phone_number, email, company, created_at FROM contacts",
            &[],
        )
        .await
        .expect("leads");
    // As autovacuum keeps them: the rows in the indexes' entries, not in a pending list that
    // every search would read whole.
    for table in ["contacts", "leads"] {
        client
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await
            .expect("vacuum");
    }

    let search = |text: &str| ContactFilter {
        search: Some(text.to_owned()),
    };
    for _ in 0..8 {
        let (page, total) = contacts::list(&client, tenant, &search("acme"), 20, None)
            .await
            .expect("a common search");
        assert_eq!(page.len(), 20);
        assert_eq!((total.count, total.exact), (SEARCH_TOTAL_BOUND, false));
    }
    let before = index_scans(&client, "contacts_search_trgm_idx").await;
    let (page, total) = contacts::list(&client, tenant, &search("0012345"), 20, None)
        .await
        .expect("a rare search");
    let after = index_scans(&client, "contacts_search_trgm_idx").await;
    let found: Vec<_> = page.iter().map(|c| c.phone_number.as_str()).collect();
    assert_eq!(found, ["+14150012345"]);
    assert_eq!((total.count, total.exact), (1, true));
    assert!(
        after >= before + 2,
        "the page and the count both use the contacts' trigram index ({before} -> {after})"
    );

    let lead_search = |text: &str| LeadFilter {
        search: Some(text.to_owned()),
        ..LeadFilter::default()
    };
    for _ in 0..8 {
        let (page, _) = shared::leads::read::list(&client, tenant, &lead_search("acme"), 20, None)
            .await
            .expect("a common search");
        assert_eq!(page.len(), 20);
    }
    let before = index_scans(&client, "leads_search_trgm_idx").await;
    let (page, total) =
        shared::leads::read::list(&client, tenant, &lead_search("0012345"), 20, None)
            .await
            .expect("a rare search");
    let after = index_scans(&client, "leads_search_trgm_idx").await;
    assert_eq!(page.len(), 1);
    assert_eq!((total.count, total.exact), (1, true));
    assert!(
        after >= before + 2,
        "the leads' page and count both use their trigram index ({before} -> {after})"
    );

    drop(client);
    database.drop().await;
}
