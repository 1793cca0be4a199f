//! Account flows through the Stack Auth simulator: registration (the account created once,
//! with one signup bonus, even against a racing first request), sign-in, social sign-in's first
//! step, the password reset (never revealing whether an email has an account), and the profile
//! name written on both sides.

use futures::future::join_all;
use serde_json::{json, Value};

use crate::support::{db, error_code, get, json, put, stack, url, NewUser};

const PASSWORD: &str = "correct horse battery";

fn sim_url(path: &str) -> String {
    let base = std::env::var("STACK_SIM_URL").expect("scripts/test sets STACK_SIM_URL");
    format!("{base}{path}")
}

fn frontend() -> String {
    std::env::var("FRONTEND_URL").expect("scripts/test sets FRONTEND_URL")
}

fn new_email() -> String {
    format!(
        "acct-{}@example.test",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// An unauthenticated POST to the API.
async fn post(path: &str, body: &Value) -> reqwest::Response {
    stack()
        .http
        .post(url(path))
        .json(body)
        .send()
        .await
        .expect("the API answers")
}

async fn register(email: &str, password: &str, name: Option<&str>) -> reqwest::Response {
    let mut body = json!({ "email": email, "password": password });
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    post("/auth/register", &body).await
}

async fn login(email: &str, password: &str) -> reqwest::Response {
    post(
        "/auth/login",
        &json!({ "email": email, "password": password }),
    )
    .await
}

async fn sim_get(path: &str) -> Value {
    let response = stack()
        .http
        .get(sim_url(path))
        .send()
        .await
        .expect("the simulator answers");
    assert!(response.status().is_success(), "{}", response.status());
    json(response).await
}

/// The simulator's user (server view) with this primary email.
async fn sim_user(email: &str) -> Option<Value> {
    sim_get("/dev/users").await["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|u| u["primary_email"] == email)
        .cloned()
}

/// What Stack Auth "sent" to `email` with this template, oldest first.
async fn sim_emails(email: &str, template: &str) -> Vec<Value> {
    let query = url_encode(email);
    sim_get(&format!("/dev/emails?to={query}")).await["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["template"] == template)
        .cloned()
        .collect()
}

fn url_encode(value: &str) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("url");
    url.query_pairs_mut().append_pair("v", value);
    url.query().expect("query")["v=".len()..].to_owned()
}

/// Our user rows and bonus ledger rows for a Stack Auth user id.
async fn rows_for(subject: &str) -> (usize, i64, Vec<i64>) {
    let db = db().await;
    let users = db
        .query(
            "SELECT id, credits FROM users WHERE auth_subject = $1",
            &[&subject],
        )
        .await
        .expect("users");
    let Some(user) = users.first() else {
        return (0, 0, Vec::new());
    };
    let id: uuid::Uuid = user.get("id");
    let bonuses = db
        .query(
            "SELECT amount FROM credit_transactions WHERE user_id = $1 AND type = 'bonus'",
            &[&id],
        )
        .await
        .expect("ledger")
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect();
    (users.len(), user.get("credits"), bonuses)
}

#[tokio::test]
async fn register_creates_the_account_once_and_signs_it_in() {
    let email = new_email();
    let response = register(&email, PASSWORD, Some("  Ada Lovelace ")).await;
    assert_eq!(response.status(), 201);
    let body = json(response).await;
    let user = &body["user"];
    assert_eq!(user["email"], email.as_str());
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["credits"], 15);
    assert_eq!(user["is_active"], true);
    assert_eq!(user["role"], "user");
    let token = body["access_token"].as_str().expect("access token");
    assert!(body["refresh_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    let at_stack = sim_user(&email).await.expect("created at Stack Auth");
    assert_eq!(at_stack["display_name"], "Ada Lovelace");
    let subject = at_stack["id"].as_str().expect("id");
    assert_eq!(rows_for(subject).await, (1, 15, vec![15]));

    // The returned token is an ordinary session: the same user, nothing granted twice.
    let profile = json(get("/auth/profile", token).await).await;
    assert_eq!(profile["id"], user["id"]);
    assert_eq!(profile["credits"], 15);
    assert_eq!(profile["name"], "Ada Lovelace");
    assert_eq!(rows_for(subject).await, (1, 15, vec![15]));

    // Stack Auth emailed a verification link to the frontend.
    let verification = sim_emails(&email, "email_verification").await;
    assert_eq!(verification.len(), 1);
    assert!(verification[0]["link"]
        .as_str()
        .is_some_and(|l| l.starts_with(&format!("{}/verify-email?code=", frontend()))));

    let again = register(&email.to_uppercase(), "another password", None).await;
    assert_eq!(error_code(again, 409).await, "email_taken");
    assert_eq!(rows_for(subject).await, (1, 15, vec![15]));
}

#[tokio::test]
async fn login_checks_the_password_and_provisions_on_first_sign_in() {
    // Signed up at Stack Auth directly (another client), never seen by this API.
    let email = new_email();
    let signed_up = stack()
        .http
        .post(sim_url("/api/v1/auth/password/sign-up"))
        .header(
            "x-stack-project-id",
            std::env::var("STACK_PROJECT_ID").expect("scripts/test sets STACK_PROJECT_ID"),
        )
        .header("x-stack-access-type", "client")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(signed_up.status(), 200);
    let subject = json(signed_up).await["user_id"]
        .as_str()
        .expect("user id")
        .to_owned();
    assert_eq!(rows_for(&subject).await.0, 0);

    let response = login(&email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let first = json(response).await;
    assert_eq!(first["user"]["credits"], 15);
    assert_eq!(rows_for(&subject).await, (1, 15, vec![15]));
    let token = first["access_token"].as_str().expect("token");
    assert_eq!(
        json(get("/auth/profile", token).await).await["id"],
        first["user"]["id"]
    );

    let second = json(login(&email, PASSWORD).await).await;
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_eq!(rows_for(&subject).await, (1, 15, vec![15]));

    assert_eq!(
        error_code(login(&email, "wrong password!").await, 401).await,
        "invalid_credentials"
    );
    assert_eq!(
        error_code(login(&new_email(), PASSWORD).await, 401).await,
        "invalid_credentials",
        "an unknown email reads the same as a wrong password"
    );
}

#[tokio::test]
async fn input_is_checked_before_reaching_stack_auth() {
    let email = new_email();
    for (body, field) in [
        (json!({"email": email, "password": "short"}), "password"),
        (
            json!({"email": email, "password": "x".repeat(257)}),
            "password",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": email, "password": PASSWORD, "name": "n".repeat(101)}),
            "name",
        ),
        (
            json!({"email": email, "password": PASSWORD, "name": "a\u{1b}[31mb"}),
            "name",
        ),
    ] {
        let response = post("/auth/register", &body).await;
        assert_eq!(response.status(), 400, "{field}");
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "validation_error");
        assert_eq!(body["error"]["details"]["field"], field);
    }
    assert!(
        sim_user(&email).await.is_none(),
        "nothing was sent to Stack Auth"
    );

    let missing = post("/auth/register", &json!({"email": email})).await;
    assert_eq!(error_code(missing, 400).await, "validation_error");
    let empty_password = login(&email, "").await;
    assert_eq!(error_code(empty_password, 400).await, "validation_error");
}

#[tokio::test]
async fn a_racing_first_request_does_not_double_the_bonus() {
    let email = new_email();
    // A token for the same Stack Auth user, as a second tab might already hold.
    let minted = stack()
        .http
        .post(sim_url("/dev/token"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("the simulator answers");
    let minted = json(minted).await;
    let token = minted["access_token"].as_str().expect("token").to_owned();
    let subject = minted["user_id"].as_str().expect("user id").to_owned();

    let registering = async { register(&email, PASSWORD, Some("Racer")).await };
    let first_requests = join_all((0..8).map(|_| {
        let token = token.clone();
        async move { get("/auth/profile", &token).await }
    }));
    let (registered, profiles) = tokio::join!(registering, first_requests);
    assert_eq!(registered.status(), 201);
    let registered = json(registered).await;
    for profile in profiles {
        assert_eq!(profile.status(), 200);
        assert_eq!(json(profile).await["id"], registered["user"]["id"]);
    }
    assert_eq!(
        rows_for(&subject).await,
        (1, 15, vec![15]),
        "one user, one bonus"
    );
    assert_eq!(registered["user"]["name"], "Racer");
}

#[tokio::test]
async fn social_sign_in_starts_at_the_provider() {
    let redirect = format!("{}/auth/callback", frontend());
    for (provider, host) in [
        ("google", "accounts.google.com"),
        ("linkedin", "www.linkedin.com"),
    ] {
        let response = post(
            "/auth/social",
            &json!({ "provider": provider, "redirect_uri": redirect }),
        )
        .await;
        assert_eq!(response.status(), 200, "{provider}");
        let body = json(response).await;
        assert_eq!(body["provider"], provider);
        let authorize = reqwest::Url::parse(body["authorize_url"].as_str().expect("url"))
            .expect("an absolute URL");
        assert_eq!(authorize.scheme(), "https");
        assert_eq!(authorize.host_str(), Some(host));
        let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
        // The provider returns to Stack Auth, which then returns to our redirect_uri.
        assert!(
            query["redirect_uri"].ends_with(&format!("/api/v1/auth/oauth/callback/{provider}")),
            "{query:?}"
        );
        assert_eq!(query["response_type"], "code");
        assert!(body["state"].as_str().is_some_and(|s| s.len() >= 32));
        assert_eq!(body["code_verifier"].as_str().map(str::len), Some(43));
    }

    // The client's own state and PKCE challenge are used as given.
    let own = json!({
        "provider": "google", "redirect_uri": redirect,
        "state": "client-state-0123456789",
        "code_challenge": "b-vqQhBSsayY08KmVzhArnNte14CwTTfGEp8vxOcaR0",
    });
    let body = json(post("/auth/social", &own).await).await;
    assert_eq!(body["state"], "client-state-0123456789");
    assert!(body["code_verifier"].is_null());

    for provider in ["github", "", "Google/../x"] {
        let response = post(
            "/auth/social",
            &json!({ "provider": provider, "redirect_uri": redirect }),
        )
        .await;
        assert_eq!(error_code(response, 400).await, "unsupported_provider");
    }
    for foreign in [
        "https://evil.example.com/auth/callback",
        "javascript:alert(1)",
        "/auth/callback",
        "http://localhost:5173.evil.example.com/cb",
    ] {
        let response = post(
            "/auth/social",
            &json!({ "provider": "google", "redirect_uri": foreign }),
        )
        .await;
        assert_eq!(
            error_code(response, 400).await,
            "invalid_redirect_uri",
            "{foreign}"
        );
    }
}

#[tokio::test]
async fn password_reset_never_reveals_whether_the_account_exists() {
    let known = new_email();
    assert_eq!(register(&known, PASSWORD, None).await.status(), 201);
    let unknown = new_email();

    let mut answers = Vec::new();
    for email in [&known, &unknown] {
        let response = post("/auth/reset-password", &json!({ "email": email })).await;
        assert_eq!(response.status(), 202);
        answers.push(json(response).await);
    }
    assert_eq!(answers[0], json!({"sent": true}));
    assert_eq!(answers[0], answers[1], "the same answer either way");

    assert!(sim_emails(&unknown, "password_reset").await.is_empty());
    let sent = sim_emails(&known, "password_reset").await;
    assert_eq!(sent.len(), 1);
    let link = sent[0]["link"].as_str().expect("link");
    assert!(
        link.starts_with(&format!("{}/reset-password?code=", frontend())),
        "{link}"
    );
    let code = sent[0]["code"].as_str().expect("code");

    // The code from the link sets a new password.
    let short = post(
        "/auth/reset-password/confirm",
        &json!({ "code": code, "password": "short" }),
    )
    .await;
    assert_eq!(error_code(short, 400).await, "validation_error");
    let new_password = "an entirely new password";
    let confirmed = post(
        "/auth/reset-password/confirm",
        &json!({ "code": code, "password": new_password }),
    )
    .await;
    assert_eq!(confirmed.status(), 200);
    assert_eq!(json(confirmed).await, json!({"reset": true}));
    assert_eq!(login(&known, new_password).await.status(), 200);
    assert_eq!(
        error_code(login(&known, PASSWORD).await, 401).await,
        "invalid_credentials"
    );
    let reused = post(
        "/auth/reset-password/confirm",
        &json!({ "code": code, "password": new_password }),
    )
    .await;
    assert_eq!(error_code(reused, 400).await, "invalid_reset_code");

    let bad = post("/auth/reset-password", &json!({ "email": "nope" })).await;
    assert_eq!(error_code(bad, 400).await, "validation_error");
}

#[tokio::test]
async fn profile_name_changes_on_both_sides_or_neither() {
    let email = new_email();
    let body = json(register(&email, PASSWORD, None).await).await;
    let token = body["access_token"].as_str().expect("token");
    let response = put("/auth/profile", token, &json!({ "name": "Grace Hopper" })).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["name"], "Grace Hopper");
    assert_eq!(
        sim_user(&email).await.expect("at Stack Auth")["display_name"],
        "Grace Hopper"
    );
    assert_eq!(
        json(get("/auth/profile", token).await).await["name"],
        "Grace Hopper"
    );

    // Stack Auth does not know this user (a token minted outside it): it refuses the update,
    // and our row keeps its name.
    let stranger = NewUser::new();
    let token = stranger.token();
    let before = json(get("/auth/profile", &token).await).await["name"].clone();
    let refused = put("/auth/profile", &token, &json!({ "name": "Changed" })).await;
    assert_eq!(error_code(refused, 502).await, "upstream_error");
    assert_eq!(
        json(get("/auth/profile", &token).await).await["name"],
        before
    );
}

#[tokio::test]
async fn the_account_routes_are_in_the_openapi_document() {
    let doc = json(
        stack()
            .http
            .get(url("/api/openapi.json"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/social",
        "/auth/reset-password",
        "/auth/reset-password/confirm",
    ] {
        assert!(doc["paths"][path]["post"].is_object(), "{path}");
    }
    assert!(doc["components"]["schemas"]["AuthSession"].is_object());
}
