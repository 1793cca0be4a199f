//! CSV exports of any size: a big one becomes an export job that the processor writes to S3
//! in slices and parts (scripts/test makes every part its own slice), handed out as a
//! presigned URL; small ones still answer inline; jobs are the owner's only.

use serde_json::Value;
use uuid::Uuid;

use crate::support::*;

/// About 13 MB of CSV: over Lambda's 6 MB response limit, and two 8 MiB parts.
const BIG: i64 = 25_000;

/// Inserts `count` completed calls for the tenant's call agent, one second apart (the first
/// newest), each with a long summary; the newest one's summary looks like a formula.
async fn seed_calls(tenant: &Tenant, count: i64) -> String {
    let prefix = format!("conv_export_{}", Uuid::new_v4().simple());
    let db = db().await;
    db.execute(
        "INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, type, direction, status,
                            phone_number, duration_seconds, credits_charged, call_successful,
                            summary, created_at)
         SELECT a.user_id, a.id, $2 || '_' || i, 'call', 'outbound', 'completed',
                '+1415' || lpad(i::text, 7, '0'), 60 + i % 300, 1 + i % 5, 'success',
                CASE WHEN i = 1 THEN '=HYPERLINK(\"http://evil\")'
                     ELSE repeat('The caller asked about pricing, availability and a demo. ', 8) END,
                now() - i * interval '1 second'
         FROM agents a, generate_series(1, $3::bigint) i
         WHERE a.elevenlabs_agent_id = $1",
        &[&tenant.call_agent, &prefix, &count],
    )
    .await
    .expect("calls");
    prefix
}

/// Polls the job at `location` until it is done.
async fn finished(location: &str, token: &str) -> Value {
    eventually(90, "the export job done", || async {
        let job = json(get(location, token).await).await;
        assert_ne!(job["status"], "failed", "{job}");
        (job["status"] == "done").then_some(job)
    })
    .await
}

/// The job's file, fetched from its presigned URL as a browser would (no token).
async fn download(job: &Value) -> (reqwest::header::HeaderMap, String) {
    let url = job["download_url"].as_str().expect("a download URL");
    let response = stack().http.get(url).send().await.expect("S3 answers");
    assert_eq!(response.status(), 200, "{url}");
    let headers = response.headers().clone();
    (headers, response.text().await.expect("csv"))
}

/// A 202 answer's job and its `Location`.
async fn accepted(response: reqwest::Response) -> (String, Value) {
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let job = json(response).await;
    assert_eq!(
        location,
        format!("/api/exports/{}", job["id"].as_str().expect("id"))
    );
    (location, job)
}

#[tokio::test]
async fn an_export_over_the_lambda_limit_is_written_to_s3_and_downloaded() {
    let tenant = Tenant::new().await;
    let other = Tenant::new().await;
    let prefix = seed_calls(&tenant, BIG).await;

    let (location, job) = accepted(get("/api/calls/export", &tenant.token).await).await;
    assert_eq!(job["kind"], "calls");
    assert!(job["download_url"].is_null(), "{job}");
    let response = get(&location, &other.token).await;
    assert_eq!(error_code(response, 404).await, "not_found");

    let job = finished(&location, &tenant.token).await;
    assert_eq!(job["rows_written"], BIG, "{job}");
    assert_eq!(job["total_rows"], BIG, "{job}");
    // scripts/test ends a slice after every part: the job was resumed at least once.
    assert!(job["slices"].as_i64().expect("slices") >= 2, "{job}");
    let bytes = job["bytes_written"].as_u64().expect("bytes");
    assert!(bytes > 6_000_000, "{job}");
    let file_name = job["file_name"].as_str().expect("file name");
    assert!(
        file_name.starts_with("calls-") && file_name.ends_with(".csv"),
        "{job}"
    );

    let (headers, csv) = download(&job).await;
    let disposition = headers["content-disposition"]
        .to_str()
        .expect("disposition");
    assert_eq!(disposition, format!("attachment; filename=\"{file_name}\""));
    assert_eq!(csv.len() as u64, bytes);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len() as i64, BIG + 1);
    assert!(
        lines[0].starts_with("id,created_at,started_at,agent,type"),
        "{}",
        lines[0]
    );
    // Newest first, every call once, across parts and slices.
    let newest = call_id(&format!("{prefix}_1")).await;
    assert!(lines[1].starts_with(&newest), "{}", lines[1]);
    assert!(
        lines[1].ends_with("'=HYPERLINK(\"\"http://evil\"\")\""),
        "{}",
        lines[1]
    );
    let oldest = call_id(&format!("{prefix}_{BIG}")).await;
    assert!(
        lines[BIG as usize].starts_with(&oldest),
        "{}",
        lines[BIG as usize]
    );
    let ids: std::collections::HashSet<&str> = lines[1..].iter().map(|l| &l[..36]).collect();
    assert_eq!(ids.len() as i64, BIG);
}

#[tokio::test]
async fn small_exports_answer_inline_and_jobs_cover_leads_and_empty_files() {
    let tenant = Tenant::new().await;
    seed_calls(&tenant, 3).await;
    db().await
        .execute(
            "INSERT INTO leads (user_id, phone_number, name, interaction_count)
             VALUES ($1, '+14155550111', '=cmd|calc', 1), ($1, '+14155550112', 'Ann', 2)",
            &[&tenant.id],
        )
        .await
        .expect("leads");

    let response = get("/api/calls/export", &tenant.token).await;
    assert_eq!(response.status(), 200);
    let csv = response.text().await.expect("csv");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // A search's export, streamed inline, and counted and written by a job (the statements
    // that run unnamed, planned for the pattern).
    let response = get("/api/calls/export?search=4150000002", &tenant.token).await;
    assert_eq!(response.status(), 200);
    let csv = response.text().await.expect("csv");
    assert_eq!(csv.lines().count(), 2, "the one matching call: {csv}");
    let (location, _) =
        accepted(post("/api/leads/export?search=ANN", &tenant.token, &Value::Null).await).await;
    let job = finished(&location, &tenant.token).await;
    assert_eq!(
        (job["rows_written"].as_i64(), job["total_rows"].as_i64()),
        (Some(1), Some(1))
    );

    let (location, job) =
        accepted(post("/api/leads/export", &tenant.token, &Value::Null).await).await;
    assert_eq!(job["kind"], "leads");
    let job = finished(&location, &tenant.token).await;
    assert_eq!(
        (job["rows_written"].as_i64(), job["slices"].as_i64()),
        (Some(2), Some(1))
    );
    let (_, csv) = download(&job).await;
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains(",'=cmd|calc,"), "{csv}");

    let (location, _) = accepted(
        post(
            "/api/calls/export?status=failed",
            &tenant.token,
            &Value::Null,
        )
        .await,
    )
    .await;
    let job = finished(&location, &tenant.token).await;
    assert_eq!(
        (job["rows_written"].as_i64(), job["total_rows"].as_i64()),
        (Some(0), Some(0))
    );
    let (_, csv) = download(&job).await;
    assert_eq!(csv.lines().count(), 1, "header only: {csv}");
}

#[tokio::test]
async fn export_filters_are_checked_before_a_job_is_made() {
    let tenant = Tenant::new().await;
    let other = Tenant::new().await;
    let others_agent: Uuid = agent_id_of(&other.call_agent).await;
    // Refused as the list refuses the same filters (400, `invalid_query` when a value does not
    // parse).
    for (list, query) in [
        ("/api/calls", "min_score=500"),
        ("/api/calls", "status=bogus"),
        ("/api/calls", "from=yesterday"),
        ("/api/leads", "min_score=-1"),
    ] {
        let code = error_code(get(&format!("{list}?{query}"), &tenant.token).await, 400).await;
        let path = format!("{list}/export?{query}");
        let response = get(&path, &tenant.token).await;
        assert_eq!(error_code(response, 400).await, code, "GET {path}");
        let response = post(&path, &tenant.token, &Value::Null).await;
        assert_eq!(error_code(response, 400).await, code, "POST {path}");
    }
    let path = format!("/api/calls/export?agent_id={others_agent}");
    let response = post(&path, &tenant.token, &Value::Null).await;
    assert_eq!(error_code(response, 404).await, "not_found");
    for path in [
        "/api/exports/not-an-id".to_owned(),
        format!("/api/exports/{}", Uuid::new_v4()),
    ] {
        let response = get(&path, &tenant.token).await;
        assert_eq!(error_code(response, 404).await, "not_found", "{path}");
    }
    let jobs: i64 = db()
        .await
        .query_one(
            "SELECT count(*) FROM exports WHERE user_id = $1",
            &[&tenant.id],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(jobs, 0);
}

/// `max_parallel_workers_per_gather` as `db` sees it.
async fn parallel_workers(db: &impl deadpool_postgres::GenericClient) -> String {
    db.query_one("SHOW max_parallel_workers_per_gather", &[])
        .await
        .expect("the setting")
        .get(0)
}

/// An export's page is planned without parallel workers (`Filter::page_stream`), by a setting
/// of its own transaction's: behind the transaction pooler, a setting that outlived the
/// transaction would stay on a server connection that others' transactions get next. Straight
/// to Postgres here, so that the session the page ran in is the one asked afterwards.
#[tokio::test]
async fn an_export_page_plans_without_parallel_workers_in_its_transaction_alone() {
    use futures::TryStreamExt;
    let pool = shared::db::pool(&direct_url(), 1).expect("a pool");
    let tenant = Account::new().await.tenant(&pool).await;
    let mut client = pool.get().await.expect("a connection");
    let export = shared::calls::read::export(&client, tenant, &Default::default())
        .await
        .expect("an export");
    let default = parallel_workers(&client).await;
    assert_ne!(
        default, "0",
        "Postgres' default plans with parallel workers"
    );

    let transaction = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .expect("a transaction");
    let rows: Vec<_> = export
        .filter
        .page_stream(&transaction, export.select, export.keyset, None, 20)
        .await
        .expect("a page")
        .try_collect()
        .await
        .expect("its rows");
    assert!(rows.is_empty(), "a new account has no calls");
    assert_eq!(
        parallel_workers(&transaction).await,
        "0",
        "the page's transaction plans without parallel workers"
    );
    transaction.commit().await.expect("commit");
    assert_eq!(
        parallel_workers(&client).await,
        default,
        "the setting ended with the page's transaction"
    );
}

#[tokio::test]
async fn three_exports_in_progress_at_most_and_a_stopped_one_is_failed() {
    let tenant = Tenant::new().await;
    // Three jobs in progress whose messages are gone (as after the dead-letter queue).
    let stuck: Vec<Uuid> = db()
        .await
        .query(
            "INSERT INTO exports (user_id, kind, filters, status, file_name, s3_key, expires_at)
             SELECT $1, 'calls', '{}', 'running', 'calls.csv', 'exports/stuck-' || i, now() + interval '1 day'
             FROM generate_series(1, 3) i RETURNING id",
            &[&tenant.id],
        )
        .await
        .expect("jobs")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let refused = post("/api/calls/export", &tenant.token, &Value::Null).await;
    assert_eq!(refused.headers()["retry-after"], "30");
    assert_eq!(error_code(refused, 429).await, "rate_limited");

    // Stopped two hours ago: the reconciler's sweep fails them, and exports can start again.
    db().await
        .execute(
            "UPDATE exports SET updated_at = now() - interval '2 hours 1 minute' WHERE id = ANY($1)",
            &[&stuck],
        )
        .await
        .expect("stopped");
    let swept = shared::export_jobs::run::fail_stalled(&app_state().await)
        .await
        .expect("the sweep");
    assert!(swept >= 3, "{swept}");
    for id in &stuck {
        let job = json(get(&format!("/api/exports/{id}"), &tenant.token).await).await;
        assert_eq!(job["status"], "failed", "{job}");
    }
    let (location, _) =
        accepted(post("/api/calls/export", &tenant.token, &Value::Null).await).await;
    finished(&location, &tenant.token).await;
}

#[tokio::test]
async fn a_lead_contacted_while_its_export_is_written_is_still_in_the_file() {
    let account = Account::new().await;
    let pool = pool(1);
    let tenant = account.tenant(&pool).await;
    let mut client = pool.get().await.expect("a connection");
    // Six leads, contacted one to six hours ago, created in the same order.
    let ids: Vec<Uuid> = client
        .query(
            "INSERT INTO leads (user_id, phone_number, name, last_contact_at, created_at)
             SELECT $1, '+1415666' || lpad(i::text, 4, '0'), 'lead ' || i,
                    now() - i * interval '1 hour', now() - i * interval '1 hour'
             FROM generate_series(1, 6) i ORDER BY i RETURNING id",
            &[tenant.as_uuid()],
        )
        .await
        .expect("leads")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let export = shared::leads::read::export(&client, tenant, &Default::default())
        .await
        .expect("the export");
    let mut out = Vec::new();
    let first = export
        .write_page(&mut client, None, 2, &mut out)
        .await
        .expect("the first page");
    // A call comes in for a lead not written yet.
    client
        .execute(
            "UPDATE leads SET last_contact_at = now() WHERE id = $1",
            &[&ids[4]],
        )
        .await
        .expect("contacted");
    let mut after = first.last;
    loop {
        let page = export
            .write_page(&mut client, after, 2, &mut out)
            .await
            .expect("a page");
        if page.end {
            break;
        }
        after = page.last;
    }
    let csv = String::from_utf8(out).expect("utf-8");
    let mut written: Vec<Uuid> = csv
        .lines()
        .map(|line| line.split(',').next().expect("id").parse().expect("an id"))
        .collect();
    written.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(written, expected, "{csv}");
}

#[tokio::test]
async fn a_job_whose_file_was_completed_but_not_recorded_is_done_when_run_again() {
    let tenant = Tenant::new().await;
    seed_calls(&tenant, 5).await;
    let (location, job) =
        accepted(post("/api/calls/export", &tenant.token, &Value::Null).await).await;
    let done = finished(&location, &tenant.token).await;
    // As if the run had completed the upload at S3 and then lost its database connection
    // before marking the job done: its message comes again, and completing the upload again
    // succeeds (S3 answers a repeated CompleteMultipartUpload as the first; moto too).
    let id: Uuid = job["id"].as_str().expect("id").parse().expect("uuid");
    db().await
        .execute(
            "UPDATE exports SET status = 'running', slices = slices - 1, finished_at = NULL
             WHERE id = $1",
            &[&id],
        )
        .await
        .expect("back to running");
    shared::export_jobs::run::run(&app_state().await, id)
        .await
        .expect("the run again");
    let again = json(get(&location, &tenant.token).await).await;
    assert_eq!(again["status"], "done", "{again}");
    assert_eq!(again["rows_written"], done["rows_written"]);
    let (_, csv) = download(&again).await;
    assert_eq!(csv.lines().count(), 6, "{csv}");
}

#[tokio::test]
async fn an_export_small_as_bytes_but_not_as_sent_becomes_a_job() {
    let tenant = Tenant::new().await;
    // 1,500 summaries of 1,000 quotes: 3 MB of CSV (each quote doubled), twice that as the
    // JSON string a Lambda response carries it in, past Lambda's 6 MB.
    db().await
        .execute(
            "INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, type, direction,
                                status, phone_number, summary)
             SELECT a.user_id, a.id, 'conv_quotes_' || gen_random_uuid(), 'call', 'outbound',
                    'completed', '+1415' || lpad(i::text, 7, '0'), repeat('\"', 1000)
             FROM agents a, generate_series(1, 1500) i WHERE a.elevenlabs_agent_id = $1",
            &[&tenant.call_agent],
        )
        .await
        .expect("calls");
    let response = get("/api/calls/export", &tenant.token).await;
    let (location, _) = accepted(response).await;
    let job = finished(&location, &tenant.token).await;
    assert_eq!(job["rows_written"], 1500, "{job}");
}
