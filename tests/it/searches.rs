//! A list's search reads on in the list's order when the newest rows often hold the fragment,
//! and looks a rarer one up in the tenant's trigram entries (V0024), whatever ran before it.

use shared::{
    calls::{
        self,
        read::{CallCursor, CallFilter},
    },
    contacts::{self, ContactFilter},
    leads::read::LeadFilter,
    tenant::TenantId,
};

use shared::db::filter::{
    Filter, Search, COMMON_MATCHES, COUNTED_MATCHES, COUNT_WINDOW_PER_ROW, PAGE_WINDOW_PER_ROW,
    SAMPLED_ROWS, SEARCH_TOTAL_BOUND, SHORT_LIST_ROWS,
};

use crate::support::*;

const CONTACTS: i64 = 20_000;

/// Index scans of `index` so far, as the statistics show them once `client`'s own are flushed.
async fn index_scans(client: &tokio_postgres::Client, index: &str) -> i64 {
    index_statistic(client, index, "idx_scan").await
}

/// The lookups of the calls' trigram index so far: one each time a search looks a fragment up.
async fn call_lookups(client: &tokio_postgres::Client) -> i64 {
    index_scans(client, "calls_search_runs_idx").await
}

/// The entries that scans of `index` have found so far (a bitmap scan's rows to check).
async fn index_entries_found(client: &tokio_postgres::Client, index: &str) -> i64 {
    index_statistic(client, index, "idx_tup_read").await
}

async fn index_statistic(client: &tokio_postgres::Client, index: &str, column: &str) -> i64 {
    client
        .batch_execute("SELECT pg_stat_force_next_flush(); SELECT pg_stat_clear_snapshot()")
        .await
        .expect("flush the statistics");
    client
        .query_one(
            &format!("SELECT {column} FROM pg_stat_user_indexes WHERE indexrelname = $1"),
            &[&index],
        )
        .await
        .expect("the index's statistics")
        .get(0)
}

/// The call list's search for `text` in `tenant`'s calls as a filter, fitted to them.
async fn fitted_call_search(
    client: &deadpool_postgres::Client,
    tenant: TenantId,
    text: &str,
) -> Filter {
    let from = "calls c LEFT JOIN contacts ct ON ct.id = c.contact_id";
    let mut filter = Filter::default();
    filter
        .and("c.user_id = $", vec![Box::new(*tenant.as_uuid())])
        .and_containing_any(
            tenant,
            Some(&Search::parse(text).expect("a search")),
            from,
            "c.id",
            &calls::read::SEARCHED,
        );
    // As the call list fits it: the newest calls read without their contacts' join, which
    // only the lookups read.
    filter
        .fit_search_to_rows(client, "calls c", &calls::read::NEWEST)
        .await
        .expect("the newest rows read");
    filter
}

/// The first page's statement of the call list's search for `text` in `tenant`'s calls, once
/// the search is fitted to them.
async fn fitted_call_page(
    client: &deadpool_postgres::Client,
    tenant: TenantId,
    text: &str,
) -> String {
    fitted_call_search(client, tenant, text)
        .await
        .page_statement(calls::read::sql::LIST_SELECT, &calls::read::NEWEST, false)
}

/// `count` completed calls of `tenant`'s by one agent, the n-th of them n minutes old and from
/// the number `prefix` (SQL over `n`) followed by n in seven digits.
async fn seed_numbered_calls(
    client: &tokio_postgres::Client,
    tenant: TenantId,
    count: i64,
    prefix: &str,
) {
    client
        .batch_execute(&format!(
            "WITH agent AS (INSERT INTO agents (user_id, elevenlabs_agent_id, name)
                            VALUES ('{tenant}', 'agent_{tenant}', 'Numbered') RETURNING id)
             INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, status,
                                phone_number, created_at)
             SELECT '{tenant}'::uuid, agent.id, 'conv_{tenant}_' || n, 'completed',
                    {prefix} || lpad(n::text, 7, '0'), now() - n * interval '1 minute'
             FROM generate_series(1, {count}) n, agent",
            tenant = tenant.as_uuid(),
        ))
        .await
        .expect("numbered calls");
}

/// The ids of `tenant`'s calls that one `OR` over the call's number and its contact's columns
/// matches for `text`, newest first: what the call list's search must find.
async fn calls_matching(
    client: &deadpool_postgres::Client,
    tenant: TenantId,
    text: &str,
) -> Vec<uuid::Uuid> {
    client
        .query(
            "SELECT c.id FROM calls c LEFT JOIN contacts ct ON ct.id = c.contact_id
             WHERE c.user_id = $1
               AND (c.phone_number ILIKE $2 OR ct.name ILIKE $2 OR ct.phone_number ILIKE $2
                    OR ct.email ILIKE $2 OR ct.company ILIKE $2)
             ORDER BY c.created_at DESC, c.id DESC",
            &[tenant.as_uuid(), &format!("%{text}%")],
        )
        .await
        .expect("the matches")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The call list's filters with the search `text` alone.
fn call_search(text: &str) -> CallFilter {
    CallFilter {
        search: Some(Search::parse(text).expect("a search")),
        ..CallFilter::default()
    }
}

/// The call list searched for `text`, `limit` calls after `after`: the page's ids, its total
/// and whether it is exact, and the cursor after its last call.
async fn searched_calls(
    client: &deadpool_postgres::Client,
    tenant: TenantId,
    text: &str,
    limit: i64,
    after: Option<CallCursor>,
) -> (Vec<uuid::Uuid>, (i64, bool), Option<CallCursor>) {
    let (page, total) = calls::read::list(client, tenant, &call_search(text), limit, after)
        .await
        .expect("a search");
    let cursor = page.last().map(|call| (call.created_at, call.id));
    (
        page.iter().map(|call| call.id).collect(),
        (total.count, total.exact),
        cursor,
    )
}

#[tokio::test]
async fn a_rare_fragment_is_looked_up_in_the_trigram_index_after_common_ones() {
    let database = ScratchDatabase::create("searches").await;
    let mut client = database.migrated_connection().await;
    let tenant = new_tenant(&mut client).await;
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
    vacuumed(&client, &["contacts", "leads"]).await;

    let search = |text: &str| ContactFilter {
        search: Some(Search::parse(text).expect("a search")),
    };
    for _ in 0..8 {
        let (page, total) = contacts::list(&client, tenant, &search("acme"), 20, None)
            .await
            .expect("a common search");
        assert_eq!(page.len(), 20);
        assert_eq!((total.count, total.exact), (SEARCH_TOTAL_BOUND, false));
    }
    let before = index_scans(&client, "contacts_search_runs_idx").await;
    let (page, total) = contacts::list(&client, tenant, &search("0012345"), 20, None)
        .await
        .expect("a rare search");
    let after = index_scans(&client, "contacts_search_runs_idx").await;
    let found: Vec<_> = page.iter().map(|c| c.phone_number.as_str()).collect();
    assert_eq!(found, ["+14150012345"]);
    assert_eq!(
        (total.count, total.exact),
        (1, true),
        "a first page not full is the total"
    );
    assert_eq!(
        after,
        before + 1,
        "the page uses the index, and nothing is counted"
    );
    // 0001234 and 0012340 to 0012349: a full page of five, then the count.
    let (page, total) = contacts::list(&client, tenant, &search("001234"), 5, None)
        .await
        .expect("a rare search");
    assert_eq!((page.len(), total.count, total.exact), (5, 11, true));
    assert_eq!(
        index_scans(&client, "contacts_search_runs_idx").await,
        after + 2,
        "the page and the count both use the contacts' trigram index"
    );

    let lead_search = |text: &str| LeadFilter {
        search: Some(Search::parse(text).expect("a search")),
        ..LeadFilter::default()
    };
    for _ in 0..8 {
        let (page, _) = shared::leads::read::list(&client, tenant, &lead_search("acme"), 20, None)
            .await
            .expect("a common search");
        assert_eq!(page.len(), 20);
    }
    let before = index_scans(&client, "leads_search_runs_idx").await;
    let (page, total) = shared::leads::read::list(&client, tenant, &lead_search("001234"), 5, None)
        .await
        .expect("a rare search");
    let after = index_scans(&client, "leads_search_runs_idx").await;
    assert_eq!((page.len(), total.count, total.exact), (5, 11, true));
    assert_eq!(
        after,
        before + 2,
        "the leads' page and count both use their trigram index"
    );

    drop(client);
    database.drop().await;
}

/// A fragment's trigrams run across its blanks: "globex 1" is looked up under "x 1", which
/// only the contacts at Globex 1 hold, not under a word starting with 1, which every contact's
/// number holds (pg_trgm's trigrams, V0023).
#[tokio::test]
async fn a_fragment_is_looked_up_by_trigrams_across_its_blanks() {
    let database = ScratchDatabase::create("searches").await;
    let mut client = database.migrated_connection().await;
    let tenant = new_tenant(&mut client).await;
    // 2,000 contacts, numbers +1415…; the 20 oldest at Globex 1, then 980 at Globex 2 and
    // 1,000 at Acme 1, the newest.
    client
        .execute(
            "INSERT INTO contacts (user_id, name, phone_number, company, created_at)
             SELECT $1, 'Person ' || n, '+1415' || lpad(n::text, 7, '0'),
                    CASE WHEN n > 1980 THEN 'Globex 1' WHEN n > 1000 THEN 'GLOBEX 2' ELSE 'Acme 1' END,
                    now() - n * interval '1 minute'
             FROM generate_series(1, 2000) n",
            &[tenant.as_uuid()],
        )
        .await
        .expect("contacts");
    vacuumed(&client, &["contacts"]).await;

    let search = |text: &str| ContactFilter {
        search: Some(Search::parse(text).expect("a search")),
    };
    let entries = || index_entries_found(&client, "contacts_search_runs_idx");
    let before = entries().await;
    let (page, total) = contacts::list(&client, tenant, &search("GLOBEX 1"), 20, None)
        .await
        .expect("a rare search");
    let found = entries().await - before;
    assert_eq!(page.len(), 20);
    assert!(page
        .iter()
        .all(|c| c.company.as_deref() == Some("Globex 1")));
    assert_eq!((total.count, total.exact), (20, true));
    assert!(
        found <= 2 * 20,
        "the page and the count each check the 20 contacts at Globex 1, not every one at \
         Globex: {found} entries"
    );

    // The runs are the lowercased text's: its case, and a sign, are matched as they stand.
    let (page, total) = contacts::list(&client, tenant, &search("x 2"), 5, None)
        .await
        .expect("a search across a blank");
    assert_eq!((page.len(), total.count), (5, 980));
    let (page, _) = contacts::list(&client, tenant, &search("+1415000002"), 20, None)
        .await
        .expect("a search with a sign");
    assert_eq!(page.len(), 10, "+14150000020 to 29: {page:?}");

    drop(client);
    database.drop().await;
}

/// The call list's search (the call's number, or its contact's name, number, e-mail or
/// company: two tables) finds what one `OR` over both finds, in the same order and count,
/// through an index for a rare fragment: the calls' trigram index for a number, the call's
/// contact for a name.
#[tokio::test]
async fn a_calls_search_looks_up_numbers_and_contact_names_on_their_own() {
    let database = ScratchDatabase::create("call_searches").await;
    let mut client = database.migrated_connection().await;
    let (tenant, other) = (new_tenant(&mut client).await, new_tenant(&mut client).await);
    // Each contact has a call from its number, newest first by contact; then calls from
    // numbers no contact has; one contact's call came from another number; and the other
    // tenant has a contact and call that the rare searches below would match.
    client
        .batch_execute(&format!(
            "WITH agent AS (INSERT INTO agents (user_id, elevenlabs_agent_id, name)
                            VALUES ('{tenant}', 'agent_call_searches', 'Searches') RETURNING id),
                  person AS (
                    INSERT INTO contacts (user_id, name, phone_number, created_at)
                    SELECT '{tenant}'::uuid, 'Person ' || n, '+1415' || lpad(n::text, 7, '0'),
                           now() - n * interval '1 minute'
                    FROM generate_series(1, {CONTACTS}) n
                    UNION ALL SELECT '{tenant}'::uuid, 'Zed Quux', '+19990000001', now()
                    RETURNING id, phone_number, created_at)
             INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, status,
                                phone_number, contact_id, created_at)
             SELECT '{tenant}'::uuid, agent.id, 'conv_' || person.phone_number, 'completed',
                    CASE person.phone_number WHEN '+19990000001' THEN '+18880000001'
                         ELSE person.phone_number END,
                    person.id, person.created_at
             FROM person, agent
             UNION ALL
             SELECT '{tenant}'::uuid, agent.id, 'conv_unknown_' || n, 'completed',
                    '+1650' || lpad(n::text, 7, '0'), NULL, now() - n * interval '90 seconds'
             FROM generate_series(1, 2000) n, agent;
             WITH agent AS (INSERT INTO agents (user_id, elevenlabs_agent_id, name)
                            VALUES ('{other}', 'agent_call_searches_other', 'Other') RETURNING id),
                  person AS (INSERT INTO contacts (user_id, name, phone_number)
                             VALUES ('{other}', 'Person 12345', '+14150012345') RETURNING id)
             INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, status,
                                phone_number, contact_id)
             SELECT '{other}'::uuid, agent.id, 'conv_other', 'completed', '+14150012345', person.id
             FROM agent, person;",
            tenant = tenant.as_uuid(),
            other = other.as_uuid(),
        ))
        .await
        .expect("contacts and calls");
    vacuumed(&client, &["contacts", "calls"]).await;

    for text in [
        "+1415",
        "0012345",
        "person 1234",
        "zed q",
        "8880000001",
        "nobody",
        "5",
    ] {
        let all = calls_matching(&client, tenant, text).await;
        let (first, total, cursor) = searched_calls(&client, tenant, text, 20, None).await;
        assert_eq!(
            first,
            all[..all.len().min(20)],
            "the first page of {text:?}"
        );
        let count = all.len() as i64;
        assert_eq!(
            total,
            (count.min(SEARCH_TOTAL_BOUND), count <= SEARCH_TOTAL_BOUND),
            "the total of {text:?}"
        );
        if all.len() > 20 {
            let (second, _, _) = searched_calls(&client, tenant, text, 20, cursor).await;
            assert_eq!(
                second,
                all[20..all.len().min(40)],
                "the next page of {text:?}"
            );
        }
    }

    for _ in 0..8 {
        let (page, total, _) = searched_calls(&client, tenant, "+1415", 20, None).await;
        assert_eq!((page.len(), total), (20, (SEARCH_TOTAL_BOUND, false)));
    }
    // 0001234 and 0012340 to 0012349, the contacts' and the unknown numbers': a full page of
    // five, then the count.
    let before = call_lookups(&client).await;
    let (page, total, _) = searched_calls(&client, tenant, "001234", 5, None).await;
    let after = call_lookups(&client).await;
    assert_eq!((page.len(), total), (5, (12, true)));
    assert!(
        after >= before + 2,
        "a rare number's page and count both use the calls' trigram index ({before} -> {after})"
    );
    // Its fit reads the 200 newest calls, and whether there are 1,000 in the calls' order
    // index alone: joined to the contacts there (unused), it read each of those calls too.
    let fetched = index_statistic(&client, "calls_user_created_idx", "idx_tup_fetch").await;
    searched_calls(&client, tenant, "0012345", 20, None).await;
    let fetched =
        index_statistic(&client, "calls_user_created_idx", "idx_tup_fetch").await - fetched;
    assert!(
        fetched <= SAMPLED_ROWS,
        "a rare number's fit read {fetched} calls through their order"
    );
    let before = index_scans(&client, "calls_contact_idx").await;
    let (page, total, _) = searched_calls(&client, tenant, "person 1234", 5, None).await;
    let after = index_scans(&client, "calls_contact_idx").await;
    assert_eq!((page.len(), total), (5, (11, true)));
    assert!(
        after >= before + 2,
        "a rare name's page and count both find their calls by contact ({before} -> {after})"
    );

    // A tenant of one call finds its own call only (read in order: the sample read all of it).
    let (found, total, _) = searched_calls(&client, other, "0012345", 20, None).await;
    assert_eq!(total, (1, true));
    assert_eq!(found, calls_matching(&client, other, "0012345").await);
    // Of the newest rows, every one holds +1415 and none 0012345, and "zz" has no trigram; the
    // other tenant's one call is fewer rows than the sample.
    for (tenant, text, read_in_order) in [
        (tenant, "+1415", true),
        (tenant, "0012345", false),
        (tenant, "zz", true),
        (other, "0012345", true),
    ] {
        let page = fitted_call_page(&client, tenant, text).await;
        assert_eq!(
            page.contains("coalesce((coalesce("),
            read_in_order,
            "{text:?}: {COMMON_MATCHES} of the {SAMPLED_ROWS} newest are read on, fewer looked up: {page}"
        );
    }

    drop(client);
    database.drop().await;
}

/// A search's page read in order keeps one plan per connection, as a list's page without a
/// search does, and that plan, made for any tenant, still reads the list in its order: with 20
/// tenants of 300 calls beside one of 3,000, Postgres expects a tenant to have about 430 calls,
/// and a plan it makes for that must not collect and sort all of a larger tenant's calls (a
/// window's total cut by a constant did so at 10M calls, 1.7 s). After seven requests on one
/// connection, the page runs on its generic plan and reads no more of the calls' index than
/// its window.
#[tokio::test]
async fn a_search_read_in_order_keeps_one_plan_that_reads_in_order() {
    let database = ScratchDatabase::create("search_plans").await;
    let mut client = database.migrated_connection().await;
    let tenant = new_tenant(&mut client).await;
    // Every tenth call: 20 of the 200 newest, and the list longer than SHORT_LIST_ROWS, so a
    // page reads in its window.
    seed_numbered_calls(
        &client,
        tenant,
        3 * SHORT_LIST_ROWS,
        "CASE WHEN n % 10 = 3 THEN '+1999' ELSE '+1650' END",
    )
    .await;
    client
        .batch_execute(
            "WITH tenant AS (INSERT INTO users (auth_subject)
                             SELECT 'other_' || i FROM generate_series(1, 20) i RETURNING id),
             agent AS (INSERT INTO agents (user_id, elevenlabs_agent_id, name)
                       SELECT id, 'agent_' || id, 'other' FROM tenant RETURNING id, user_id)
             INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, status)
             SELECT user_id, id, 'conv_' || id || '_' || n, 'completed'
             FROM agent, generate_series(1, 300) n",
        )
        .await
        .expect("other tenants");
    vacuumed(&client, &["calls"]).await;
    let all = calls_matching(&client, tenant, "+1999").await;
    const { assert!(SAMPLED_ROWS / 10 >= COMMON_MATCHES) };

    let before = call_lookups(&client).await;
    for _ in 0..7 {
        let (page, total, _) = searched_calls(&client, tenant, "+1999", 20, None).await;
        assert_eq!((page.as_slice(), total), (&all[..20], (300, true)));
    }
    assert_eq!(call_lookups(&client).await, before, "nothing looked up");
    let plans: Vec<(String, i64, i64)> = client
        .query(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
             WHERE generic_plans + custom_plans > 0 AND statement LIKE '%ILIKE $%'
               AND statement NOT LIKE '%pg_prepared_statements%'",
            &[],
        )
        .await
        .expect("the prepared statements")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let [(page_statement, generic, custom)] = plans.as_slice() else {
        panic!("one statement read in order from the cache, the page's: {plans:#?}");
    };
    assert!(
        *generic >= 1,
        "{generic} generic and {custom} custom plans in 7 runs of {page_statement}"
    );
    // The page on its kept plan, alone: the newest rows of the calls' index in order, at most
    // its window, not all 3,000.
    let page_size = 20_i64;
    let filter = fitted_call_search(&client, tenant, "+1999").await;
    let read = || index_entries_found(&client, "calls_user_created_idx");
    let before = read().await;
    let page = filter
        .page(
            &client,
            calls::read::sql::LIST_SELECT,
            &calls::read::NEWEST,
            None,
            page_size,
        )
        .await
        .expect("the page");
    let entries = read().await - before;
    drop(client);
    database.drop().await;
    assert_eq!(page.len(), 20);
    assert!(
        entries <= page_size * PAGE_WINDOW_PER_ROW,
        "the kept plan read {entries} entries of the calls' index for a page"
    );
}

/// A search read in order reads a window of rows, and looks the fragment up in the trigram
/// index when the window holds too few matches and more rows follow: a fragment that the
/// newest calls hold, then none for thousands of calls, then some again, is found on every
/// page and counted in full, without reading the calls between. A fragment that fewer of the
/// newest hold is counted by lookup alone.
#[tokio::test]
async fn a_search_read_in_order_looks_up_what_its_window_does_not_hold() {
    const CALLS: i64 = 20_000;
    // Past the total's window: the deep calls are found only by the lookup past it.
    const DEEP: i64 = 17_001;
    const { assert!(COUNT_WINDOW_PER_ROW * (SEARCH_TOTAL_BOUND + 1) < DEEP) };
    let database = ScratchDatabase::create("windowed_searches").await;
    let mut client = database.migrated_connection().await;
    let tenant = new_tenant(&mut client).await;
    // +1888: the 30 newest calls and 50 from DEEP on; +1999: every 20th of the others;
    // +1777: every 40th.
    seed_numbered_calls(
        &client,
        tenant,
        CALLS,
        &format!(
            "CASE WHEN n <= 30 OR n BETWEEN {DEEP} AND {DEEP} + 49 THEN '+1888'
                  WHEN n % 20 = 7 THEN '+1999' WHEN n % 40 = 11 THEN '+1777'
                  ELSE '+1650' END"
        ),
    )
    .await;
    vacuumed(&client, &["calls"]).await;

    let all = calls_matching(&client, tenant, "+1888").await;
    assert_eq!(all.len(), 80);
    const {
        assert!(
            30 >= COUNTED_MATCHES,
            "the page and the total read in order"
        )
    };
    // The first page is in its window; the total's window holds only 30, so the lookup counts
    // all 80.
    let before = call_lookups(&client).await;
    let (page, total, cursor) = searched_calls(&client, tenant, "+1888", 20, None).await;
    assert_eq!(page, all[..20]);
    assert_eq!(total, (80, true), "counted past the window");
    assert_eq!(
        call_lookups(&client).await,
        before + 1,
        "only the total looks up"
    );
    // The second page's window holds 10, so the page is looked up.
    let before = call_lookups(&client).await;
    let (page, _, cursor) = searched_calls(&client, tenant, "+1888", 20, cursor).await;
    assert_eq!(page, all[20..40]);
    assert_eq!(
        call_lookups(&client).await,
        before + 2,
        "the page, its window ({} rows) short of a page, and the total",
        20 * PAGE_WINDOW_PER_ROW
    );
    let (page, _, cursor) = searched_calls(&client, tenant, "+1888", 20, cursor).await;
    assert_eq!(page, all[40..60]);
    let (page, _, cursor) = searched_calls(&client, tenant, "+1888", 20, cursor).await;
    assert_eq!(page, all[60..80]);
    let (page, total, _) = searched_calls(&client, tenant, "+1888", 20, cursor).await;
    assert_eq!((page.len(), total), (0, (80, true)), "past the last match");

    // An export's pages read the same way (20 rows a page here: the second is looked up), and
    // its full count looks the fragment up.
    let export = calls::read::export(&client, tenant, &call_search("+1888"))
        .await
        .expect("an export");
    assert_eq!(export.count(&client).await.expect("its count"), 80);
    let (mut written, mut after) = (Vec::new(), None);
    loop {
        let mut out = Vec::new();
        let page = export
            .write_page(&mut client, after, 20, &mut out)
            .await
            .expect("a page");
        let csv = String::from_utf8(out).expect("utf-8");
        written.extend(
            csv.lines()
                .map(|line| line[..36].parse::<uuid::Uuid>().expect("an id")),
        );
        if page.end {
            break;
        }
        after = page.last;
    }
    assert_eq!(written, all, "every match, in the list's order");

    // 10 of the 200 newest: a page reads in order, the total looks up.
    let all = calls_matching(&client, tenant, "+1999").await;
    assert_eq!(all.len(), 995);
    let before = call_lookups(&client).await;
    let (page, total, cursor) = searched_calls(&client, tenant, "+1999", 20, None).await;
    assert_eq!((page.as_slice(), total), (&all[..20], (995, true)));
    let (page, _, _) = searched_calls(&client, tenant, "+1999", 20, cursor).await;
    assert_eq!(page, all[20..40]);
    assert_eq!(
        call_lookups(&client).await,
        before + 2,
        "each total looks up, no page does"
    );

    // 4 of the 200 newest, one in 50 as the window expects: a page reads in order (24 in its
    // window), and only the total looks up. Looked up, the page would read every match.
    let all = calls_matching(&client, tenant, "+1777").await;
    assert_eq!(all.len(), 498);
    const { assert!(COMMON_MATCHES <= 4) };
    let before = call_lookups(&client).await;
    let (page, total, _) = searched_calls(&client, tenant, "+1777", 20, None).await;
    assert_eq!((page.as_slice(), total), (&all[..20], (498, true)));
    assert_eq!(
        call_lookups(&client).await,
        before + 1,
        "the total looks up, the page does not"
    );

    // A tenant of 500 calls, fewer than SHORT_LIST_ROWS, one in 20 from +1999: a page and the
    // total read the fragment in order to the end, neither in a window nor looked up; a number
    // only one call has is looked up.
    let small = new_tenant(&mut client).await;
    seed_numbered_calls(
        &client,
        small,
        500,
        "CASE WHEN n % 20 = 7 THEN '+1999' ELSE '+1650' END",
    )
    .await;
    for (text, matching, read_in_order) in [("+1999", 25, true), ("6500000123", 1, false)] {
        let page = fitted_call_page(&client, small, text).await;
        assert_eq!(
            (
                page.contains("coalesce((coalesce("),
                page.contains("unnest(w.ids)")
            ),
            (read_in_order, false),
            "{text:?} in {SHORT_LIST_ROWS} rows or fewer: {page}"
        );
        let (page, total, _) = searched_calls(&client, small, text, 20, None).await;
        assert_eq!(
            (page.len(), total),
            (matching.min(20), (matching as i64, true))
        );
    }

    drop(client);
    database.drop().await;
}

/// A total looks a fragment up among the sixteenth of the contacts (or leads) that an index of
/// their own holds (V0036, V0037) before the whole index, which gathers every match before a
/// count can stop: it stops there when they hold more matches than the bound, and otherwise
/// counts the others' too, each row once. The ids are made here, with their last byte picking
/// their side (`search_sampled`).
#[tokio::test]
async fn a_total_looks_up_the_sampled_contacts_first_and_stops_there_past_the_bound() {
    let database = ScratchDatabase::create("sampled_searches").await;
    let mut client = database.migrated_connection().await;
    let tenant = new_tenant(&mut client).await;
    // (company, contacts in the sample, contacts outside it, calls each, whether one of its
    // contacts is among the newest 200), older than the newest 300 calls but that one, whose
    // contacts match none of the searches: a page and a total look each of them up, and a
    // total looks one that none of the newest rows holds up in the whole index alone.
    let companies: [(&str, i64, i64, i64, bool); 5] = [
        ("Globex 1", 1_100, 0, 1, true),
        ("Initech 2", 30, 50, 2, true),
        ("Umbrella 3", 100, 150, 5, true),
        ("Hooli 4", 0, 40, 3, true),
        ("Stark 5", 1_100, 0, 1, false),
    ];
    let mut seeded = String::from(
        "CREATE TEMP TABLE people (id uuid, company text, calls int, n int);
         INSERT INTO people SELECT gen_random_uuid(), 'Other Co', 1, n
         FROM generate_series(1, 300) n;
         INSERT INTO people SELECT gen_random_uuid(), 'Filler', 0, n
         FROM generate_series(1, 20000) n;",
    );
    for (at, (company, inside, outside, calls, seen)) in companies.into_iter().enumerate() {
        let newest = if seen { 10 + 10 * at } else { 0 };
        for (count, last_byte) in [(inside, "n % 16"), (outside, "16 + n % 240")] {
            // The first of the company's contacts is `newest` minutes old, if any.
            let age = if count > 0 && (count == inside || inside == 0) {
                format!("CASE WHEN n = 1 AND {newest} > 0 THEN {newest} ELSE 1000 + n END")
            } else {
                "1000 + n".to_owned()
            };
            seeded.push_str(&format!(
                "INSERT INTO people SELECT encode(overlay(uuid_send(gen_random_uuid()) \
                 PLACING set_byte('\\x00'::bytea, 0, {last_byte}) FROM 16 FOR 1), 'hex')::uuid, \
                 '{company}', {calls}, {age} FROM generate_series(1, {count}) n;"
            ));
        }
    }
    seeded.push_str(&format!(
        "WITH agent AS (INSERT INTO agents (user_id, elevenlabs_agent_id, name)
                        VALUES ('{tenant}', 'agent_sampled', 'Sampled') RETURNING id),
              person AS (
                INSERT INTO contacts (id, user_id, name, phone_number, company, created_at)
                SELECT id, '{tenant}'::uuid, 'Person ' || row_number() OVER (),
                       '+1415' || lpad((row_number() OVER ())::text, 7, '0'), company,
                       now() - n * interval '1 minute'
                FROM people RETURNING id)
         INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, status, contact_id,
                            created_at)
         SELECT '{tenant}'::uuid, agent.id, 'conv_' || people.id || '_' || k, 'completed',
                people.id, now() - people.n * interval '1 minute' - k * interval '1 second'
         FROM people JOIN person USING (id), agent, generate_series(1, people.calls) k;",
        tenant = tenant.as_uuid(),
    ));
    // Each contact's lead has the contact's id, and so its side.
    seeded.push_str(
        "INSERT INTO leads (id, user_id, name, phone_number, company, last_contact_at)
         SELECT id, user_id, name, phone_number, company, created_at FROM contacts;",
    );
    client
        .batch_execute(&seeded)
        .await
        .expect("contacts, their calls and leads");
    let sampled: i64 = client
        .query_one(
            "SELECT count(*) FROM contacts WHERE search_sampled(id) AND company <> 'Filler'
               AND company <> 'Other Co'",
            &[],
        )
        .await
        .expect("the sampled contacts")
        .get(0);
    assert_eq!(
        sampled,
        1_100 + 30 + 100 + 1_100,
        "the sample is picked by the id's last byte"
    );
    vacuumed(&client, &["contacts", "calls", "leads"]).await;

    let from = "calls c LEFT JOIN contacts ct ON ct.id = c.contact_id";
    let contact_search = |text: &str| ContactFilter {
        search: Some(Search::parse(text).expect("a search")),
    };
    let lead_search = |text: &str| LeadFilter {
        search: Some(Search::parse(text).expect("a search")),
        ..LeadFilter::default()
    };
    for (company, inside, outside, calls, seen) in companies {
        let text = company.to_lowercase();
        let filter = fitted_call_search(&client, tenant, &text).await;
        assert!(
            !filter.total_statement(from).contains("w.matched"),
            "{text:?}: the newest calls hold it rarely, so the total looks it up"
        );
        let (whole, sample) = (
            index_scans(&client, "contacts_search_runs_idx").await,
            index_scans(&client, "contacts_search_sample_idx").await,
        );
        let total = filter.total(&client, from).await.expect("the calls' total");
        let (whole_after, sample_after) = (
            index_scans(&client, "contacts_search_runs_idx").await,
            index_scans(&client, "contacts_search_sample_idx").await,
        );
        let matching = calls_matching(&client, tenant, &text).await.len() as i64;
        assert_eq!(matching, (inside + outside) * calls);
        assert_eq!(
            (total.count, total.exact),
            (
                matching.min(SEARCH_TOTAL_BOUND),
                matching <= SEARCH_TOTAL_BOUND
            ),
            "the calls' total of {text:?}"
        );
        assert_eq!(
            sample_after - sample,
            i64::from(seen),
            "{text:?}: the sample is looked up when the newest calls held it"
        );
        let sample_holds_the_bound = seen && inside * calls > SEARCH_TOTAL_BOUND;
        assert_eq!(
            whole_after == whole,
            sample_holds_the_bound,
            "{text:?}: the whole index is looked up only while the sample is short of the bound"
        );

        let whole = index_scans(&client, "contacts_search_runs_idx").await;
        let (page, total) = contacts::list(&client, tenant, &contact_search(&text), 20, None)
            .await
            .expect("the contacts' search");
        let people = inside + outside;
        assert_eq!(page.len() as i64, people.min(20));
        assert_eq!(
            (total.count, total.exact),
            (people.min(SEARCH_TOTAL_BOUND), people <= SEARCH_TOTAL_BOUND),
            "the contacts' total of {text:?}"
        );
        let counted_whole = index_scans(&client, "contacts_search_runs_idx").await - whole;
        let whole_lookups = if seen && inside > SEARCH_TOTAL_BOUND {
            1
        } else {
            2
        };
        assert_eq!(
            counted_whole, whole_lookups,
            "{text:?}: the page looks the whole index up, the count only past a short sample"
        );

        let whole = index_scans(&client, "leads_search_runs_idx").await;
        let (page, total) =
            shared::leads::read::list(&client, tenant, &lead_search(&text), 20, None)
                .await
                .expect("the leads' search");
        assert_eq!(page.len() as i64, people.min(20));
        assert_eq!(
            (total.count, total.exact),
            (people.min(SEARCH_TOTAL_BOUND), people <= SEARCH_TOTAL_BOUND),
            "the leads' total of {text:?}"
        );
        assert_eq!(
            index_scans(&client, "leads_search_runs_idx").await - whole,
            whole_lookups,
            "{text:?}: the leads' page looks their whole index up, the count only past a short sample"
        );
    }

    drop(client);
    database.drop().await;
}
