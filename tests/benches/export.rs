//! CSV export benchmark, run by scripts/bench-export against a stack of its own:
//! a. seeds the read bench's dataset once (tests/benches/reads_seed.sql without transcripts,
//!    which no export reads): by default one tenant with 1,000,000 calls and 19 small ones;
//! b. the limit: the same rows as the calls export (its columns, joins and order) as
//!    `COPY (...) TO STDOUT (FORMAT csv)` through the pooler, read to the end;
//! c. an export job of about a tenth of the largest tenant's calls (`POST /api/calls/export
//!    ?from=`), `GET /api/exports/{id}` polled until done, then the file downloaded from its
//!    presigned URL: times, the API process's peak memory (VmHWM, reset before; the local
//!    server runs jobs in its queue poller, as the processor Lambda does) and the CPU time it
//!    spent meanwhile, per row written;
//! d. `GET /api/calls/export` of every call: streamed inline (before export jobs: the time to
//!    its last byte), or a 202 whose job is followed as in c. Its peak memory next to c's
//!    shows whether memory grows with the export.

use std::time::{Duration, Instant};

use serde_json::Value;
use simulators::stack_auth::Issuer;
use tokio_postgres::Client;
use uuid::Uuid;

// Shared by every bench target; this one does not use all of it.
#[allow(dead_code)]
mod support;

// Shared with the read bench.
#[path = "support/seed.rs"]
mod seed;

use seed::{connect, Dataset};
use support::{api_pid, cpu_time, fail, print_table, var, Api, BoxError, Resident};

struct Options {
    tenants: usize,
    calls: usize,
    largest: usize,
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        tenants: 20,
        calls: 1_050_000,
        largest: 1_000_000,
    };
    support::parse_counts(&mut [
        ("--tenants", &mut options.tenants),
        ("--calls", &mut options.calls),
        ("--largest", &mut options.largest),
    ])?;
    if options.largest >= options.calls || options.tenants < 3 {
        return Err("--largest must be less than --calls, and --tenants at least 3".into());
    }
    Ok(options)
}

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        fail(&err);
    }
}

async fn run() -> Result<(), BoxError> {
    let options = options()?;
    // Seeding uses temporary tables: straight to Postgres, not through the pooler.
    let direct = connect(&var("DATABASE_DIRECT_URL").or_else(|_| var("DATABASE_URL"))?).await?;
    let seed = Dataset {
        name: "export",
        tenants: options.tenants,
        calls: options.calls,
        largest: options.largest,
        skip_steps: &[
            "transcripts",
            "contacts",
            "call contacts",
            "ledger",
            "purchases",
        ],
    }
    .ensure_seeded(&direct)
    .await?;
    eprintln!("{}", seed.describe());
    let tenant = Tenant::largest(&direct).await?;
    let api = Api::new()?;
    let token = {
        let claims = api.issuer.claims(&tenant.subject, &tenant.email, 3600);
        Issuer::sign(&api.issuer.keys.es256, &claims)
    };
    let pid = api_pid()?;
    let mut rows = vec![("tenant".to_owned(), format!("{} calls", tenant.calls))];

    eprintln!("measuring COPY ... TO STDOUT");
    let pooled = connect(&var("DATABASE_URL")?).await?;
    let (took, bytes, lines) = copy_out(&pooled, tenant.id).await?;
    rows.push((
        "limit: COPY (the export's columns, joins and order) TO STDOUT (FORMAT csv), through the pooler".into(),
        rate(took, bytes, lines),
    ));

    // A tenth first: the whole tenant's export must not need more memory than it.
    let tenth = tenth_of_calls(&direct, tenant.id).await?;
    eprintln!("measuring POST /api/calls/export of a tenth");
    let before = Usage::from_now(&pid)?;
    let query = format!("?from={}", tenth.format("%Y-%m-%dT%H:%M:%SZ"));
    let response = api
        .http
        .post(format!("{}/api/calls/export{query}", api.url))
        .bearer_auth(&token)
        .send()
        .await?;
    let label = format!(
        "calls from {} (about a tenth)",
        tenth.format("%Y-%m-%d %H:%M:%S")
    );
    if response.status() == 405 {
        rows.push((
            format!("export job, {label}"),
            "not served (POST /api/calls/export answered 405)".into(),
        ));
    } else {
        let job = follow(&api, &token, Instant::now(), response).await?;
        rows.extend(job.rows(&label, before.since(&pid, job.rows)?));
    }

    eprintln!("measuring GET /api/calls/export (every call)");
    let before = Usage::from_now(&pid)?;
    let started = Instant::now();
    let response = api
        .http
        .get(format!("{}/api/calls/export", api.url))
        .bearer_auth(&token)
        .send()
        .await?;
    let status = response.status().as_u16();
    if status == 202 {
        let answered = started.elapsed();
        let job = follow(&api, &token, started, response).await?;
        let label = format!(
            "every call (GET answered 202 after {:.2} s)",
            answered.as_secs_f64()
        );
        rows.extend(job.rows(&label, before.since(&pid, job.rows)?));
    } else {
        let (bytes, lines) = drain(response).await?;
        let took = started.elapsed();
        rows.push((
            format!("GET /api/calls/export, every call: answered {status}, streamed inline"),
            format!(
                "{}; {}",
                rate(took, bytes, lines),
                before.since(&pid, lines)?
            ),
        ));
    }
    println!("\n{}\n", seed.describe());
    print_table(&rows);
    Ok(())
}

struct Tenant {
    id: Uuid,
    subject: String,
    email: String,
    calls: i64,
}

impl Tenant {
    async fn largest(db: &Client) -> Result<Self, BoxError> {
        let row = db
            .query_one(
                "SELECT u.id, u.auth_subject, u.email, (SELECT count(*) FROM calls c WHERE c.user_id = u.id)
                 FROM users u WHERE u.auth_subject = 'bench-reads-1'",
                &[],
            )
            .await?;
        Ok(Self {
            id: row.get(0),
            subject: row.get(1),
            email: row.get(2),
            calls: row.get(3),
        })
    }
}

/// The creation time after which about a tenth of the tenant's calls were made.
async fn tenth_of_calls(
    db: &Client,
    tenant: Uuid,
) -> Result<chrono::DateTime<chrono::Utc>, BoxError> {
    Ok(db
        .query_one(
            "SELECT created_at FROM calls WHERE user_id = $1 ORDER BY created_at DESC
             OFFSET (SELECT count(*) / 10 FROM calls WHERE user_id = $1) LIMIT 1",
            &[&tenant],
        )
        .await?
        .get(0))
}

/// The calls export's rows (its columns, joins and order) as Postgres writes CSV itself:
/// time, bytes, lines.
async fn copy_out(db: &Client, tenant: Uuid) -> Result<(Duration, u64, u64), BoxError> {
    use futures::StreamExt;
    let (_, joins) = shared::calls::read::sql::LIST_SELECT
        .split_once(" FROM ")
        .ok_or("the list's SELECT has a FROM")?;
    let statement = format!(
        "COPY (SELECT c.id, c.created_at, c.started_at, a.name, c.type, c.direction, c.status,
                c.phone_number, ct.name, c.duration_seconds, c.credits_charged, c.call_successful,
                la.total_score, la.lead_status_tag, c.summary
              FROM {joins} WHERE c.user_id = '{tenant}' ORDER BY c.created_at DESC, c.id DESC)
         TO STDOUT (FORMAT csv, HEADER)"
    );
    let started = Instant::now();
    let stream = db.copy_out(&statement).await?;
    futures::pin_mut!(stream);
    let (mut bytes, mut lines) = (0, 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        lines += bytecount(&chunk);
    }
    Ok((started.elapsed(), bytes, lines))
}

fn bytecount(chunk: &[u8]) -> u64 {
    chunk.iter().filter(|b| **b == b'\n').count() as u64
}

/// Reads a response to its end: bytes and lines.
async fn drain(mut response: reqwest::Response) -> Result<(u64, u64), BoxError> {
    let (mut bytes, mut lines) = (0, 0);
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        lines += bytecount(&chunk);
    }
    Ok((bytes, lines))
}

struct Job {
    done: Duration,
    rows: u64,
    bytes: u64,
    slices: u64,
    download: Duration,
    downloaded_bytes: u64,
    downloaded_lines: u64,
}

impl Job {
    fn rows(&self, label: &str, memory: String) -> Vec<(String, String)> {
        vec![
            (
                format!("export job, {label}: created to done"),
                format!(
                    "{}; {memory}; {} slices",
                    rate(self.done, self.bytes, self.rows),
                    self.slices
                ),
            ),
            (
                format!("export job, {label}: download from S3 (moto)"),
                rate(self.download, self.downloaded_bytes, self.downloaded_lines),
            ),
        ]
    }
}

/// Follows an export job from the API's 202 answer: polls it to the end, downloads the file.
async fn follow(
    api: &Api,
    token: &str,
    started: Instant,
    response: reqwest::Response,
) -> Result<Job, BoxError> {
    if response.status() != 202 {
        return Err(format!("the export answered {}", response.status()).into());
    }
    let created: Value = response.json().await?;
    let id = created["id"].as_str().ok_or("no job id")?.to_owned();
    let mut polls = 0_u64;
    let status = loop {
        let status: Value = api
            .http
            .get(format!("{}/api/exports/{id}", api.url))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        match status["status"].as_str() {
            Some("done") => break status,
            Some("failed") => return Err(format!("the export failed: {status}").into()),
            _ => {}
        }
        polls += 1;
        if polls > 6000 {
            return Err(format!("the export is not done after 10 minutes: {status}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let done = started.elapsed();
    let url = status["download_url"].as_str().ok_or("no download_url")?;
    let at = Instant::now();
    let response = api.http.get(url).send().await?;
    if response.status() != 200 {
        return Err(format!("the download answered {}", response.status()).into());
    }
    let (downloaded_bytes, downloaded_lines) = drain(response).await?;
    let number = |field: &str| status[field].as_u64().unwrap_or_default();
    Ok(Job {
        done,
        rows: number("rows_written"),
        bytes: number("bytes_written"),
        slices: number("slices"),
        download: at.elapsed(),
        downloaded_bytes,
        downloaded_lines,
    })
}

fn rate(took: Duration, bytes: u64, rows: u64) -> String {
    format!(
        "{:.2} s, {rows} lines, {:.1} MiB ({:.0} rows/s)",
        took.as_secs_f64(),
        bytes as f64 / 1048576.0,
        rows as f64 / took.as_secs_f64()
    )
}

/// The API process's memory and CPU time when an export starts: its peak memory is reset.
struct Usage {
    resident: Resident,
    cpu: Duration,
}

impl Usage {
    fn from_now(pid: &str) -> Result<Self, BoxError> {
        Resident::reset_peak(pid)?;
        Ok(Self {
            resident: Resident::read(pid)?,
            cpu: cpu_time(pid)?,
        })
    }

    /// The API's peak resident memory since, and the CPU time it spent writing `rows` rows (the
    /// job's, and the few requests that polled it).
    fn since(&self, pid: &str, rows: u64) -> Result<String, BoxError> {
        let after = Resident::read(pid)?;
        let cpu = cpu_time(pid)?.saturating_sub(self.cpu);
        Ok(format!(
            "API peak RSS {:.1} MiB ({:+.1} MiB over its {:.1} MiB before); API CPU {:.2} s ({:.1} µs a row)",
            after.peak as f64 / 1024.0,
            (after.peak as f64 - self.resident.now as f64) / 1024.0,
            self.resident.now as f64 / 1024.0,
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / rows.max(1) as f64
        ))
    }
}
