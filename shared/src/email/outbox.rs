//! Sends what the outbox holds. Each run leases the due emails (other senders skip them until
//! the lease ends, so a crashed sender's emails are retried), sends each over SMTP with a
//! timeout, and records the result: sent, retried later with backoff, or failed for good.

use crate::db::statements::Cached;
use std::time::Duration;

use lettre::{
    message::{
        header::{ContentType, MIME_VERSION_1_0},
        Mailbox,
    },
    transport::smtp::authentication::Credentials,
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use serde::Serialize;
use serde_json::Value;

use super::{templates, EmailKind};
use crate::{
    config::{EmailConfig, SmtpTls},
    error::{AppError, AppResult},
    AppState,
};

/// After this many failed attempts an email is given up (status failed, kept for inspection):
/// with the backoff, about two days of SMTP trouble (an expired password is noticed and
/// replaced in that time; an hour is not enough).
pub const MAX_ATTEMPTS: i32 = 56;
/// Emails leased at a time: the lease covers the whole batch at its worst (every exchange
/// timing out), so no other sender can take an email this one may still send.
const LEASE_BATCH: i64 = 10;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SendReport {
    pub sent: usize,
    /// Will be tried again later.
    pub deferred: usize,
    /// Given up (a bad address, or too many attempts).
    pub failed: usize,
}

struct Due {
    id: i64,
    kind: EmailKind,
    recipient: String,
    data: Value,
    attempts: i32,
}

/// Sends up to `limit` due emails, a lease of [`LEASE_BATCH`] at a time. Without SMTP
/// configured it does nothing and the emails wait.
pub async fn send_due(state: &AppState, limit: i64) -> AppResult<SendReport> {
    let config = &state.config().email;
    let Some(host) = config.smtp_host.as_deref() else {
        return Ok(SendReport::default());
    };
    // Ready before any email is leased: a lease counts an attempt.
    let password = state.secrets().get().await?.smtp_password.clone();
    let transport = transport(config, host, &password)?;
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| AppError::internal(format!("EMAIL_FROM: {e}")))?;
    let mut report = SendReport::default();
    let mut leased = 0;
    while leased < limit {
        let due = lease(state, LEASE_BATCH.min(limit - leased), config.timeout).await?;
        if due.is_empty() {
            break;
        }
        leased += i64::try_from(due.len()).unwrap_or(LEASE_BATCH);
        let client = state.db().get().await?;
        for email in due {
            let result = send_one(&transport, &from, config, &email).await;
            record(&client, &email, result, &mut report).await?;
        }
    }
    Ok(report)
}

/// Records one send's result, only if this sender still holds the email (its attempt count
/// is the one its lease set).
async fn record(
    client: &deadpool_postgres::Client,
    email: &Due,
    result: Result<(), Failure>,
    report: &mut SendReport,
) -> AppResult<()> {
    match result {
        Ok(()) => {
            client
                .cached_execute(sql::MARK_SENT, &[&email.id, &email.attempts])
                .await?;
            report.sent += 1;
        }
        Err(failure) => {
            let give_up = failure.permanent || email.attempts >= MAX_ATTEMPTS;
            let retry_in = backoff(email.attempts).as_secs_f64();
            client
                .cached_execute(
                    sql::RECORD_FAILURE,
                    &[
                        &email.id,
                        &give_up,
                        &failure.message,
                        &retry_in,
                        &email.attempts,
                    ],
                )
                .await?;
            tracing::warn!(email_id = email.id, kind = email.kind.as_str(), attempts = email.attempts, give_up, error = %failure.message, "email not sent");
            if give_up {
                report.failed += 1;
            } else {
                report.deferred += 1;
            }
        }
    }
    Ok(())
}

/// The local stand-in for the scheduled sender: sends what is due every `interval`.
pub async fn poll(state: AppState, interval: Duration) {
    tracing::info!(?interval, "sending queued emails");
    loop {
        // The database's circuit breaker logs an outage once; this loop stays quiet in it.
        if state.db().ready().await.is_err() {
            tokio::time::sleep(interval).await;
            continue;
        }
        match send_due(&state, 50).await {
            Ok(report) if report != SendReport::default() => {
                tracing::info!(?report, "email outbox");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "could not send queued emails"),
        }
        tokio::time::sleep(interval).await;
    }
}

async fn lease(state: &AppState, limit: i64, timeout: Duration) -> AppResult<Vec<Due>> {
    let client = state.db().get().await?;
    // Each exchange is cut off after twice the timeout (see send_one).
    let lease = (timeout.as_secs_f64() * 2.0 * LEASE_BATCH as f64) + 30.0;
    let rows = client.cached_query(sql::LEASE, &[&limit, &lease]).await?;
    rows.iter()
        .map(|row| {
            let kind: &str = row.try_get("kind")?;
            Ok(Due {
                id: row.try_get("id")?,
                kind: EmailKind::parse(kind)
                    .ok_or_else(|| AppError::internal(format!("unknown email kind {kind}")))?,
                recipient: row.try_get("recipient")?,
                data: row.try_get("data")?,
                attempts: row.try_get("attempts")?,
            })
        })
        .collect()
}

fn transport(
    config: &EmailConfig,
    host: &str,
    password: &str,
) -> AppResult<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match config.smtp_tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
            .map_err(|e| AppError::internal(format!("SMTP_HOST: {e}")))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
            .map_err(|e| AppError::internal(format!("SMTP_HOST: {e}")))?,
    };
    let mut builder = builder.port(config.smtp_port).timeout(Some(config.timeout));
    if let Some(user) = &config.smtp_user {
        builder = builder.credentials(Credentials::new(user.clone(), password.to_owned()));
    }
    Ok(builder.build())
}

struct Failure {
    message: String,
    /// Retrying cannot help (the address or the message is invalid).
    permanent: bool,
}

async fn send_one(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    config: &EmailConfig,
    email: &Due,
) -> Result<(), Failure> {
    let to: Mailbox = email.recipient.parse().map_err(|e| Failure {
        message: format!("bad recipient address: {e}"),
        permanent: true,
    })?;
    let rendered = templates::render(email.kind, &email.data, &config.app_url);
    // Without a content type a reader takes the body for ASCII, and a name like José breaks.
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(rendered.subject)
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .body(rendered.body)
        .map_err(|e| Failure {
            message: format!("message not built: {e}"),
            permanent: true,
        })?;
    // lettre's own timeout covers each SMTP command; this bounds the whole exchange.
    match tokio::time::timeout(config.timeout * 2, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        // Even a 5xx is retried: a 535 after a password rotation, or a relay's temporary
        // policy, must not drop the email; MAX_ATTEMPTS bounds it.
        Ok(Err(err)) => Err(Failure {
            permanent: false,
            message: err.to_string(),
        }),
        Err(_) => Err(Failure {
            message: "the SMTP server did not answer in time".into(),
            permanent: false,
        }),
    }
}

/// 30 s, 1 min, 2 min, ... up to an hour.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    Duration::from_secs((30 * 2u64.pow(exponent)).min(3600))
}

pub mod sql {
    crate::db::statements! {
        pub const MARK_SENT = "UPDATE email_outbox SET status = 'sent', sent_at = now(), last_error = NULL
            WHERE id = $1 AND attempts = $2";
        pub const RECORD_FAILURE = "UPDATE email_outbox
            SET status = CASE WHEN $2 THEN 'failed' ELSE 'pending' END,
            last_error = $3,
            next_attempt_at = now() + make_interval(secs => $4)
            WHERE id = $1 AND attempts = $5";
        pub const LEASE = "UPDATE email_outbox SET attempts = attempts + 1,
            next_attempt_at = now() + make_interval(secs => $2)
            WHERE id IN (SELECT id FROM email_outbox
            WHERE status = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at, id LIMIT $1
            FOR UPDATE SKIP LOCKED)
            RETURNING id, kind, recipient, data, attempts";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(8), Duration::from_secs(3600));
        assert_eq!(backoff(50), Duration::from_secs(3600));
    }

    #[test]
    fn an_email_is_given_up_after_about_two_days_of_failures() {
        let waited: Duration = (1..MAX_ATTEMPTS).map(backoff).sum();
        let hours = waited.as_secs_f64() / 3600.0;
        assert!((47.0..50.0).contains(&hours), "{hours} h");
    }
}
