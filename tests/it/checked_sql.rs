//! Every statement the product runs (shared::checked_sql::REGISTRY) prepared against the
//! migrated schema: a wrong table, column or type fails here, naming the statement. Needs only
//! `DATABASE_URL`, so `DATABASE_URL=<migrated db> cargo test --test it checked_sql` runs it alone.

#[tokio::test]
async fn every_statement_prepares_against_the_schema() {
    let url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: run through scripts/test, or point it at a migrated database",
    );
    let client = crate::support::connect(&url).await;
    let mut checked = 0;
    let mut refused = Vec::new();
    for statement in shared::checked_sql::all() {
        let text = statement.text();
        checked += 1;
        if let Err(err) = client.prepare(&text).await {
            let message = err
                .as_db_error()
                .map_or_else(|| err.to_string(), |db| db.message().to_owned());
            refused.push(format!(
                "{} ({}): {message}\n    {}",
                statement.name,
                statement.file,
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    assert!(
        refused.is_empty(),
        "{} of {checked} statements do not prepare against the migrated schema:\n{}",
        refused.len(),
        refused.join("\n")
    );
}
