use std::{collections::BTreeSet, sync::Arc};

use jsonwebtoken::{decode, jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use super::*;

const PROJECT: &str = "test-project";
const SERVER_KEY: &str = "ssk_test_server_key";

async fn start() -> (String, Arc<StackAuthSim>) {
    let dir = std::env::temp_dir().join(format!("stack-sim-test-{}", uuid::Uuid::new_v4()));
    let keys = KeyRing::load_or_create(&dir).expect("keys");
    let _ = std::fs::remove_dir_all(&dir);
    let sim = Arc::new(StackAuthSim::new(
        Issuer::new(keys, PROJECT, None),
        Config {
            secret_server_key: SERVER_KEY.into(),
            publishable_client_key: None,
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(sim.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), sim)
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// What our backend sends: project id, server access, the secret server key.
fn server(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("x-stack-project-id", PROJECT)
        .header("x-stack-access-type", "server")
        .header("x-stack-secret-server-key", SERVER_KEY)
}

struct Reply {
    status: u16,
    known_error: Option<String>,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let known_error = response
        .headers()
        .get(KNOWN_ERROR_HEADER)
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    Reply {
        status,
        known_error,
        body,
    }
}

/// Asserts a known error: status, code in body and header.
fn assert_known(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["code"], code, "{}", reply.body);
    assert_eq!(reply.known_error.as_deref(), Some(code));
    assert!(reply.body["error"].is_string());
}

async fn sign_up(http: &reqwest::Client, base: &str, email: &str, password: &str) -> Reply {
    send(
        server(http.post(format!("{base}/api/v1/auth/password/sign-up")))
            .json(&json!({ "email": email, "password": password })),
    )
    .await
}

async fn sign_in(http: &reqwest::Client, base: &str, email: &str, password: &str) -> Reply {
    send(
        server(http.post(format!("{base}/api/v1/auth/password/sign-in")))
            .json(&json!({ "email": email, "password": password })),
    )
    .await
}

#[tokio::test]
async fn sign_up_then_sign_in() {
    let (base, sim) = start().await;
    let http = client();

    let up = sign_up(&http, &base, "Ana@Example.com", "correct horse").await;
    assert_eq!(up.status, 200, "{}", up.body);
    let keys: BTreeSet<&str> = up
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["access_token", "refresh_token", "user_id"])
    );
    assert_eq!(up.body["user_id"], user_id_for("ana@example.com"));
    let stored = sim.user_by_email("ana@example.com").expect("stored");
    assert_eq!(stored.primary_email.as_deref(), Some("ana@example.com"));
    assert!(!stored.primary_email_verified);

    let signed_in = sign_in(&http, &base, "ANA@example.com", "correct horse").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.body["user_id"], up.body["user_id"]);
    assert_ne!(signed_in.body["refresh_token"], up.body["refresh_token"]);

    // The refresh token gets a new access token for the same user.
    let refreshed = send(
        server(http.post(format!("{base}/api/v1/auth/sessions/current/refresh"))).header(
            "x-stack-refresh-token",
            signed_in.body["refresh_token"].as_str().expect("token"),
        ),
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let me = send(server(http.get(format!("{base}/api/v1/users/me"))).header(
        "x-stack-access-token",
        refreshed.body["access_token"].as_str().expect("token"),
    ))
    .await;
    assert_eq!(me.body["id"], up.body["user_id"]);
    let unknown = send(
        server(http.post(format!("{base}/api/v1/auth/sessions/current/refresh")))
            .header("x-stack-refresh-token", "nope"),
    )
    .await;
    assert_known(&unknown, 401, "REFRESH_TOKEN_NOT_FOUND_OR_EXPIRED");
}

#[tokio::test]
async fn duplicate_email_is_rejected_case_insensitively() {
    let (base, _sim) = start().await;
    let http = client();
    assert_eq!(
        sign_up(&http, &base, "bo@example.com", "password-1")
            .await
            .status,
        200
    );

    let again = sign_up(&http, &base, " BO@example.com ", "password-2").await;
    assert_known(&again, 409, "USER_EMAIL_ALREADY_EXISTS");
    assert_eq!(
        again.body["details"],
        json!({ "email": "bo@example.com", "would_work_if_email_was_verified": false })
    );
    assert_eq!(
        again.body["error"],
        "A user with email \"bo@example.com\" already exists."
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_the_same_mismatch() {
    let (base, _sim) = start().await;
    let http = client();
    assert_eq!(
        sign_up(&http, &base, "cy@example.com", "password-1")
            .await
            .status,
        200
    );

    for (email, password) in [
        ("cy@example.com", "wrong-password"),
        ("nobody@example.com", "password-1"),
    ] {
        let reply = sign_in(&http, &base, email, password).await;
        assert_known(&reply, 400, "EMAIL_PASSWORD_MISMATCH");
        assert_eq!(
            reply.body,
            json!({ "code": "EMAIL_PASSWORD_MISMATCH", "error": "Wrong e-mail or password." })
        );
    }
}

#[tokio::test]
async fn short_password_and_schema_errors() {
    let (base, _sim) = start().await;
    let http = client();

    let short = sign_up(&http, &base, "di@example.com", "short").await;
    assert_known(&short, 400, "PASSWORD_TOO_SHORT");
    assert_eq!(short.body["details"], json!({ "min_length": 8 }));
    assert_eq!(
        short.body["error"],
        "Password too short. Minimum length is 8."
    );

    let missing = send(
        server(http.post(format!("{base}/api/v1/auth/password/sign-up")))
            .json(&json!({ "email": "not-an-email", "extra": 1 })),
    )
    .await;
    assert_known(&missing, 400, "SCHEMA_ERROR");
    let message = missing.body["error"].as_str().expect("message");
    assert!(
        message.starts_with("Request validation failed on POST /api/v1/auth/password/sign-up:\n"),
        "{message}"
    );
    assert!(
        message.contains("  - body contains unknown properties: extra"),
        "{message}"
    );
    assert!(
        message.contains("  - body.password must be defined"),
        "{message}"
    );
    assert!(
        message.contains("  - body.email must be a valid email"),
        "{message}"
    );
    assert_eq!(missing.body["details"]["message"], message);

    let empty = send(
        server(http.post(format!("{base}/api/v1/auth/password/sign-in")))
            .json(&json!({ "email": "", "password": "x" })),
    )
    .await;
    assert_eq!(
        empty.body["error"],
        "Request validation failed on POST /api/v1/auth/password/sign-in:\n  - body.email must not be empty"
    );

    let bad_json = send(
        server(http.post(format!("{base}/api/v1/auth/password/sign-in")))
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_known(&bad_json, 400, "BODY_PARSING_ERROR");
}

#[tokio::test]
async fn project_authentication_errors() {
    let (base, _sim) = start().await;
    let http = client();
    let url = format!("{base}/api/v1/auth/password/sign-in");
    let body = json!({ "email": "ed@example.com", "password": "password-1" });

    let wrong_key = send(
        http.post(&url)
            .header("x-stack-project-id", PROJECT)
            .header("x-stack-access-type", "server")
            .header("x-stack-secret-server-key", "ssk_wrong")
            .json(&body),
    )
    .await;
    assert_known(&wrong_key, 401, "INVALID_SECRET_SERVER_KEY");
    assert_eq!(wrong_key.body["details"], json!({ "project_id": PROJECT }));

    let wrong_project = send(
        http.post(&url)
            .header("x-stack-project-id", "other-project")
            .header("x-stack-access-type", "server")
            .header("x-stack-secret-server-key", SERVER_KEY)
            .json(&body),
    )
    .await;
    assert_known(&wrong_project, 401, "INVALID_SECRET_SERVER_KEY");

    let no_key = send(
        http.post(&url)
            .header("x-stack-project-id", PROJECT)
            .header("x-stack-access-type", "server")
            .json(&body),
    )
    .await;
    assert_known(&no_key, 401, "SERVER_AUTHENTICATION_REQUIRED");

    let key_without_type = send(
        http.post(&url)
            .header("x-stack-project-id", PROJECT)
            .header("x-stack-secret-server-key", SERVER_KEY)
            .json(&body),
    )
    .await;
    assert_known(&key_without_type, 400, "PROJECT_KEY_WITHOUT_ACCESS_TYPE");

    let nothing = send(http.post(&url).json(&body)).await;
    assert_known(&nothing, 400, "ACCESS_TYPE_REQUIRED");

    let no_project = send(
        http.post(&url)
            .header("x-stack-access-type", "server")
            .json(&body),
    )
    .await;
    assert_known(&no_project, 400, "ACCESS_TYPE_WITHOUT_PROJECT_ID");

    // Client access works for the auth flows but not for reading other users.
    let client_read = send(
        http.get(format!(
            "{base}/api/v1/users/{}",
            user_id_for("ed@example.com")
        ))
        .header("x-stack-project-id", PROJECT)
        .header("x-stack-access-type", "client"),
    )
    .await;
    assert_known(&client_read, 401, "INSUFFICIENT_ACCESS_TYPE");
    assert_eq!(
        client_read.body["details"],
        json!({ "actual_access_type": "client", "allowed_access_types": ["server", "admin"] })
    );

    let bad_token = send(
        server(http.get(format!("{base}/api/v1/users/me")))
            .header("x-stack-access-token", "12341234"),
    )
    .await;
    assert_known(&bad_token, 401, "UNPARSABLE_ACCESS_TOKEN");
}

/// Verifies `token` with the JWKS served over HTTP, as our backend does.
async fn verify(http: &reqwest::Client, base: &str, issuer: &str, token: &str) -> Value {
    let jwks: JwkSet = http
        .get(format!(
            "{base}/api/v1/projects/{PROJECT}/.well-known/jwks.json"
        ))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ, None);
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid in jwks");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[PROJECT]);
    validation.set_issuer(&[issuer]);
    decode::<Value>(
        token,
        &DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("valid token")
    .claims
}

#[tokio::test]
async fn tokens_verify_against_the_jwks_with_dev_token_claims() {
    let (base, sim) = start().await;
    let http = client();

    let up = sign_up(&http, &base, "flo@example.com", "password-1").await;
    let claims = verify(
        &http,
        &base,
        &sim.issuer.issuer,
        up.body["access_token"].as_str().expect("token"),
    )
    .await;

    let minted = send(
        http.post(format!("{base}/dev/token"))
            .json(&json!({ "email": "flo@example.com" })),
    )
    .await;
    assert_eq!(minted.status, 200);
    assert_eq!(minted.body["user_id"], up.body["user_id"]);
    let dev_claims = verify(
        &http,
        &base,
        &sim.issuer.issuer,
        minted.body["access_token"].as_str().expect("token"),
    )
    .await;

    let names = |c: &Value| {
        c.as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(names(&claims), names(&dev_claims));
    assert_eq!(names(&claims), names(&sim.issuer.claims("x", "x@y.z", 60)));
    for name in [
        "iss",
        "aud",
        "sub",
        "project_id",
        "branch_id",
        "role",
        "email",
        "signed_up_at",
        "is_anonymous",
        "is_restricted",
        "restricted_reason",
        "requires_totp_mfa",
        "selected_team_id",
    ] {
        assert_eq!(claims[name], dev_claims[name], "{name}");
    }
    assert_eq!(claims["sub"], user_id_for("flo@example.com"));
    assert_eq!(claims["aud"], PROJECT);
    assert_eq!(claims["email"], "flo@example.com");
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        DEFAULT_TOKEN_SECONDS
    );
    // A freshly signed-up user: no display name, e-mail not verified yet (as at Stack Auth).
    assert_eq!(claims["name"], Value::Null);
    assert_eq!(claims["email_verified"], false);
}

#[tokio::test]
async fn dev_token_before_sign_up_is_the_same_user() {
    let (base, sim) = start().await;
    let http = client();

    let minted = send(
        http.post(format!("{base}/dev/token"))
            .json(&json!({ "email": "Gus@Example.com" })),
    )
    .await;
    assert_eq!(minted.body["user_id"], user_id_for("gus@example.com"));
    let claims = verify(
        &http,
        &base,
        &sim.issuer.issuer,
        minted.body["access_token"].as_str().expect("token"),
    )
    .await;
    assert_eq!(claims["name"], "gus");
    assert_eq!(claims["email_verified"], true);

    // The minted user can use its profile right away...
    let me = send(server(http.get(format!("{base}/api/v1/users/me"))).header(
        "x-stack-access-token",
        minted.body["access_token"].as_str().expect("token"),
    ))
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["has_password"], false);
    // ...and signing up later keeps its id.
    let up = sign_up(&http, &base, "gus@example.com", "password-1").await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(up.body["user_id"], minted.body["user_id"]);
    assert_eq!(
        sign_in(&http, &base, "gus@example.com", "password-1")
            .await
            .body["user_id"],
        minted.body["user_id"]
    );
    assert_eq!(
        sign_up(&http, &base, "gus@example.com", "password-2")
            .await
            .status,
        409
    );
    let again = send(
        http.post(format!("{base}/dev/token"))
            .json(&json!({ "email": "gus@example.com" })),
    )
    .await;
    assert_eq!(again.body["user_id"], minted.body["user_id"]);
}

async fn authorize(
    http: &reqwest::Client,
    base: &str,
    provider: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut query = vec![
        ("client_id", PROJECT),
        ("client_secret", PUBLIC_CLIENT_SECRET),
        ("redirect_uri", "http://localhost:3000/auth/callback"),
        ("scope", "legacy"),
        ("state", "st4te"),
        ("grant_type", "authorization_code"),
        ("code_challenge", "challenge"),
        ("code_challenge_method", "S256"),
        ("response_type", "code"),
    ];
    query.extend_from_slice(extra);
    http.get(format!("{base}/api/v1/auth/oauth/authorize/{provider}"))
        .query(&query)
        .send()
        .await
        .expect("authorize")
}

fn query_of(url: &str) -> Vec<(String, String)> {
    request::parse_form(url.split_once('?').expect("query").1)
}

#[tokio::test]
async fn oauth_authorize_redirects_to_google_and_linkedin() {
    let (base, _sim) = start().await;
    let http = client();
    let host = base.trim_start_matches("http://");

    let google = authorize(&http, &base, "google", &[]).await;
    assert_eq!(google.status().as_u16(), 307);
    let location = google.headers()[reqwest::header::LOCATION]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        location.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"),
        "{location}"
    );
    let params = query_of(&location);
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "client_id",
            "scope",
            "response_type",
            "redirect_uri",
            "code_challenge_method",
            "code_challenge",
            "state",
            "access_type",
            "prompt",
            "include_granted_scopes"
        ]
    );
    let get = |params: &[(String, String)], name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect(name)
    };
    assert_eq!(
        get(&params, "redirect_uri"),
        format!("http://{host}/api/v1/auth/oauth/callback/google")
    );
    assert_eq!(get(&params, "scope"), "https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile");
    assert_ne!(get(&params, "state"), "st4te");

    let linkedin = authorize(&http, &base, "linkedin", &[("stack_response_mode", "json")]).await;
    assert_eq!(linkedin.status().as_u16(), 200);
    let body: Value = linkedin.json().await.expect("json");
    let location = body["location"].as_str().expect("location");
    assert!(
        location.starts_with("https://www.linkedin.com/oauth/v2/authorization?"),
        "{location}"
    );
    let params = query_of(location);
    assert_eq!(get(&params, "scope"), "openid profile email");
    assert!(
        params.iter().all(|(k, _)| k != "code_challenge"),
        "LinkedIn has no PKCE"
    );

    let reply = |response: reqwest::Response| async { send_response(response).await };
    assert_known(
        &reply(authorize(&http, &base, "myspace", &[]).await).await,
        400,
        "OAUTH_PROVIDER_NOT_FOUND_OR_NOT_ENABLED",
    );
    assert_known(
        &reply(authorize(&http, &base, "google", &[("client_id", "other")]).await).await,
        400,
        "INVALID_OAUTH_CLIENT_ID_OR_SECRET",
    );
    let missing = send(http.get(format!(
        "{base}/api/v1/auth/oauth/authorize/google?client_id={PROJECT}"
    )))
    .await;
    assert_known(&missing, 400, "SCHEMA_ERROR");
    assert!(missing.body["error"]
        .as_str()
        .expect("message")
        .contains("  - query.redirect_uri must be defined"));
}

async fn send_response(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let known_error = response
        .headers()
        .get(KNOWN_ERROR_HEADER)
        .map(|v| v.to_str().expect("ascii").to_owned());
    Reply {
        status,
        known_error,
        body: response.json().await.unwrap_or(Value::Null),
    }
}

#[tokio::test]
async fn forgot_password_records_the_email_and_the_code_resets() {
    let (base, sim) = start().await;
    let http = client();
    let up = sign_up(&http, &base, "hal@example.com", "password-1").await;

    let send_code = |email: &'static str| {
        send(
            server(http.post(format!("{base}/api/v1/auth/password/send-reset-code"))).json(
                &json!({ "email": email, "callback_url": "http://localhost:3000/reset?lang=en" }),
            ),
        )
    };
    let sent = send_code("HAL@example.com").await;
    assert_eq!(sent.status, 200);
    assert_eq!(
        sent.body,
        json!({ "success": "maybe, only if user with e-mail exists" })
    );
    let nobody = send_code("nobody@example.com").await;
    assert_eq!(nobody.body, sent.body);

    let listed = send(http.get(format!("{base}/dev/emails?to=hal@example.com"))).await;
    let items = listed.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", listed.body);
    let email = &items[0];
    assert_eq!(email["to"], "hal@example.com");
    assert_eq!(email["template"], "password_reset");
    assert_eq!(email["user_id"], up.body["user_id"]);
    let code = email["code"].as_str().expect("code");
    assert_eq!(code.len(), 45);
    assert_eq!(
        email["link"],
        format!("http://localhost:3000/reset?lang=en&code={code}")
    );
    assert_eq!(sim.emails().len(), 1);

    let check = send(
        server(http.post(format!("{base}/api/v1/auth/password/reset/check-code")))
            .json(&json!({ "code": code.to_uppercase() })),
    )
    .await;
    assert_eq!(check.body, json!({ "is_code_valid": true }));
    let reset = send(
        server(http.post(format!("{base}/api/v1/auth/password/reset")))
            .json(&json!({ "code": code, "password": "password-2" })),
    )
    .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(reset.body, json!({ "success": true }));
    assert_eq!(
        sign_in(&http, &base, "hal@example.com", "password-2")
            .await
            .status,
        200
    );
    assert_known(
        &sign_in(&http, &base, "hal@example.com", "password-1").await,
        400,
        "EMAIL_PASSWORD_MISMATCH",
    );
    let reused = send(
        server(http.post(format!("{base}/api/v1/auth/password/reset")))
            .json(&json!({ "code": code, "password": "password-3" })),
    )
    .await;
    assert_known(&reused, 409, "VERIFICATION_CODE_ALREADY_USED");
    let unknown = send(
        server(http.post(format!("{base}/api/v1/auth/password/reset")))
            .json(&json!({ "code": "x".repeat(45), "password": "password-3" })),
    )
    .await;
    assert_known(&unknown, 404, "VERIFICATION_CODE_NOT_FOUND");

    assert_eq!(
        http.delete(format!("{base}/dev/emails"))
            .send()
            .await
            .expect("delete")
            .status()
            .as_u16(),
        204
    );
    assert!(sim.emails().is_empty());
}

#[tokio::test]
async fn profile_get_and_update() {
    let (base, _sim) = start().await;
    let http = client();
    let up = sign_up(&http, &base, "ivy@example.com", "password-1").await;
    let user_id = up.body["user_id"].as_str().expect("id").to_owned();
    let token = up.body["access_token"].as_str().expect("token").to_owned();
    let user_url = format!("{base}/api/v1/users/{user_id}");

    let read = send(server(http.get(&user_url))).await;
    assert_eq!(read.status, 200, "{}", read.body);
    for (name, value) in [
        ("id", json!(user_id)),
        ("primary_email", json!("ivy@example.com")),
        ("primary_email_verified", json!(false)),
        ("primary_email_auth_enabled", json!(true)),
        ("display_name", Value::Null),
        ("has_password", json!(true)),
        ("auth_with_email", json!(true)),
        ("client_metadata", Value::Null),
        ("client_read_only_metadata", Value::Null),
        ("server_metadata", Value::Null),
        ("oauth_providers", json!([])),
        ("is_anonymous", json!(false)),
        ("restricted_reason", Value::Null),
    ] {
        assert_eq!(read.body[name], value, "{name}");
    }
    assert!(read.body["signed_up_at_millis"].is_i64());
    assert!(read.body["last_active_at_millis"].is_i64());

    let patched = send(server(http.patch(&user_url)).json(&json!({
        "display_name": "Ivy",
        "client_metadata": { "locale": "fr" },
        "server_metadata": { "tenant_id": "t1", "role": "admin" },
        "primary_email_verified": true,
    })))
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["display_name"], "Ivy");
    assert_eq!(
        patched.body["server_metadata"],
        json!({ "tenant_id": "t1", "role": "admin" })
    );
    assert_eq!(patched.body["primary_email_verified"], true);

    // Metadata is replaced whole, and the user seen through its own token matches.
    send(
        server(http.patch(&user_url))
            .json(&json!({ "server_metadata": { "role": "member" }, "display_name": "" })),
    )
    .await;
    let me = send(
        server(http.get(format!("{base}/api/v1/users/me"))).header("x-stack-access-token", &token),
    )
    .await;
    assert_eq!(me.body["id"], user_id);
    assert_eq!(me.body["server_metadata"], json!({ "role": "member" }));
    assert_eq!(me.body["client_metadata"], json!({ "locale": "fr" }));
    assert_eq!(me.body["display_name"], Value::Null);

    // Client access sees the client view and cannot set server metadata.
    let client_me = |request: reqwest::RequestBuilder| {
        request
            .header("x-stack-project-id", PROJECT)
            .header("x-stack-access-type", "client")
            .header("x-stack-access-token", &token)
    };
    let view = send(client_me(http.get(format!("{base}/api/v1/users/me")))).await;
    assert_eq!(view.status, 200);
    assert!(view.body.get("server_metadata").is_none());
    let refused = send(
        client_me(http.patch(format!("{base}/api/v1/users/me")))
            .json(&json!({ "server_metadata": {} })),
    )
    .await;
    assert_known(&refused, 400, "SCHEMA_ERROR");
    assert_eq!(
        refused.body["error"],
        "Request validation failed on PATCH /api/v1/users/me:\n  - body contains unknown properties: server_metadata"
    );

    let unknown = send(server(
        http.get(format!("{base}/api/v1/users/{}", uuid::Uuid::new_v4())),
    ))
    .await;
    assert_known(&unknown, 404, "USER_NOT_FOUND");
    let unknown_patch = send(
        server(http.patch(format!("{base}/api/v1/users/{}", uuid::Uuid::new_v4())))
            .json(&json!({ "display_name": "x" })),
    )
    .await;
    assert_known(&unknown_patch, 404, "USER_NOT_FOUND");
    let no_user = send(server(http.get(format!("{base}/api/v1/users/me")))).await;
    assert_known(&no_user, 400, "CANNOT_GET_OWN_USER_WITHOUT_USER");

    // A primary e-mail another user has is refused.
    sign_up(&http, &base, "jo@example.com", "password-1").await;
    let taken =
        send(server(http.patch(&user_url)).json(&json!({ "primary_email": "JO@example.com" })))
            .await;
    assert_known(&taken, 409, "USER_EMAIL_ALREADY_EXISTS");
}
