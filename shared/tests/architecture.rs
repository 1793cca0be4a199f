//! The house rules of `shared/src`, checked over its source text (fast, no database):
//! - the top-level modules form layers: no module imports a module that imports it back, at
//!   any distance;
//! - no file is over 600 lines before its tests;
//! - every SQL write to `calls` is inside `src/calls/` (the call lifecycle owns the table).
//!
//! Run alone with `cargo test -p shared --test architecture`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

const MAX_LINES_BEFORE_TESTS: usize = 600;

struct Source {
    /// Relative to `src/`, with `/` separators.
    path: String,
    /// The text before the file's `#[cfg(test)]` module (all of it when there is none).
    code: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files
        .into_iter()
        .filter_map(|file| {
            let path = file
                .strip_prefix(&root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            // Test-only files (`tests.rs`, `tests/`) are not part of the architecture.
            if path.ends_with("tests.rs") || path.contains("/tests/") {
                return None;
            }
            let text = fs::read_to_string(&file).expect("readable source");
            let code = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            Some(Source { path, code })
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`calls/read.rs` -> `calls`, `phone.rs` -> `phone`).
fn top_module(path: &str) -> &str {
    let first = path.split('/').next().unwrap_or(path);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// What lib.rs re-exports at the crate root, and where it comes from.
const ROOT_REEXPORTS: [(&str, &str); 3] = [
    ("AppState", "state"),
    ("AppError", "error"),
    ("Config", "config"),
];

/// The top-level modules a file's code names through `crate::`, including inside
/// `use crate::{a, b::c}` groups.
fn imports(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut name = |word: &str| {
        let word = ROOT_REEXPORTS
            .iter()
            .find(|(item, _)| *item == word)
            .map_or(word, |(_, module)| *module);
        if modules.contains(word) {
            found.insert(word.to_owned());
        }
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Each item of the group starts at the group's start or after a comma; nested
            // groups' items belong to the module before them, so only depth 0 counts.
            let mut depth = 0;
            let mut item_start = true;
            let mut word = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                        word.push(c)
                    }
                    _ => {
                        if !word.is_empty() {
                            name(&word);
                            word.clear();
                            item_start = false;
                        }
                    }
                }
            }
            if !word.is_empty() {
                name(&word);
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            name(&word);
        }
    }
    found
}

fn module_graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let sources = sources();
    let modules: BTreeSet<String> = sources
        .iter()
        .map(|s| top_module(&s.path).to_owned())
        .filter(|m| m != "lib")
        .collect();
    // module -> imported module -> the files that import it
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for source in &sources {
        let from = top_module(&source.path);
        if from == "lib" {
            continue;
        }
        let edges = graph.entry(from.to_owned()).or_default();
        for to in imports(&source.code, &modules) {
            if to != from {
                edges.entry(to).or_default().insert(source.path.clone());
            }
        }
    }
    graph
}

/// A cycle through `start`, as the modules along it, if there is one.
fn cycle_from(
    start: &str,
    graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
) -> Option<Vec<String>> {
    fn walk(
        at: &str,
        start: &str,
        graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flat_map(BTreeMap::keys) {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(next, start, graph, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(start, start, graph, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = module_graph();
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_from(module, &graph))
        .map(|cycle| {
            let hops: Vec<String> = cycle
                .iter()
                .zip(cycle.iter().cycle().skip(1))
                .map(|(from, to)| {
                    let files = &graph[from][to];
                    format!("{from} -> {to} (in {})", listed(files))
                })
                .collect();
            hops.join("; ")
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles between top-level modules:\n{}",
        cycles.join("\n")
    );
}

fn listed(files: &BTreeSet<String>) -> String {
    files.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[test]
fn the_cycle_check_sees_grouped_and_plain_imports() {
    let modules: BTreeSet<String> = ["calls", "leads", "state", "error", "tenant"]
        .map(String::from)
        .into();
    let code = "use crate::{\n    calls::{event::X, lifecycle},\n    error::AppResult,\n    AppState,\n};\nfn f() { crate::tenant::TenantId::x(); }";
    let found: Vec<String> = imports(code, &modules).into_iter().collect();
    assert_eq!(found, ["calls", "error", "state", "tenant"]);
    let nested = "use crate::{leads::{self, scoring::LeadScores}, error::AppError};";
    let found: Vec<String> = imports(nested, &modules).into_iter().collect();
    assert_eq!(found, ["error", "leads"]);
}

#[test]
fn no_file_is_over_600_lines_before_its_tests() {
    let long: Vec<String> = sources()
        .into_iter()
        .map(|s| (s.code.lines().count(), s.path))
        .filter(|(lines, _)| *lines > MAX_LINES_BEFORE_TESTS)
        .map(|(lines, path)| format!("{path}: {lines} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES_BEFORE_TESTS} lines before their tests:\n{}",
        long.join("\n")
    );
}

#[test]
fn every_sql_write_to_calls_is_inside_the_calls_module() {
    let writes = ["INSERT INTO calls", "UPDATE calls", "DELETE FROM calls"];
    let outside: Vec<String> = sources()
        .into_iter()
        .filter(|s| !s.path.starts_with("calls/"))
        .flat_map(|s| {
            let code = s.code.to_ascii_uppercase();
            writes
                .iter()
                .filter(|w| {
                    // `calls` followed by a word boundary (not `calls_archive`).
                    code.match_indices(*w).any(|(at, w)| {
                        !code[at + w.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
                })
                .map(|w| format!("{}: {w}", s.path))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        outside.is_empty(),
        "SQL writes to calls outside shared/src/calls/ (use calls::lifecycle):\n{}",
        outside.join("\n")
    );
}

/// Endpoint -> handler -> domain -> query: the HTTP handlers and the processor's handlers
/// (decode, dispatch, find the tenant) hand every statement to a domain module.
#[test]
fn handlers_run_no_sql() {
    let handlers = |path: &str| {
        path.starts_with("http/")
            || [
                "webhooks/batch.rs",
                "webhooks/process.rs",
                "webhooks/elevenlabs.rs",
                "webhooks/stripe.rs",
                "webhooks/ingest.rs",
                "webhooks/reconcile.rs",
            ]
            .contains(&path)
    };
    let calls = [
        ".query(",
        ".query_one(",
        ".query_opt(",
        ".query_raw(",
        ".execute(",
        ".prepare",
    ];
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|s| handlers(&s.path))
        .flat_map(|s| {
            calls
                .iter()
                // A statement is always an argument: `uri.query()` is not SQL.
                .filter(|call| {
                    s.code
                        .match_indices(**call)
                        .any(|(at, call)| !s.code[at + call.len()..].starts_with(')'))
                })
                .map(|call| format!("{}: {call}", s.path))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        found.is_empty(),
        "handlers running SQL themselves:\n{}",
        found.join("\n")
    );
}
