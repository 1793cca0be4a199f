//! Runs the local simulators. Configured by environment:
//! STACK_SIM_PORT (default 8102), SIM_STATE_DIR (keys; default .local/sim),
//! STACK_PROJECT_ID (default local-project), JWT_ISSUER (default Stack Auth's form).

use std::{net::SocketAddr, path::PathBuf};

use simulators::{keys::KeyRing, stack_auth};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let state_dir = PathBuf::from(env("SIM_STATE_DIR").unwrap_or_else(|| ".local/sim".into()));
    let project_id = env("STACK_PROJECT_ID").unwrap_or_else(|| "local-project".into());
    let port: u16 = env("STACK_SIM_PORT").map_or(Ok(8102), |p| p.parse())?;

    let issuer = stack_auth::Issuer::new(
        KeyRing::load_or_create(&state_dir)?,
        &project_id,
        env("JWT_ISSUER"),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    tracing::info!(%addr, project_id, "Stack Auth simulator: JWKS at /api/v1/projects/{project_id}/.well-known/jwks.json");
    stack_auth::serve(addr, issuer).await?;
    Ok(())
}
