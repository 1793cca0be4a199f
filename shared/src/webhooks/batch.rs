//! Running the processor over queue messages: as an SQS-triggered Lambda (partial batch
//! failures: only the failed messages are retried) or as the local server's poller.

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::join_all;

use super::process::process_message;
use crate::{aws::queue, AppState};

/// Lambda entry: processes every record concurrently and reports the ones to retry.
pub async fn handle_sqs_event(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    if let Err(err) = state.db().ready().await {
        // Nothing can be applied: hand every record back now instead of each one waiting
        // out its own connect budget (SQS redelivers after the visibility timeout).
        tracing::warn!(error = %err, records = event.records.len(), "database unavailable; returning the batch for retry");
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = event
            .records
            .into_iter()
            .map(|record| retry_record(record.message_id))
            .collect();
        return response;
    }
    let results = join_all(event.records.iter().map(|record| async move {
        let body = record.body.as_deref().unwrap_or_default();
        (
            record.message_id.clone(),
            process_message(state, body).await,
        )
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message_id, result) in results {
        if let Err(err) = result {
            tracing::error!(error = %err, message_id = ?message_id, "webhook event will be retried");
            response.batch_item_failures.push(retry_record(message_id));
        }
    }
    response
}

fn retry_record(message_id: Option<String>) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    // A record without an id cannot be reported alone; AWS then retries the whole batch.
    failure.item_identifier = message_id.unwrap_or_default();
    failure
}

/// Local stand-in for the SQS trigger: receive, process, delete what succeeded. Failed
/// messages become visible again after the queue's visibility timeout, and SQS moves them to
/// the dead-letter queue after maxReceiveCount, exactly as in AWS.
pub async fn poll(state: AppState, queue_url: String) {
    tracing::info!(%queue_url, "polling the webhook queue");
    loop {
        // While the database is down, leave the messages in the queue: receiving them only
        // to fail would count towards their move to the dead-letter queue.
        if let Err(err) = state.db().ready().await {
            let wait = err.retry_after.unwrap_or(Duration::from_secs(1));
            tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
            continue;
        }
        let batch = match queue::receive(state.aws(), &queue_url, 10, 1).await {
            Ok(batch) => batch,
            Err(err) => {
                tracing::warn!(error = %err, "could not receive from the webhook queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        join_all(batch.into_iter().map(|message| {
            let state = &state;
            let queue_url = &queue_url;
            async move {
                match process_message(state, &message.body).await {
                    Ok(_) => {
                        if let Err(err) =
                            queue::delete(state.aws(), queue_url, &message.receipt_handle).await
                        {
                            tracing::warn!(error = %err, "could not delete a processed message");
                        }
                    }
                    Err(err) => tracing::error!(
                        error = %err,
                        receive_count = message.receive_count,
                        "webhook event will be retried"
                    ),
                }
            }
        }))
        .await;
    }
}
