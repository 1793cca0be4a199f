//! Lambda run on a schedule: reconciles the recent ElevenLabs conversations with the database.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        let state = state.clone();
        async move {
            let report = shared::webhooks::reconcile::run_recent(&state).await?;
            Ok::<Value, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
