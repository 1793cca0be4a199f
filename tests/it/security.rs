//! Attacks performed against the running stack, each shown to fail: a signature header that
//! would make ingest hash a large body many times, dates Postgres cannot store, a forged
//! cursor, platform settings read through an agent's config, hostile request ids, a ledger
//! reference shared across tenants, an owner undoing an administrator's deactivation, and
//! searches no list can look for.

use base64::Engine;
use serde_json::json;

use crate::support::{
    db, error_code, get, json, post, post_webhook, put, sign_now, stack, url, Account,
};

#[tokio::test]
async fn a_signature_header_with_many_candidates_is_refused_before_hashing_the_body() {
    // 2 MB of body and 140 candidates: before the cap, 140 HMACs of the body per secret.
    let body = format!(
        r#"{{"type":"post_call_transcription","pad":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    let genuine = sign_now(body.as_bytes());
    let (timestamp, good) = genuine.split_once(",v0=").expect("t and v0");
    let mut header = timestamp.to_owned();
    for _ in 0..139 {
        header.push_str(&format!(",v0={}", "ab".repeat(32)));
    }
    header.push_str(&format!(",v0={good}"));
    let response = post_webhook("call-completed", body.as_bytes(), Some(header)).await;
    assert_eq!(
        error_code(response, 401).await,
        "malformed_signature",
        "even with the genuine signature among them"
    );
}

#[tokio::test]
async fn dates_postgres_cannot_store_are_a_400_not_a_500() {
    let tenant = Account::new().await;
    for path in [
        "/api/calls?from=-10000-01-01T00:00:00Z",
        "/api/calls?to=%2B100000-01-01T00:00:00Z",
        "/api/calls/export?from=-10000-01-01T00:00:00Z",
        "/api/dashboard/overview?from=-10000-01-01",
        "/api/dashboard/analytics?to=%2B10000-01-01",
    ] {
        let response = get(path, &tenant.token).await;
        assert_eq!(response.status(), 400, "{path}");
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "invalid_query", "{path}: {body}");
    }
    let admin = Account::admin().await;
    let response = get(
        "/admin/audit-log?since=-10000-01-01T00:00:00Z",
        &admin.token,
    )
    .await;
    assert_eq!(error_code(response, 400).await, "invalid_query");
}

/// A search is one line of at most 200 characters: a NUL, which Postgres refuses, was a 500;
/// a line break matched across a contact's columns (a name's end and a number's start), and
/// what a search box sends never holds one; a longer one is no name, number or e-mail.
#[tokio::test]
async fn a_search_with_a_control_character_or_too_long_is_a_400() {
    let tenant = Account::new().await;
    let admin = Account::admin().await;
    let long = "x".repeat(201);
    for search in ["a%00b", "ann%0A%2B1415", "a%09b", long.as_str()] {
        for (list, token) in [
            ("/api/calls", &tenant.token),
            ("/api/calls/export", &tenant.token),
            ("/api/contacts", &tenant.token),
            ("/api/leads", &tenant.token),
            ("/api/agents", &tenant.token),
            ("/admin/users", &admin.token),
            ("/admin/agents", &admin.token),
        ] {
            let path = format!("{list}?search={search}");
            let response = get(&path, token).await;
            assert_eq!(response.status(), 400, "{path}");
            let body = json(response).await;
            assert_eq!(body["error"]["code"], "invalid_query", "{path}: {body}");
            assert!(
                body["error"]["details"]["reason"]
                    .as_str()
                    .is_some_and(|reason| reason.contains("search: must")),
                "{path}: {body}"
            );
        }
    }
    let response = get(&format!("/api/calls?search={}", &long[1..]), &tenant.token).await;
    assert_eq!(response.status(), 200, "200 characters are a search");
}

#[tokio::test]
async fn a_forged_cursor_with_an_impossible_time_is_an_invalid_cursor() {
    let tenant = Account::new().await;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"["-10000-01-01T00:00:00Z","00000000-0000-0000-0000-000000000000"]"#);
    for path in ["/api/calls", "/api/contacts", "/api/agents"] {
        let response = get(&format!("{path}?cursor={forged}"), &tenant.token).await;
        assert_eq!(error_code(response, 400).await, "invalid_cursor", "{path}");
    }
}

#[tokio::test]
async fn an_agents_config_never_passes_platform_settings_through() {
    let tenant = Account::new().await;
    let response = post(
        "/api/agents",
        &tenant.token,
        &json!({
            "name": format!("Config {}", uuid::Uuid::new_v4().simple()),
            "type": "call",
            "system_prompt": "You sell solar panels.",
            "language": "en",
        }),
    )
    .await;
    assert_eq!(response.status(), 201);
    let agent = json(response).await;
    let id = agent["id"].as_str().expect("id");
    let remote = agent["elevenlabs_agent_id"].as_str().expect("remote id");
    // The platform's workspace settings, as an operator would have set them at ElevenLabs.
    let key = std::env::var("ELEVENLABS_API_KEY").expect("scripts/test sets it");
    let patched = stack()
        .http
        .patch(crate::support::elevenlabs_sim::url(&format!(
            "/v1/convai/agents/{remote}"
        )))
        .header("xi-api-key", key)
        .json(&json!({"platform_settings": {
            "data_collection": {"budget": {"type": "string", "description": "budget"}},
            "workspace_overrides": {"webhooks": {
                "url": "https://platform.example/lookup",
                "request_headers": {"x-contact-lookup-secret": "platform-secret-value"}
            }}
        }}))
        .send()
        .await
        .expect("simulator answers");
    assert!(patched.status().is_success(), "{}", patched.status());

    for path in [
        format!("/api/agents/{id}/config"),
        format!("/agents/{id}/config"),
    ] {
        let config = json(get(&path, &tenant.token).await).await;
        assert_eq!(config["agent_id"], remote, "{path}");
        assert_eq!(
            config["conversation_config"]["agent"]["prompt"]["prompt"],
            "You sell solar panels."
        );
        assert!(config["platform_settings"]["data_collection"]["budget"].is_object());
        let text = config.to_string();
        assert!(!text.contains("platform-secret-value"), "{path}: {text}");
        assert!(config["platform_settings"]["workspace_overrides"].is_null());
    }
}

#[tokio::test]
async fn hostile_request_ids_are_replaced_and_safe_ones_echoed() {
    let send = |id: String| async move {
        stack()
            .http
            .get(url("/health"))
            .header("x-request-id", id)
            .send()
            .await
            .expect("the API answers")
    };
    let echoed = |response: &reqwest::Response| -> String {
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let safe = "req-2026.11:abc_DEF".to_owned();
    assert_eq!(echoed(&send(safe.clone()).await), safe);
    for hostile in [
        "x".repeat(10_000),
        "a\" level=error msg=\"forged".to_owned(),
    ] {
        let response = send(hostile.clone()).await;
        let id = echoed(&response);
        assert!(
            id != hostile && uuid::Uuid::parse_str(&id).is_ok(),
            "a {}-byte id was replaced by a generated one, not echoed",
            hostile.len()
        );
    }
}

/// A two-credit usage charge for `account` under `reference`, through the ledger function.
async fn charge(
    pool: &deadpool_postgres::Pool,
    account: &Account,
    reference: &str,
) -> shared::credits::Applied {
    let tenant = account.tenant(pool).await;
    crate::support::apply_change(
        pool,
        tenant,
        shared::credits::CreditKind::Usage,
        -2,
        reference.to_owned(),
    )
    .await
}

#[tokio::test]
async fn one_tenants_ledger_reference_neither_blocks_nor_reveals_anothers() {
    use shared::credits::Applied;

    let pool = crate::support::pool(2);
    let first = Account::new().await;
    let second = Account::new().await;
    let reference = format!("conv_{}", uuid::Uuid::new_v4().simple());
    assert!(matches!(
        charge(&pool, &first, &reference).await,
        Applied::New(_)
    ));
    match charge(&pool, &second, &reference).await {
        Applied::New(entry) => assert_eq!(entry.user_id, second.id, "charged to its own tenant"),
        Applied::Duplicate(entry) => panic!(
            "the second tenant got the first's entry {} and was not charged",
            entry.id
        ),
    }
    assert_eq!(
        second.credits().await,
        13,
        "the second tenant paid for its own call"
    );
    // Still idempotent within a tenant.
    assert!(matches!(
        charge(&pool, &second, &reference).await,
        Applied::Duplicate(_)
    ));
    assert_eq!(second.credits().await, 13);
}

#[tokio::test]
async fn an_owner_cannot_undo_an_admins_deactivation() {
    let owner = Account::new().await;
    let admin = Account::admin().await;
    let deactivated = agent_deactivated_by_admin(&owner, &admin).await;
    assert_eq!(deactivated["is_active"], false);
    assert_eq!(deactivated["deactivated_by_admin"], true);
    let id = deactivated["id"].as_str().expect("id").to_owned();

    for path in [format!("/api/agents/{id}"), format!("/agents/{id}")] {
        let response = put(&path, &owner.token, &json!({"is_active": true})).await;
        assert_eq!(
            error_code(response, 403).await,
            "agent_deactivated_by_admin",
            "{path}"
        );
    }
    let agent = json(get(&format!("/api/agents/{id}"), &owner.token).await).await;
    assert_eq!(agent["is_active"], false, "still inactive");
    // Other changes stay the owner's to make.
    let renamed = put(
        &format!("/api/agents/{id}"),
        &owner.token,
        &json!({"name": "Renamed"}),
    )
    .await;
    assert_eq!(renamed.status(), 200);

    let reactivated = put(
        &format!("/admin/agents/{id}"),
        &admin.token,
        &json!({"is_active": true}),
    )
    .await;
    assert_eq!(reactivated.status(), 200);
    assert_eq!(json(reactivated).await["deactivated_by_admin"], false);
    let off = put(
        &format!("/api/agents/{id}"),
        &owner.token,
        &json!({"is_active": false}),
    )
    .await;
    assert_eq!(json(off).await["is_active"], false);
    let on = put(
        &format!("/api/agents/{id}"),
        &owner.token,
        &json!({"is_active": true}),
    )
    .await;
    assert_eq!(
        json(on).await["is_active"],
        true,
        "the owner's own switch works again"
    );
}

/// An owner's change checked before an administrator's deactivation committed, and written
/// after it (it waits on ElevenLabs in between): its write activates nothing, and the rest of
/// it still applies. The owner's `UPDATE` is run as `agents::update` sends it.
#[tokio::test]
async fn an_owners_change_in_flight_does_not_undo_an_admins_deactivation() {
    let owner = Account::new().await;
    let admin = Account::admin().await;
    let deactivated = agent_deactivated_by_admin(&owner, &admin).await;
    let uuid = |field: &str| -> uuid::Uuid {
        deactivated[field]
            .as_str()
            .expect(field)
            .parse()
            .expect("a uuid")
    };
    let (id, owner_id) = (uuid("id"), uuid("user_id"));
    let phone_number_id = deactivated["phone_number_id"].as_str().map(str::to_owned);
    let renamed = Some("Renamed in flight");
    // As the owner's change sends it: its id and tenant, name, line, `is_active`, not an
    // administrator's.
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        &id,
        &owner_id,
        &renamed,
        &phone_number_id,
        &Some(true),
        &false,
    ];
    let row = db()
        .await
        .query_one(shared::agents::sql::UPDATE, &params)
        .await
        .expect("the owner's write");
    let (name, active, by_admin): (String, bool, bool) = (
        row.get("name"),
        row.get("is_active"),
        row.get("deactivated_by_admin"),
    );
    assert_eq!(
        (name.as_str(), active, by_admin),
        ("Renamed in flight", false, true),
        "renamed, still deactivated by the administrator"
    );
}

/// A call agent of `owner`'s, just created and deactivated by `admin`: the deactivation's
/// answer.
async fn agent_deactivated_by_admin(owner: &Account, admin: &Account) -> serde_json::Value {
    let created = post(
        "/api/agents",
        &owner.token,
        &json!({
            "name": format!("Held {}", uuid::Uuid::new_v4().simple()),
            "type": "call",
            "system_prompt": "You sell solar panels.",
        }),
    )
    .await;
    assert_eq!(created.status(), 201);
    let id = json(created).await["id"].as_str().expect("id").to_owned();
    let deactivated = post(
        &format!("/admin/agents/{id}/deactivate"),
        &admin.token,
        &json!({}),
    )
    .await;
    assert_eq!(deactivated.status(), 200);
    json(deactivated).await
}

/// Waits out the end of a fixed rate-limit window when less than 10 s of it are left, so the
/// attempts of a test all count in one window.
async fn within_one_window(window: &shared::ratelimit::Window) {
    let left = window.seconds - chrono::Utc::now().timestamp() % window.seconds;
    if left < 10 {
        tokio::time::sleep(std::time::Duration::from_secs(
            u64::try_from(left).unwrap_or(0) + 1,
        ))
        .await;
    }
}

async fn login(email: &str, address: Option<&str>) -> reqwest::Response {
    let mut request = stack()
        .http
        .post(url("/auth/login"))
        .json(&json!({"email": email, "password": "not-the-password"}));
    if let Some(address) = address {
        request = request.header("x-forwarded-for", format!("10.0.0.1, {address}"));
    }
    request.send().await.expect("the API answers")
}

#[tokio::test]
async fn credential_stuffing_against_one_email_is_throttled() {
    let email = format!("victim-{}@example.test", uuid::Uuid::new_v4().simple());
    within_one_window(&shared::ratelimit::ACCOUNT_FLOWS_PER_EMAIL).await;
    for attempt in 0..10 {
        let response = login(&email, None).await;
        assert_ne!(response.status(), 429, "attempt {attempt} is allowed");
    }
    let response = login(&email, None).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(json(response).await["error"]["code"], "rate_limited");
    // Another email is not affected.
    let other = format!("other-{}@example.test", uuid::Uuid::new_v4().simple());
    assert_ne!(login(&other, None).await.status(), 429);
}

#[tokio::test]
async fn a_stranger_guessing_at_an_account_does_not_keep_its_owner_out() {
    let email = format!("owner-{}@example.test", uuid::Uuid::new_v4().simple());
    let address = |n: u32| format!("203.0.113.{n}");
    within_one_window(&shared::ratelimit::ACCOUNT_FLOWS_PER_EMAIL).await;
    for _ in 0..10 {
        assert_ne!(login(&email, Some(&address(1))).await.status(), 429);
    }
    assert_eq!(login(&email, Some(&address(1))).await.status(), 429);
    assert_ne!(
        login(&email, Some(&address(2))).await.status(),
        429,
        "the owner, from their own address"
    );
    // Guesses spread over many addresses still meet a bound: 50 for the email in all.
    let mut refused_after = None;
    for attempt in 11..70 {
        if login(&email, Some(&address(3 + attempt / 10)))
            .await
            .status()
            == 429
        {
            refused_after = Some(attempt);
            break;
        }
    }
    // 11 counted so far (the 11th from the first address was refused before the email's
    // count): attempts 11 to 49 bring it to 50, the next is refused.
    assert_eq!(refused_after, Some(50));
}

#[tokio::test]
async fn one_address_cannot_spray_many_emails() {
    // API Gateway appends the caller's address; the entries before it are the caller's own.
    let address = format!("198.51.100.{}", crate::support::rand_digits() % 250);
    let mut limited = None;
    within_one_window(&shared::ratelimit::ACCOUNT_FLOWS_PER_ADDRESS).await;
    for attempt in 0..40 {
        let email = format!(
            "spray-{attempt}-{}@example.test",
            uuid::Uuid::new_v4().simple()
        );
        if login(&email, Some(&address)).await.status() == 429 {
            limited = Some(attempt);
            break;
        }
    }
    assert_eq!(
        limited,
        Some(30),
        "the 31st attempt from one address is refused"
    );
}

#[tokio::test]
async fn one_tenant_flooding_the_api_gets_429_and_others_do_not() {
    let flooder = Account::new().await;
    let bystander = Account::new().await;
    let answers = futures::future::join_all(
        (0..300).map(|_| async { get("/api/user/credits", &flooder.token).await }),
    )
    .await;
    let limited: Vec<&reqwest::Response> = answers.iter().filter(|r| r.status() == 429).collect();
    assert!(!limited.is_empty(), "a burst past the budget is limited");
    assert!(limited
        .iter()
        .all(|r| r.headers().contains_key("retry-after")));
    assert!(answers
        .iter()
        .all(|r| r.status() == 200 || r.status() == 429));
    assert_eq!(
        get("/api/user/credits", &bystander.token).await.status(),
        200
    );
}

#[tokio::test]
async fn the_database_url_can_live_in_secrets_manager_and_is_read_on_first_use() {
    let secret_id = format!("test/database-{}", uuid::Uuid::new_v4().simple());
    let document = json!({"database_url": stack().database_url});
    crate::support::aws(
        shared::aws::Service::SecretsManager,
        "CreateSecret",
        json!({"Name": secret_id, "SecretString": document.to_string()}),
    )
    .await;
    // The deployed configuration: no DATABASE_URL in the environment, only the secret's id.
    let config = shared::Config::from_lookup(|name| match name {
        "DATABASE_URL" => None,
        "DATABASE_SECRET_ID" => Some(secret_id.clone()),
        other => std::env::var(other).ok(),
    })
    .expect("config without DATABASE_URL");
    assert!(
        !format!("{config:?}").contains("postgres://"),
        "the URL never shows in the config's Debug"
    );
    let state = shared::AppState::new(config).await.expect("state");
    let client = state
        .db()
        .get()
        .await
        .expect("a connection from the secret's URL");
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(one, 1);
}
