//! The Postgres pool. Lambda runs one invocation per instance, so pools stay small; TLS is used
//! whenever the server offers it (Neon requires it), plain TCP otherwise (the local cluster).

pub mod filter;
mod migrate;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

pub use deadpool_postgres::{Client, Transaction};
pub use migrate::{migrate, Migration, MIGRATIONS};

pub fn pool(
    database_url: &str,
    max_size: usize,
) -> Result<Pool, Box<dyn std::error::Error + Send + Sync>> {
    let mut pg: tokio_postgres::Config = database_url.parse()?;
    pg.connect_timeout(Duration::from_secs(5));
    if pg.get_application_name().is_none() {
        pg.application_name("ai-calling-backend");
    }
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config());
    let manager = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()?)
}

fn tls_config() -> rustls::ClientConfig {
    crate::telemetry::install_crypto_provider();
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}
