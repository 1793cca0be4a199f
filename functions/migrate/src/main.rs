//! Lambda invoked by the deploy pipeline: applies pending migrations, answers how many ran.

use lambda_http::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

// Lambda hands a function one invocation at a time: worker threads would only pass each
// answer from the database between threads (measured: README, "Performance").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    lambda_http::lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        let state = state.clone();
        async move {
            let applied = shared::db::migrate(&mut state.db().get_direct().await?).await?;
            Ok::<_, Error>(json!({ "applied": applied }))
        }
    }))
    .await
}
