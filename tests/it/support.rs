//! Access to the running stack: its addresses, a token minter using the simulator's keys, and
//! a direct database connection for checks the API does not expose.

use std::{path::PathBuf, sync::OnceLock};

use jsonwebtoken::Algorithm;
use serde_json::Value;
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
    pub fn identity(&self) -> shared::auth::Claims {
        shared::auth::Claims {
            sub: self.sub.clone(),
            email: Some(self.email.clone()),
            email_verified: true,
            name: None,
            is_anonymous: false,
            is_restricted: false,
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

/// Reads a JSON body, failing the test with the raw text when it is not JSON.
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
    let (client, connection) =
        tokio_postgres::connect(&stack().database_url, tokio_postgres::NoTls)
            .await
            .expect("database reachable");
    tokio::spawn(connection);
    client
}

/// A pool of the product's own kind; one per test, since connections belong to a test's runtime.
pub fn pool(size: usize) -> deadpool_postgres::Pool {
    shared::db::pool(&stack().database_url, size).expect("pool")
}
