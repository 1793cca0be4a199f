//! A missing or malformed required setting stops the process with a message naming it.

use std::process::Command;

fn run_local(env: &[(&str, &str)]) -> (bool, String) {
    let bin = std::env::var("LOCAL_BIN").expect("scripts/test sets LOCAL_BIN");
    let output = Command::new(bin)
        .arg("serve")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn missing_and_malformed_settings_are_named() {
    let (ok, text) = run_local(&[("STACK_PROJECT_ID", "p")]);
    assert!(!ok);
    assert!(text.contains("DATABASE_URL"), "{text}");

    let (ok, text) = run_local(&[("DATABASE_URL", "postgres://a@127.0.0.1:1/x")]);
    assert!(!ok);
    assert!(text.contains("STACK_PROJECT_ID"), "{text}");

    let (ok, text) = run_local(&[
        ("DATABASE_URL", "postgres://a@127.0.0.1:1/x"),
        ("STACK_PROJECT_ID", "p"),
        ("JWKS_URL", "not a url"),
    ]);
    assert!(!ok);
    assert!(text.contains("JWKS_URL"), "{text}");

    let (ok, text) = run_local(&[
        ("DATABASE_URL", "postgres://a@127.0.0.1:1/x"),
        ("STACK_PROJECT_ID", "p"),
        ("PORT", "eighty"),
    ]);
    assert!(!ok);
    assert!(text.contains("PORT"), "{text}");
}
