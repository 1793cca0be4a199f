//! The read bench's platform at the end of a busy day, whenever the bench runs. A kept dataset
//! ends when it was seeded: days later, nothing of it is open, so a read afresh of the admin's
//! analytics (which sums the open day's rollups and reads the ledger's open hours one entry at
//! a time) would be timed at its cheapest, and at a different cost every hour. While the bench
//! runs, today holds a copy of the last whole seeded day's rollups, and the ledger's open hours
//! a copy of as long a stretch of its last seeded entries: the state of 23:59 (UTC) on a day
//! like the seeded ones. Rows of 01:59, with yesterday's whole day and two hours of today open,
//! are about a tenth more. Removed when the bench ends, and before it starts (what a stopped
//! run left).

use tokio_postgres::{Client, Transaction};

use crate::support::BoxError;

/// What [`open`] copied.
pub struct BusyDay {
    /// Whether the dataset was seeded today: then nothing is copied.
    pub seeded_today: bool,
    pub rollups: u64,
    pub tenants: i64,
    pub ledger_entries: u64,
}

impl BusyDay {
    pub fn describe(&self) -> String {
        if self.seeded_today {
            return format!(
                "seeded today: today holds the seed's own rows of {} tenants, part of a day, and \
                 nothing is copied",
                self.tenants
            );
        }
        format!(
            "a busy day open: today holds {} rollup rows of {} tenants, the ledger's open hours {} \
             entries (copies of the last seeded ones)",
            self.rollups, self.tenants, self.ledger_entries
        )
    }
}

/// The seed's last instant, from the dataset's marker row.
const SEEDED: &str = "(SELECT seeded_at FROM bench_seed WHERE dataset = $1)";

/// Copies the day and the ledger's hours in, unless the dataset was seeded today: then its own
/// rows are today's.
pub async fn open(db: &mut Client, dataset: &str) -> Result<BusyDay, BoxError> {
    close(db, dataset).await?;
    let tx = db.transaction().await?;
    let seeded_today: bool = tx
        .query_one(
            &format!(
                "SELECT ({SEEDED} AT TIME ZONE 'UTC')::date = (now() AT TIME ZONE 'UTC')::date"
            ),
            &[&dataset],
        )
        .await?
        .get(0);
    let (rollups, ledger_entries) = if seeded_today {
        (0, 0)
    } else {
        copy_day(&tx, dataset).await?
    };
    let tenants = tx
        .query_one(
            "SELECT count(*) FROM daily_tenant_stats WHERE day = (now() AT TIME ZONE 'UTC')::date",
            &[],
        )
        .await?
        .get(0);
    tx.commit().await?;
    Ok(BusyDay {
        seeded_today,
        rollups,
        tenants,
        ledger_entries,
    })
}

/// Copies the last whole seeded day's rollups into today and as long a stretch of the
/// ledger's last seeded entries into its open hours: the rows copied of each.
async fn copy_day(tx: &Transaction<'_>, dataset: &str) -> Result<(u64, u64), BoxError> {
    let rollups = tx
        .execute(
            &format!(
                "INSERT INTO daily_agent_stats (user_id, agent_id, day, calls, chats, completed,
                     failed, successful, duration_seconds, credits_used)
                 SELECT user_id, agent_id, (now() AT TIME ZONE 'UTC')::date, calls, chats,
                     completed, failed, successful, duration_seconds, credits_used
                 FROM daily_agent_stats
                 WHERE day = ({SEEDED} AT TIME ZONE 'UTC')::date - 1"
            ),
            &[&dataset],
        )
        .await?;
    // The ledger's hours are open from an hour before the last one (the admin's analytics'
    // `open_hour!`): as long a stretch before the seed's end, moved to end now.
    let ledger_entries = tx
        .execute(
            &format!(
                "WITH open AS (
                     SELECT now() - date_trunc('hour', now() - interval '1 hour', 'UTC') AS span)
                 INSERT INTO credit_transactions
                     (user_id, type, amount, balance_after, description, reference, created_at)
                 SELECT user_id, type, amount, balance_after, description,
                     'bench-busy-day:' || reference, created_at + (now() - {SEEDED})
                 FROM credit_transactions
                 WHERE created_at >= {SEEDED} - (SELECT span FROM open)
                     AND created_at < {SEEDED}"
            ),
            &[&dataset],
        )
        .await?;
    Ok((rollups, ledger_entries))
}

/// Removes the copies. A copied day that is closed by now (a run past 02:00 of the next day)
/// counts as a late change, so that the admin's sums are read again without it; the ledger's
/// totals of the seed's last day and the hours since are dropped, to be totalled again.
pub async fn close(db: &mut Client, dataset: &str) -> Result<(), BoxError> {
    let tx = db.transaction().await?;
    tx.execute(
        &format!(
            "WITH copies AS (
                 DELETE FROM daily_agent_stats
                 WHERE day > ({SEEDED} AT TIME ZONE 'UTC')::date RETURNING day)
             UPDATE closed_day_changes SET late = late + 1
             WHERE EXISTS (SELECT FROM copies WHERE day < (now() AT TIME ZONE 'UTC')::date)"
        ),
        &[&dataset],
    )
    .await?;
    // The ledger refuses deletes (V0001's trigger), which only a replica's role skips.
    tx.batch_execute("SET LOCAL session_replication_role = replica")
        .await?;
    tx.execute(
        &format!(
            "DELETE FROM credit_transactions
             WHERE created_at >= {SEEDED} AND starts_with(reference, 'bench-busy-day:')"
        ),
        &[&dataset],
    )
    .await?;
    // From the seed's day on, with the days that sum them (V0038): the day of the seed's end
    // would otherwise keep the hours dropped in its sums.
    tx.execute(
        &format!(
            "WITH days AS (
                 DELETE FROM ledger_days WHERE day >= ({SEEDED} AT TIME ZONE 'UTC')::date)
             DELETE FROM ledger_hours WHERE hour >= date_trunc('day', {SEEDED}, 'UTC')"
        ),
        &[&dataset],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
