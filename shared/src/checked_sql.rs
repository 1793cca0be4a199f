//! The registry of every module's statements (declared with `crate::db::statements!`; see
//! `db/statements.rs`), prepared by `tests/it/checked_sql.rs`, and the guard tests that keep
//! SQL out of call sites. Nothing in the crate imports this module, so listing every module
//! here makes no import cycle.

use crate::db::statements::Statement;

/// Every module's statements. A `statements!` block missing here fails the guard test.
pub const REGISTRY: &[&[Statement]] = &[
    crate::admin::agents::sql::STATEMENTS,
    crate::admin::analytics::sql::STATEMENTS,
    crate::admin::audit::sql::STATEMENTS,
    crate::admin::events::sql::STATEMENTS,
    crate::admin::purchases::sql::STATEMENTS,
    crate::admin::secrets::sql::STATEMENTS,
    crate::admin::users::sql::STATEMENTS,
    crate::agents::sql::STATEMENTS,
    crate::billing::sql::STATEMENTS,
    crate::billing::disputes::sql::STATEMENTS,
    crate::billing::payments::sql::STATEMENTS,
    crate::calls::batches::sql::STATEMENTS,
    crate::calls::lead_merge::sql::STATEMENTS,
    crate::calls::lifecycle::sql::STATEMENTS,
    crate::calls::owner::sql::STATEMENTS,
    crate::calls::outbound::sql::STATEMENTS,
    crate::calls::read::sql::STATEMENTS,
    crate::calls::recording::sql::STATEMENTS,
    crate::calls::rollup::sql::STATEMENTS,
    crate::contacts::sql::STATEMENTS,
    crate::contacts::lookup::sql::STATEMENTS,
    crate::contacts::upload::sql::STATEMENTS,
    crate::credits::sql::STATEMENTS,
    crate::credits::holds::sql::STATEMENTS,
    crate::dashboard::sql::STATEMENTS,
    crate::db::sql::STATEMENTS,
    crate::db::migrate::sql::STATEMENTS,
    crate::email::sql::STATEMENTS,
    crate::email::outbox::sql::STATEMENTS,
    crate::export_jobs::sql::STATEMENTS,
    crate::leads::sql::STATEMENTS,
    crate::leads::analytics::sql::STATEMENTS,
    crate::leads::read::sql::STATEMENTS,
    crate::leads::rollup::sql::STATEMENTS,
    crate::settings::sql::STATEMENTS,
    crate::users::sql::STATEMENTS,
    crate::webhooks::sql::STATEMENTS,
];

/// Every registered statement.
pub fn all() -> impl Iterator<Item = &'static Statement> {
    REGISTRY.iter().flat_map(|statements| statements.iter())
}

#[cfg(test)]
mod tests {
    use std::{
        collections::BTreeSet,
        fs,
        path::{Path, PathBuf},
    };

    /// Methods of tokio-postgres / deadpool clients and transactions that run SQL text.
    const RUNNING_METHODS: &[&str] = &[
        "cached_query",
        "cached_query_one",
        "cached_query_opt",
        "cached_execute",
        "query",
        "query_one",
        "query_opt",
        "query_raw",
        "query_typed",
        "query_typed_raw",
        "execute",
        "execute_raw",
        "prepare",
        "prepare_cached",
        "prepare_typed",
        "prepare_typed_cached",
        "batch_execute",
        "simple_query",
        "copy_in",
        "copy_out",
    ];

    fn sources() -> Vec<(String, String)> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
            for entry in fs::read_dir(dir).expect("readable source folder") {
                let path = entry.expect("directory entry").path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let relative = path.strip_prefix(root).expect("under src");
                    let relative = relative.to_string_lossy().replace('\\', "/");
                    out.push((
                        relative,
                        fs::read_to_string(&path).expect("readable source"),
                    ));
                }
            }
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out
    }

    /// The call sites in `source` whose SQL is written inline: `(line, call)`.
    fn inline_statements(source: &str) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        for method in RUNNING_METHODS {
            let call = format!(".{method}(");
            for (at, _) in source.match_indices(&call) {
                let argument = source[at + call.len()..].trim_start();
                let argument = argument.strip_prefix('&').unwrap_or(argument);
                let inline = ["\"", "r\"", "r#\"", "format!", "concat!"]
                    .iter()
                    .any(|start| argument.starts_with(start));
                if inline {
                    let line = source[..at].lines().count().max(1);
                    found.push((line, call.clone()));
                }
            }
        }
        found
    }

    #[test]
    fn no_statement_is_written_inline() {
        let offenders: Vec<String> = sources()
            .iter()
            .filter(|(path, _)| path != "checked_sql.rs")
            .flat_map(|(path, source)| {
                inline_statements(source)
                    .into_iter()
                    .map(move |(line, call)| format!("src/{path}:{line} {call}"))
            })
            .collect();
        assert!(
            offenders.is_empty(),
            "SQL written at the call site; name it in the module's `sql` section \
             (see shared/src/db/statements.rs):\n{}",
            offenders.join("\n")
        );
    }

    /// The byte ranges of `source`'s `pub mod sql { ... }` sections.
    fn sql_sections(source: &str) -> Vec<std::ops::Range<usize>> {
        let mut sections = Vec::new();
        for (start, _) in source.match_indices("pub mod sql {") {
            let mut depth = 0;
            for (offset, c) in source[start..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            sections.push(start..start + offset);
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        sections
    }

    /// Lines of `source` with a string literal that starts like a statement, outside the
    /// module's `sql` section (a statement kept in a variable or built with `format!`). A verb
    /// followed by a path is an HTTP request line (the clients' tests), not SQL.
    fn statements_outside_sql_sections(source: &str) -> Vec<usize> {
        const VERBS: &[&str] = &[
            "SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH ", "LOCK ", "CREATE ", "ALTER ",
        ];
        let sections = sql_sections(source);
        source
            .match_indices('"')
            .filter(|(at, _)| {
                let text = source[at + 1..].trim_start();
                VERBS
                    .iter()
                    .any(|verb| text.starts_with(verb) && !text[verb.len()..].starts_with('/'))
                    && !sections.iter().any(|section| section.contains(at))
            })
            .map(|(at, _)| source[..at].lines().count().max(1))
            .collect()
    }

    #[test]
    fn statement_text_lives_in_sql_sections() {
        let offenders: Vec<String> = sources()
            .iter()
            .filter(|(path, _)| {
                path != "checked_sql.rs"
                    && path != "db/filter.rs"
                    && !path.starts_with("db/filter/")
            })
            .flat_map(|(path, source)| {
                let whole_file_is_a_section = path == "sql.rs" || path.ends_with("/sql.rs");
                let lines = if whole_file_is_a_section {
                    Vec::new()
                } else {
                    statements_outside_sql_sections(source)
                };
                lines
                    .into_iter()
                    .map(move |line| format!("src/{path}:{line}"))
            })
            .collect();
        assert!(
            offenders.is_empty(),
            "SQL text outside a `pub mod sql` section (see shared/src/db/statements.rs):\n{}",
            offenders.join("\n")
        );
    }

    #[test]
    fn every_statements_block_is_registered() {
        let declaring: BTreeSet<String> = sources()
            .into_iter()
            .filter(|(path, source)| {
                !["checked_sql.rs", "db/statements.rs"].contains(&path.as_str())
                    && source.contains("statements! {")
            })
            .map(|(path, _)| path)
            .collect();
        let registered: BTreeSet<String> = super::all()
            .map(|statement| {
                let file = statement.file.replace('\\', "/");
                file.split_once("src/")
                    .map_or(file.clone(), |(_, p)| p.to_owned())
            })
            .collect();
        let missing: Vec<_> = declaring.difference(&registered).collect();
        assert!(
            missing.is_empty(),
            "these files declare statements that shared::checked_sql::REGISTRY does not list: {missing:?}"
        );
    }

    /// In the file that builds the filter, or in the `sql.rs` beside it or under it.
    #[test]
    fn lists_built_from_filters_register_their_fullest_variant() {
        let sources = sources();
        let registers = |path: &str| {
            let beside = path
                .rsplit_once('/')
                .map(|(dir, _)| format!("{dir}/sql.rs"));
            let under = path
                .strip_suffix(".rs")
                .map(|module| format!("{module}/sql.rs"));
            sources.iter().any(|(other, source)| {
                (other == path || Some(other) == beside.as_ref() || Some(other) == under.as_ref())
                    && source.contains("fullest {")
            })
        };
        let missing: Vec<&String> = sources
            .iter()
            .filter(|(path, source)| {
                path != "db/filter.rs" && source.contains("Filter::default()") && !registers(path)
            })
            .map(|(path, _)| path)
            .collect();
        assert!(
            missing.is_empty(),
            "these files build statements with a Filter but register no fullest variant: {missing:?}"
        );
    }

    #[test]
    fn names_are_unique() {
        let mut seen = BTreeSet::new();
        for statement in super::all() {
            assert!(seen.insert(statement.name), "{} twice", statement.name);
        }
    }

    #[test]
    fn the_guard_sees_inline_statements() {
        let source = "client.query_one(\n  \"SELECT 1\", &[]);\n tx.execute(&format!(\"x\"), &[]);\n db.query(sql::OK, &[]);";
        let found = inline_statements(source);
        assert_eq!(found.len(), 2, "{found:?}");
        let source = "let s = format!(\"SELECT {X} FROM t\");\npub mod sql {\n const A: &str = \"SELECT 1\";\n}\nlet r = \"DELETE /v1/agents/a\";\n";
        assert_eq!(statements_outside_sql_sections(source), vec![1]);
    }
}
