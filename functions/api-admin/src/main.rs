//! Lambda for the endpoint group serving /admin/* (the admin panel's API).

use shared::http::{app, Group};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    lambda_http::run(app(state, &[Group::Admin])).await
}
