//! Lambda run on schedules. `{"job": "send-emails"}` sends the queued emails (every minute);
//! `{"job": "warm-analytics"}` re-reads the admin's system analytics (every two minutes); any
//! other event reconciles the recent ElevenLabs conversations with the database.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

// Lambda hands a function one invocation at a time: worker threads would only pass each
// answer from the database between threads (measured: README, "Performance").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let state = state.clone();
        async move {
            let report = match event.payload.get("job").and_then(Value::as_str) {
                Some("send-emails") => {
                    serde_json::to_value(shared::email::outbox::send_due(&state, 200).await?)?
                }
                Some("warm-analytics") => {
                    let mut client = state.db().get().await?;
                    serde_json::to_value(shared::admin::analytics::warm(&mut client).await?)?
                }
                _ => serde_json::to_value(shared::webhooks::reconcile::run_recent(&state).await?)?,
            };
            Ok::<Value, Error>(report)
        }
    }))
    .await
}
