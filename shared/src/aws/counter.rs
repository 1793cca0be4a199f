//! Fixed-window counters in DynamoDB (the key table, TTL'd items), shared by every instance.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::error::AppResult;

/// Adds one to the counter under `key` (which names its window), kept until `expires_at`
/// (unix seconds); returns the count after the increment.
pub async fn increment(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    expires_at: i64,
) -> AppResult<i64> {
    let output = client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S(key.to_owned()))
        .update_expression("ADD hits :one SET expires_at = :expires")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(|e| super::sdk_error("counting in the key table", e))?;
    Ok(output
        .attributes()
        .and_then(|a| a.get("hits"))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or(0))
}
