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

/// A deploy adds columns while warm connections keep their prepared statements (and, behind
/// Neon's pooler, new connections share the server's): one whose answer names every column of
/// a table (`*`, `t.*`, `RETURNING *`) then fails with "cached plan must not change result
/// type" until the connection goes. So every statement names the columns it answers.
#[tokio::test]
async fn no_statement_answers_differently_once_a_table_gains_a_column() {
    let scratch = crate::support::ScratchDatabase::create("columns").await;
    let client = scratch.migrated_connection().await;
    let shapes = || async {
        let mut shapes = Vec::new();
        for statement in shared::checked_sql::all() {
            let prepared = client.prepare(&statement.text()).await.expect("prepares");
            let columns: Vec<(String, String)> = prepared
                .columns()
                .iter()
                .map(|c| (c.name().to_owned(), c.type_().name().to_owned()))
                .collect();
            shapes.push((statement.name, columns));
        }
        shapes
    };
    let before = shapes().await;
    let tables: Vec<String> = client
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|row| row.get(0))
        .collect();
    for table in &tables {
        client
            .batch_execute(&format!(
                "ALTER TABLE {table} ADD COLUMN added_by_a_deploy int"
            ))
            .await
            .expect("a column added");
    }
    let after = shapes().await;
    drop(client);
    scratch.drop().await;
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(before, after)| before != after)
        .map(|((name, _), _)| *name)
        .collect();
    assert!(
        changed.is_empty(),
        "{} statements answer every column of a table: name the columns instead:\n{}",
        changed.len(),
        changed.join("\n")
    );
}
