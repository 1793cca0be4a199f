//! Access to the running stack: its addresses, a token minter using the simulator's keys, and
//! a direct database connection for checks the API does not expose.

use std::{path::PathBuf, sync::OnceLock};

use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use simulators::{keys::KeyRing, stack_auth::Issuer};

pub struct Stack {
    pub api: String,
    pub database_url: String,
    pub issuer: Issuer,
    pub http: reqwest::Client,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests through scripts/test, which starts the stack")
    })
}

pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let keys =
            KeyRing::load_or_create(&PathBuf::from(var("SIM_STATE_DIR"))).expect("simulator keys");
        Stack {
            api: var("API_URL"),
            database_url: var("DATABASE_URL"),
            issuer: Issuer::new(
                keys,
                &var("STACK_PROJECT_ID"),
                std::env::var("JWT_ISSUER").ok(),
            ),
            http: {
                shared::telemetry::install_crypto_provider();
                // No idle connections: each test has its own runtime, and a pooled connection
                // would outlive the runtime that opened it.
                reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .expect("client")
            },
        }
    })
}

/// A user nobody has seen yet: its subject and email.
pub struct NewUser {
    pub sub: String,
    pub email: String,
}

impl NewUser {
    pub fn new() -> Self {
        let sub = uuid::Uuid::new_v4().to_string();
        Self {
            email: format!("user-{}@example.test", &sub[..8]),
            sub,
        }
    }

    /// What the API would read from this user's token, for calling shared code directly.
    pub fn identity(&self) -> shared::users::Identity<'_> {
        shared::users::Identity {
            subject: &self.sub,
            email: Some(&self.email),
            name: None,
            email_verified: true,
        }
    }

    pub fn claims(&self) -> Value {
        stack().issuer.claims(&self.sub, &self.email, 600)
    }

    pub fn token(&self) -> String {
        self.token_with(|_| {})
    }

    /// A token signed with the issuer's ES256 key after `edit` changed its claims.
    pub fn token_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        Issuer::sign(&stack().issuer.keys.es256, &claims)
    }

    pub fn token_eddsa(&self) -> String {
        let key = stack()
            .issuer
            .keys
            .by_algorithm(Algorithm::EdDSA)
            .expect("EdDSA key");
        Issuer::sign(key, &self.claims())
    }
}

pub fn url(path: &str) -> String {
    format!("{}{path}", stack().api)
}

pub async fn get(path: &str, token: &str) -> reqwest::Response {
    stack()
        .http
        .get(url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers")
}

/// [`get`] asking with `If-None-Match: etag`: 304 while `etag` is current.
pub async fn get_if_none_match(path: &str, token: &str, etag: &str) -> reqwest::Response {
    get_with(path, token, "if-none-match", etag).await
}

/// When the admin's analytics in `figures` (`GET /admin/analytics`) were read.
pub fn generated_at(figures: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let at = figures["generated_at"].as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(at).expect("generated_at is RFC 3339")
}

/// [`get`] with a request header (`cache-control`, say).
pub async fn get_with(path: &str, token: &str, name: &str, value: &str) -> reqwest::Response {
    stack()
        .http
        .get(url(path))
        .bearer_auth(token)
        .header(name, value)
        .send()
        .await
        .expect("the API answers")
}

/// Sends `method path` as the token's user, with a JSON body when given.
pub async fn send(
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = stack().http.request(method, url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("the API answers")
}

pub async fn post(path: &str, token: &str, body: &Value) -> reqwest::Response {
    send(reqwest::Method::POST, path, token, Some(body)).await
}

pub async fn put(path: &str, token: &str, body: &Value) -> reqwest::Response {
    send(reqwest::Method::PUT, path, token, Some(body)).await
}

pub async fn delete(path: &str, token: &str) -> reqwest::Response {
    send(reqwest::Method::DELETE, path, token, None).await
}

/// The ElevenLabs simulator the stack talks to: its state, request log and fault scripts.
pub mod elevenlabs_sim {
    use serde_json::Value;

    use super::stack;

    pub fn url(path: &str) -> String {
        let base =
            std::env::var("ELEVENLABS_SIM_URL").expect("scripts/test sets ELEVENLABS_SIM_URL");
        format!("{base}{path}")
    }

    /// `GET /v1/...` with the stack's API key; None on 404.
    pub async fn get(path: &str) -> Option<Value> {
        let key =
            std::env::var("ELEVENLABS_API_KEY").expect("scripts/test sets ELEVENLABS_API_KEY");
        let response = stack()
            .http
            .get(url(path))
            .header("xi-api-key", key)
            .send()
            .await
            .expect("simulator answers");
        if response.status() == 404 {
            return None;
        }
        assert!(response.status().is_success(), "{}", response.status());
        Some(response.json().await.expect("json"))
    }

    pub async fn post(path: &str, body: &Value) -> Value {
        let response = stack()
            .http
            .post(url(path))
            .json(body)
            .send()
            .await
            .expect("simulator answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("json")
    }

    /// Queues scripted answers for the requests `rule` matches (see the simulator's faults.rs).
    pub async fn fault(rule: Value) {
        post("/dev/faults", &rule).await;
    }

    /// The requests the simulator received under `path_prefix`, oldest first.
    pub async fn requests(path_prefix: &str) -> Vec<Value> {
        let response = stack()
            .http
            .get(url("/dev/requests"))
            .query(&[("path_prefix", path_prefix)])
            .send()
            .await
            .expect("simulator answers");
        response.json().await.expect("json")
    }
}

/// Reads a JSON body, failing the test with the raw text when it is not JSON.
/// Every row of a list endpoint, walked `limit` at a time through its cursors; checks that
/// each page reports the same total and that the rows add up to it.
pub async fn every_page(path: &str, token: &str, limit: usize) -> Vec<Value> {
    let joiner = if path.contains('?') { '&' } else { '?' };
    let (mut rows, mut cursor, mut total) = (Vec::new(), None::<String>, None);
    loop {
        let mut page_path = format!("{path}{joiner}limit={limit}");
        if let Some(cursor) = &cursor {
            page_path.push_str(&format!("&cursor={cursor}"));
        }
        let page = json(get(&page_path, token).await).await;
        let data = page["data"].as_array().expect("a list answer");
        assert!(data.len() <= limit, "{page_path}: {} rows", data.len());
        rows.extend(data.iter().cloned());
        let this_total = page["pagination"]["total"].as_i64().expect("total");
        assert_eq!(*total.get_or_insert(this_total), this_total, "{page_path}");
        match page["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        rows.len() as i64,
        total.unwrap_or_default(),
        "{path}: rows and total"
    );
    rows
}

/// Calls `operation` of an AWS JSON service (moto locally) with the code's own client: what
/// the tests set up or inspect beyond what the code calls.
pub async fn aws(service: shared::aws::Service, operation: &'static str, input: Value) -> Value {
    shared::aws::Client::default()
        .json(service, operation, &input)
        .await
        .unwrap_or_else(|err| panic!("{}.{operation}: {err:?}", service.name()))
}

/// Every attribute of the queue at `url`, by name (`VisibilityTimeout`).
pub async fn queue_attributes(url: &str) -> std::collections::HashMap<String, String> {
    let input = json!({"QueueUrl": url, "AttributeNames": ["All"]});
    let answer = aws(shared::aws::Service::Sqs, "GetQueueAttributes", input).await;
    serde_json::from_value(answer["Attributes"].clone()).expect("queue attributes")
}

pub async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Asserts the design's error format and returns the code.
pub async fn error_code(response: reqwest::Response, status: u16) -> String {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    assert!(
        response.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body = json(response).await;
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        error["timestamp"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "{body}"
    );
    error["code"].as_str().expect("code is a string").to_owned()
}

pub async fn db() -> tokio_postgres::Client {
    connect(&stack().database_url).await
}

/// A connection to `url`, its driver running.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("database reachable");
    tokio::spawn(connection);
    client
}

/// Postgres itself, past the stack's PgBouncer.
pub fn direct_url() -> String {
    std::env::var("DATABASE_DIRECT_URL")
        .expect("DATABASE_DIRECT_URL is not set: run through scripts/test, which starts PgBouncer")
}

/// `url` with its database name replaced.
fn on_database(url: &str, database: &str) -> String {
    let mut url = reqwest::Url::parse(url).expect("a URL");
    url.set_path(database);
    url.to_string()
}

/// An empty database of a test's own on the stack's Postgres, made through `admin` (a
/// connection straight to Postgres); [`ScratchDatabase::drop`] removes it.
pub struct ScratchDatabase {
    pub admin: tokio_postgres::Client,
    pub name: String,
}

impl ScratchDatabase {
    /// A new database named `prefix` and a unique suffix.
    pub async fn create(prefix: &str) -> Self {
        let admin = connect(&direct_url()).await;
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a scratch database");
        Self { admin, name }
    }

    /// `url` (the pooler's or Postgres' own) leading to this database.
    pub fn url(&self, url: &str) -> String {
        on_database(url, &self.name)
    }

    /// One connection straight to Postgres on this database, migrated: its statement cache,
    /// plans and statistics are the ones a test reads (behind the pooler they would be those
    /// of whichever server connection it pairs).
    pub async fn migrated_connection(&self) -> deadpool_postgres::Client {
        let pool = shared::db::pool(&self.url(&direct_url()), 1).expect("pool");
        let mut client = pool.get().await.expect("a connection");
        shared::db::migrate(&mut client).await.expect("migrate");
        client
    }

    /// Drops the database, closing whatever is still connected to it.
    pub async fn drop(self) {
        self.admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .expect("drop the scratch database");
    }
}

/// `tables` as autovacuum keeps them: statistics taken, the visibility map set, the rows in
/// the indexes' entries (not in a pending list that every search would read whole).
pub async fn vacuumed(client: &tokio_postgres::Client, tables: &[&str]) {
    for table in tables {
        client
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await
            .expect("vacuum");
    }
}

/// The blocks of `table` and its indexes read so far on this database, `client`'s own reads
/// included: its session's statistics are flushed first. Two calls around a statement count
/// what it read, on a database no other session uses.
pub async fn blocks_read(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .expect("the session's statistics flushed");
    client
        .query_one(
            "SELECT heap_blks_hit + heap_blks_read + idx_blks_hit + idx_blks_read
             FROM pg_statio_user_tables WHERE relname = $1",
            &[&table],
        )
        .await
        .expect("the table's block counts")
        .get(0)
}

/// The pages `table` held when it was last vacuumed or analyzed.
pub async fn table_pages(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(
            "SELECT relpages::bigint FROM pg_class WHERE relname = $1",
            &[&table],
        )
        .await
        .expect("the table's size")
        .get(0)
}

/// A tenant of its own in a scratch database.
pub async fn new_tenant(client: &mut deadpool_postgres::Client) -> shared::tenant::TenantId {
    shared::users::provision(client, &NewUser::new().identity())
        .await
        .expect("the tenant")
        .tenant()
}

/// Applies one credit change through the product's ledger function, in its own transaction.
pub async fn apply_change(
    pool: &deadpool_postgres::Pool,
    tenant: shared::tenant::TenantId,
    kind: shared::credits::CreditKind,
    amount: i64,
    reference: String,
) -> shared::credits::Applied {
    let change = shared::credits::CreditChange {
        tenant,
        kind,
        amount,
        reference,
        description: "test change".into(),
        stripe_payment_id: None,
    };
    let mut client = pool.get().await.expect("conn");
    let tx = client.transaction().await.expect("tx");
    let applied = shared::credits::apply(&tx, &change).await.expect("apply");
    tx.commit().await.expect("commit");
    applied
}

/// A pool of the product's own kind; one per test, since connections belong to a test's runtime.
pub fn pool(size: usize) -> deadpool_postgres::Pool {
    shared::db::pool(&stack().database_url, size).expect("pool")
}

/// A tenant that exists (its first request made) with one agent of each kind.
pub struct Tenant {
    pub token: String,
    pub id: uuid::Uuid,
    /// ElevenLabs agent ids.
    pub call_agent: String,
    pub chat_agent: String,
}

impl Tenant {
    pub async fn new() -> Self {
        Self::of(&Account::new().await).await
    }

    /// `account` given an agent of each kind.
    pub async fn of(account: &Account) -> Self {
        let (token, id) = (account.token.clone(), account.id);
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let call_agent = format!("agent_call_{suffix}");
        let chat_agent = format!("agent_chat_{suffix}");
        let db = db().await;
        for (agent, kind) in [(&call_agent, "call"), (&chat_agent, "chat")] {
            db.execute(
                "INSERT INTO agents (user_id, elevenlabs_agent_id, name, type) VALUES ($1, $2, $3, $4)",
                &[&id, agent, &format!("{kind} agent"), &kind],
            )
            .await
            .expect("agent");
        }
        Self {
            token,
            id,
            call_agent,
            chat_agent,
        }
    }

    pub async fn credits(&self) -> i64 {
        json(get("/api/user/credits", &self.token).await).await["credits"]
            .as_i64()
            .expect("credits")
    }
}

/// A signed-in user with no agents yet (unlike [`Tenant`]).
pub struct Account {
    pub user: NewUser,
    pub token: String,
    pub id: uuid::Uuid,
}

impl Account {
    pub async fn new() -> Self {
        let user = NewUser::new();
        let token = user.token();
        let id = profile_id(&token).await;
        Self { user, token, id }
    }

    /// A new account with the admin role (set in the database, as an operator would).
    pub async fn admin() -> Self {
        let account = Self::new().await;
        db().await
            .execute(
                "UPDATE users SET role = 'admin' WHERE id = $1",
                &[&account.id],
            )
            .await
            .expect("make admin");
        account
    }

    /// The account's tenant id, as only the product can make one (from the verified identity).
    pub async fn tenant(&self, pool: &deadpool_postgres::Pool) -> shared::tenant::TenantId {
        self.user_row(pool).await.tenant()
    }

    async fn user_row(&self, pool: &deadpool_postgres::Pool) -> shared::users::User {
        let mut client = pool.get().await.expect("conn");
        shared::users::provision(&mut client, &self.user.identity())
            .await
            .expect("user")
    }

    /// Moves the balance to `credits` with an admin adjustment.
    pub async fn set_credits(&self, credits: i64) {
        let pool = pool(1);
        let user = self.user_row(&pool).await;
        if user.credits != credits {
            apply_change(
                &pool,
                user.tenant(),
                shared::credits::CreditKind::AdminAdjustment,
                credits - user.credits,
                format!("test-{}", uuid::Uuid::new_v4()),
            )
            .await;
        }
    }

    pub async fn credits(&self) -> i64 {
        json(get("/api/user/credits", &self.token).await).await["credits"]
            .as_i64()
            .expect("credits")
    }
}

pub fn webhook_secret() -> String {
    std::env::var("ELEVENLABS_WEBHOOK_SECRET").expect("scripts/test sets ELEVENLABS_WEBHOOK_SECRET")
}

/// Posts `body` to an ElevenLabs webhook route, signed as ElevenLabs signs.
pub async fn post_webhook(
    route: &str,
    body: &[u8],
    signature: Option<String>,
) -> reqwest::Response {
    let mut request = stack()
        .http
        .post(url(&format!("/webhooks/elevenlabs/{route}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("ElevenLabs-Signature", signature);
    }
    request.send().await.expect("the API answers")
}

pub fn sign_now(body: &[u8]) -> String {
    shared::webhooks::signature::sign(
        shared::webhooks::signature::ELEVENLABS,
        &webhook_secret(),
        chrono::Utc::now().timestamp(),
        body,
    )
}

pub async fn deliver(body: &Value) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).expect("json");
    post_webhook("call-completed", &bytes, Some(sign_now(&bytes))).await
}

/// Polls `check` until it returns Some, or fails the test after `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A call row by conversation id, once the processor has written it.
pub async fn call_row(conversation_id: &str) -> Option<tokio_postgres::Row> {
    db().await
        .query_opt(
            "SELECT * FROM calls WHERE elevenlabs_conversation_id = $1",
            &[&conversation_id],
        )
        .await
        .expect("query")
}

/// Our id of the agent ElevenLabs knows as `remote`.
pub async fn agent_id_of(remote: &str) -> uuid::Uuid {
    db().await
        .query_one(
            "SELECT id FROM agents WHERE elevenlabs_agent_id = $1",
            &[&remote],
        )
        .await
        .expect("agent")
        .get(0)
}

/// The id of the call stored for a conversation, as the API spells it.
pub async fn call_id(conversation_id: &str) -> String {
    let id: uuid::Uuid = call_row(conversation_id).await.expect("the call").get("id");
    id.to_string()
}

pub fn conversation_id() -> String {
    format!("conv_{}", uuid::Uuid::new_v4().simple())
}

/// A post_call_transcription event in ElevenLabs' documented shape.
pub fn transcription(agent: &str, conversation: &str, duration: i64, phone: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({
        "type": "post_call_transcription",
        "event_timestamp": now,
        "data": {
            "agent_id": agent, "conversation_id": conversation, "status": "done", "user_id": null,
            "transcript": [
                {"role": "agent", "message": "Hi, this is Ava from Acme. Is now a good time?", "time_in_call_secs": 0,
                 "tool_calls": null, "tool_results": null, "feedback": null},
                {"role": "user", "message": "Sure, what is the price?", "time_in_call_secs": 4},
                {"role": "agent", "message": "It starts at 49 dollars a month.", "time_in_call_secs": 9}
            ],
            "metadata": {
                "start_time_unix_secs": now - duration, "call_duration_secs": duration, "cost": 296,
                "termination_reason": "end_call tool was called.",
                "phone_call": {"type": "twilio", "direction": "outbound", "phone_number_id": "phnum_1",
                    "agent_number": "+15550100000", "external_number": phone, "call_sid": "CA123"}
            },
            "analysis": {
                "call_successful": "success", "transcript_summary": "Asked about pricing.",
                "evaluation_criteria_results": {},
                "data_collection_results": {
                    "intent_level": {"data_collection_id": "intent_level", "value": "high", "rationale": "asked price"},
                    "intent_score": {"data_collection_id": "intent_score", "value": 16, "rationale": "clear need"},
                    "urgency_score": {"data_collection_id": "urgency_score", "value": 12},
                    "budget_score": {"data_collection_id": "budget_score", "value": 14},
                    "fit_score": {"data_collection_id": "fit_score", "value": 17},
                    "engagement_score": {"data_collection_id": "engagement_score", "value": 15},
                    "cta_pricing_clicked": {"data_collection_id": "cta_pricing_clicked", "value": true}
                }
            },
            "conversation_initiation_client_data": {"dynamic_variables": {"customer_name": "Dana"}}
        }
    })
}

/// A text-only conversation's post_call_transcription (no phone call in its metadata), by
/// ElevenLabs' end user `user_id`, with the given dynamic variables and data-collection
/// results added to the scored analysis `transcription` carries.
pub fn chat_transcription(
    agent: &str,
    conversation: &str,
    user_id: Option<&str>,
    dynamic: Value,
    collected: Value,
) -> Value {
    let mut event = transcription(agent, conversation, 95, "");
    let data = &mut event["data"];
    data["user_id"] = user_id.map_or(Value::Null, Value::from);
    data["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("phone_call");
    data["metadata"]["text_only"] = Value::Bool(true);
    data["conversation_initiation_client_data"]["dynamic_variables"] = dynamic;
    let results = data["analysis"]["data_collection_results"]
        .as_object_mut()
        .expect("results");
    for (id, value) in collected.as_object().cloned().unwrap_or_default() {
        results.insert(
            id.clone(),
            serde_json::json!({"data_collection_id": id, "value": value}),
        );
    }
    event
}

/// The app state of the product itself, for calling the processor directly.
pub async fn app_state() -> shared::AppState {
    shared::AppState::from_env()
        .await
        .expect("state from the test environment")
}

/// A random valid US number, distinct enough between tests.
pub fn phone() -> String {
    format!("+1415555{:04}", rand_digits())
}

pub fn rand_digits() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32 % 10_000
}

/// The tenant's usage charges: (amount, reference).
pub async fn usage_rows(tenant: uuid::Uuid) -> Vec<(i64, String)> {
    db().await
        .query(
            "SELECT amount, reference FROM credit_transactions WHERE user_id = $1 AND type = 'usage'",
            &[&tenant],
        )
        .await
        .expect("ledger")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// How many distinct events of a conversation the processor has applied.
pub async fn processed_count(conversation: &str) -> i64 {
    db().await
        .query_one(
            "SELECT count(*) FROM processed_events WHERE conversation_id = $1",
            &[&conversation],
        )
        .await
        .expect("count")
        .get(0)
}

/// Returns once the processor has finished every event queued before the call, so a test can
/// assert that one of them changed nothing. The processor works the queue one batch at a time:
/// a second marker, sent once the first is processed, lands in a later batch than anything
/// queued before the first. The markers name no known agent, so they touch no tenant.
pub async fn queue_drained() {
    for _ in 0..2 {
        let marker = conversation_id();
        let event = transcription("agent_queue_marker", &marker, 1, "+14155550100");
        assert_eq!(deliver(&event).await.status(), 200, "the marker is queued");
        eventually(30, "the queue marker", || async {
            (processed_count(&marker).await == 1).then_some(())
        })
        .await;
    }
}

/// Returns once none of the user's queued emails waits to be sent: everything it was sent is
/// in the SMTP sink.
pub async fn outbox_sent(user: uuid::Uuid) {
    eventually(20, "the user's emails sent", || async {
        let pending: i64 = db()
            .await
            .query_one(
                "SELECT count(*) FROM email_outbox WHERE user_id = $1 AND status = 'pending'",
                &[&user],
            )
            .await
            .expect("count")
            .get(0);
        (pending == 0).then_some(())
    })
    .await;
}

/// `body` as the queue message ingest would have sent for it.
pub fn queued(body: &Value) -> String {
    use shared::aws::queue::{EventSource, QueuedEvent};
    let raw = serde_json::to_string(body).expect("json");
    serde_json::to_string(&QueuedEvent {
        version: 1,
        source: EventSource::Elevenlabs,
        route: "call-completed".into(),
        event_key: shared::webhooks::event_key(EventSource::Elevenlabs, raw.as_bytes()),
        received_at: chrono::Utc::now(),
        body: Some(raw),
        body_s3_key: None,
    })
    .expect("json")
}

/// Stripe: events built like Stripe's, signed by the official library, and the simulator.
pub mod stripe {
    use serde_json::{json, Value};

    use super::{stack, url};

    pub fn webhook_secret() -> String {
        std::env::var("STRIPE_WEBHOOK_SECRET").expect("scripts/test sets STRIPE_WEBHOOK_SECRET")
    }

    /// `Stripe-Signature` values made by stripe-python, one per payload (a v1 per secret).
    pub fn sign_with_stripe_library(payloads: &[(&str, &[&str], i64)]) -> Vec<String> {
        use std::io::Write;
        let python =
            std::env::var("STRIPE_SIGN_PYTHON").expect("scripts/test sets STRIPE_SIGN_PYTHON");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/stripe_sign.py");
        let requests: Vec<Value> = payloads
            .iter()
            .map(|(payload, secrets, timestamp)| {
                json!({"payload": payload, "secrets": secrets, "timestamp": timestamp})
            })
            .collect();
        let mut child = std::process::Command::new(python)
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(serde_json::to_string(&requests).expect("json").as_bytes())
            .expect("write");
        let output = child.wait_with_output().expect("signer output");
        assert!(output.status.success(), "the Stripe library signed");
        serde_json::from_slice(&output.stdout).expect("headers")
    }

    /// A Stripe event envelope around `object`, as compact JSON.
    pub fn event(kind: &str, object: Value) -> String {
        let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
        json!({
            "id": id, "object": "event", "api_version": "2026-09-30.endive",
            "created": chrono::Utc::now().timestamp(), "livemode": false, "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null}, "type": kind,
            "data": {"object": object}
        })
        .to_string()
    }

    /// A Checkout Session object for `purchase` (ids as our API returned them).
    pub fn session(
        session_id: &str,
        purchase: &str,
        tenant: &str,
        amount: i64,
        payment_status: &str,
    ) -> Value {
        json!({
            "id": session_id, "object": "checkout.session", "mode": "payment",
            "client_reference_id": purchase, "status": "complete",
            "payment_status": payment_status, "amount_total": amount, "amount_subtotal": amount,
            "currency": "usd", "payment_intent": format!("pi_{}", &session_id[3..]),
            "metadata": {"purchase_id": purchase, "tenant_id": tenant}
        })
    }

    pub fn charge(session_id: &str, purchase: &str, amount: i64, refunded: i64) -> Value {
        json!({
            "id": format!("ch_{}", &session_id[3..]), "object": "charge", "amount": amount,
            "amount_captured": amount, "amount_refunded": refunded, "refunded": refunded == amount,
            "currency": "usd", "payment_intent": format!("pi_{}", &session_id[3..]),
            "metadata": {"purchase_id": purchase}, "status": "succeeded", "paid": true
        })
    }

    pub async fn post(body: &str, signature: Option<&str>) -> reqwest::Response {
        let mut request = stack()
            .http
            .post(url("/billing/webhook/stripe"))
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        request.send().await.expect("the API answers")
    }

    /// Delivers `body` signed now with the current secret.
    pub async fn deliver(body: &str) -> reqwest::Response {
        let secret = webhook_secret();
        let now = chrono::Utc::now().timestamp();
        let header = sign_with_stripe_library(&[(body, &[secret.as_str()], now)]).remove(0);
        post(body, Some(&header)).await
    }

    pub mod sim {
        use serde_json::Value;

        use super::super::stack;

        pub fn url(path: &str) -> String {
            format!(
                "{}{path}",
                std::env::var("STRIPE_SIM_URL").expect("scripts/test sets STRIPE_SIM_URL")
            )
        }

        pub async fn post(path: &str, body: &Value) -> reqwest::Response {
            stack()
                .http
                .post(url(path))
                .json(body)
                .send()
                .await
                .expect("the Stripe simulator answers")
        }

        pub async fn get(path: &str) -> Value {
            stack()
                .http
                .get(url(path))
                .send()
                .await
                .expect("the Stripe simulator answers")
                .json()
                .await
                .expect("json")
        }
    }
}

/// The SMTP sink's Maildir (MAIL_SINK_DIR): what the API's email sender delivered.
pub mod mail {
    #[derive(Debug, Clone)]
    pub struct Mail {
        pub to: String,
        pub subject: String,
        pub content_type: String,
        pub body: String,
    }

    pub fn delivered_to(recipient: &str) -> Vec<Mail> {
        let dir = std::path::PathBuf::from(
            std::env::var("MAIL_SINK_DIR").expect("scripts/test sets MAIL_SINK_DIR"),
        )
        .join("new");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut mails: Vec<(std::time::SystemTime, Mail)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let text = std::fs::read_to_string(entry.path()).ok()?;
                let modified = entry.metadata().ok()?.modified().ok()?;
                Some((modified, parse(&text)))
            })
            .filter(|(_, mail)| mail.to.contains(recipient))
            .collect();
        mails.sort_by_key(|(at, _)| *at);
        mails.into_iter().map(|(_, mail)| mail).collect()
    }

    fn parse(text: &str) -> Mail {
        let text = text.replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let header = |name: &str| {
            head.lines()
                .find_map(|line| {
                    line.split_once(':')
                        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
                        .map(|(_, value)| value.trim().to_owned())
                })
                .unwrap_or_default()
        };
        Mail {
            to: header("To"),
            subject: header("Subject"),
            content_type: header("Content-Type"),
            body: body.to_owned(),
        }
    }
}

/// The id of the account a token provisions (its first request), naming the answer when there
/// is none.
async fn profile_id(token: &str) -> uuid::Uuid {
    let profile = json(get("/auth/profile", token).await).await;
    profile["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("/auth/profile answered no id: {profile}"))
}

/// The page's ETag and status, asked with `If-None-Match: etag`.
pub async fn poll(path: &str, token: &str, etag: Option<&str>) -> (u16, String) {
    let response = match etag {
        Some(etag) => get_if_none_match(path, token, etag).await,
        None => get(path, token).await,
    };
    let tag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    (response.status().as_u16(), tag)
}
