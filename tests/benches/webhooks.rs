//! Webhook benchmark, run by scripts/bench-webhooks against a stack of its own:
//! a. processor throughput: distinct post_call_transcription events through
//!    `shared::webhooks::process::process_message` (what the SQS handler calls) into Postgres,
//!    as many at once as the pool has connections; next to it the same rows written with plain
//!    tokio-postgres (prepared statements, one transaction per event, same concurrency);
//! b. ingest latency: ingest's own time per request (the webhooks router in this process, less
//!    its AWS calls), its AWS calls alone straight to moto, signed webhooks POSTed to the running
//!    API by concurrent clients, and how long the local poller then takes to get all of them
//!    into Postgres.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::{stream, StreamExt};
use serde_json::{json, Value};
use shared::{
    aws::queue::{EventSource, QueuedEvent},
    webhooks::{event_key, process::process_message, Outcome},
};
use simulators::elevenlabs::{transcription_event, CallParams, Outcome as SimOutcome};
use tokio_postgres::{NoTls, Statement};
use uuid::Uuid;

// Shared by every bench target; this one does not use all of it.
#[allow(dead_code)]
mod support;

// Shared with tests/it, which checks the AWS calls of one webhook the same way.
#[path = "support/aws_calls.rs"]
mod aws_calls;

use aws_calls::AwsCalls;
use support::{cpu_time, fail, print_table, var, BoxError, Latencies};

struct Options {
    events: usize,
    rounds: usize,
    tenants: usize,
    requests: usize,
    clients: usize,
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        events: 2000,
        rounds: 3,
        tenants: 8,
        requests: 2000,
        clients: 16,
    };
    support::parse_counts(&mut [
        ("--events", &mut options.events),
        ("--rounds", &mut options.rounds),
        ("--tenants", &mut options.tenants),
        ("--requests", &mut options.requests),
        ("--clients", &mut options.clients),
    ])?;
    Ok(options)
}

// The processor and ingest run here as their Lambdas run them: on one thread.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(err) = run().await {
        fail(&err);
    }
}

async fn run() -> Result<(), BoxError> {
    let options = options()?;
    let state = shared::AppState::from_env().await?;
    let database_url = var("DATABASE_URL")?;
    let concurrency = state.config().database.pool_size;
    let db = connect(&database_url).await?;
    let tenants = create_tenants(&db, options.tenants).await?;
    let mut rows = Vec::new();

    warm_up_processor(&state, &tenants, concurrency).await?;
    // Rounds alternate the processor and the limit, so a machine whose load changes during
    // the run moves both; the ratio is the median round's.
    let mut ratios = Vec::new();
    for round in 1..=options.rounds {
        let events = simulated_events(&tenants, options.events);
        let processor = processor_rate(&state, &events, concurrency).await?;
        let raw = raw_rate(&database_url, &tenants, &events, concurrency).await?;
        rows.push((
            format!(
                "round {round}: processor (`process_message`) into Postgres: {} events, {} tenants, concurrency {concurrency} (the pool size) / the same rows with plain tokio-postgres (prepared, one transaction per event), concurrency {concurrency}; client CPU per event in this process",
                options.events, options.tenants
            ),
            format!(
                "{:.0} / {:.0} events/s = {:.0} %; CPU {} / {} per event",
                processor.per_second,
                raw.per_second,
                100.0 * processor.per_second / raw.per_second,
                processor.cpu_per_event(),
                raw.cpu_per_event(),
            ),
        ));
        ratios.push(processor.per_second / raw.per_second);
    }
    ratios.sort_by(f64::total_cmp);
    if let Some(median) = ratios.get(ratios.len() / 2) {
        rows.push((
            format!(
                "processor / plain INSERTs, median of {} rounds",
                ratios.len()
            ),
            format!("{:.0} %", 100.0 * median),
        ));
    }
    if std::env::var_os("BENCH_PROCESSOR_ONLY").is_some() {
        print_table(&rows);
        return Ok(());
    }

    let ingest_tenants = create_tenants(&db, options.tenants).await?;
    let in_process = ingest_in_process(&ingest_tenants, options.requests).await?;
    rows.push((
        format!(
            "ingest's own time: the webhooks router (`shared::http::app`) in process, {} signed events one at a time, less the AWS calls each made ({})",
            options.requests,
            in_process.calls_per_request()
        ),
        micros(&in_process.own),
    ));
    rows.push((
        "the same requests whole, with their AWS calls".into(),
        micros(&in_process.whole),
    ));
    for clients in [1, options.clients] {
        let sqs = moto_baseline(&state, options.requests, clients).await?;
        rows.push((
            format!(
                "the SQS send alone straight to moto, {} times, {clients} concurrent",
                options.requests
            ),
            sqs.figure("requests"),
        ));
    }
    state
        .aws()
        .json::<serde_json::Value>(
            shared::aws::Service::Sqs,
            "PurgeQueue",
            &serde_json::json!({"QueueUrl": var("WEBHOOK_DLQ_URL")?}),
        )
        .await?;
    let (ingest_started, ingest) =
        ingest(&ingest_tenants, options.requests, options.clients).await?;
    rows.push((
        format!(
            "ingest: POST /webhooks/elevenlabs/call-completed, {} signed events, {} concurrent clients",
            options.requests, options.clients
        ),
        ingest.figure("requests"),
    ));
    let drained = drained_after(&db, &ingest_tenants, options.requests, ingest_started).await?;
    rows.push((
        "ingest start -> every event in Postgres (SQS in moto, the local poller)".into(),
        match drained {
            Some(took) => format!(
                "{:.1} s ({:.0} events/s end to end)",
                took.as_secs_f64(),
                options.requests as f64 / took.as_secs_f64()
            ),
            None => "not drained within 5 minutes".into(),
        },
    ));
    print_table(&rows);
    Ok(())
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, BoxError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

struct Tenant {
    id: Uuid,
    agent_id: Uuid,
    elevenlabs_agent: String,
}

async fn create_tenants(
    db: &tokio_postgres::Client,
    count: usize,
) -> Result<Vec<Tenant>, BoxError> {
    let mut tenants = Vec::with_capacity(count);
    for _ in 0..count {
        let suffix = Uuid::new_v4().simple().to_string();
        let id: Uuid = db
            .query_one(
                "INSERT INTO users (auth_subject, email, credits) VALUES ($1, $2, 1000000) RETURNING id",
                &[&format!("bench-{suffix}"), &format!("bench-{}@example.test", &suffix[..8])],
            )
            .await?
            .get(0);
        let elevenlabs_agent = format!("agent_bench_{}", &suffix[..12]);
        let agent_id: Uuid = db
            .query_one(
                "INSERT INTO agents (user_id, elevenlabs_agent_id, name, type) VALUES ($1, $2, 'bench', 'call') RETURNING id",
                &[&id, &elevenlabs_agent],
            )
            .await?
            .get(0);
        tenants.push(Tenant {
            id,
            agent_id,
            elevenlabs_agent,
        });
    }
    Ok(tenants)
}

/// Realistic calls (the ElevenLabs simulator's), round-robin over the tenants.
fn simulated_events(tenants: &[Tenant], count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let tenant = &tenants[i % tenants.len()];
            let duration = 20 + i64::try_from(i % 600).unwrap_or(0);
            transcription_event(&CallParams::new(
                tenant.elevenlabs_agent.clone(),
                SimOutcome::Success,
                duration,
            ))
        })
        .collect()
}

/// The queue message ingest would send for `event`.
fn queued(event: &Value) -> Result<String, BoxError> {
    let raw = serde_json::to_string(event)?;
    Ok(serde_json::to_string(&QueuedEvent {
        version: 1,
        source: EventSource::Elevenlabs,
        route: "call-completed".into(),
        event_key: event_key(EventSource::Elevenlabs, raw.as_bytes()),
        received_at: chrono::Utc::now(),
        body: Some(raw),
        body_s3_key: None,
    })?)
}

/// Opens the pool's connections before anything is timed.
async fn warm_up_processor(
    state: &shared::AppState,
    tenants: &[Tenant],
    concurrency: usize,
) -> Result<(), BoxError> {
    let events = simulated_events(tenants, concurrency * 2);
    processor_rate(state, &events, concurrency).await?;
    Ok(())
}

/// How fast events were written, and what this process spent on them.
struct Rate {
    per_second: f64,
    cpu: Duration,
    events: usize,
}

impl Rate {
    fn measure(events: usize, started: Instant, cpu_before: Duration) -> Result<Self, BoxError> {
        Ok(Self {
            per_second: events as f64 / started.elapsed().as_secs_f64(),
            cpu: cpu_time("self")?.saturating_sub(cpu_before),
            events,
        })
    }

    fn cpu_per_event(&self) -> String {
        format!(
            "{:.2} ms",
            self.cpu.as_secs_f64() * 1000.0 / self.events as f64
        )
    }
}

/// Events per second through the processor.
async fn processor_rate(
    state: &shared::AppState,
    events: &[Value],
    concurrency: usize,
) -> Result<Rate, BoxError> {
    let messages = events.iter().map(queued).collect::<Result<Vec<_>, _>>()?;
    let cpu_before = cpu_time("self")?;
    let started = Instant::now();
    let outcomes: Vec<_> = stream::iter(&messages)
        .map(|message| process_message(state, message))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let rate = Rate::measure(events.len(), started, cpu_before)?;
    for outcome in outcomes {
        let outcome = outcome?;
        if outcome != Outcome::Applied {
            return Err(format!("an event was not applied: {outcome:?}").into());
        }
    }
    Ok(rate)
}

/// What the plain INSERTs write for one event, taken from the same simulated payloads.
struct RawEvent {
    tenant: usize,
    event_key: String,
    conversation_id: String,
    phone: String,
    duration: i64,
    started_at: chrono::DateTime<chrono::Utc>,
    content: String,
    segments: Value,
    analysis: Value,
    metadata: Value,
}

fn raw_event(tenant: usize, event: &Value) -> RawEvent {
    let data = &event["data"];
    let segments: Vec<Value> = data["transcript"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|t| json!({"speaker": t["role"], "text": t["message"], "timestamp": t["time_in_call_secs"]}))
        .collect();
    let content = segments
        .iter()
        .map(|s| format!("{}: {}", s["speaker"], s["text"]))
        .collect::<Vec<_>>()
        .join("\n");
    let metadata = &data["metadata"];
    let start = metadata["start_time_unix_secs"].as_i64().unwrap_or(0);
    RawEvent {
        tenant,
        event_key: format!("raw:{}", Uuid::new_v4().simple()),
        conversation_id: format!("raw_{}", Uuid::new_v4().simple()),
        phone: metadata["phone_call"]["external_number"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        duration: metadata["call_duration_secs"].as_i64().unwrap_or(0),
        started_at: chrono::DateTime::from_timestamp(start, 0).unwrap_or_default(),
        content,
        segments: Value::Array(segments),
        analysis: data["analysis"].clone(),
        metadata: json!({"termination_reason": metadata["termination_reason"], "provider": "twilio"}),
    }
}

/// Events per second written by plain statements: `concurrency` connections, each taking the
/// next event until none is left.
async fn raw_rate(
    url: &str,
    tenants: &[Tenant],
    events: &[Value],
    concurrency: usize,
) -> Result<Rate, BoxError> {
    let ids: Arc<Vec<(Uuid, Uuid)>> =
        Arc::new(tenants.iter().map(|t| (t.id, t.agent_id)).collect());
    let events: Arc<Vec<RawEvent>> = Arc::new(
        events
            .iter()
            .enumerate()
            .map(|(i, e)| raw_event(i % tenants.len(), e))
            .collect(),
    );
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = connect(url).await?;
        let statements = Statements::prepare(&client).await?;
        workers.push((client, statements));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_time("self")?;
    let started = Instant::now();
    let handles: Vec<_> = workers
        .into_iter()
        .map(|(client, statements)| {
            let (events, ids, next) = (events.clone(), ids.clone(), next.clone());
            tokio::spawn(async move {
                let mut client = client;
                while let Some(event) = events.get(next.fetch_add(1, Ordering::Relaxed)) {
                    write_raw(&mut client, &statements, event, ids[event.tenant]).await?;
                }
                Ok::<_, tokio_postgres::Error>(())
            })
        })
        .collect();
    for handle in handles {
        handle.await??;
    }
    Rate::measure(events.len(), started, cpu_before)
}

struct Statements {
    processed: Statement,
    charge: Statement,
    lead: Statement,
    call: Statement,
    ledger: Statement,
    transcript: Statement,
    analytics: Statement,
    rollup: Statement,
    lead_rollup: Statement,
}

impl Statements {
    async fn prepare(client: &tokio_postgres::Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            processed: client.prepare(
                "INSERT INTO processed_events (event_key, source, event_type, conversation_id, outcome)
                 VALUES ($1, 'elevenlabs', 'post_call_transcription', $2, 'applied')",
            ).await?,
            // Takes the tenant's row lock first, as the processor does, and marks its dashboards
            // stale as the processor does.
            charge: client.prepare(
                "UPDATE users SET credits = credits - $2, stats_version = stats_version + 1, updated_at = now()
                 WHERE id = $1 RETURNING credits",
            ).await?,
            lead: client.prepare(
                "INSERT INTO leads (user_id, phone_number, name, agent_id, total_score, lead_status_tag,
                     interaction_count, last_contact_at)
                 VALUES ($1, $2, 'Bench', $3, 74, 'warm', 1, $4)
                 ON CONFLICT (user_id, phone_number) WHERE phone_number IS NOT NULL DO UPDATE SET
                     interaction_count = leads.interaction_count + 1,
                     last_contact_at = GREATEST(leads.last_contact_at, EXCLUDED.last_contact_at),
                     updated_at = now()
                 RETURNING id",
            ).await?,
            call: client.prepare(
                "INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, type, direction, status,
                     phone_number, agent_number, lead_id, started_at, duration_seconds, credits_charged,
                     call_successful, summary, termination_reason, metadata, completed_at)
                 VALUES ($1, $2, $3, 'call', 'outbound', 'completed', $4, '+15550100000', $5, $6, $7, $8,
                     $9, $10, 'end_call tool was called.', $11, $12)
                 RETURNING id",
            ).await?,
            ledger: client.prepare(
                "INSERT INTO credit_transactions (user_id, type, amount, balance_after, description, reference)
                 VALUES ($1, 'usage', $2, $3, $4, $5)",
            ).await?,
            transcript: client.prepare(
                "INSERT INTO transcripts (call_id, content, speaker_segments) VALUES ($1, $2, $3)",
            ).await?,
            analytics: client.prepare(
                "INSERT INTO lead_analytics (call_id, intent_level, intent_score, urgency_score, budget_score,
                     fit_score, engagement_score, total_score, lead_status_tag, raw_analysis, analyzed_at, user_id)
                 VALUES ($1, 'high', 16, 12, 14, 17, 15, 74, 'warm', $2, now(), $3)",
            ).await?,
            rollup: client.prepare(
                "INSERT INTO daily_agent_stats (user_id, agent_id, day, calls, completed, successful,
                     duration_seconds, credits_used)
                 VALUES ($1, $2, $3, 1, 1, 1, $4, $5)
                 ON CONFLICT (user_id, agent_id, day) DO UPDATE SET
                     calls = daily_agent_stats.calls + 1, completed = daily_agent_stats.completed + 1,
                     successful = daily_agent_stats.successful + 1,
                     duration_seconds = daily_agent_stats.duration_seconds + EXCLUDED.duration_seconds,
                     credits_used = daily_agent_stats.credits_used + EXCLUDED.credits_used",
            ).await?,
            // The lead rollup's row; its update adds the score buckets element by element, which
            // plain SQL can only do this way.
            lead_rollup: client.prepare(shared::leads::rollup::sql::ADD_TO_DAY).await?,
        })
    }
}

async fn write_raw(
    client: &mut tokio_postgres::Client,
    s: &Statements,
    e: &RawEvent,
    (tenant, agent): (Uuid, Uuid),
) -> Result<(), tokio_postgres::Error> {
    let credits = (e.duration + 59) / 60;
    let tx = client.transaction().await?;
    tx.execute(&s.processed, &[&e.event_key, &e.conversation_id])
        .await?;
    let balance: i64 = tx.query_one(&s.charge, &[&tenant, &credits]).await?.get(0);
    let lead: Uuid = tx
        .query_one(&s.lead, &[&tenant, &e.phone, &agent, &e.started_at])
        .await?
        .get(0);
    let duration = i32::try_from(e.duration).unwrap_or(i32::MAX);
    let summary = e.analysis["transcript_summary"].as_str();
    let call: Uuid = tx
        .query_one(
            &s.call,
            &[
                &tenant,
                &agent,
                &e.conversation_id,
                &e.phone,
                &lead,
                &e.started_at,
                &duration,
                &credits,
                &"success",
                &summary,
                &e.metadata,
                &(e.started_at + chrono::Duration::seconds(e.duration)),
            ],
        )
        .await?
        .get(0);
    tx.execute(
        &s.ledger,
        &[
            &tenant,
            &-credits,
            &balance,
            &"Call",
            &format!("elevenlabs:{}", e.conversation_id),
        ],
    )
    .await?;
    tx.execute(&s.transcript, &[&call, &e.content, &e.segments])
        .await?;
    tx.execute(&s.analytics, &[&call, &e.analysis, &tenant])
        .await?;
    tx.execute(
        &s.rollup,
        &[
            &tenant,
            &agent,
            &e.started_at.date_naive(),
            &e.duration,
            &credits,
        ],
    )
    .await?;
    // A 74, warm, pricing clicked: as `analytics` above.
    let mut buckets = [0_i32; 10];
    buckets[7] = 1;
    tx.execute(
        &s.lead_rollup,
        &[
            &tenant,
            &agent,
            &e.started_at.date_naive(),
            &1_i32,
            &1_i32,
            &74_i64,
            &0_i32,
            &1_i32,
            &0_i32,
            &buckets.as_slice(),
            &1_i32,
            &0_i32,
            &0_i32,
            &0_i32,
            &0_i32,
        ],
    )
    .await?;
    tx.commit().await
}

/// What ingest's one AWS call costs in moto alone: the queue send, with the API's own client.
/// Sent to the DLQ, which nothing consumes (purged once all are sent: SQS allows one purge a
/// minute).
async fn moto_baseline(
    state: &shared::AppState,
    count: usize,
    clients: usize,
) -> Result<Latencies, BoxError> {
    use shared::aws::queue;
    let aws = state.aws();
    let dlq = var("WEBHOOK_DLQ_URL")?;
    let event = serde_json::from_str::<QueuedEvent>(&queued(&json!({"type": "bench"}))?)?;
    let started = Instant::now();
    let latencies = stream::iter(0..count)
        .map(|_| async {
            let sent = Instant::now();
            queue::send(aws, &dlq, &event).await?;
            Ok::<_, BoxError>(sent.elapsed())
        })
        .buffer_unordered(clients)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Latencies::new(started, latencies))
}

/// Per-request times of ingest in process, and the AWS operations the timed requests made.
struct InProcess {
    own: Vec<Duration>,
    whole: Vec<Duration>,
    calls: std::collections::BTreeMap<String, usize>,
}

impl InProcess {
    /// "SQS.SendMessage 1.00 per request, …"
    fn calls_per_request(&self) -> String {
        let requests = self.whole.len().max(1) as f64;
        let calls: Vec<String> = self
            .calls
            .iter()
            .map(|(name, n)| format!("{name} {:.2}", *n as f64 / requests))
            .collect();
        format!("per request: {}", calls.join(", "))
    }
}

/// Ingest's own time per request: the router the webhook-ingest Lambda serves
/// (`shared::http::app`, the webhooks group) called in this process, one signed event at a
/// time, each request's time less the AWS operations it made, timed by the span `shared::aws`
/// opens around each (`aws_calls`). Its logs go to [`support::lambda_logs`]. The
/// events go to the DLQ, which nothing consumes; it is purged after the AWS baselines.
async fn ingest_in_process(tenants: &[Tenant], count: usize) -> Result<InProcess, BoxError> {
    use axum::{body::Body, http::Request};
    use tower::ServiceExt;
    use tracing::instrument::WithSubscriber;
    use tracing_subscriber::layer::SubscriberExt;
    const WARM_UP: usize = 20;
    let secret = var("ELEVENLABS_WEBHOOK_SECRET")?;
    let mut config = shared::Config::from_env()?;
    config.aws.webhook_queue_url = Some(var("WEBHOOK_DLQ_URL")?);
    let app = shared::http::app(
        shared::AppState::new(config).await?,
        &[shared::http::Group::Webhooks.served()],
    );
    let recorded = AwsCalls::default();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(support::lambda_logs())
            .with(recorded.layer()),
    );
    let mut timed = InProcess {
        own: Vec::with_capacity(count),
        whole: Vec::with_capacity(count),
        calls: Default::default(),
    };
    for (i, body) in simulated_bodies(tenants, WARM_UP + count)?
        .into_iter()
        .enumerate()
    {
        let signature = shared::webhooks::signature::sign(
            shared::webhooks::signature::ELEVENLABS,
            &secret,
            chrono::Utc::now().timestamp(),
            &body,
        );
        let request = Request::post("/webhooks/elevenlabs/call-completed")
            .header("content-type", "application/json")
            .header("ElevenLabs-Signature", signature)
            .body(Body::from(body))?;
        let app = app.clone();
        let started = Instant::now();
        let status = async move {
            let response = app.oneshot(request).await?;
            let status = response.status();
            axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            Ok::<_, BoxError>(status)
        }
        .with_subscriber(dispatch.clone())
        .await?;
        let took = started.elapsed();
        let made = recorded.take();
        if status != 200 {
            return Err(format!("the router answered {status}").into());
        }
        if i < WARM_UP {
            continue;
        }
        let aws: Duration = made.iter().map(|(_, took)| *took).sum();
        timed.own.push(took.saturating_sub(aws));
        timed.whole.push(took);
        for (name, _) in made {
            *timed.calls.entry(name).or_default() += 1;
        }
    }
    Ok(timed)
}

/// "p50 .. µs, p99 .. µs, max .. µs"
fn micros(latencies: &[Duration]) -> String {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = |q: f64| support::percentile(&sorted, q).as_secs_f64() * 1e6;
    format!(
        "p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        at(0.50),
        at(0.99),
        at(1.0)
    )
}

/// POSTs `count` distinct signed events with `clients` requests in flight at any time.
async fn ingest(
    tenants: &[Tenant],
    count: usize,
    clients: usize,
) -> Result<(Instant, Latencies), BoxError> {
    let url = format!("{}/webhooks/elevenlabs/call-completed", var("API_URL")?);
    let secret = var("ELEVENLABS_WEBHOOK_SECRET")?;
    shared::telemetry::install_crypto_provider();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    // Connections opened and the API's first requests served before anything is timed; the
    // warm-up events are of a tenant of their own, so they are not waited for afterwards.
    let warm_up = create_tenants(&connect(&var("DATABASE_URL")?).await?, 1).await?;
    post_all(
        &http,
        &url,
        &secret,
        simulated_bodies(&warm_up, clients * 2)?,
        clients,
    )
    .await?;
    let bodies = simulated_bodies(tenants, count)?;
    let started = Instant::now();
    let latencies = post_all(&http, &url, &secret, bodies, clients).await?;
    Ok((started, Latencies::new(started, latencies)))
}

fn simulated_bodies(tenants: &[Tenant], count: usize) -> Result<Vec<Vec<u8>>, BoxError> {
    Ok(simulated_events(tenants, count)
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<Vec<_>, _>>()?)
}

/// Each request's latency; any answer but 200 fails the bench.
async fn post_all(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    bodies: Vec<Vec<u8>>,
    clients: usize,
) -> Result<Vec<Duration>, BoxError> {
    stream::iter(bodies)
        .map(|body| async move {
            let signature = shared::webhooks::signature::sign(
                shared::webhooks::signature::ELEVENLABS,
                secret,
                chrono::Utc::now().timestamp(),
                &body,
            );
            let sent = Instant::now();
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .header("ElevenLabs-Signature", signature)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            response.bytes().await?;
            let took = sent.elapsed();
            if status != 200 {
                return Err(format!("the API answered {status}").into());
            }
            Ok::<_, BoxError>(took)
        })
        .buffer_unordered(clients)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// How long after `started` every ingested event of `tenants` had its call in Postgres.
async fn drained_after(
    db: &tokio_postgres::Client,
    tenants: &[Tenant],
    expected: usize,
    started: Instant,
) -> Result<Option<Duration>, BoxError> {
    let ids: Vec<Uuid> = tenants.iter().map(|t| t.id).collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let calls: i64 = db
            .query_one(
                "SELECT count(*) FROM calls WHERE user_id = ANY($1) AND status = 'completed'",
                &[&ids],
            )
            .await?
            .get(0);
        if usize::try_from(calls).unwrap_or(0) >= expected {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(None)
}
