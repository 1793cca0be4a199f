//! Lambda for the endpoint group serving /api/contacts/* and /contacts/*.

use shared::http::{app, Group, Served};

/// A constant, so that only this group's handlers are linked.
const SERVED: Served = Group::Contacts.served();

// Lambda hands a function one invocation at a time: worker threads would only pass each
// answer from the database between threads (measured: README, "Performance").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let state = shared::AppState::from_env().await?;
    lambda_http::run(app(state, &[SERVED])).await
}
