//! Migrations through the stack's PgBouncer (transaction pooling, as Neon's pooler), where a
//! session-level lock would stay on whichever server connection took it: two runners at once on
//! a fresh database both finish, each migration is applied once, and no advisory lock is left
//! for the next runner to wait on. Also: the deployed secret's direct URL is the one migrations
//! use, and the sessions they leave behind do not compile statements just in time.

use std::time::Duration;

use serde_json::json;

use crate::support::{connect, direct_url, stack, ScratchDatabase};

async fn migrate_through(url: &str) -> usize {
    let pool = shared::db::pool(url, 1).expect("pool");
    let mut client = pool.get().await.expect("a connection");
    shared::db::migrate(&mut client).await.expect("migrate")
}

#[tokio::test]
async fn concurrent_migrations_through_the_transaction_pooler_finish_and_leave_no_lock() {
    let database = ScratchDatabase::create("migrate").await;
    let pooled = database.url(&stack().database_url);

    let patience = Duration::from_secs(60);
    let (first, second) = tokio::time::timeout(
        patience,
        futures::future::join(migrate_through(&pooled), migrate_through(&pooled)),
    )
    .await
    .expect("two concurrent runs through the pooler finish");
    assert_eq!(
        first + second,
        shared::db::MIGRATIONS.len(),
        "each applied once"
    );
    let again = tokio::time::timeout(Duration::from_secs(20), migrate_through(&pooled))
        .await
        .expect("a later run does not wait on a lock left behind");
    assert_eq!(again, 0);

    let held: i64 = database
        .admin
        .query_one(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
             WHERE l.locktype = 'advisory' AND d.datname = $1",
            &[&database.name],
        )
        .await
        .expect("lock count")
        .get(0);
    assert_eq!(held, 0, "no advisory lock outlives the runs");
    let recorded: i64 = connect(&database.url(&direct_url()))
        .await
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .expect("history")
        .get(0);
    assert_eq!(
        recorded,
        i64::try_from(shared::db::MIGRATIONS.len()).expect("few")
    );

    database.drop().await;
}

async fn jit(url: &str) -> String {
    connect(url)
        .await
        .query_one("SELECT current_setting('jit')", &[])
        .await
        .expect("the setting")
        .get(0)
}

#[tokio::test]
async fn sessions_of_a_migrated_database_do_not_compile_statements() {
    let database = ScratchDatabase::create("jit").await;
    let direct = database.url(&direct_url());
    assert_eq!(jit(&direct).await, "on", "Postgres' default, before");
    drop(database.migrated_connection().await);
    assert_eq!(jit(&direct).await, "off");
    assert_eq!(
        jit(&database.url(&stack().database_url)).await,
        "off",
        "through the pooler"
    );
    database.drop().await;
}

#[tokio::test]
async fn migrations_use_the_direct_url_of_the_database_secret() {
    let secret_id = format!("test/database-{}", uuid::Uuid::new_v4().simple());
    // The pooled URL leads nowhere: only the direct one can answer.
    let document = json!({
        "database_url": "postgres://nobody@127.0.0.1:1/nowhere",
        "database_direct_url": direct_url(),
    });
    let secrets = shared::aws::Service::SecretsManager;
    let input = json!({"Name": secret_id, "SecretString": document.to_string()});
    crate::support::aws(secrets, "CreateSecret", input).await;
    let config = shared::Config::from_lookup(|name| match name {
        "DATABASE_URL" | "DATABASE_DIRECT_URL" => None,
        "DATABASE_SECRET_ID" => Some(secret_id.clone()),
        other => std::env::var(other).ok(),
    })
    .expect("config");
    let state = shared::AppState::new(config).await.expect("state");
    let mut client = state.db().get_direct().await.expect("a direct connection");
    assert_eq!(
        shared::db::migrate(&mut client).await.expect("migrate"),
        0,
        "the stack's database is migrated"
    );
    let input = json!({"SecretId": secret_id, "ForceDeleteWithoutRecovery": true});
    crate::support::aws(secrets, "DeleteSecret", input).await;
}
