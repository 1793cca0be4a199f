//! What the bench targets share: their error type, the stack's variables, latency summaries and
//! the table they print.

use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A variable the bench's script sets.
pub fn var(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run the bench through its scripts/bench-* script").into()
    })
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
