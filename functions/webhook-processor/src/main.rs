//! Lambda triggered by the webhook queue: applies each event, reports failed ones for retry.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

// Lambda hands a function one invocation at a time: worker threads would only pass each
// answer from the database between threads (measured: README, "Performance").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let state = state.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(
                shared::webhooks::batch::handle_sqs_event(&state, event.payload).await,
            )
        }
    }))
    .await
}
