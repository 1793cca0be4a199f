//! Read-API benchmark, run by scripts/bench-reads against a stack of its own:
//! a. seeds the dataset once (tests/benches/reads_seed.sql, in one transaction, then VACUUM
//!    ANALYZE) unless the database already holds it (the `bench_seed` marker row), and opens a
//!    busy day on it while it runs (support/busy_day.rs);
//! b. for the largest tenant and a median one, and for an admin it makes (the system analytics),
//!    times each read endpoint four ways, in turns (one of each per round, sequential rounds
//!    after a warm-up): the running API; the same request through the router of the function
//!    serving it, called in this process (the API's own work without the socket); the
//!    shared crate's read functions its handler calls, in-process on one pooled connection; and
//!    the statements those functions send (taken off the wire by a recording proxy,
//!    support/wire.rs) prepared once on one connection and run in the same order: the SQL's own
//!    time.

use std::time::{Duration, Instant};

use shared::{
    admin, billing,
    calls::{
        self,
        read::{CallCursor, CallFilter},
    },
    contacts::{self, ContactFilter},
    credits::{self, CreditKind},
    dashboard::{self, Range, RangeQuery},
    db::filter::Search,
    ids::{CallId, ContactId, LeadId, ResourceId},
    leads::{self, read::LeadFilter},
    users::{self, Identity},
};
use simulators::stack_auth::Issuer;
use tokio_postgres::Client;
use uuid::Uuid;

// Shared by every bench target; this one does not use all of it.
#[allow(dead_code)]
mod support;

// Shared with the export bench.
#[path = "support/seed.rs"]
mod seed;

// The statements a read sends, recorded off the wire and replayed prepared once.
#[path = "support/wire.rs"]
mod wire;

// The platform at the end of a busy day while the bench runs.
#[path = "support/busy_day.rs"]
mod busy_day;

use seed::{connect, Dataset};
use support::{fail, ms, percentile, var, Api, BoxError};

const DATASET: &str = "reads";

struct Options {
    requests: usize,
    warmup: usize,
    tenants: usize,
    calls: usize,
    largest: usize,
}

impl Options {
    /// The percentiles of `time`'s answers (the `i`th request's time) over the measured
    /// requests, after the warm-up ones.
    async fn sample(
        &self,
        mut time: impl AsyncFnMut(usize) -> Result<Duration, BoxError>,
    ) -> Result<Percentiles, BoxError> {
        let mut samples = Vec::with_capacity(self.requests);
        for i in 0..self.warmup + self.requests {
            let took = time(i).await?;
            if i >= self.warmup {
                samples.push(took);
            }
        }
        Ok(Percentiles::of(samples))
    }
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        requests: 200,
        warmup: 20,
        tenants: 1000,
        calls: 1_000_000,
        largest: 0,
    };
    support::parse_counts(&mut [
        ("--requests", &mut options.requests),
        ("--warmup", &mut options.warmup),
        ("--tenants", &mut options.tenants),
        ("--calls", &mut options.calls),
        ("--largest", &mut options.largest),
    ])?;
    if options.largest == 0 {
        options.largest = options.calls / 10;
    }
    if options.largest * 2 > options.calls || options.tenants < 3 {
        return Err("--largest must be at most half of --calls, and --tenants at least 3".into());
    }
    Ok(options)
}

// One thread: the reads and the SQL are timed without waking a second thread for each answer,
// the tightest limit (the in-process router has a runtime of its own, on its own thread).
#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(err) = run().await {
        fail(&err);
    }
}

async fn run() -> Result<(), BoxError> {
    let options = options()?;
    // Seeding uses temporary tables, session state a transaction pooler would strand on
    // whichever server connection ran it: straight to Postgres when the stack says how.
    let mut db = connect(&var("DATABASE_DIRECT_URL").or_else(|_| var("DATABASE_URL"))?).await?;
    let seed = Dataset {
        name: DATASET,
        tenants: options.tenants,
        calls: options.calls,
        largest: options.largest,
        skip_steps: &[],
    }
    .ensure_seeded(&db)
    .await?;
    eprintln!("{}", seed.describe());
    let busy_day = busy_day::open(&mut db, DATASET).await?;
    eprintln!("{}", busy_day.describe());
    let api = Api::new()?;
    let router = InProcess::start().await?;
    let url = var("DATABASE_URL")?;
    let reads = shared::db::pool(&url, 1)?;
    let recorder = wire::Recorder::start(host_port(&url)?).await?;
    let sql = Sql {
        recording: shared::db::pool(&recorder.url(&url)?, 1)?,
        recorder,
        replay: connect(&url).await?,
    };
    let floor = http_floor(&api, &options).await?;
    eprintln!("HTTP floor: {}", floor.figure());
    let median = Tenant::median(&db).await?;
    let (same_token, new_token) = token_check(&api, &median, &options).await?;
    let token_check_tenant = median.label();
    eprintln!(
        "token check: {} with one token, {} with a new one each request",
        same_token.figure(),
        new_token.figure()
    );
    let largest = Tenant::pick(&db, 0).await?;
    let admin_cases = admin_cases(&largest);
    let mut plan = Vec::new();
    for tenant in [largest, median] {
        let cases = cases(&db, &tenant).await?;
        plan.push((tenant, cases));
    }
    plan.push((Tenant::admin(&db, &reads).await?, admin_cases));
    let mut rows = Vec::new();
    for (tenant, cases) in plan {
        for case in cases {
            // To measure or profile some rows: BENCH_ONLY=<part of an endpoint and tenant, as
            // printed>, several separated by `|`.
            if let Ok(only) = std::env::var("BENCH_ONLY") {
                let row = format!("{} {}", case.name, tenant.label());
                if !only.split('|').any(|part| row.contains(part)) {
                    continue;
                }
            }
            eprintln!("measuring {} ({})", case.name, tenant.label());
            let ways = Ways {
                api: &api,
                router: &router,
                reads: &reads,
                sql: &sql,
            };
            let row = measure(&ways, &tenant, &case, &options).await?;
            // Each row as soon as it is known: a long run stopped early still tells something.
            eprintln!("  {}", row.line(&floor));
            rows.push(row);
        }
    }
    busy_day::close(&mut db, DATASET).await?;
    println!("\n{}; {}\n", seed.describe(), busy_day.describe());
    print_table(&rows, &floor, options.requests);
    println!(
        "\nHTTP floor: {} (a request the API refuses before any read: no token, 401)",
        floor.figure()
    );
    println!(
        "Token check: {} with one token, {} with a token the API has not seen before each \
         request ({TOKEN_CHECK_PATH} -> 304, {})",
        same_token.figure(),
        new_token.figure(),
        token_check_tenant
    );
    Ok(())
}

/// The cheapest authenticated request: what a token's check adds shows most beside it.
const TOKEN_CHECK_PATH: &str = "/api/dashboard/overview?days=30";

/// A 304 with the same token every time (checked once, then remembered), and with a new token
/// each time (its signature checked on every request).
async fn token_check(
    api: &Api,
    tenant: &Tenant,
    options: &Options,
) -> Result<(Percentiles, Percentiles), BoxError> {
    let token = api.token(tenant);
    let etag = api.time(TOKEN_CHECK_PATH, &token, None, 200).await?.1;
    let revalidate = async |token: &str| {
        Ok(api
            .time(TOKEN_CHECK_PATH, token, if_none_match(&etag), 304)
            .await?
            .0)
    };
    let same = options.sample(async |_| revalidate(&token).await).await?;
    let new = options
        .sample(async |i| {
            // Each lifetime a second longer: another `exp`, so another token (signed before
            // the request's clock starts).
            let claims = api
                .issuer
                .claims(&tenant.subject, &tenant.email, 7200 + i as i64);
            revalidate(&Issuer::sign(&api.issuer.keys.es256, &claims)).await
        })
        .await?;
    Ok((same, new))
}

/// What a request costs with no reads: the HTTP hop, routing and an error answer.
async fn http_floor(api: &Api, options: &Options) -> Result<Percentiles, BoxError> {
    options
        .sample(async |_| {
            Ok(api
                .time("/api/dashboard/overview?days=30", "", None, 401)
                .await?
                .0)
        })
        .await
}

/// The `host:port` of a postgres:// URL.
fn host_port(url: &str) -> Result<String, BoxError> {
    let rest = url.split_once('@').ok_or("no user in DATABASE_URL")?.1;
    Ok(rest.split('/').next().unwrap_or(rest).to_owned())
}

// ---- tenants and what is asked of them -----------------------------------------------------

struct Tenant {
    id: Uuid,
    subject: String,
    email: String,
    calls: i64,
    label: String,
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
        let calls: i64 = row.get(3);
        let which = if rank == 0 { "largest" } else { "median" };
        Ok(Self {
            id: row.get(0),
            subject: row.get(1),
            email: row.get(2),
            calls,
            label: format!("{which} tenant, {calls} calls"),
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

    /// The verified identity a token for this tenant carries.
    fn identity(&self) -> Identity<'_> {
        Identity {
            subject: &self.subject,
            email: Some(&self.email),
            name: None,
            email_verified: true,
        }
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    /// The platform's admin (not a seeded tenant: no calls of its own), for the admin's reads.
    async fn admin(db: &Client, reads: &deadpool_postgres::Pool) -> Result<Self, BoxError> {
        let (subject, email) = ("bench-admin", "bench-admin@example.test");
        let identity = Identity {
            subject,
            email: Some(email),
            name: None,
            email_verified: true,
        };
        let user = users::provision(&mut reads.get().await?, &identity).await?;
        db.execute(
            "UPDATE users SET role = 'admin' WHERE auth_subject = $1",
            &[&subject],
        )
        .await?;
        Ok(Self {
            id: *user.tenant().as_uuid(),
            subject: subject.into(),
            email: email.into(),
            calls: 0,
            label: "the admin, the whole platform".into(),
        })
    }
}

/// One endpoint and the reads its handler makes.
struct Case {
    name: String,
    path: String,
    /// Send the ETag of a first answer back and expect 304.
    revalidate: bool,
    read: Read,
}

/// What a handler reads, through the same shared functions, after the user lookup every
/// authenticated request makes.
enum Read {
    /// Nothing past the user lookup: an unchanged dashboard (its version came with the user),
    /// the profile, the balance, the packages (settings, which the API keeps in memory).
    Unchanged,
    Overview(Range),
    Analytics(Range),
    Report(Range),
    Calls(Option<CallCursor>),
    Scored,
    Metrics,
    Leads,
    LeadProfile(Uuid),
    Timeline(Uuid),
    Contacts(Option<CallCursor>),
    ContactSearch(String),
    LeadSearch(String),
    CallSearch(String),
    /// The ledger, all of it or one type's entries.
    History(Option<CreditKind>),
    Call(Uuid),
    Transcript(Uuid),
    Contact(Uuid),
    Purchases,
    Purchase(Uuid),
    /// ElevenLabs asking who calls `number` before `agent` answers (no user: a shared secret).
    Caller {
        agent: String,
        number: String,
    },
    /// The admin's lists of the whole platform, their first page.
    AdminList(AdminList),
    /// One tenant as the admin sees it: its agents, usage, purchases and latest ledger entries.
    AdminUser(Uuid),
    /// The admin's figures of the whole platform over the last `days` days: their snapshot, or
    /// read `afresh` (`Cache-Control: no-cache`, and the reconciler's warming).
    SystemAnalytics {
        days: i32,
        afresh: bool,
    },
}

impl Read {
    async fn run(
        &self,
        db: &mut deadpool_postgres::Client,
        identity: &Identity<'_>,
    ) -> Result<(), BoxError> {
        if let Self::Caller { agent, number } = self {
            let region = shared::settings::Settings::default().phone_region();
            contacts::lookup::caller_in(&*db, region, agent, number).await?;
            return Ok(());
        }
        let user = users::provision(db, identity).await?;
        if let Self::SystemAnalytics { days, afresh } = self {
            // Its own transaction on the connection: the one read that takes it mutably.
            shared::admin::analytics::cached(db, *days, *afresh).await?;
            return Ok(());
        }
        let tenant = user.tenant();
        let db = &*db;
        match self {
            Self::AdminList(list) => list.read(db).await?,
            Self::AdminUser(id) => {
                admin::users::detail(db, *id).await?;
            }
            Self::Call(id) => {
                calls::read::get(db, tenant, CallId::from_uuid(*id)).await?;
            }
            Self::Transcript(id) => {
                calls::read::transcript(db, tenant, CallId::from_uuid(*id)).await?;
            }
            Self::Contact(id) => {
                contacts::find(db, tenant, ContactId::from_uuid(*id)).await?;
            }
            Self::Purchases => {
                billing::list(db, tenant, PAGE, None).await?;
            }
            Self::Purchase(id) => {
                billing::find(db, tenant, *id).await?;
            }
            Self::Unchanged => {}
            Self::Overview(range) => {
                let credits = user.credits;
                let agents = dashboard::Agents::of(db, tenant).await?;
                let scope = dashboard::Scope::default();
                dashboard::overview(db, tenant, *range, &scope, &agents, credits).await?;
            }
            Self::Analytics(range) => {
                let agents = dashboard::Agents::of(db, tenant).await?;
                let scope = dashboard::Scope::default();
                dashboard::analytics(db, tenant, *range, &scope, &agents).await?;
            }
            Self::Report(range) => {
                let agents = dashboard::Agents::of(db, tenant).await?;
                let scope = dashboard::Scope::default();
                dashboard::report(db, tenant, *range, &scope, &agents, user.credits).await?;
            }
            Self::Calls(after) => {
                calls::read::list(db, tenant, &CallFilter::default(), PAGE, *after).await?;
            }
            Self::Scored => {
                calls::scored::list(db, tenant, &CallFilter::default(), PAGE, None).await?;
            }
            Self::Metrics => {
                calls::metrics::list(db, tenant, &CallFilter::default(), PAGE, None).await?;
            }
            Self::Leads => {
                leads::read::list(db, tenant, &LeadFilter::default(), PAGE, None).await?;
            }
            Self::LeadProfile(id) => {
                leads::read::profile(db, tenant, LeadId::from_uuid(*id)).await?;
            }
            Self::Timeline(id) => {
                leads::read::timeline(db, tenant, LeadId::from_uuid(*id), PAGE, None).await?;
            }
            Self::Contacts(after) => {
                contacts::list(db, tenant, &ContactFilter::default(), PAGE, *after).await?;
            }
            Self::ContactSearch(search) => {
                let filter = ContactFilter {
                    search: Some(Search::parse(search).expect("a search")),
                };
                contacts::list(db, tenant, &filter, PAGE, None).await?;
            }
            Self::LeadSearch(search) => {
                let filter = LeadFilter {
                    search: Some(Search::parse(search).expect("a search")),
                    ..LeadFilter::default()
                };
                leads::read::list(db, tenant, &filter, PAGE, None).await?;
            }
            Self::CallSearch(search) => {
                let filter = CallFilter {
                    search: Some(Search::parse(search).expect("a search")),
                    ..CallFilter::default()
                };
                calls::read::list(db, tenant, &filter, PAGE, None).await?;
            }
            Self::History(kind) => {
                credits::history(db, tenant, *kind, None, PAGE).await?;
            }
            Self::SystemAnalytics { .. } | Self::Caller { .. } => {
                unreachable!("answered above")
            }
        }
        Ok(())
    }
}

/// The admin's paged lists, unfiltered, as the admin panel opens them.
#[derive(Clone, Copy)]
enum AdminList {
    Users,
    Purchases,
    Agents,
    AuditLog,
    Unmatched,
}

impl AdminList {
    const ALL: [Self; 5] = [
        Self::Users,
        Self::Purchases,
        Self::Agents,
        Self::AuditLog,
        Self::Unmatched,
    ];

    fn path(self) -> &'static str {
        match self {
            Self::Users => "/admin/users",
            Self::Purchases => "/admin/purchases",
            Self::Agents => "/admin/agents",
            Self::AuditLog => "/admin/audit-log",
            Self::Unmatched => "/admin/webhooks/unmatched",
        }
    }

    async fn read(self, db: &deadpool_postgres::Client) -> Result<(), BoxError> {
        match self {
            Self::Users => {
                admin::users::list(db, &admin::users::UserFilter::default(), None, PAGE).await?;
            }
            Self::Purchases => {
                admin::purchases::list(db, None, None, PAGE).await?;
            }
            Self::Agents => {
                admin::agents::list(db, None, None, None, PAGE).await?;
            }
            Self::AuditLog => {
                admin::audit::list(db, &admin::audit::AuditFilter::default(), None, PAGE).await?;
            }
            Self::Unmatched => {
                admin::events::list_unmatched(db, false, None, PAGE).await?;
            }
        }
        Ok(())
    }
}

const PAGE: i64 = 20;

/// The range a dashboard request of `days` asks for, as the API reads it.
fn last_days(days: i64) -> Result<Range, BoxError> {
    let query = RangeQuery {
        days: Some(days),
        ..RangeQuery::default()
    };
    Ok(query.range()?)
}

async fn cases(db: &Client, tenant: &Tenant) -> Result<Vec<Case>, BoxError> {
    // First, so that the contacts' counts below already hold it.
    let caller = calling_contact(db, tenant).await?;
    let deep = deep_cursor(db, tenant).await?;
    let deep_contact = deep_contact(db, tenant).await?;
    let busiest = busiest_lead(db, tenant).await?;
    let call = transcribed_call(db, tenant, &deep.cursor).await?;
    let purchase = middle_purchase(db, tenant).await?;
    let agent = first_agent(db, tenant).await?;
    Ok(vec![
        Case {
            name: "GET /auth/profile".into(),
            path: "/auth/profile".into(),
            revalidate: false,
            read: Read::Unchanged,
        },
        Case {
            name: "GET /billing/credits".into(),
            path: "/billing/credits".into(),
            revalidate: false,
            read: Read::Unchanged,
        },
        Case {
            name: "GET /billing/packages".into(),
            path: "/billing/packages".into(),
            revalidate: false,
            read: Read::Unchanged,
        },
        Case {
            name: "GET /api/dashboard/overview?days=30".into(),
            path: "/api/dashboard/overview?days=30".into(),
            revalidate: false,
            read: Read::Overview(last_days(30)?),
        },
        Case {
            name: "the same, If-None-Match -> 304".into(),
            path: "/api/dashboard/overview?days=30".into(),
            revalidate: true,
            read: Read::Unchanged,
        },
        Case {
            name: "GET /api/dashboard/analytics?days=90".into(),
            path: "/api/dashboard/analytics?days=90".into(),
            revalidate: false,
            read: Read::Analytics(last_days(90)?),
        },
        Case {
            name: "the same, If-None-Match -> 304".into(),
            path: "/api/dashboard/analytics?days=90".into(),
            revalidate: true,
            read: Read::Unchanged,
        },
        Case {
            name: "GET /analytics/reports?days=30".into(),
            path: "/analytics/reports?days=30".into(),
            revalidate: false,
            read: Read::Report(last_days(30)?),
        },
        Case {
            name: format!("GET /api/calls?limit={PAGE} (first page)"),
            path: format!("/api/calls?limit={PAGE}"),
            revalidate: false,
            read: Read::Calls(None),
        },
        Case {
            name: format!(
                "GET /api/calls?limit={PAGE}&cursor=... (page at row {})",
                deep.offset
            ),
            path: format!(
                "/api/calls?limit={PAGE}&cursor={}",
                shared::http::encode_cursor(&deep.cursor)
            ),
            revalidate: false,
            read: Read::Calls(Some(deep.cursor)),
        },
        Case {
            name: format!("GET /analytics/calls?limit={PAGE}"),
            path: format!("/analytics/calls?limit={PAGE}"),
            revalidate: false,
            read: Read::Metrics,
        },
        Case {
            name: format!("GET /analytics/leads?limit={PAGE}"),
            path: format!("/analytics/leads?limit={PAGE}"),
            revalidate: false,
            read: Read::Scored,
        },
        Case {
            name: format!("GET /api/leads?limit={PAGE}"),
            path: format!("/api/leads?limit={PAGE}"),
            revalidate: false,
            read: Read::Leads,
        },
        Case {
            name: format!(
                "GET /api/leads/{{id}} (busiest lead, {} calls)",
                busiest.interactions
            ),
            path: format!("/api/leads/{}", busiest.id),
            revalidate: false,
            read: Read::LeadProfile(busiest.id),
        },
        Case {
            name: format!("GET /api/leads/{{id}}/timeline?limit={PAGE} (the same lead)"),
            path: format!("/api/leads/{}/timeline?limit={PAGE}", busiest.id),
            revalidate: false,
            read: Read::Timeline(busiest.id),
        },
        Case {
            name: format!("GET /api/contacts?limit={PAGE} (first page)"),
            path: format!("/api/contacts?limit={PAGE}"),
            revalidate: false,
            read: Read::Contacts(None),
        },
        Case {
            name: format!(
                "GET /api/contacts?limit={PAGE}&cursor=... (page at row {})",
                deep_contact.offset
            ),
            path: format!(
                "/api/contacts?limit={PAGE}&cursor={}",
                shared::http::encode_cursor(&deep_contact.cursor)
            ),
            revalidate: false,
            read: Read::Contacts(Some(deep_contact.cursor)),
        },
        Case {
            name: format!("GET /api/contacts?limit={PAGE}&search={COMMON_SEARCH} (a third match)"),
            path: format!("/api/contacts?limit={PAGE}&search={COMMON_SEARCH}"),
            revalidate: false,
            read: Read::ContactSearch(COMMON_SEARCH.into()),
        },
        Case {
            name: format!(
                "GET /api/contacts?limit={PAGE}&search={SOME_SEARCH} (one contact in 14)"
            ),
            path: format!(
                "/api/contacts?limit={PAGE}&search={}",
                SOME_SEARCH.replace(' ', "%20")
            ),
            revalidate: false,
            read: Read::ContactSearch(SOME_SEARCH.into()),
        },
        Case {
            name: format!("GET /api/contacts?limit={PAGE}&search=<7 digits of one number>"),
            path: format!("/api/contacts?limit={PAGE}&search={}", deep_contact.digits),
            revalidate: false,
            read: Read::ContactSearch(deep_contact.digits.clone()),
        },
        Case {
            name: format!("GET /api/leads?limit={PAGE}&search=<the same digits>"),
            path: format!("/api/leads?limit={PAGE}&search={}", deep_contact.digits),
            revalidate: false,
            read: Read::LeadSearch(deep_contact.digits.clone()),
        },
        Case {
            name: format!("GET /api/calls?limit={PAGE}&search=<the same digits>"),
            path: format!("/api/calls?limit={PAGE}&search={}", deep_contact.digits),
            revalidate: false,
            read: Read::CallSearch(deep_contact.digits.clone()),
        },
        Case {
            name: format!("GET /api/calls?limit={PAGE}&search=<the contact's name>"),
            path: format!(
                "/api/calls?limit={PAGE}&search={}",
                deep_contact.name.replace(' ', "%20")
            ),
            revalidate: false,
            read: Read::CallSearch(deep_contact.name.clone()),
        },
        Case {
            name: format!(
                "GET /api/calls?limit={PAGE}&search=<the first 6 characters every number shares>"
            ),
            path: format!(
                "/api/calls?limit={PAGE}&search={}",
                deep_contact.prefix.replace('+', "%2B")
            ),
            revalidate: false,
            read: Read::CallSearch(deep_contact.prefix.clone()),
        },
        company_search(SOME_SEARCH, "one call in 14"),
        company_search(FEWER_SEARCH, "one call in 28"),
        Case {
            name: format!("GET /billing/history?limit={PAGE}"),
            path: format!("/billing/history?limit={PAGE}"),
            revalidate: false,
            read: Read::History(None),
        },
        Case {
            name: format!(
                "GET /billing/history?limit={PAGE}&type=purchase (one before every 1,000th call)"
            ),
            path: format!("/billing/history?limit={PAGE}&type=purchase"),
            revalidate: false,
            read: Read::History(Some(CreditKind::Purchase)),
        },
        Case {
            name: format!("GET /billing/purchases?limit={PAGE}"),
            path: format!("/billing/purchases?limit={PAGE}"),
            revalidate: false,
            read: Read::Purchases,
        },
        Case {
            name: "GET /api/calls/{id} (a call half way down)".into(),
            path: format!("/api/calls/{call}"),
            revalidate: false,
            read: Read::Call(call),
        },
        Case {
            name: "GET /api/calls/{id}/transcript (the same call)".into(),
            path: format!("/api/calls/{call}/transcript"),
            revalidate: false,
            read: Read::Transcript(call),
        },
        Case {
            name: "GET /api/contacts/{id} (the contact half way down)".into(),
            path: format!("/api/contacts/{}", deep_contact.cursor.1),
            revalidate: false,
            read: Read::Contact(deep_contact.cursor.1),
        },
        Case {
            name: "GET /billing/purchases/{id} (the purchase half way down)".into(),
            path: format!("/billing/purchases/{purchase}"),
            revalidate: false,
            read: Read::Purchase(purchase),
        },
        Case {
            name: "GET /api/contact-lookup/{phone}?agent_id= (one of its contacts calling)".into(),
            path: format!(
                "/api/contact-lookup/{}?agent_id={agent}",
                caller.replace('+', "%2B")
            ),
            revalidate: false,
            read: Read::Caller {
                agent: agent.clone(),
                number: caller,
            },
        },
        Case {
            name: "GET /api/contact-lookup/{phone}?agent_id= (a number none of its contacts has)"
                .into(),
            path: format!(
                "/api/contact-lookup/{}?agent_id={agent}",
                UNKNOWN_CALLER.replace('+', "%2B")
            ),
            revalidate: false,
            read: Read::Caller {
                agent,
                number: UNKNOWN_CALLER.into(),
            },
        },
    ])
}

/// A valid number that none of the bench's tenants has a contact at.
const UNKNOWN_CALLER: &str = "+14155550199";

/// The number of one of the tenant's contacts that a caller would ring from: the seed's numbers
/// (+1 200 ...) have no valid area code, so none of them would be stored by the product or found
/// by the lookup. Added once, as the tenant's oldest contact, so the lists' pages stay as seeded.
async fn calling_contact(db: &Client, tenant: &Tenant) -> Result<String, BoxError> {
    const NUMBER: &str = "+14155550100";
    db.execute(
        "INSERT INTO contacts (user_id, name, phone_number, company, created_at, updated_at)
         SELECT $1, 'A caller', $2, 'Calling Co', at, at
         FROM (SELECT coalesce(min(created_at), now()) - interval '1 day' AS at
               FROM contacts WHERE user_id = $1) oldest
         ON CONFLICT (user_id, phone_number) WHERE deleted_at IS NULL DO NOTHING",
        &[&tenant.id, &NUMBER],
    )
    .await?;
    Ok(NUMBER.into())
}

/// The admin's read of the whole platform, the default period and the longest: from their
/// snapshots, and read afresh as the reconciler's warming (or a reload) reads them; the admin's
/// lists' first pages, and the `largest` tenant's whole picture.
fn admin_cases(largest: &Tenant) -> Vec<Case> {
    let lists = AdminList::ALL.into_iter().map(|list| Case {
        name: format!("GET {}?limit={PAGE}", list.path()),
        path: format!("{}?limit={PAGE}", list.path()),
        revalidate: false,
        read: Read::AdminList(list),
    });
    let tenant = Case {
        name: format!("GET /admin/users/{{id}} ({})", largest.label()),
        path: format!("/admin/users/{}", largest.id),
        revalidate: false,
        read: Read::AdminUser(largest.id),
    };
    let analytics = [(30, false), (365, false), (30, true), (365, true)]
        .into_iter()
        .map(|(days, afresh)| Case {
            name: format!(
                "GET /admin/analytics?days={days}{}",
                if afresh {
                    ", Cache-Control: no-cache"
                } else {
                    ""
                }
            ),
            path: format!("/admin/analytics?days={days}"),
            revalidate: false,
            read: Read::SystemAnalytics { days, afresh },
        });
    analytics.chain(lists).chain([tenant]).collect()
}

/// The call list searched for `company`, which `share` of the calls' contacts work at.
fn company_search(company: &str, share: &str) -> Case {
    Case {
        name: format!("GET /api/calls?limit={PAGE}&search={company} ({share})"),
        path: format!(
            "/api/calls?limit={PAGE}&search={}",
            company.replace(' ', "%20")
        ),
        revalidate: false,
        read: Read::CallSearch(company.into()),
    }
}

/// A third of the seeded contacts work at an "Acme ..." company.
const COMMON_SEARCH: &str = "acme";
/// A company about one contact in 14 works at (of the largest tenant's newest calls, 7 %):
/// a search whose page reads in order and whose total looks up.
const SOME_SEARCH: &str = "globex 1";
/// A company about one contact in 28 works at (3.5 %): on the edge of reading a page in order.
const FEWER_SEARCH: &str = "acme 9";

struct DeepCursor {
    cursor: CallCursor,
    offset: i64,
}

/// The position half way down the tenant's calls, newest first.
async fn deep_cursor(db: &Client, tenant: &Tenant) -> Result<DeepCursor, BoxError> {
    let offset = tenant.calls / 2;
    let row = db
        .query_one(
            "SELECT created_at, id FROM calls WHERE user_id = $1
             ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            &[&tenant.id, &offset],
        )
        .await?;
    Ok(DeepCursor {
        cursor: (row.get(0), row.get(1)),
        offset,
    })
}

/// The first call with a transcript (one in ten has one) from `cursor` down.
async fn transcribed_call(
    db: &Client,
    tenant: &Tenant,
    cursor: &CallCursor,
) -> Result<Uuid, BoxError> {
    let row = db
        .query_one(
            "SELECT c.id FROM calls c
             WHERE c.user_id = $1 AND (c.created_at, c.id) <= ($2, $3)
               AND EXISTS (SELECT FROM transcripts t WHERE t.call_id = c.id)
             ORDER BY c.created_at DESC, c.id DESC LIMIT 1",
            &[&tenant.id, &cursor.0, &cursor.1],
        )
        .await?;
    Ok(row.get(0))
}

struct DeepContact {
    cursor: CallCursor,
    offset: i64,
    /// The last seven digits of its number: a search a person would type.
    digits: String,
    /// Its name: a search that finds calls through their contact.
    name: String,
    /// The first six characters of its number, which all the tenant's numbers share.
    prefix: String,
}

/// The contact half way down the tenant's contacts, newest first.
async fn deep_contact(db: &Client, tenant: &Tenant) -> Result<DeepContact, BoxError> {
    let count: i64 = db
        .query_one(
            "SELECT count(*) FROM contacts WHERE user_id = $1 AND deleted_at IS NULL",
            &[&tenant.id],
        )
        .await?
        .get(0);
    let offset = count / 2;
    let row = db
        .query_one(
            "SELECT created_at, id, right(phone_number, 7), name, left(phone_number, 6)
             FROM contacts
             WHERE user_id = $1 AND deleted_at IS NULL
             ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            &[&tenant.id, &offset],
        )
        .await?;
    Ok(DeepContact {
        cursor: (row.get(0), row.get(1)),
        offset,
        digits: row.get(2),
        name: row.get(3),
        prefix: row.get(4),
    })
}

/// The purchase half way down the tenant's purchases, newest first.
async fn middle_purchase(db: &Client, tenant: &Tenant) -> Result<Uuid, BoxError> {
    let row = db
        .query_one(
            "SELECT id FROM purchases WHERE user_id = $1 ORDER BY created_at DESC, id DESC
             OFFSET (SELECT count(*) / 2 FROM purchases WHERE user_id = $1) LIMIT 1",
            &[&tenant.id],
        )
        .await?;
    Ok(row.get(0))
}

/// The ElevenLabs id of the tenant's first agent.
async fn first_agent(db: &Client, tenant: &Tenant) -> Result<String, BoxError> {
    let row = db
        .query_one(
            "SELECT elevenlabs_agent_id FROM agents WHERE user_id = $1 AND deleted_at IS NULL
             ORDER BY elevenlabs_agent_id LIMIT 1",
            &[&tenant.id],
        )
        .await?;
    Ok(row.get(0))
}

struct BusiestLead {
    id: Uuid,
    interactions: i32,
}

/// The tenant's lead with the longest timeline.
async fn busiest_lead(db: &Client, tenant: &Tenant) -> Result<BusiestLead, BoxError> {
    let row = db
        .query_one(
            "SELECT id, interaction_count FROM leads WHERE user_id = $1
             ORDER BY interaction_count DESC, id LIMIT 1",
            &[&tenant.id],
        )
        .await?;
    Ok(BusiestLead {
        id: row.get(0),
        interactions: row.get(1),
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
        header: Option<(&str, &str)>,
        expect: u16,
    ) -> Result<(Duration, Option<String>), BoxError> {
        let mut request = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some((name, value)) = header {
            request = request.header(name, value);
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

/// The header sending `etag` back, if there is one.
fn if_none_match(etag: &Option<String>) -> Option<(&'static str, &str)> {
    etag.as_deref().map(|etag| ("if-none-match", etag))
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
    in_process: Percentiles,
    /// The answer's body (0 for a 304).
    bytes: usize,
    reads: Percentiles,
    prepared: Percentiles,
    statements: usize,
}

/// Where a read's statements are recorded (a pool through the proxy) and replayed (a plain
/// connection through the same pooler the API uses).
struct Sql {
    recorder: wire::Recorder,
    recording: deadpool_postgres::Pool,
    replay: Client,
}

/// What answers a case, each way timed.
struct Ways<'a> {
    api: &'a Api,
    router: &'a InProcess,
    reads: &'a deadpool_postgres::Pool,
    sql: &'a Sql,
}

/// Times the ways of answering `case` in turns: each round makes one API request, one
/// in-process request, one run of the reads and one of their SQL, so that whatever else the
/// machine does at a moment weighs on them alike.
async fn measure(
    ways: &Ways<'_>,
    tenant: &Tenant,
    case: &Case,
    options: &Options,
) -> Result<Row, BoxError> {
    let Ways {
        api,
        router,
        reads,
        sql,
    } = ways;
    let token = api.token(tenant);
    let (etag, expect) = if case.revalidate {
        (api.time(&case.path, &token, None, 200).await?.1, 304)
    } else {
        (None, 200)
    };
    let lookup_secret = var("CONTACT_LOOKUP_SECRET")?;
    let header = match case.read {
        Read::SystemAnalytics { afresh: true, .. } => Some(("cache-control", "no-cache")),
        Read::Caller { .. } => Some(("x-contact-lookup-secret", lookup_secret.as_str())),
        _ => if_none_match(&etag),
    };
    let replay = record(sql, tenant, case).await?;
    let mut db = reads.get().await?;
    let identity = tenant.identity();
    let mut bytes = 0;
    let [mut through_api, mut in_process, mut in_reads, mut prepared] =
        std::array::from_fn(|_| Vec::with_capacity(options.requests));
    for round in 0..options.warmup + options.requests {
        let api_took = api.time(&case.path, &token, header, expect).await?.0;
        let (router_took, body) = router.time(&case.path, &token, header, expect).await?;
        bytes = body;
        let started = Instant::now();
        case.read.run(&mut db, &identity).await?;
        let reads_took = started.elapsed();
        let started = Instant::now();
        replay.run(&sql.replay).await?;
        let sql_took = started.elapsed();
        if round >= options.warmup {
            through_api.push(api_took);
            in_process.push(router_took);
            in_reads.push(reads_took);
            prepared.push(sql_took);
        }
    }
    Ok(Row {
        endpoint: case.name.clone(),
        tenant: tenant.label(),
        api: Percentiles::of(through_api),
        in_process: Percentiles::of(in_process),
        bytes,
        reads: Percentiles::of(in_reads),
        prepared: Percentiles::of(prepared),
        statements: replay.statements(),
    })
}

/// The statements the case's reads send, recorded on their second run (the first prepares
/// them) and prepared once on the replay connection.
async fn record(sql: &Sql, tenant: &Tenant, case: &Case) -> Result<wire::Replay, BoxError> {
    let mut db = sql.recording.get().await?;
    let identity = tenant.identity();
    if let Read::SystemAnalytics { days, .. } = case.read {
        // A request totals 31 days of the ledger's hours at most: recorded while a year was
        // still being caught up, the replay would read the ledger's entries from that point on.
        let mut read_from = None;
        loop {
            let now = shared::admin::analytics::close_ledger_hours(&db, days).await?;
            if read_from.replace(now) == Some(now) {
                break;
            }
        }
    }
    case.read.run(&mut db, &identity).await?;
    sql.recorder.record();
    case.read.run(&mut db, &identity).await?;
    wire::Replay::prepare(&sql.replay, sql.recorder.take()).await
}

fn print_table(rows: &[Row], floor: &Percentiles, requests: usize) {
    println!(
        "p50 / p99 in ms over {requests} sequential rounds of the four, one after another in each round; in-process: the same request through its function's router in this process, no socket, on a current-thread runtime of its own as the Lambdas run; reads: the handler's shared read functions in-process, on one connection; SQL prepared once: the statements those reads sent (recorded off the wire), prepared once on one connection and run in order; floor: the HTTP floor below\n"
    );
    println!("| endpoint | tenant | API | in-process | reads | SQL prepared once (statements) | body | API / SQL (p50, p99) | API / (SQL + floor) (p50) | in-process / SQL (p50, p99) | reads / SQL (p50, p99) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{}", row.line(floor));
    }
}

impl Row {
    fn line(&self, floor: &Percentiles) -> String {
        let ratio = |of: &Percentiles| {
            format!(
                "{:.1}x, {:.1}x",
                ms(of.p50) / ms(self.prepared.p50),
                ms(of.p99) / ms(self.prepared.p99)
            )
        };
        format!(
            "| {} | {} | {} | {} | {} | {} ({}) | {:.1} KiB | {} | {:.1}x | {} | {} |",
            self.endpoint,
            self.tenant,
            self.api.figure(),
            self.in_process.figure(),
            self.reads.figure(),
            self.prepared.figure(),
            self.statements,
            self.bytes as f64 / 1024.0,
            ratio(&self.api),
            ms(self.api.p50) / (ms(self.prepared.p50) + ms(floor.p50)),
            ratio(&self.in_process),
            ratio(&self.reads),
        )
    }
}

/// The routes the Lambdas whose reads are timed serve (`shared::http::app`, their groups in one
/// router, its state from the stack's variables as the API's), called in
/// this process: the API's own work for a request, without the socket and the HTTP client. It runs
/// on a current-thread runtime of its own, as the Lambdas run it: on a thread of its own, each
/// request is driven by `block_on`, as a Lambda's main drives its handler, and its connections'
/// tasks with it. Its logs go to [`support::lambda_logs`]. Only the request is timed.
struct InProcess {
    requests: std::sync::mpsc::Sender<(Request, tokio::sync::oneshot::Sender<Served>)>,
}

type Request = axum::http::Request<axum::body::Body>;

/// A request's time until its whole body was read, its status and its body.
type Served = Result<(Duration, u16, axum::body::Bytes), BoxError>;

impl InProcess {
    async fn start() -> Result<Self, BoxError> {
        use tracing_subscriber::layer::SubscriberExt;
        let (requests, queue) =
            std::sync::mpsc::channel::<(Request, tokio::sync::oneshot::Sender<Served>)>();
        let (ready, started) = tokio::sync::oneshot::channel::<Result<(), BoxError>>();
        std::thread::spawn(move || {
            let built = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(BoxError::from)
                .and_then(|runtime| {
                    let state = runtime.block_on(shared::AppState::from_env())?;
                    Ok((runtime, state))
                });
            let (runtime, state) = match built {
                Ok(built) => {
                    let _ = ready.send(Ok(()));
                    built
                }
                Err(err) => {
                    let _ = ready.send(Err(err));
                    return;
                }
            };
            let groups = [
                shared::http::Group::Calls,
                shared::http::Group::Contacts,
                shared::http::Group::Billing,
                shared::http::Group::Admin,
                shared::http::Group::Auth,
                shared::http::Group::Webhooks,
            ];
            let app = shared::http::app(state, &groups.map(shared::http::Group::served));
            let logs =
                tracing::Dispatch::new(tracing_subscriber::registry().with(support::lambda_logs()));
            for (request, reply) in queue {
                let _ = reply.send(runtime.block_on(serve(app.clone(), request, logs.clone())));
            }
        });
        started.await??;
        Ok(Self { requests })
    }

    /// As [`Api::time`]: the time until the whole body is read, and its length.
    async fn time(
        &self,
        path: &str,
        token: &str,
        header: Option<(&str, &str)>,
        expect: u16,
    ) -> Result<(Duration, usize), BoxError> {
        let mut request = axum::http::Request::get(path)
            .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.requests
            .send((request.body(axum::body::Body::empty())?, reply))
            .map_err(|_| "the in-process runtime's thread has stopped")?;
        let (took, status, body) = answer.await??;
        if status != expect {
            return Err(format!(
                "in-process GET {path}: {status} instead of {expect}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        Ok((took, body.len()))
    }
}

/// `request` through `app`, timed until its whole body is read.
async fn serve(app: axum::Router, request: Request, logs: tracing::Dispatch) -> Served {
    use tower::ServiceExt;
    use tracing::instrument::WithSubscriber;
    let started = Instant::now();
    async move {
        let response = app.oneshot(request).await?;
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        Ok((started.elapsed(), status, body))
    }
    .with_subscriber(logs)
    .await
}
