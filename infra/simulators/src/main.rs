//! Runs the local simulators (all in this one process). Configured by environment:
//! - Stack Auth: STACK_SIM_PORT (default 8102), SIM_STATE_DIR (keys; default .local/sim),
//!   STACK_PROJECT_ID (default local-project), JWT_ISSUER (default Stack Auth's form).
//! - ElevenLabs: ELEVENLABS_SIM_PORT (default 8103), ELEVENLABS_API_KEY (the only `xi-api-key`
//!   accepted), ELEVENLABS_WEBHOOK_SECRET (signs post-call webhooks), WEBHOOK_TARGET_URL (our
//!   API's base URL, default http://127.0.0.1:3000). The key and secret fall back to fixed local
//!   values, with a warning, so the simulator never runs unauthenticated.
//! - Stripe: STRIPE_SIM_PORT (default 8104), STRIPE_SECRET_KEY (the only Bearer key accepted;
//!   default sk_test_sim_local, with a warning), STRIPE_WEBHOOK_SECRET (signs events; a
//!   comma-separated list gives one `v1=` per secret, as during a secret roll; default
//!   whsec_sim_local, with a warning), STRIPE_WEBHOOK_URL (where events are POSTed, default
//!   http://127.0.0.1:3000/billing/webhook/stripe), STRIPE_SIM_PUBLIC_URL (base of the checkout
//!   page URLs, default http://127.0.0.1:<STRIPE_SIM_PORT>).

use std::{net::SocketAddr, path::PathBuf};

use simulators::{elevenlabs, keys::KeyRing, stack_auth, stripe};

const DEFAULT_ELEVENLABS_API_KEY: &str = "sim-elevenlabs-api-key";
const DEFAULT_ELEVENLABS_WEBHOOK_SECRET: &str = "wsec_sim_local_webhook_secret";
const DEFAULT_STRIPE_SECRET_KEY: &str = "sk_test_sim_local";
const DEFAULT_STRIPE_WEBHOOK_SECRET: &str = "whsec_sim_local";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let env_or = |name: &str, default: &str| {
        env(name).unwrap_or_else(|| {
            tracing::warn!("{name} is not set; using the simulator's default {default:?}");
            default.to_owned()
        })
    };
    let state_dir = PathBuf::from(env("SIM_STATE_DIR").unwrap_or_else(|| ".local/sim".into()));
    let project_id = env("STACK_PROJECT_ID").unwrap_or_else(|| "local-project".into());
    let port: u16 = env("STACK_SIM_PORT").map_or(Ok(8102), |p| p.parse())?;
    let elevenlabs_port: u16 = env("ELEVENLABS_SIM_PORT").map_or(Ok(8103), |p| p.parse())?;
    let elevenlabs_config = elevenlabs::Config {
        api_key: env_or("ELEVENLABS_API_KEY", DEFAULT_ELEVENLABS_API_KEY),
        webhook_secret: env_or(
            "ELEVENLABS_WEBHOOK_SECRET",
            DEFAULT_ELEVENLABS_WEBHOOK_SECRET,
        ),
        webhook_target_url: env("WEBHOOK_TARGET_URL")
            .unwrap_or_else(|| "http://127.0.0.1:3000".into()),
    };
    let stripe_port: u16 = env("STRIPE_SIM_PORT").map_or(Ok(8104), |p| p.parse())?;
    let stripe_config = stripe::Config {
        secret_key: env_or("STRIPE_SECRET_KEY", DEFAULT_STRIPE_SECRET_KEY),
        webhook_secrets: env_or("STRIPE_WEBHOOK_SECRET", DEFAULT_STRIPE_WEBHOOK_SECRET)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        webhook_url: env("STRIPE_WEBHOOK_URL")
            .unwrap_or_else(|| "http://127.0.0.1:3000/billing/webhook/stripe".into()),
        public_url: env("STRIPE_SIM_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://127.0.0.1:{stripe_port}")),
    };
    if stripe_config.webhook_secrets.is_empty() {
        return Err("STRIPE_WEBHOOK_SECRET has no secret in it".into());
    }

    let issuer = stack_auth::Issuer::new(
        KeyRing::load_or_create(&state_dir)?,
        &project_id,
        env("JWT_ISSUER"),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    tracing::info!(%addr, project_id, "Stack Auth simulator: JWKS at /api/v1/projects/{project_id}/.well-known/jwks.json");
    let elevenlabs_addr = SocketAddr::from(([127, 0, 0, 1], elevenlabs_port));
    tracing::info!(
        addr = %elevenlabs_addr,
        webhooks = %format!("{}{}", elevenlabs_config.webhook_target_url.trim_end_matches('/'), elevenlabs::WEBHOOK_PATH),
        "ElevenLabs simulator: API under /v1, simulated calls at POST /dev/simulate-call"
    );
    let stripe_addr = SocketAddr::from(([127, 0, 0, 1], stripe_port));
    tracing::info!(
        addr = %stripe_addr,
        webhooks = %stripe_config.webhook_url,
        "Stripe simulator: API under /v1, checkout pages at {}/checkout/<id>",
        stripe_config.public_url.trim_end_matches('/')
    );
    tokio::try_join!(
        stack_auth::serve(addr, issuer),
        elevenlabs::serve(elevenlabs_addr, elevenlabs_config),
        stripe::serve(stripe_addr, stripe_config),
    )?;
    Ok(())
}
