//! Billing benchmark, run by scripts/bench-billing against a stack of its own (the API, the
//! Stripe simulator it creates Checkout Sessions with, Postgres, moto):
//! a. `--purchases` POST /billing/purchase from `--users` users, `--clients` at a time: each is
//!    a purchase row, one Checkout request to the simulator and its answer;
//! b. a signed `checkout.session.completed` for each purchase POSTed to the Stripe webhook,
//!    `--clients` at a time (ingest: signature, SQS send), then the time until the
//!    processor has credited every one (events/s through SQS into Postgres);
//! c. every event delivered again: acknowledged, nothing credited twice (checked).

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use serde_json::{json, Value};
use tokio_postgres::NoTls;

// Shared by every bench target; this one does not use all of it.
#[allow(dead_code)]
mod support;

use support::{fail, ms, var, Api, BoxError, Latencies};

struct Options {
    purchases: usize,
    users: usize,
    clients: usize,
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        purchases: 1000,
        users: 50,
        clients: 8,
    };
    support::parse_counts(&mut [
        ("--purchases", &mut options.purchases),
        ("--users", &mut options.users),
        ("--clients", &mut options.clients),
    ])?;
    Ok(options)
}

struct Purchase {
    id: String,
    session: String,
    tenant: String,
    amount: i64,
}

impl Api {
    async fn purchase(&self, token: &str, tenant: &str) -> Result<Purchase, BoxError> {
        let response = self
            .http
            .post(format!("{}/billing/purchase", self.url))
            .bearer_auth(token)
            .json(&json!({"package_id": "starter"}))
            .send()
            .await?;
        if response.status() != 200 {
            return Err(format!("purchase: the API answered {}", response.status()).into());
        }
        let checkout: Value = response.json().await?;
        let text = |key: &str| checkout[key].as_str().map(str::to_owned).ok_or("field");
        Ok(Purchase {
            id: text("purchase_id")?,
            session: text("session_id")?,
            tenant: tenant.to_owned(),
            amount: 1_000,
        })
    }

    async fn deliver(&self, body: &str, secret: &str) -> Result<Duration, BoxError> {
        let signature = shared::webhooks::signature::sign(
            shared::webhooks::signature::STRIPE,
            secret,
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        let sent = Instant::now();
        let response = self
            .http
            .post(format!("{}/billing/webhook/stripe", self.url))
            .header("content-type", "application/json")
            .header("Stripe-Signature", signature)
            .body(body.to_owned())
            .send()
            .await?;
        if response.status() != 200 {
            return Err(format!("webhook: the API answered {}", response.status()).into());
        }
        Ok(sent.elapsed())
    }
}

fn completed_event(purchase: &Purchase) -> String {
    json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()), "object": "event",
        "api_version": "2026-09-30.endive", "created": chrono::Utc::now().timestamp(),
        "livemode": false, "pending_webhooks": 1, "type": "checkout.session.completed",
        "data": {"object": {
            "id": purchase.session, "object": "checkout.session", "mode": "payment",
            "client_reference_id": purchase.id, "status": "complete", "payment_status": "paid",
            "amount_total": purchase.amount, "currency": "usd",
            "payment_intent": format!("pi_{}", &purchase.session[3..]),
            "metadata": {"purchase_id": purchase.id, "tenant_id": purchase.tenant}
        }}
    })
    .to_string()
}

async fn paid_count(db: &tokio_postgres::Client) -> Result<i64, BoxError> {
    Ok(db
        .query_one("SELECT count(*) FROM purchases WHERE status = 'paid'", &[])
        .await?
        .get(0))
}

async fn run() -> Result<(), BoxError> {
    let options = options()?;
    let api = Api::new()?;
    let (db, connection) = tokio_postgres::connect(&var("DATABASE_URL")?, NoTls).await?;
    tokio::spawn(connection);
    let secret = var("STRIPE_WEBHOOK_SECRET")?;
    let mut users = Vec::new();
    for _ in 0..options.users {
        users.push(api.sign_in().await?);
    }

    let started = Instant::now();
    let results = stream::iter(0..options.purchases)
        .map(|i| {
            let (token, tenant) = &users[i % users.len()];
            let api = &api;
            async move {
                let sent = Instant::now();
                let purchase = api.purchase(token, tenant).await?;
                Ok::<_, BoxError>((purchase, sent.elapsed()))
            }
        })
        .buffer_unordered(options.clients)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let (purchases, times): (Vec<Purchase>, Vec<Duration>) = results.into_iter().unzip();
    let checkout = Latencies::new(started, times);

    let events: Vec<String> = purchases.iter().map(completed_event).collect();
    let paid_before = paid_count(&db).await?;
    let started = Instant::now();
    let times = stream::iter(&events)
        .map(|body| api.deliver(body, &secret))
        .buffer_unordered(options.clients)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let ingest = Latencies::new(started, times);
    let ingested = started.elapsed();
    let target = paid_before + i64::try_from(purchases.len())?;
    while paid_count(&db).await? < target {
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the processor did not credit every purchase within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed = started.elapsed();

    // Redeliveries: acknowledged, nothing credited twice.
    for body in &events {
        api.deliver(body, &secret).await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ledger: i64 = db
        .query_one(
            "SELECT count(*) FROM credit_transactions WHERE type = 'purchase'",
            &[],
        )
        .await?
        .get(0);
    if ledger != target {
        return Err(format!("{ledger} purchase entries for {target} purchases").into());
    }

    let n = purchases.len();
    support::print_table(&[
        (
            format!(
                "POST /billing/purchase ({n}, {} clients; incl. the Stripe simulator)",
                options.clients
            ),
            format!(
                "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0}/s",
                ms(checkout.p50),
                ms(checkout.p99),
                ms(checkout.max),
                checkout.rate
            ),
        ),
        (
            format!(
                "Stripe webhook ingest ({n} events, {} clients)",
                options.clients
            ),
            format!(
                "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                ms(ingest.p50),
                ms(ingest.p99),
                ms(ingest.max)
            ),
        ),
        (
            "events credited through SQS and the processor, from the first delivery".into(),
            format!(
                "{n} in {:.2} s = {:.0} events/s (all ingested after {:.2} s)",
                processed.as_secs_f64(),
                n as f64 / processed.as_secs_f64(),
                ingested.as_secs_f64()
            ),
        ),
        (
            "redeliveries of every event".into(),
            "acknowledged; 0 credited twice".into(),
        ),
    ]);
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        fail(&err);
    }
}
