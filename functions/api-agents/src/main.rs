//! Lambda for the endpoint group serving /api/agents/* and /agents/*.

use shared::http::{app, Group};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    lambda_http::run(app(state, &[Group::Agents])).await
}
