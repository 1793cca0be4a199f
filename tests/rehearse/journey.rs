//! The journey through the deployed shape (scripts/rehearse): a tenant and an admin touch every
//! function and every AWS permission the template grants, through the rehearsal's gateway,
//! with a browser's CORS preflight before every credentialed request. Ignored unless run by
//! scripts/rehearse (`--ignored`), which points API_URL at the gateway; the support module of
//! tests/it is reused as is (tokens, signed webhooks, the simulators, the SMTP sink).

#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

mod redrive;

use base64::{engine::general_purpose::STANDARD, Engine};
use reqwest::{header::HeaderMap, Method, Response};
use serde_json::{json, Value};
use support::{
    call_row, conversation_id, deliver, elevenlabs_sim, eventually, generated_at, json, mail,
    stack, stripe, transcription, url, Account,
};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("scripts/rehearse sets {name}"))
}

fn origin() -> String {
    var("FRONTEND_URL")
}

/// Requests as the frontend's browser makes them: with its Origin, a preflight before any
/// request that is not simple, and CORS checked on both answers as a browser checks them.
struct Browser {
    token: Option<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v| v.to_str().expect("ascii"))
        .unwrap_or("")
}

fn listed(list: &str, item: &str) -> bool {
    list.split(',')
        .any(|entry| entry.trim().eq_ignore_ascii_case(item))
}

impl Browser {
    fn signed_in(token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
        }
    }

    async fn preflight(&self, method: &Method, path: &str, headers: &[&str]) {
        let mut request = stack()
            .http
            .request(Method::OPTIONS, url(path))
            .header("origin", origin())
            .header("access-control-request-method", method.as_str());
        if !headers.is_empty() {
            request = request.header("access-control-request-headers", headers.join(","));
        }
        let answer = request.send().await.expect("the gateway answers");
        let status = answer.status();
        let got = answer.headers().clone();
        let body = answer.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "preflight of {method} {path}: {status} {body}"
        );
        assert_eq!(
            header(&got, "access-control-allow-origin"),
            origin(),
            "preflight of {method} {path}"
        );
        assert_eq!(
            header(&got, "access-control-allow-credentials"),
            "true",
            "preflight of {method} {path}"
        );
        let simple = matches!(*method, Method::GET | Method::HEAD | Method::POST);
        assert!(
            simple
                || listed(
                    header(&got, "access-control-allow-methods"),
                    method.as_str()
                ),
            "preflight of {method} {path} does not allow the method: {got:?}"
        );
        for name in headers {
            assert!(
                listed(header(&got, "access-control-allow-headers"), name),
                "preflight of {method} {path} does not allow {name}: {got:?}"
            );
        }
    }

    /// `method path` with a body of `content_type` and extra headers, preflighted when a
    /// browser would.
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut unsafe_headers: Vec<&str> = Vec::new();
        if self.token.is_some() {
            unsafe_headers.push("authorization");
        }
        if let Some((content_type, _)) = &body {
            let essence = content_type.split(';').next().unwrap_or("").trim();
            if !matches!(
                essence,
                "multipart/form-data" | "text/plain" | "application/x-www-form-urlencoded"
            ) {
                unsafe_headers.push("content-type");
            }
        }
        unsafe_headers.extend(extra.iter().map(|(name, _)| *name));
        let simple = matches!(method, Method::GET | Method::HEAD | Method::POST);
        if !unsafe_headers.is_empty() || !simple {
            self.preflight(&method, path, &unsafe_headers).await;
        }
        let mut request = stack()
            .http
            .request(method.clone(), url(path))
            .header("origin", origin());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let answer = request.send().await.expect("the gateway answers");
        assert_eq!(
            header(answer.headers(), "access-control-allow-origin"),
            origin(),
            "{method} {path} answered {} without CORS for the frontend",
            answer.status()
        );
        assert_eq!(
            header(answer.headers(), "access-control-allow-credentials"),
            "true"
        );
        answer
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let body = body.map(|b| ("application/json", serde_json::to_vec(b).expect("json")));
        self.send_raw(method, path, body, &[]).await
    }

    async fn get(&self, path: &str) -> Value {
        let answer = self.send(Method::GET, path, None).await;
        expect(answer, 200, path).await
    }

    async fn post(&self, path: &str, body: &Value, status: u16) -> Value {
        let answer = self.send(Method::POST, path, Some(body)).await;
        expect(answer, status, path).await
    }
}

async fn expect(answer: Response, status: u16, what: &str) -> Value {
    let got = answer.status();
    let text = answer.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// What the rehearsal's control API (tests/rehearse/fixture.py) answers to `method path`.
async fn control(method: Method, path: &str) -> Value {
    let answer = stack()
        .http
        .request(method, format!("{}{path}", var("REHEARSAL_CONTROL_URL")))
        .send()
        .await
        .expect("the rehearsal's control API answers");
    expect(answer, 200, path).await
}

/// Fires one of the template's schedules now and returns what the function answered.
async fn fire_schedule(name: &str) -> Value {
    control(Method::POST, &format!("/schedules/{name}")).await
}

const BOUNDARY: &str = "----rehearsal-boundary-3b9e";

fn xlsx_upload(rows: &[[&str; 3]]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *cell).expect("cell");
        }
    }
    let file = workbook.save_to_buffer().expect("xlsx");
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"leads.xlsx\"\r\n\
         Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// What following Stack Auth's verification link does: the account's email becomes verified
/// (outbound calls need it), through Stack Auth's server API.
async fn verify_email_at_stack_auth(token: &str) {
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("claims");
    let subject = claims["sub"].as_str().expect("sub");
    let answer = stack()
        .http
        .patch(format!("{}/api/v1/users/{subject}", var("STACK_SIM_URL")))
        .header("x-stack-project-id", var("STACK_PROJECT_ID"))
        .header("x-stack-access-type", "server")
        .header("x-stack-secret-server-key", var("STACK_SECRET_SERVER_KEY"))
        .json(&json!({"primary_email_verified": true}))
        .send()
        .await
        .expect("the Stack Auth simulator answers");
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );
}

async fn completed(conversation: &str) -> tokio_postgres::Row {
    eventually(30, "the call completed by its webhook", || async {
        call_row(conversation)
            .await
            .filter(|row| row.get::<_, String>("status") == "completed")
    })
    .await
}

#[tokio::test]
#[ignore = "run by scripts/rehearse against the rehearsal's gateway"]
async fn a_tenant_and_an_admin_through_every_function() {
    // api-auth: sign up and log in through Stack Auth (the app secret's server key).
    let anonymous = Browser { token: None };
    let email = format!(
        "journey-{}@example.test",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let password = "a long journey password";
    let registered = anonymous
        .post(
            "/auth/register",
            &json!({"email": email, "password": password, "name": "Joan Journey"}),
            201,
        )
        .await;
    assert_eq!(registered["user"]["credits"], 15);
    let first_token = registered["access_token"].as_str().expect("access token");
    verify_email_at_stack_auth(first_token).await;
    let logged_in = anonymous
        .post(
            "/auth/login",
            &json!({"email": email, "password": password}),
            200,
        )
        .await;
    let token = logged_in["access_token"].as_str().expect("access token");
    let me = Browser::signed_in(token);
    let profile = me.get("/auth/profile").await;
    let tenant_id = profile["id"].as_str().expect("id").to_owned();
    let renamed = me
        .send(
            Method::PUT,
            "/auth/profile",
            Some(&json!({"name": "Joan J."})),
        )
        .await;
    expect(renamed, 200, "PUT /auth/profile").await;

    // api-agents: a call agent and a chat agent (the alias), at ElevenLabs (the app secret).
    let call_agent = me
        .post(
            "/api/agents",
            &json!({"name": "Caller", "type": "call", "system_prompt": "Call politely."}),
            201,
        )
        .await;
    let chat_agent = me
        .post("/agents", &json!({"name": "Chatter", "type": "chat"}), 201)
        .await;
    let remote_call_agent = call_agent["elevenlabs_agent_id"].as_str().expect("remote");
    let remote_chat_agent = chat_agent["elevenlabs_agent_id"].as_str().expect("remote");
    let agents = me.get("/api/agents").await;
    assert_eq!(agents["pagination"]["total"], 2, "{agents}");

    // api-contacts: an .xlsx through the gateway (a binary body, base64 in the event).
    let upload = me
        .send_raw(
            Method::POST,
            "/api/contacts/upload",
            Some((
                &format!("multipart/form-data; boundary={BOUNDARY}"),
                xlsx_upload(&[
                    ["Name", "Phone", "Company"],
                    ["Grace Hopper", "+1 415 555 0142", "Navy"],
                    ["Alan Turing", "(415) 555-0143", "Bletchley"],
                ]),
            )),
            &[],
        )
        .await;
    let report = expect(upload, 200, "upload").await;
    assert_eq!(report["created"], 2, "{report}");
    let contacts = me.get("/api/contacts?search=Grace").await;
    let grace = contacts["data"][0]["id"]
        .as_str()
        .expect("contact")
        .to_owned();
    let all = me.get("/api/contacts").await;
    let contact_ids: Vec<Value> = all["data"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| c["id"].clone())
        .collect();

    // api-calls: an outbound call and a batch, placed at ElevenLabs.
    let started = me
        .post(
            "/api/calls/outbound",
            &json!({"agent_id": call_agent["id"], "contact_id": grace}),
            201,
        )
        .await;
    let outbound = started["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    let batch = me
        .post(
            "/api/calls/batch",
            &json!({"agent_id": call_agent["id"], "contact_ids": contact_ids, "name": "Journey"}),
            201,
        )
        .await;
    assert_eq!(batch["recipients"], 2);

    // webhook-ingest -> SQS -> webhook-processor: the simulator finishes the outbound call
    // with its signed webhooks; an inbound call arrives with an audio webhook big enough to be
    // parked in S3 (ingest's PutObject, the processor's GetObject and its recordings/ PutObject);
    // an initiation failure.
    elevenlabs_sim::post(
        "/dev/simulate-call",
        &json!({"agent_id": remote_call_agent, "conversation_id": outbound, "duration_secs": 95}),
    )
    .await;
    completed(&outbound).await;
    let inbound = conversation_id();
    let mp3 = [b"ID3".as_slice(), &[9_u8; 300 * 1024]].concat();
    let audio = json!({"type": "post_call_audio", "event_timestamp": chrono::Utc::now().timestamp(),
        "data": {"agent_id": remote_call_agent, "conversation_id": inbound, "full_audio": STANDARD.encode(&mp3)}});
    assert_eq!(deliver(&audio).await.status(), 200);
    let event = transcription(remote_call_agent, &inbound, 70, "+14155550199");
    assert_eq!(deliver(&event).await.status(), 200);
    let failed = conversation_id();
    let failure = json!({"type": "call_initiation_failure", "event_timestamp": chrono::Utc::now().timestamp(),
        "data": {"agent_id": remote_call_agent, "conversation_id": failed, "failure_reason": "busy",
            "metadata": {"type": "twilio", "body": {"CallSid": "CA9", "CallStatus": "busy", "To": "+14155550143", "From": "+15550100000"}}}});
    assert_eq!(deliver(&failure).await.status(), 200);
    let chat = conversation_id();
    let mut chat_event = transcription(remote_chat_agent, &chat, 40, "");
    chat_event["data"]["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("phone_call");
    assert_eq!(deliver(&chat_event).await.status(), 200);
    let inbound_row = completed(&inbound).await;
    eventually(30, "the recording stored", || async {
        call_row(&inbound)
            .await
            .filter(|r| r.get::<_, Option<String>>("recording_key").is_some())
    })
    .await;
    eventually(30, "the failed call", || async {
        call_row(&failed)
            .await
            .filter(|r| r.get::<_, String>("status") == "failed")
    })
    .await;
    completed(&chat).await;

    // api-calls: calls, a transcript, the recording through its presigned URL (api-calls'
    // GetObject), leads, both dashboards and a 304, an export.
    let calls = me.get("/api/calls").await;
    assert!(
        calls["pagination"]["total"].as_i64().expect("total") >= 4,
        "{calls}"
    );
    let call_id: uuid::Uuid = inbound_row.get("id");
    let call = me.get(&format!("/api/calls/{call_id}")).await;
    assert_eq!(call["status"], "completed");
    let transcript = me.get(&format!("/api/calls/{call_id}/transcript")).await;
    assert!(
        transcript.to_string().contains("what is the price"),
        "{transcript}"
    );
    let recording = me.get(&format!("/api/calls/{call_id}/recording")).await;
    let link = recording["recording_url"].as_str().expect("url");
    let audio_back = reqwest::get(link).await.expect("presigned URL answers");
    assert_eq!(audio_back.status(), 200, "the presigned recording URL");
    assert_eq!(
        audio_back.bytes().await.expect("bytes").as_ref(),
        mp3.as_slice()
    );
    let leads = me.get("/api/leads").await;
    let lead = leads["data"][0]["id"].as_str().expect("a lead").to_owned();
    me.get(&format!("/api/leads/{lead}")).await;
    let overview = me.send(Method::GET, "/api/dashboard/overview", None).await;
    assert_eq!(overview.status(), 200);
    let etag = header(overview.headers(), "etag").to_owned();
    assert!(!etag.is_empty(), "the dashboard has an ETag");
    let cached = shared::aws::cache::get(
        &shared::aws::Client::default(),
        &var("DYNAMODB_TABLE"),
        &format!("dashboard#{tenant_id}#{etag}"),
    )
    .await;
    assert!(
        cached.is_some(),
        "api-calls cached the dashboard in DynamoDB"
    );
    let again = me
        .send_raw(
            Method::GET,
            "/api/dashboard/overview",
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(again.status(), 304);
    me.get("/api/dashboard/analytics").await;
    me.get("/analytics/dashboard").await;
    let export = me.send(Method::GET, "/api/calls/export", None).await;
    assert_eq!(export.status(), 200);
    assert!(export.text().await.expect("csv").lines().count() >= 5);
    me.send(Method::GET, "/api/leads/export", None).await;
    // A tenant with 25,000 more calls: their CSV (about 13 MB) is over Lambda's 6 MB, so the
    // export is a job the processor writes to S3 (its multipart PutObject on exports/*), polled
    // through the gateway and downloaded from the presigned URL (api-calls' GetObject).
    let tenant_uuid: uuid::Uuid = tenant_id.parse().expect("uuid");
    let before = calls["pagination"]["total"].as_i64().expect("total");
    support::db()
        .await
        .execute(
            "INSERT INTO calls (user_id, agent_id, elevenlabs_conversation_id, type, direction, status,
                                phone_number, duration_seconds, credits_charged, summary, created_at)
             SELECT $1, (SELECT id FROM agents WHERE user_id = $1 AND type = 'call' LIMIT 1),
                    'conv_journey_export_' || i, 'call', 'outbound', 'completed',
                    '+1415' || lpad(i::text, 7, '0'), 60, 1,
                    repeat('The caller asked about pricing, availability and a demo. ', 8),
                    now() - interval '1 day' - i * interval '1 second'
             FROM generate_series(1, 25000) i",
            &[&tenant_uuid],
        )
        .await
        .expect("seeded calls");
    let started = me.send(Method::GET, "/api/calls/export", None).await;
    assert_eq!(started.status(), 202, "a big export is a job");
    let location = header(started.headers(), "location").to_owned();
    let job = eventually(120, "the export job done", || async {
        let job = me.get(&location).await;
        assert_ne!(job["status"], "failed", "{job}");
        (job["status"] == "done").then_some(job)
    })
    .await;
    let file = reqwest::get(job["download_url"].as_str().expect("a download URL"))
        .await
        .expect("the presigned URL answers");
    assert_eq!(file.status(), 200);
    let csv = file.text().await.expect("csv");
    assert!(csv.len() > 6_000_000, "{} bytes", csv.len());
    assert_eq!(
        csv.lines().count() as i64,
        1 + before + 25_000,
        "the header and every call"
    );

    // The design's /analytics views, one agent's dashboard and a 304 on the calls list.
    me.get("/analytics/leads").await;
    me.get("/analytics/calls").await;
    let report = me
        .send(Method::GET, "/analytics/reports?format=csv", None)
        .await;
    assert_eq!(report.status(), 200);
    assert!(header(report.headers(), "content-type").starts_with("text/csv"));
    let list = me.send(Method::GET, "/api/calls", None).await;
    let list_etag = header(list.headers(), "etag").to_owned();
    let unchanged = me
        .send_raw(
            Method::GET,
            "/api/calls",
            None,
            &[("if-none-match", &list_etag)],
        )
        .await;
    assert_eq!(unchanged.status(), 304, "the calls list polled unchanged");

    // api-billing: a Checkout through the Stripe simulator, whose Pay button sends the signed
    // checkout.session.completed through ingest and the queue to the processor.
    me.get("/billing/packages").await;
    let checkout = me
        .post("/billing/purchase", &json!({"package_id": "starter"}), 200)
        .await;
    let session = checkout["session_id"].as_str().expect("session");
    let purchase = checkout["purchase_id"]
        .as_str()
        .expect("purchase")
        .to_owned();
    let paid = stripe::sim::post(
        &format!("/dev/checkout/{session}/pay"),
        &json!({"outcome": "paid"}),
    )
    .await;
    assert_eq!(paid.status(), 200);
    eventually(30, "the purchase paid", || async {
        let state = me.get(&format!("/billing/purchases/{purchase}")).await;
        (state["status"] == "paid").then_some(())
    })
    .await;
    let balance = me.get("/api/user/credits").await["credits"]
        .as_i64()
        .expect("credits");
    me.get("/billing/history").await;

    // api-admin: credits adjusted once per Idempotency-Key, secrets rotated into both
    // secrets, the DLQ listed and replayed.
    let admin = Account::admin().await;
    let boss = Browser::signed_in(&admin.token);
    boss.get(&format!("/admin/users?search={email}")).await;
    let key = uuid::Uuid::new_v4().to_string();
    let adjusted = boss
        .send_raw(
            Method::POST,
            &format!("/admin/users/{tenant_id}/credits"),
            Some((
                "application/json",
                serde_json::to_vec(&json!({"amount": 10, "reason": "Journey goodwill"}))
                    .expect("json"),
            )),
            &[("idempotency-key", &key)],
        )
        .await;
    expect(adjusted, 201, "admin credits").await;
    let after = me.get("/api/user/credits").await["credits"]
        .as_i64()
        .expect("credits");
    assert_eq!(after, balance + 10);
    boss.get("/admin/config").await;
    let lookup_secret = format!("cl_journey_{}", uuid::Uuid::new_v4().simple());
    let rotated = boss
        .send(
            Method::PUT,
            "/admin/config/secrets/contact_lookup_secret",
            Some(&json!({"value": lookup_secret})),
        )
        .await;
    expect(rotated, 200, "rotate the contact-lookup secret").await;
    let rotated = boss
        .send(
            Method::PUT,
            "/admin/config/secrets/smtp_password",
            Some(&json!({"value": "journey-smtp-password"})),
        )
        .await;
    expect(rotated, 200, "rotate the SMTP password").await;
    // ingest reads the rotated webhook secret (SECRETS_TTL_SECONDS is 1 here).
    let remote_agent = remote_call_agent.to_owned();
    eventually(20, "the rotated contact-lookup secret", || {
        let secret = lookup_secret.clone();
        let agent = remote_agent.clone();
        async move {
            let answer = stack()
                .http
                .get(url(&format!(
                    "/api/contact-lookup/%2B14155550142?agent_id={agent}"
                )))
                .header("x-contact-lookup-secret", secret)
                .send()
                .await
                .expect("answers");
            (answer.status() == 200).then_some(())
        }
    })
    .await;

    let dead = conversation_id();
    let letter = support::queued(&transcription(remote_call_agent, &dead, 30, "+14155550177"));
    let input = json!({"QueueUrl": var("WEBHOOK_DLQ_URL"), "MessageBody": letter});
    support::aws(shared::aws::Service::Sqs, "SendMessage", input).await;
    let listed_dlq = boss.get("/admin/webhooks/dlq").await;
    assert!(listed_dlq.to_string().contains(&dead), "{listed_dlq}");
    boss.post("/admin/webhooks/dlq/replay", &json!({}), 200)
        .await;
    completed(&dead).await;

    // reconciler: both schedules' inputs.
    let reconciled = fire_schedule("ReconcilerFunctionSchedule").await;
    assert!(reconciled.is_object(), "{reconciled}");
    fire_schedule("ReconcilerFunctionSendEmails").await;
    // The admin's analytics: the schedule keeps the default period's snapshot, a request reads
    // it, and `Cache-Control: no-cache` (preflighted: the frontend may set it) reads afresh.
    let warmed = fire_schedule("ReconcilerFunctionWarmAnalytics").await;
    assert!(
        warmed["periods"]
            .as_array()
            .is_some_and(|p| p.contains(&json!(30))),
        "{warmed}"
    );
    let kept = boss.get("/admin/analytics").await;
    let afresh = boss
        .send_raw(
            Method::GET,
            "/admin/analytics",
            None,
            &[("cache-control", "no-cache")],
        )
        .await;
    let afresh = expect(afresh, 200, "analytics afresh").await;
    assert_eq!(afresh["days"], 30);
    assert!(
        generated_at(&afresh) > generated_at(&kept),
        "{kept} {afresh}"
    );

    // The emails, delivered to the SMTP sink by the scheduled sender.
    eventually(30, "the welcome and the receipt", || async {
        let mails = mail::delivered_to(&email);
        (mails.iter().any(|m| m.subject.starts_with("Receipt")) && mails.len() >= 2).then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "run by scripts/rehearse against the rehearsal's gateway"]
async fn the_gateway_answers_as_an_http_api() {
    let http = &stack().http;
    let unknown = http.get(url("/nowhere")).send().await.expect("answers");
    assert_eq!(unknown.status(), 404);
    assert_eq!(json(unknown).await, json!({"message": "Not Found"}));
    // POST-only webhook routes: a preflight there matches no route (no CorsConfiguration).
    let preflight = http
        .request(Method::OPTIONS, url("/webhooks/elevenlabs/call-completed"))
        .header("origin", origin())
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("answers");
    assert_eq!(preflight.status(), 404);
    let huge = http
        .post(url("/api/contacts/upload"))
        .body(vec![b'x'; 10 * 1024 * 1024 + 1])
        .send()
        .await;
    if let Ok(huge) = huge {
        assert_eq!(huge.status(), 413);
        assert_eq!(
            json(huge).await,
            json!({"message": "Request Entity Too Large"})
        );
    }
    // 6 MB of base64-encoded body is over Lambda's invocation payload.
    let big = http
        .post(url("/api/contacts/upload"))
        .header("content-type", "application/octet-stream")
        .body(vec![b'x'; 5 * 1024 * 1024])
        .send()
        .await
        .expect("answers");
    assert_eq!(big.status(), 413);
    let health = http.get(url("/health")).send().await.expect("answers");
    assert_eq!(health.status(), 200);
}
