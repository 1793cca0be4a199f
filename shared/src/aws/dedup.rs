//! Short-lived claims in DynamoDB (conditional put with a TTL): an exact redelivery of a webhook
//! is dropped before it reaches the queue.

use std::time::Duration;

use aws_sdk_dynamodb::{error::SdkError, types::AttributeValue};

use super::sdk_error;
use crate::error::AppResult;

/// Claims `key` for `ttl`. True when this caller is the first; false when it was claimed already.
pub async fn claim(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    ttl: Duration,
) -> AppResult<bool> {
    let expires_at =
        chrono::Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let result = client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(key.to_owned()))
        .item("expires_at", AttributeValue::N(expires_at.to_string()))
        .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
        .expression_attribute_values(
            ":now",
            AttributeValue::N(chrono::Utc::now().timestamp().to_string()),
        )
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(err)) if err.err().is_conditional_check_failed_exception() => {
            Ok(false)
        }
        Err(err) => Err(sdk_error("claiming a dedup key", err)),
    }
}

/// Gives a claim back (the work it guarded did not happen, so a retry must get through).
pub async fn release(client: &aws_sdk_dynamodb::Client, table: &str, key: &str) -> AppResult<()> {
    client
        .delete_item()
        .table_name(table)
        .key("pk", AttributeValue::S(key.to_owned()))
        .send()
        .await
        .map_err(|e| sdk_error("releasing a dedup key", e))?;
    Ok(())
}
