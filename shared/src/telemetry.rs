//! Logging setup shared by every binary: JSON lines on Lambda (or LOG_FORMAT=json), readable
//! text locally; the levels come from RUST_LOG (default info). Logs go to stderr, so a
//! command's stdout carries only its answer (Lambda captures both).
//!
//! RUST_LOG takes a default level and `target=level` directives, comma-separated
//! (`warn,shared=debug,tower_http=info`), a target matching itself and its submodules. It is
//! read by tracing-subscriber's `Targets` rather than its `EnvFilter`, whose span and field
//! directives we never used and whose regex engine was a few hundred KB of every function. A
//! value that does not parse is reported on stderr and `info` is used.

use tracing_subscriber::{filter::Targets, fmt, layer::SubscriberExt, util::SubscriberInitExt};

pub fn init() {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json")
        || std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let layer = fmt::layer().with_target(false).with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(layer.json().flatten_event(true)).try_init()
    } else {
        registry.with(layer).try_init()
    };
}

fn filter(rust_log: Option<&str>) -> Targets {
    let default = || Targets::new().with_default(tracing::Level::INFO);
    match rust_log.map(str::trim) {
        None | Some("") => default(),
        Some(directives) => directives.parse().unwrap_or_else(|err| {
            eprintln!("RUST_LOG={directives:?} is not a list of target=level directives ({err}); logging at info");
            default()
        }),
    }
}

/// rustls needs one process-wide crypto provider; we build with aws-lc-rs only.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use tracing::{level_filters::LevelFilter, Level};

    use super::filter;

    #[test]
    fn rust_log_sets_a_default_and_per_target_levels() {
        let unset = filter(None);
        assert!(unset.would_enable("shared::billing", &Level::INFO));
        assert!(!unset.would_enable("shared::billing", &Level::DEBUG));
        let set = filter(Some("warn,shared=debug,tower_http::trace=off"));
        assert!(set.would_enable("shared::billing", &Level::DEBUG));
        assert!(!set.would_enable("hyper::proto", &Level::INFO));
        assert!(set.would_enable("hyper::proto", &Level::WARN));
        assert!(!set.would_enable("tower_http::trace::on_response", &Level::ERROR));
        assert_eq!(
            filter(Some("debug")).default_level(),
            Some(LevelFilter::DEBUG)
        );
    }

    #[test]
    fn an_unreadable_rust_log_falls_back_to_info() {
        for value in ["", "  ", "shared=loud", "[span{x=1}]=debug"] {
            let fallback = filter(Some(value));
            assert_eq!(fallback.default_level(), Some(LevelFilter::INFO), "{value}");
        }
    }
}
