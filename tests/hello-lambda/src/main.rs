//! Not deployed: the hello-world function of the Lambda Rust runtime's examples, built with the
//! workspace's release profile, as the baseline `scripts/bench-start` compares cold starts with.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(
            json!({ "message": "Hello, world!", "request_id": event.context.request_id }),
        )
    }))
    .await
}
