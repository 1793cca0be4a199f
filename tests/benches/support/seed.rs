//! The seeded dataset of the benches that need a big one (scripts/bench-reads,
//! scripts/bench-export): tests/benches/reads_seed.sql, run once in one transaction, then
//! VACUUM ANALYZE, unless the database already holds it (the `bench_seed` marker row).

use std::time::Instant;

use tokio_postgres::{Client, NoTls};

use crate::support::BoxError;

const SEED_SQL: &str = include_str!("../reads_seed.sql");

pub async fn connect(url: &str) -> Result<Client, BoxError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// What to seed: the seed's parameters, and the steps a bench does not read.
pub struct Dataset<'a> {
    /// The marker row's key.
    pub name: &'a str,
    pub tenants: usize,
    pub calls: usize,
    pub largest: usize,
    /// `-- step:` sections of the seed file left out.
    pub skip_steps: &'a [&'a str],
}

pub struct Seed {
    calls: i64,
    seconds: f64,
    fresh: bool,
    steps: Vec<(String, f64)>,
}

impl Seed {
    pub fn describe(&self) -> String {
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

/// Steps added to the seed file after datasets were seeded and kept: each does nothing where
/// its rows exist, and runs on a kept dataset too.
const CATCH_UP_STEPS: &[&str] = &["contacts", "call contacts", "ledger", "purchases"];

impl Dataset<'_> {
    pub async fn ensure_seeded(&self, db: &Client) -> Result<Seed, BoxError> {
        if let Some(seed) = self.recorded(db).await? {
            let sql = self.sql();
            for (name, step) in seed_steps(&sql) {
                if CATCH_UP_STEPS.contains(&name) && !self.skip_steps.contains(&name) {
                    let at = Instant::now();
                    db.batch_execute(step).await?;
                    eprintln!("  {name} (caught up): {:.1} s", at.elapsed().as_secs_f64());
                }
            }
            return Ok(seed);
        }
        eprintln!(
            "seeding {} calls over {} tenants (largest {}): a few minutes",
            self.calls, self.tenants, self.largest
        );
        let started = Instant::now();
        let sql = self.sql();
        let mut steps = Vec::new();
        db.batch_execute("BEGIN").await?;
        for (name, step) in seed_steps(&sql) {
            if self.skip_steps.contains(&name) {
                continue;
            }
            let at = Instant::now();
            db.batch_execute(step).await?;
            eprintln!("  {name}: {:.1} s", at.elapsed().as_secs_f64());
            steps.push((name.to_owned(), at.elapsed().as_secs_f64()));
        }
        db.execute(
            "INSERT INTO bench_seed (dataset, calls, seconds) VALUES ($1, $2, $3)",
            &[&self.name, &(self.calls as i64), &0.0_f64],
        )
        .await?;
        db.batch_execute("COMMIT").await?;
        let at = Instant::now();
        db.batch_execute("VACUUM ANALYZE").await?;
        steps.push(("vacuum analyze".into(), at.elapsed().as_secs_f64()));
        let seconds = started.elapsed().as_secs_f64();
        db.execute(
            "UPDATE bench_seed SET seconds = $2 WHERE dataset = $1",
            &[&self.name, &seconds],
        )
        .await?;
        Ok(Seed {
            calls: self.calls as i64,
            seconds,
            fresh: true,
            steps,
        })
    }

    /// The seed file for this dataset's parameters.
    fn sql(&self) -> String {
        SEED_SQL
            .replace("{tenants}", &self.tenants.to_string())
            .replace("{calls}", &self.calls.to_string())
            .replace("{largest}", &self.largest.to_string())
    }

    async fn recorded(&self, db: &Client) -> Result<Option<Seed>, BoxError> {
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
                &[&self.name],
            )
            .await?;
        Ok(row.map(|row| Seed {
            calls: row.get(0),
            seconds: row.get(1),
            fresh: false,
            steps: Vec::new(),
        }))
    }
}

/// The seed file's `-- step: name` sections, in order.
fn seed_steps(sql: &str) -> Vec<(&str, &str)> {
    sql.split("-- step: ")
        .skip(1)
        .map(|section| section.split_once('\n').unwrap_or((section, "")))
        .map(|(name, body)| (name.trim(), body))
        .collect()
}
