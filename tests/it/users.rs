//! First contact: the user is created once with 15 credits however many requests race;
//! suspended users are refused; admins come from the role column or ADMIN_EMAILS.

use futures::future::join_all;
use serde_json::{json, Value};

use crate::support::{db, error_code, get, json, stack, url, NewUser};

#[tokio::test]
async fn twenty_concurrent_first_requests_create_one_user_with_one_bonus() {
    let user = NewUser::new();
    let token = user.token();
    let responses = join_all((0..20).map(|i| {
        let token = token.clone();
        async move {
            let path = if i % 2 == 0 {
                "/api/user/credits"
            } else {
                "/billing/credits"
            };
            let response = get(path, &token).await;
            assert_eq!(response.status(), 200);
            json(response).await
        }
    }))
    .await;
    for body in &responses {
        assert_eq!(body["credits"], 15, "{body}");
        assert_eq!(body["low_credits"], false);
        assert_eq!(body["status"], "active");
    }

    let db = db().await;
    let users = db
        .query(
            "SELECT id, email, credits FROM users WHERE auth_subject = $1",
            &[&user.sub],
        )
        .await
        .expect("query");
    assert_eq!(users.len(), 1);
    assert_eq!(
        users[0].get::<_, Option<String>>("email").as_deref(),
        Some(user.email.as_str())
    );
    let id: uuid::Uuid = users[0].get("id");
    let ledger = db
        .query(
            "SELECT type, amount, balance_after FROM credit_transactions WHERE user_id = $1",
            &[&id],
        )
        .await
        .expect("query");
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].get::<_, String>("type"), "bonus");
    assert_eq!(ledger[0].get::<_, i64>("amount"), 15);
    assert_eq!(ledger[0].get::<_, i64>("balance_after"), 15);
}

#[tokio::test]
async fn profile_reads_and_updates() {
    let user = NewUser::new();
    let token = user.token();
    let profile = json(get("/auth/profile", &token).await).await;
    assert_eq!(profile["email"], user.email.as_str());
    assert_eq!(profile["credits"], 15);
    assert_eq!(profile["is_active"], true);
    assert_eq!(profile["role"], "user");
    assert_eq!(profile["auth_provider"], "email");

    // A new name is written to Stack Auth first, so the user must exist there too.
    let sim = std::env::var("STACK_SIM_URL").expect("scripts/test sets STACK_SIM_URL");
    let minted = stack()
        .http
        .post(format!("{sim}/dev/token"))
        .json(&json!({ "email": user.email, "user_id": user.sub }))
        .send()
        .await
        .expect("the simulator answers");
    assert!(minted.status().is_success());

    let hostile = "Robert'); DROP TABLE users;-- <script>alert(1)</script> 山田";
    let response = stack()
        .http
        .put(url("/auth/profile"))
        .bearer_auth(&token)
        .json(&json!({ "name": hostile }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["name"], hostile, "stored verbatim");
    assert_eq!(
        json(get("/auth/profile", &token).await).await["name"],
        hostile
    );

    for bad in [
        json!({"name": "  "}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "a\u{7}b"}),
    ] {
        let response = stack()
            .http
            .put(url("/auth/profile"))
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .expect("answers");
        assert_eq!(error_code(response, 400).await, "validation_error", "{bad}");
    }
    assert_eq!(
        json(get("/auth/profile", &token).await).await["name"],
        hostile,
        "unchanged by bad input"
    );
}

#[tokio::test]
async fn suspended_users_get_403_everywhere() {
    let user = NewUser::new();
    let token = user.token();
    assert_eq!(get("/auth/profile", &token).await.status(), 200);
    db().await
        .execute(
            "UPDATE users SET status = 'suspended' WHERE auth_subject = $1",
            &[&user.sub],
        )
        .await
        .expect("suspend");
    // The lists send their reads beside the account's lookup once the API knows the account
    // (since the first request): they too must wait for its status.
    for path in [
        "/auth/profile",
        "/api/user/credits",
        "/billing/credits",
        "/billing/history",
        "/api/calls",
        "/api/leads",
        "/analytics/calls",
        "/analytics/leads",
    ] {
        assert_eq!(
            error_code(get(path, &token).await, 403).await,
            "account_suspended",
            "{path}"
        );
    }
}

#[tokio::test]
async fn admins_come_from_the_role_column_or_verified_admin_emails() {
    let user = NewUser::new();
    let token = user.token();
    assert_eq!(
        json(get("/auth/profile", &token).await).await["role"],
        "user"
    );
    db().await
        .execute(
            "UPDATE users SET role = 'admin' WHERE auth_subject = $1",
            &[&user.sub],
        )
        .await
        .expect("promote");
    assert_eq!(
        json(get("/auth/profile", &token).await).await["role"],
        "admin"
    );

    let admin_email =
        std::env::var("TEST_ADMIN_EMAIL").expect("scripts/test sets TEST_ADMIN_EMAIL");
    let listed = NewUser {
        sub: uuid::Uuid::new_v4().to_string(),
        email: admin_email,
    };
    assert_eq!(
        json(get("/auth/profile", &listed.token()).await).await["role"],
        "admin"
    );
    let unverified = listed.token_with(|c| c["email_verified"] = json!(false));
    assert_eq!(
        json(get("/auth/profile", &unverified).await).await["role"],
        "user",
        "an unverified email does not make an admin"
    );
}

/// A token for `user` from the Stack Auth simulator, whose account has these OAuth providers
/// connected from now on.
async fn signed_in_with(user: &NewUser, providers: &[&str]) -> String {
    let sim = std::env::var("STACK_SIM_URL").expect("scripts/test sets STACK_SIM_URL");
    let minted: Value = stack()
        .http
        .post(format!("{sim}/dev/token"))
        .json(&json!({ "email": user.email, "user_id": user.sub, "oauth_providers": providers }))
        .send()
        .await
        .expect("the simulator answers")
        .json()
        .await
        .expect("json");
    minted["access_token"].as_str().expect("a token").to_owned()
}

/// The sign-in provider the profile shows.
async fn auth_provider(token: &str) -> Value {
    json(get("/auth/profile", token).await).await["auth_provider"].take()
}

/// Moves the account's last sign-in provider check `by` (an SQL interval) into the past.
async fn age_auth_provider_check(user: &NewUser, by: &str) {
    db().await
        .execute(
            "UPDATE users SET auth_provider_checked_at = auth_provider_checked_at - $2::text::interval
             WHERE auth_subject = $1",
            &[&user.sub, &by],
        )
        .await
        .expect("age the check");
}

#[tokio::test]
async fn auth_provider_comes_from_stack_auth_and_follows_it() {
    let google = NewUser::new();
    let token = signed_in_with(&google, &["google"]).await;
    assert_eq!(auth_provider(&token).await, "google");
    let password = NewUser::new();
    let token = signed_in_with(&password, &[]).await;
    assert_eq!(auth_provider(&token).await, "email");

    // LinkedIn connected later: the next read after the hourly recheck shows it.
    let token = signed_in_with(&password, &["linkedin"]).await;
    assert_eq!(
        auth_provider(&token).await,
        "email",
        "checked within the hour"
    );
    age_auth_provider_check(&password, "2 hours").await;
    assert_eq!(auth_provider(&token).await, "linkedin");
    let admin_view = db()
        .await
        .query_one(
            "SELECT auth_provider FROM users WHERE auth_subject = $1",
            &[&password.sub],
        )
        .await
        .expect("user")
        .get::<_, String>(0);
    assert_eq!(
        admin_view, "linkedin",
        "stored, so the admin's views show it too"
    );
}

#[tokio::test]
async fn a_failed_auth_provider_check_is_retried_after_five_minutes_not_on_every_read() {
    // Signed by the test, so the Stack Auth simulator does not know the account: the check
    // fails and the stored provider stands.
    let user = NewUser::new();
    let token = user.token();
    assert_eq!(auth_provider(&token).await, "email");
    let checked_ago = || async {
        db().await
            .query_one(
                "SELECT extract(epoch FROM now() - auth_provider_checked_at)::float8 FROM users WHERE auth_subject = $1",
                &[&user.sub],
            )
            .await
            .expect("user")
            .get::<_, Option<f64>>(0)
            .expect("the failed check is dated")
    };
    let ago = checked_ago().await;
    assert!(
        (55.0 * 60.0 - 60.0..=55.0 * 60.0 + 60.0).contains(&ago),
        "dated so the hourly recheck falls five minutes later: {ago} s ago"
    );

    // Stack Auth knows the account from now on, with Google connected.
    let token = signed_in_with(&user, &["google"]).await;
    assert_eq!(
        auth_provider(&token).await,
        "email",
        "not asked again within five minutes"
    );
    age_auth_provider_check(&user, "6 minutes").await;
    assert_eq!(
        auth_provider(&token).await,
        "google",
        "asked again once the five minutes passed"
    );
    assert!(
        checked_ago().await < 60.0,
        "the successful check is dated now"
    );
}

#[tokio::test]
async fn an_email_changed_at_the_provider_is_taken_once_verified() {
    let user = NewUser::new();
    assert_eq!(
        json(get("/auth/profile", &user.token()).await).await["email"],
        user.email.as_str()
    );
    let moved = format!("moved-{}", user.email);
    let unverified = user.token_with(|claims| {
        claims["email"] = json!(moved);
        claims["email_verified"] = json!(false);
    });
    let verified = user.token_with(|claims| claims["email"] = json!(moved));
    for (token, expected) in [(unverified, &user.email), (verified, &moved)] {
        // The first request may answer from before the change; the next one after it.
        get("/auth/profile", &token).await;
        let profile = json(get("/auth/profile", &token).await).await;
        assert_eq!(profile["email"], expected.as_str(), "{profile}");
    }
}
