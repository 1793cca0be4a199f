//! What the bench targets share: their error type, the stack's variables, latency summaries and
//! the table they print.

use std::time::{Duration, Instant};

use simulators::{keys::KeyRing, stack_auth::Issuer};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A variable the bench's script sets.
pub fn var(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run the bench through its scripts/bench-* script").into()
    })
}

/// The running API and the simulated Stack Auth that signs its users' tokens. Each bench adds
/// its own requests in an `impl Api` of its own.
pub struct Api {
    pub url: String,
    pub issuer: Issuer,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new() -> Result<Self, BoxError> {
        shared::telemetry::install_crypto_provider();
        let keys = KeyRing::load_or_create(&std::path::PathBuf::from(var("SIM_STATE_DIR")?))?;
        Ok(Self {
            url: var("API_URL")?,
            issuer: Issuer::new(
                keys,
                &var("STACK_PROJECT_ID")?,
                std::env::var("JWT_ISSUER").ok(),
            ),
            http: reqwest::Client::new(),
        })
    }

    /// A new user, whose first request (which creates the account) is made here: its token
    /// and user id.
    pub async fn sign_in(&self) -> Result<(String, String), BoxError> {
        let email = format!("bench-{}@example.test", uuid::Uuid::new_v4().simple());
        let token = self.issuer.token_for(&email);
        let response = self
            .http
            .get(format!("{}/auth/profile", self.url))
            .bearer_auth(&token)
            .send()
            .await?;
        if response.status() != 200 {
            return Err(format!("sign-in: the API answered {}", response.status()).into());
        }
        let profile: serde_json::Value = response.json().await?;
        let id = profile["id"].as_str().ok_or("no user id")?.to_owned();
        Ok((token, id))
    }
}

/// Prints `err` with its sources (tokio-postgres keeps the server's message there) and exits 1.
pub fn fail(err: &BoxError) -> ! {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    eprintln!("bench failed: {message}");
    std::process::exit(1);
}

/// Reads `--name N` arguments into the given counts (each a positive number); `--bench`,
/// which cargo passes to harness-less benches, is skipped, anything else is an error.
pub fn parse_counts(counts: &mut [(&str, &mut usize)]) -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--bench" {
            continue;
        }
        let Some((_, field)) = counts.iter_mut().find(|(name, _)| *name == arg) else {
            return Err(format!("unknown argument {arg:?}").into());
        };
        **field = args
            .next()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{arg} needs a positive number"))?;
    }
    Ok(())
}

/// Logs formatted as on Lambda (JSON, INFO and above) and written nowhere: what a request
/// served in the bench's own process pays for its logs.
pub fn lambda_logs<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use tracing_subscriber::{filter::LevelFilter, Layer};
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_target(false)
        .with_writer(std::io::sink)
        .with_filter(LevelFilter::INFO)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn print_table(rows: &[(String, String)]) {
    println!("\n| what | figure |\n|---|---|");
    for (what, figure) in rows {
        println!("| {what} | {figure} |");
    }
}

/// The nearest-rank `q` percentile of `sorted` (ascending, not empty).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1)]
}

/// Nearest-rank percentiles of requests sent from `started` on, and their rate.
pub struct Latencies {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub rate: f64,
}

impl Latencies {
    pub fn new(started: Instant, mut latencies: Vec<Duration>) -> Self {
        let elapsed = started.elapsed();
        latencies.sort();
        Self {
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            max: latencies[latencies.len() - 1],
            rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        }
    }

    /// "p50 .. ms, p99 .. ms, max .. ms; .. `unit`/s"
    pub fn figure(&self, unit: &str) -> String {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} {unit}/s",
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.rate
        )
    }
}

/// The API's process id, which scripts/lib/stack.sh exports when it starts the API.
pub fn api_pid() -> Result<String, BoxError> {
    let pid = var("STACK_API_PID")?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map_err(|err| format!("the API (pid {pid}) is not running: {err}"))?;
    if name.trim() != "local" {
        return Err(format!("pid {pid} is {name:?}, not the API (local)").into());
    }
    Ok(pid)
}

/// A process's resident memory in kB: now (VmRSS) and its peak so far (VmHWM).
#[derive(Clone, Copy)]
pub struct Resident {
    pub now: u64,
    pub peak: u64,
}

impl Resident {
    pub fn read(pid: &str) -> Result<Self, BoxError> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> Result<u64, BoxError> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
                .ok_or_else(|| format!("no {name} in /proc/{pid}/status").into())
        };
        Ok(Self {
            now: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }

    /// Starts the process's peak (VmHWM) again from its current resident memory.
    pub fn reset_peak(pid: &str) -> Result<(), BoxError> {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
        Ok(())
    }
}

/// CPU time (user and system) process `pid` (`self` for this one) has used so far, from
/// `/proc/<pid>/stat` (clock ticks of 10 ms: read it around work of a second or more).
pub fn cpu_time(pid: &str) -> Result<Duration, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or_else(|| format!("no ')' in /proc/{pid}/stat"))?
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| -> Result<u64, BoxError> {
        Ok(fields
            .get(i)
            .ok_or_else(|| format!("short /proc/{pid}/stat"))?
            .parse()?)
    };
    // utime and stime are fields 14 and 15, the 12th and 13th after the name.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}
