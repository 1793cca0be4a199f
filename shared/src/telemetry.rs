//! Logging setup shared by every binary: JSON lines on Lambda (or LOG_FORMAT=json), readable
//! text locally; the level comes from RUST_LOG (default info). Logs go to stderr, so a
//! command's stdout carries only its answer (Lambda captures both).

use tracing_subscriber::{fmt, EnvFilter};

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json")
        || std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// rustls needs one process-wide crypto provider; we build with aws-lc-rs only.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
