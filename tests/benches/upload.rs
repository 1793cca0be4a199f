//! Contact upload benchmark, run by scripts/bench-upload against a stack of its own:
//! a. a realistic .xlsx generated here, parsed in this process by
//!    `shared::contacts::import::parse`: time, and the heap one parse adds at its peak (counted
//!    by this binary's global allocator); next to it `shared::contacts::upload::import` (the
//!    parse and the one INSERT), to tell the parser's share from the database's;
//! b. POST /api/contacts/upload to the running API, each upload by a new user (so every row is
//!    created), then the same file again by the same users (every row a duplicate);
//! c. the API process's resident memory (VmRSS, and its peak VmHWM, from /proc/<pid>/status)
//!    before the first upload, after it, and after all of them.

// Shared by every bench target; this one does not use all of it.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use peak_alloc::PeakAlloc;
use rust_xlsxwriter::Workbook;
use serde_json::Value;
use shared::contacts::{
    import::{self, ImportLimits, ParsedFile},
    upload,
};
use support::{api_pid, fail, ms, print_table, Api, BoxError, Latencies, Resident};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const FILE_NAME: &str = "contacts.xlsx";
const BOUNDARY: &str = "----upload-bench-boundary-5c2e";

struct Options {
    rows: usize,
    parses: usize,
    uploads: usize,
    clients: usize,
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        rows: 1000,
        parses: 100,
        uploads: 100,
        clients: 1,
    };
    support::parse_counts(&mut [
        ("--rows", &mut options.rows),
        ("--parses", &mut options.parses),
        ("--uploads", &mut options.uploads),
        ("--clients", &mut options.clients),
    ])?;
    Ok(options)
}

fn main() {
    if let Err(err) = run() {
        fail(&err);
    }
}

fn run() -> Result<(), BoxError> {
    let options = options()?;
    let limits = ImportLimits::from_settings(&shared::settings::Settings::defaults(
        &shared::Config::from_env()?,
    ));
    let file = contacts_xlsx(options.rows)?;
    let mut rows = vec![(
        format!(
            "the file: generated .xlsx, {} rows (Name, Phone, Email, Company, Notes; US, UK and German numbers in several spellings, some as numeric cells; non-ASCII names and notes)",
            options.rows
        ),
        format!("{:.1} KB", file.len() as f64 / 1024.0),
    )];
    // Before the runtime exists, so no other thread allocates while the heap is counted.
    rows.extend(parse_rows(&file, &limits, &options)?);
    tokio::runtime::Runtime::new()?.block_on(against_the_stack(&file, &options, &mut rows))?;
    print_table(&rows);
    Ok(())
}

const FIRST_NAMES: [&str; 16] = [
    "Ada",
    "Zoë",
    "José",
    "Søren",
    "Małgorzata",
    "Nguyễn Thị",
    "Ahmet",
    "Fatima",
    "Olivia",
    "Chloé",
    "Björn",
    "Priya",
    "Mateo",
    "Aoife",
    "Дмитрий",
    "美咲",
];
const LAST_NAMES: [&str; 13] = [
    "Lovelace",
    "García",
    "Müller",
    "O'Brien",
    "Kowalska",
    "Yılmaz",
    "Haddad",
    "Smith",
    "Dubois",
    "Johansson",
    "Patel",
    "Rossi",
    "佐藤",
];
const COMPANIES: [&str; 6] = [
    "Acme Corp",
    "Müller & Söhne GmbH",
    "Café Délice",
    "株式会社サンプル",
    "Northwind Traders",
    "",
];
const NOTES: [&str; 5] = [
    "",
    "Prefers mornings",
    "Rückruf erbeten — nach 14 Uhr",
    "Met at the trade fair ✨",
    "Interested in the premium plan;\ncall back in Q3",
];
const EMAIL_DOMAINS: [&str; 3] = ["example.com", "mail.example.org", "example.co.uk"];

/// A contact list as a CRM export looks: a header, then `rows` contacts with distinct valid
/// numbers, written the ways people write them.
fn contacts_xlsx(rows: usize) -> Result<Vec<u8>, BoxError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (c, title) in ["Name", "Phone", "Email", "Company", "Notes"]
        .into_iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, title)?;
    }
    for i in 0..rows {
        let r = u32::try_from(i + 1)?;
        let name = format!(
            "{} {}",
            FIRST_NAMES[i % FIRST_NAMES.len()],
            LAST_NAMES[i % LAST_NAMES.len()]
        );
        sheet.write_string(r, 0, &name)?;
        match phone(i) {
            Phone::Text(text) => sheet.write_string(r, 1, &text)?,
            Phone::Number(number) => sheet.write_number(r, 1, number)?,
        };
        if i % 9 != 4 {
            let domain = EMAIL_DOMAINS[i % EMAIL_DOMAINS.len()];
            sheet.write_string(r, 2, format!("contact{i}@{domain}"))?;
        }
        sheet.write_string(r, 3, COMPANIES[i % COMPANIES.len()])?;
        sheet.write_string(r, 4, NOTES[i % NOTES.len()])?;
    }
    Ok(workbook.save_to_buffer()?)
}

enum Phone {
    Text(String),
    /// What a spreadsheet app makes of a number typed without punctuation.
    Number(f64),
}

impl Phone {
    /// The text the parser makes of the cell.
    fn text(&self) -> String {
        match self {
            Phone::Text(text) => text.clone(),
            Phone::Number(number) => format!("{number:.0}"),
        }
    }
}

/// Row `i`'s number: distinct for every row (up to 40,000), in one of four spellings.
fn phone(i: usize) -> Phone {
    let n = i / 4;
    match i % 4 {
        0 if n.is_multiple_of(2) => Phone::Number(14_152_620_000.0 + n as f64),
        0 => Phone::Text(format!("+1 415-262-{n:04}")),
        1 => Phone::Text(format!("(212) 734-{n:04}")),
        2 => Phone::Text(format!("+44 20 7946 {n:04}")),
        _ => Phone::Text(format!("+49 30 2759{n:04}")),
    }
}

fn parse(file: &[u8], limits: &ImportLimits) -> Result<ParsedFile, BoxError> {
    Ok(import::parse(FILE_NAME, file, limits)?)
}

/// The parser's time over `options.parses` runs, and the heap one parse adds at its peak;
/// before them, what a process pays once: the first pass over the file's phone numbers (the
/// phonenumber crate loads its metadata and compiles its patterns) and the first parse.
fn parse_rows(
    file: &[u8],
    limits: &ImportLimits,
    options: &Options,
) -> Result<Vec<(String, String)>, BoxError> {
    let numbers = phone_numbers(options.rows);
    let (first_phones, phones_heap) = once(|| normalize_all(&numbers, limits))?;
    let (first_parse, parse_heap) = once(|| {
        let parsed = parse(file, limits)?;
        check_parsed(&parsed, options.rows)
    })?;
    let mut rows = vec![(
        "once per process: the first `phone::normalize` of the file's numbers (phonenumber loads its metadata, compiles its patterns) / then the first parse; each one's time and the heap it leaves allocated".into(),
        format!(
            "{:.1} ms, {} / {:.1} ms, {}",
            ms(first_phones),
            mib(phones_heap),
            ms(first_parse),
            mib(parse_heap)
        ),
    )];
    rows.extend(warm_parse_rows(file, limits, options)?);
    Ok(rows)
}

/// How long `work` takes, and the heap it leaves allocated once its result is dropped.
fn once<T>(work: impl FnOnce() -> Result<T, BoxError>) -> Result<(Duration, usize), BoxError> {
    let before = HEAP.current_usage();
    let sent = Instant::now();
    drop(work()?);
    let took = sent.elapsed();
    Ok((took, HEAP.current_usage().saturating_sub(before)))
}

fn check_parsed(parsed: &ParsedFile, rows: usize) -> Result<(), BoxError> {
    if parsed.contacts.len() != rows {
        return Err(format!(
            "the generated file should parse into {} contacts, not {}: duplicates {:?}, invalid {:?}",
            rows,
            parsed.contacts.len(),
            parsed.duplicates.first(),
            parsed.invalid.first()
        )
        .into());
    }
    Ok(())
}

fn warm_parse_rows(
    file: &[u8],
    limits: &ImportLimits,
    options: &Options,
) -> Result<Vec<(String, String)>, BoxError> {
    let mut times = Vec::with_capacity(options.parses);
    let started = Instant::now();
    for _ in 0..options.parses {
        let sent = Instant::now();
        parse(file, limits)?;
        times.push(sent.elapsed());
    }
    let times = Latencies::new(started, times);
    let phones = phone_times(limits, options)?;
    let (peak, kept) = parse_heap(file, limits)?;
    Ok(vec![
        (
            format!(
                "parse alone (`contacts::import::parse`, in the bench process), {} runs",
                options.parses
            ),
            times.figure("parses"),
        ),
        (
            format!(
                "of which phone numbers: `phone::normalize` on the file's {} numbers, {} runs",
                options.rows, options.parses
            ),
            phones.figure("runs"),
        ),
        (
            "heap one parse adds at its peak (bytes requested from the allocator) / of which its result keeps".into(),
            format!("{} / {}", mib(peak), mib(kept)),
        ),
    ])
}

fn phone_numbers(rows: usize) -> Vec<String> {
    (0..rows).map(|i| phone(i).text()).collect()
}

/// `shared::phone::normalize` on each number, as the parser calls it once per row.
fn normalize_all(numbers: &[String], limits: &ImportLimits) -> Result<(), BoxError> {
    for number in numbers {
        shared::phone::normalize(number, limits.default_region)
            .ok_or_else(|| format!("{number:?} is not a valid number"))?;
    }
    Ok(())
}

fn phone_times(limits: &ImportLimits, options: &Options) -> Result<Latencies, BoxError> {
    let numbers = phone_numbers(options.rows);
    let mut times = Vec::with_capacity(options.parses);
    let started = Instant::now();
    for _ in 0..options.parses {
        let sent = Instant::now();
        normalize_all(&numbers, limits)?;
        times.push(sent.elapsed());
    }
    Ok(Latencies::new(started, times))
}

/// Bytes allocated by one parse at its peak, and those its result still holds.
fn parse_heap(file: &[u8], limits: &ImportLimits) -> Result<(usize, usize), BoxError> {
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let parsed = parse(file, limits)?;
    let peak = HEAP.peak_usage() - before;
    let kept = HEAP.current_usage().saturating_sub(before);
    drop(parsed);
    Ok((peak, kept))
}

fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

async fn against_the_stack(
    file: &[u8],
    options: &Options,
    rows: &mut Vec<(String, String)>,
) -> Result<(), BoxError> {
    rows.push(in_process_imports(file, options).await?);
    let api = Api::new()?;
    let pid = api_pid()?;
    let idle = Resident::read(&pid)?;

    let first_user = sign_in(&api).await?;
    let sent = Instant::now();
    api.upload(&first_user, file, Expect::Created(options.rows))
        .await?;
    rows.push((
        "the API's first upload after it started (a new user, signed in before)".into(),
        format!("{:.1} ms", ms(sent.elapsed())),
    ));
    let after_first = Resident::read(&pid)?;

    let mut users = Vec::with_capacity(options.uploads);
    for _ in 0..options.uploads {
        users.push(sign_in(&api).await?);
    }
    let fresh = api
        .upload_all(&users, file, options.clients, Expect::Created(options.rows))
        .await?;
    rows.push((
        format!(
            "POST /api/contacts/upload, each by a new user ({} created), {} uploads, {} at a time",
            options.rows, options.uploads, options.clients
        ),
        with_rows(&fresh, "uploads", options.rows),
    ));
    let again = api
        .upload_all(
            &users,
            file,
            options.clients,
            Expect::Duplicates(options.rows),
        )
        .await?;
    rows.push((
        format!(
            "the same file again by the same users (all {} duplicates)",
            options.rows
        ),
        with_rows(&again, "uploads", options.rows),
    ));
    let after = Resident::read(&pid)?;
    rows.extend(memory_rows(idle, after_first, after));
    Ok(())
}

/// The latencies, and the rows they got through per second.
fn with_rows(latencies: &Latencies, unit: &str, rows: usize) -> String {
    format!(
        "{} ({:.0} rows/s)",
        latencies.figure(unit),
        latencies.rate * rows as f64
    )
}

/// `contacts::upload::import`, what the endpoint calls once it has the file, for a new tenant
/// each time: the parse plus the one INSERT, without HTTP, multipart or the token check.
async fn in_process_imports(file: &[u8], options: &Options) -> Result<(String, String), BoxError> {
    let state = shared::AppState::from_env().await?;
    let mut tenants = Vec::with_capacity(options.uploads);
    for _ in 0..options.uploads {
        tenants.push(new_tenant(&state).await?);
    }
    let mut times = Vec::with_capacity(tenants.len());
    let started = Instant::now();
    for tenant in tenants {
        let sent = Instant::now();
        let report = upload::import(&state, tenant, FILE_NAME, file).await?;
        times.push(sent.elapsed());
        if report.created != options.rows {
            return Err(format!("in-process import created {}", report.created).into());
        }
    }
    Ok((
        format!(
            "in-process `contacts::upload::import` (parse + the one INSERT into Postgres), a new tenant each time, {} runs",
            options.uploads
        ),
        with_rows(&Latencies::new(started, times), "imports", options.rows),
    ))
}

async fn new_tenant(state: &shared::AppState) -> Result<shared::tenant::TenantId, BoxError> {
    let sub = uuid::Uuid::new_v4().to_string();
    let email = format!("bench-{}@example.test", &sub[..8]);
    let identity = shared::users::Identity {
        subject: &sub,
        email: Some(&email),
        name: None,
        email_verified: true,
    };
    let user = shared::users::provision(&mut state.db().get().await?, &identity).await?;
    Ok(user.tenant())
}

fn memory_rows(idle: Resident, after_first: Resident, after: Resident) -> Vec<(String, String)> {
    let mb = |kb: u64| format!("{:.1}", kb as f64 / 1024.0);
    let delta = |from: u64, to: u64| format!("{:+.1}", (to as f64 - from as f64) / 1024.0);
    vec![
        (
            "API resident memory (VmRSS, MiB): idle / after the first upload / after all".into(),
            format!(
                "{} / {} / {} ({} MiB)",
                mb(idle.now),
                mb(after_first.now),
                mb(after.now),
                delta(idle.now, after.now)
            ),
        ),
        (
            "API peak resident memory (VmHWM, MiB): idle / after the first upload / after all"
                .into(),
            format!(
                "{} / {} / {} ({} MiB)",
                mb(idle.peak),
                mb(after_first.peak),
                mb(after.peak),
                delta(idle.peak, after.peak)
            ),
        ),
    ]
}

/// What every answer of a run must say.
#[derive(Clone, Copy)]
enum Expect {
    Created(usize),
    Duplicates(usize),
}

/// A signed-in user: what the simulated Stack Auth would give the browser.
struct User {
    token: String,
}

async fn sign_in(api: &Api) -> Result<User, BoxError> {
    let (token, _) = api.sign_in().await?;
    Ok(User { token })
}

impl Api {
    /// Each user uploads `file` once, `clients` at a time.
    async fn upload_all(
        &self,
        users: &[User],
        file: &[u8],
        clients: usize,
        expect: Expect,
    ) -> Result<Latencies, BoxError> {
        let started = Instant::now();
        let times = stream::iter(users)
            .map(|user| async move {
                let sent = Instant::now();
                self.upload(user, file, expect).await?;
                Ok::<_, BoxError>(sent.elapsed())
            })
            .buffer_unordered(clients)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<Duration>, _>>()?;
        Ok(Latencies::new(started, times))
    }

    /// One upload, checked against `expect` down to the counts.
    async fn upload(&self, user: &User, file: &[u8], expect: Expect) -> Result<(), BoxError> {
        let response = self
            .http
            .post(format!("{}/api/contacts/upload", self.url))
            .bearer_auth(&user.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(multipart(file))
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        let report: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let count = |field: &str| report[field].as_array().map(Vec::len);
        let (created, duplicates) = match expect {
            Expect::Created(rows) => (rows, 0),
            Expect::Duplicates(rows) => (0, rows),
        };
        let as_expected = status == 200
            && report["created"].as_u64() == Some(created as u64)
            && count("duplicates") == Some(duplicates)
            && count("invalid") == Some(0);
        if !as_expected {
            let start: String = body.chars().take(300).collect();
            return Err(format!(
                "expected {created} created and {duplicates} duplicates, the API answered {status}: {start}"
            )
            .into());
        }
        Ok(())
    }
}

/// A multipart body with the file as its one part, as a browser's form sends it.
fn multipart(file: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{FILE_NAME}\"\r\n\
         Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}
