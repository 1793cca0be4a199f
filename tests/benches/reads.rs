//! Read-API benchmark, run by scripts/bench-reads against a stack of its own:
//! a. seeds the dataset once (tests/benches/reads_seed.sql, in one transaction, then VACUUM
//!    ANALYZE) unless the database already holds it (the `bench_seed` marker row);
//! b. for the largest tenant and a median one, times each read endpoint of the running API
//!    (sequential requests after a warm-up) next to the statements that endpoint runs, sent
//!    straight to Postgres on one connection: as the API sends them (text, so each is parsed
//!    and planned every time) and prepared once. The figure is endpoint / SQL.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use simulators::stack_auth::Issuer;
use tokio_postgres::{types::ToSql, Client, NoTls};
use uuid::Uuid;

// Shared by every bench target; this one does not use all of it.
#[allow(dead_code)]
mod support;

use support::{fail, ms, percentile, var, Api, BoxError};

type Param = Box<dyn ToSql + Sync + Send>;

const SEED_SQL: &str = include_str!("reads_seed.sql");
const DATASET: &str = "reads";
/// What the anomaly flags look back before an analytics range (dashboard::anomalies).
const ANOMALY_WINDOW_DAYS: i64 = 14;

struct Options {
    requests: usize,
    warmup: usize,
    tenants: usize,
    calls: usize,
    largest: usize,
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        requests: 200,
        warmup: 20,
        tenants: 1000,
        calls: 1_000_000,
        largest: 100_000,
    };
    support::parse_counts(&mut [
        ("--requests", &mut options.requests),
        ("--warmup", &mut options.warmup),
        ("--tenants", &mut options.tenants),
        ("--calls", &mut options.calls),
        ("--largest", &mut options.largest),
    ])?;
    if options.largest * 2 > options.calls || options.tenants < 3 {
        return Err("--largest must be at most half of --calls, and --tenants at least 3".into());
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
    let db = connect(&var("DATABASE_URL")?).await?;
    let seed = ensure_seeded(&db, &options).await?;
    eprintln!("{}", seed.describe());
    let api = Api::new()?;
    let sql = connect(&var("DATABASE_URL")?).await?;
    let mut rows = Vec::new();
    for tenant in [Tenant::pick(&db, 0).await?, Tenant::median(&db).await?] {
        for case in cases(&db, &tenant).await? {
            eprintln!("measuring {} ({})", case.name, tenant.label());
            rows.push(measure(&api, &sql, &tenant, &case, &options).await?);
        }
    }
    println!("\n{}\n", seed.describe());
    print_table(&rows, options.requests);
    Ok(())
}

async fn connect(url: &str) -> Result<Client, BoxError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

// ---- seeding -------------------------------------------------------------------------------

struct Seed {
    calls: i64,
    seconds: f64,
    fresh: bool,
    steps: Vec<(String, f64)>,
}

impl Seed {
    fn describe(&self) -> String {
        let steps = self
            .steps
            .iter()
            .map(|(name, s)| format!("{name} {s:.1} s"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.fresh {
            format!(
                "seeded {} calls in {:.0} s ({steps})",
                self.calls, self.seconds
            )
        } else {
            format!(
                "dataset already seeded: {} calls (seeding took {:.0} s)",
                self.calls, self.seconds
            )
        }
    }
}

async fn ensure_seeded(db: &Client, options: &Options) -> Result<Seed, BoxError> {
    if let Some(seed) = recorded_seed(db).await? {
        return Ok(seed);
    }
    eprintln!(
        "seeding {} calls over {} tenants (largest {}): a few minutes",
        options.calls, options.tenants, options.largest
    );
    let started = Instant::now();
    let sql = SEED_SQL
        .replace("{tenants}", &options.tenants.to_string())
        .replace("{calls}", &options.calls.to_string())
        .replace("{largest}", &options.largest.to_string());
    let mut steps = Vec::new();
    db.batch_execute("BEGIN").await?;
    for (name, step) in seed_steps(&sql) {
        let at = Instant::now();
        db.batch_execute(step).await?;
        eprintln!("  {name}: {:.1} s", at.elapsed().as_secs_f64());
        steps.push((name.to_owned(), at.elapsed().as_secs_f64()));
    }
    db.execute(
        "INSERT INTO bench_seed (dataset, calls, seconds) VALUES ($1, $2, $3)",
        &[&DATASET, &(options.calls as i64), &0.0_f64],
    )
    .await?;
    db.batch_execute("COMMIT").await?;
    let at = Instant::now();
    db.batch_execute("VACUUM ANALYZE").await?;
    steps.push(("vacuum analyze".into(), at.elapsed().as_secs_f64()));
    let seconds = started.elapsed().as_secs_f64();
    db.execute(
        "UPDATE bench_seed SET seconds = $2 WHERE dataset = $1",
        &[&DATASET, &seconds],
    )
    .await?;
    Ok(Seed {
        calls: options.calls as i64,
        seconds,
        fresh: true,
        steps,
    })
}

async fn recorded_seed(db: &Client) -> Result<Option<Seed>, BoxError> {
    let exists: bool = db
        .query_one("SELECT to_regclass('bench_seed') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = db
        .query_opt(
            "SELECT calls, seconds FROM bench_seed WHERE dataset = $1",
            &[&DATASET],
        )
        .await?;
    Ok(row.map(|row| Seed {
        calls: row.get(0),
        seconds: row.get(1),
        fresh: false,
        steps: Vec::new(),
    }))
}

/// The seed file's `-- step: name` sections, in order.
fn seed_steps(sql: &str) -> Vec<(&str, &str)> {
    sql.split("-- step: ")
        .skip(1)
        .map(|section| section.split_once('\n').unwrap_or((section, "")))
        .map(|(name, body)| (name.trim(), body))
        .collect()
}

// ---- tenants and what is asked of them -----------------------------------------------------

struct Tenant {
    id: Uuid,
    subject: String,
    email: String,
    calls: i64,
    rank: usize,
}

impl Tenant {
    /// The seeded tenant at `rank` (0 = most calls).
    async fn pick(db: &Client, rank: usize) -> Result<Self, BoxError> {
        let row = db
            .query_one(
                "SELECT u.id, u.auth_subject, u.email, s.calls
                 FROM users u
                 JOIN (SELECT user_id, sum(calls + chats)::bigint AS calls
                       FROM daily_agent_stats GROUP BY user_id) s ON s.user_id = u.id
                 WHERE u.auth_subject LIKE 'bench-reads-%'
                 ORDER BY s.calls DESC, u.auth_subject OFFSET $1 LIMIT 1",
                &[&(rank as i64)],
            )
            .await?;
        Ok(Self {
            id: row.get(0),
            subject: row.get(1),
            email: row.get(2),
            calls: row.get(3),
            rank,
        })
    }

    async fn median(db: &Client) -> Result<Self, BoxError> {
        let count: i64 = db
            .query_one(
                "SELECT count(*) FROM users WHERE auth_subject LIKE 'bench-reads-%'",
                &[],
            )
            .await?
            .get(0);
        Self::pick(db, usize::try_from(count / 2)?).await
    }

    fn label(&self) -> String {
        if self.rank == 0 {
            format!("largest tenant, {} calls", self.calls)
        } else {
            format!("median tenant, {} calls", self.calls)
        }
    }
}

/// One endpoint and the statements it runs.
struct Case {
    name: String,
    path: String,
    /// Send the ETag of a first answer back and expect 304.
    revalidate: bool,
    statements: Vec<(String, Vec<Param>)>,
}

const USER_LOOKUP: &str = "SELECT id, email, name, auth_provider, role, status, credits, created_at, updated_at FROM users WHERE auth_subject = $1";
const VERSION: &str = "SELECT stats_version, credits FROM users WHERE id = $1";
const ROLLUPS: &str = "SELECT coalesce(s.agent_id, l.agent_id) AS agent_id, coalesce(s.day, l.day) AS day,
                    coalesce(s.calls, 0)::bigint AS calls, coalesce(s.chats, 0)::bigint AS chats,
                    coalesce(s.completed, 0)::bigint AS completed, coalesce(s.failed, 0)::bigint AS failed,
                    coalesce(s.successful, 0)::bigint AS successful,
                    coalesce(s.duration_seconds, 0)::bigint AS duration_seconds,
                    coalesce(s.credits_used, 0)::bigint AS credits_used,
                    coalesce(l.analyzed, 0)::bigint AS analyzed, coalesce(l.scored, 0)::bigint AS scored,
                    coalesce(l.score_sum, 0)::bigint AS score_sum,
                    coalesce(l.hot, 0)::bigint AS hot, coalesce(l.warm, 0)::bigint AS warm,
                    coalesce(l.cold, 0)::bigint AS cold,
                    coalesce(l.score_buckets, array_fill(0, ARRAY[10])) AS score_buckets,
                    coalesce(l.cta_pricing, 0)::bigint AS cta_pricing, coalesce(l.cta_demo, 0)::bigint AS cta_demo,
                    coalesce(l.cta_followup, 0)::bigint AS cta_followup,
                    coalesce(l.cta_sample, 0)::bigint AS cta_sample,
                    coalesce(l.cta_escalated, 0)::bigint AS cta_escalated
             FROM (SELECT * FROM daily_agent_stats WHERE user_id = $1 AND day BETWEEN $2 AND $3) s
             FULL JOIN (SELECT * FROM daily_lead_stats WHERE user_id = $1 AND day BETWEEN $2 AND $3) l
               ON l.agent_id = s.agent_id AND l.day = s.day";
const AGENT_NAMES: &str = "SELECT id, name FROM agents WHERE user_id = $1";
const CALL_COLUMNS: &str = "c.*, a.name AS agent_name, ct.name AS contact_name,
    la.total_score, la.lead_status_tag";
const CALL_JOINS: &str = "calls c
    JOIN agents a ON a.id = c.agent_id
    LEFT JOIN contacts ct ON ct.id = c.contact_id
    LEFT JOIN lead_analytics la ON la.call_id = c.id";
/// What an unfiltered list total counts over (calls::read's `CallFilter::count_from`).
const COUNT_JOINS: &str = "calls c";
const LEAD_COLUMNS: &str = "l.*, a.name AS agent_name,
    coalesce(l.last_contact_at, l.created_at) AS sort_at";
const LEAD_FROM: &str = "leads l LEFT JOIN agents a ON a.id = l.agent_id";
const TIMELINE: &str = "SELECT c.id, c.type, c.status, c.direction, c.agent_id, c.started_at, c.created_at,
                    c.duration_seconds, c.summary, la.total_score, la.lead_status_tag, la.cta_interactions
             FROM calls c LEFT JOIN lead_analytics la ON la.call_id = c.id
             WHERE c.lead_id = $1 AND c.user_id = $2
             ORDER BY c.created_at DESC, c.id DESC LIMIT $3";
const LATEST_ANALYTICS: &str =
    "SELECT la.* FROM lead_analytics la JOIN calls c ON c.id = la.call_id
             WHERE c.lead_id = $1 AND c.user_id = $2
             ORDER BY la.analyzed_at DESC LIMIT 1";
const PAGE: i64 = 20;

fn statement(sql: impl Into<String>, params: Vec<Param>) -> (String, Vec<Param>) {
    (sql.into(), params)
}

/// The days a dashboard range of `days` covers with what it reads before it, as the API
/// computes them (UTC today, both ends included).
fn days_back(today: NaiveDate, days: i64) -> NaiveDate {
    today - chrono::Duration::days(days - 1)
}

async fn cases(db: &Client, tenant: &Tenant) -> Result<Vec<Case>, BoxError> {
    let t = tenant.id;
    let today = Utc::now().date_naive();
    let user = || statement(USER_LOOKUP, vec![Box::new(tenant.subject.clone())]);
    let version = || statement(VERSION, vec![Box::new(t)]);
    let rollups =
        |from: NaiveDate| statement(ROLLUPS, vec![Box::new(t), Box::new(from), Box::new(today)]);
    let mut cases = vec![
        Case {
            name: "GET /api/dashboard/overview?days=30".into(),
            path: "/api/dashboard/overview?days=30".into(),
            revalidate: false,
            // This range and the previous one of the same length.
            statements: vec![user(), version(), rollups(days_back(today, 60))],
        },
        Case {
            name: "the same, If-None-Match -> 304".into(),
            path: "/api/dashboard/overview?days=30".into(),
            revalidate: true,
            statements: vec![user(), version()],
        },
        Case {
            name: "GET /api/dashboard/analytics?days=90".into(),
            path: "/api/dashboard/analytics?days=90".into(),
            revalidate: false,
            statements: vec![
                user(),
                version(),
                rollups(days_back(today, 90 + ANOMALY_WINDOW_DAYS)),
                statement(AGENT_NAMES, vec![Box::new(t)]),
            ],
        },
        Case {
            name: "the same, If-None-Match -> 304".into(),
            path: "/api/dashboard/analytics?days=90".into(),
            revalidate: true,
            statements: vec![user(), version()],
        },
    ];
    cases.push(calls_page(tenant, None, user()));
    cases.push(calls_page(
        tenant,
        Some(deep_cursor(db, tenant).await?),
        user(),
    ));
    cases.push(leads_page(tenant, user()));
    cases.push(lead_profile(db, tenant, user()).await?);
    Ok(cases)
}

fn calls_page(
    tenant: &Tenant,
    cursor: Option<(DateTime<Utc>, Uuid, i64)>,
    user: (String, Vec<Param>),
) -> Case {
    let count = statement(
        format!("SELECT count(*) FROM {COUNT_JOINS} WHERE c.user_id = $1"),
        vec![Box::new(tenant.id)],
    );
    let order = "ORDER BY c.created_at DESC, c.id DESC";
    match cursor {
        None => Case {
            name: format!("GET /api/calls?limit={PAGE} (first page)"),
            path: format!("/api/calls?limit={PAGE}"),
            revalidate: false,
            statements: vec![
                user,
                count,
                statement(
                    format!("SELECT {CALL_COLUMNS} FROM {CALL_JOINS} WHERE c.user_id = $1\n                 {order} LIMIT $2"),
                    vec![Box::new(tenant.id), Box::new(PAGE)],
                ),
            ],
        },
        Some((at, id, offset)) => Case {
            name: format!("GET /api/calls?limit={PAGE}&cursor=... (page at row {offset})"),
            path: format!(
                "/api/calls?limit={PAGE}&cursor={}",
                shared::http::encode_cursor(&(at, id))
            ),
            revalidate: false,
            statements: vec![
                user,
                count,
                statement(
                    format!("SELECT {CALL_COLUMNS} FROM {CALL_JOINS} WHERE c.user_id = $1 AND (c.created_at, c.id) < ($2, $3)\n                 {order} LIMIT $4"),
                    vec![Box::new(tenant.id), Box::new(at), Box::new(id), Box::new(PAGE)],
                ),
            ],
        },
    }
}

/// The position half way down the tenant's calls, newest first.
async fn deep_cursor(db: &Client, tenant: &Tenant) -> Result<(DateTime<Utc>, Uuid, i64), BoxError> {
    let offset = tenant.calls / 2;
    let row = db
        .query_one(
            "SELECT created_at, id FROM calls WHERE user_id = $1
             ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            &[&tenant.id, &offset],
        )
        .await?;
    Ok((row.get(0), row.get(1), offset))
}

fn leads_page(tenant: &Tenant, user: (String, Vec<Param>)) -> Case {
    Case {
        name: format!("GET /api/leads?limit={PAGE}"),
        path: format!("/api/leads?limit={PAGE}"),
        revalidate: false,
        statements: vec![
            user,
            statement(
                format!("SELECT count(*) FROM {LEAD_FROM} WHERE l.user_id = $1"),
                vec![Box::new(tenant.id)],
            ),
            statement(
                format!("SELECT {LEAD_COLUMNS} FROM {LEAD_FROM} WHERE l.user_id = $1\n                 ORDER BY coalesce(l.last_contact_at, l.created_at) DESC, l.id DESC LIMIT $2"),
                vec![Box::new(tenant.id), Box::new(PAGE)],
            ),
        ],
    }
}

/// The profile of the tenant's busiest lead (the longest timeline).
async fn lead_profile(
    db: &Client,
    tenant: &Tenant,
    user: (String, Vec<Param>),
) -> Result<Case, BoxError> {
    let row = db
        .query_one(
            "SELECT id, phone_number, email, interaction_count FROM leads WHERE user_id = $1
             ORDER BY interaction_count DESC, id LIMIT 1",
            &[&tenant.id],
        )
        .await?;
    let (lead, phone, email, interactions): (Uuid, Option<String>, Option<String>, i32) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    Ok(Case {
        name: format!("GET /api/leads/{{id}} (busiest lead, {interactions} calls)"),
        path: format!("/api/leads/{lead}"),
        revalidate: false,
        statements: vec![
            user,
            statement(
                format!(
                    "SELECT {LEAD_COLUMNS} FROM {LEAD_FROM} WHERE l.id = $1 AND l.user_id = $2"
                ),
                vec![Box::new(lead), Box::new(tenant.id)],
            ),
            statement(
                TIMELINE,
                vec![Box::new(lead), Box::new(tenant.id), Box::new(100_i64)],
            ),
            statement(LATEST_ANALYTICS, vec![Box::new(lead), Box::new(tenant.id)]),
            statement(
                format!(
                    "SELECT {LEAD_COLUMNS} FROM {LEAD_FROM}
                 WHERE l.user_id = $1 AND l.id <> $2
                   AND ((l.phone_number IS NOT NULL AND l.phone_number = $3)
                        OR (l.email IS NOT NULL AND lower(l.email) = lower($4)))
                 ORDER BY l.created_at LIMIT 20"
                ),
                vec![
                    Box::new(tenant.id),
                    Box::new(lead),
                    Box::new(phone),
                    Box::new(email),
                ],
            ),
        ],
    })
}

// ---- measuring -----------------------------------------------------------------------------

impl Api {
    /// A token for the seeded user, valid for the run.
    fn token(&self, tenant: &Tenant) -> String {
        let claims = self.issuer.claims(&tenant.subject, &tenant.email, 3600);
        Issuer::sign(&self.issuer.keys.es256, &claims)
    }

    /// One request; the time until the whole body is read. Any other status than `expect`
    /// fails the run.
    async fn time(
        &self,
        path: &str,
        token: &str,
        etag: Option<&str>,
        expect: u16,
    ) -> Result<(Duration, Option<String>), BoxError> {
        let mut request = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        let started = Instant::now();
        let response = request.send().await?;
        let status = response.status().as_u16();
        let tag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await?;
        let took = started.elapsed();
        if status != expect {
            return Err(format!(
                "GET {path}: {status} instead of {expect}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        Ok((took, tag))
    }
}

struct Percentiles {
    p50: Duration,
    p99: Duration,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self {
            p50: percentile(&samples, 0.50),
            p99: percentile(&samples, 0.99),
        }
    }

    fn figure(&self) -> String {
        format!("{:.2} / {:.2}", ms(self.p50), ms(self.p99))
    }
}

struct Row {
    endpoint: String,
    tenant: String,
    api: Percentiles,
    sql: Percentiles,
    prepared: Percentiles,
}

async fn measure(
    api: &Api,
    sql: &Client,
    tenant: &Tenant,
    case: &Case,
    options: &Options,
) -> Result<Row, BoxError> {
    let token = api.token(tenant);
    let (etag, expect) = if case.revalidate {
        (api.time(&case.path, &token, None, 200).await?.1, 304)
    } else {
        (None, 200)
    };
    let mut samples = Vec::with_capacity(options.requests);
    for i in 0..options.warmup + options.requests {
        let (took, _) = api
            .time(&case.path, &token, etag.as_deref(), expect)
            .await?;
        if i >= options.warmup {
            samples.push(took);
        }
    }
    Ok(Row {
        endpoint: case.name.clone(),
        tenant: tenant.label(),
        api: Percentiles::of(samples),
        sql: time_sql(sql, case, options, false).await?,
        prepared: time_sql(sql, case, options, true).await?,
    })
}

/// The case's statements in order, `requests` times after a warm-up: sent as text as the API
/// does (each one parsed and planned), or prepared once.
async fn time_sql(
    db: &Client,
    case: &Case,
    options: &Options,
    prepared: bool,
) -> Result<Percentiles, BoxError> {
    let mut statements = Vec::new();
    if prepared {
        for (text, _) in &case.statements {
            statements.push(Some(db.prepare(text).await?));
        }
    } else {
        statements.resize(case.statements.len(), None);
    }
    let mut samples = Vec::with_capacity(options.requests);
    for i in 0..options.warmup + options.requests {
        let started = Instant::now();
        for ((text, params), prepared) in case.statements.iter().zip(&statements) {
            let params: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            match prepared {
                Some(statement) => db.query(statement, &params).await?,
                None => db.query(text.as_str(), &params).await?,
            };
        }
        if i >= options.warmup {
            samples.push(started.elapsed());
        }
    }
    Ok(Percentiles::of(samples))
}

fn print_table(rows: &[Row], requests: usize) {
    println!(
        "p50 / p99 in ms over {requests} sequential requests each; SQL: the endpoint's statements on one connection\n"
    );
    println!("| endpoint | tenant | API | SQL as the API sends it | API / SQL (p50, p99) | SQL prepared once |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {:.1}x, {:.1}x | {} |",
            row.endpoint,
            row.tenant,
            row.api.figure(),
            row.sql.figure(),
            ms(row.api.p50) / ms(row.sql.p50),
            ms(row.api.p99) / ms(row.sql.p99),
            row.prepared.figure()
        );
    }
}
