//! A best-effort response cache in DynamoDB (the key table, TTL'd items). Keys carry their own
//! version, so an entry is never stale: when the data changes the key does. A cache failure is
//! logged and the caller computes the answer itself.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

/// The cached text under `key`, if present and not expired.
pub async fn get(client: &aws_sdk_dynamodb::Client, table: &str, key: &str) -> Option<String> {
    let output = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(key.to_owned()))
        .send()
        .await
        .map_err(
            |err| tracing::warn!(error = %super::sdk_error("reading the cache", err), "cache miss"),
        )
        .ok()?;
    let item = output.item?;
    let expires_at: i64 = item.get("expires_at")?.as_n().ok()?.parse().ok()?;
    if expires_at < chrono::Utc::now().timestamp() {
        return None;
    }
    item.get("body")?.as_s().ok().cloned()
}

/// Stores `body` under `key` for `ttl`.
pub async fn put(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    body: String,
    ttl: Duration,
) {
    let expires_at = chrono::Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(3600);
    let result = client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(key.to_owned()))
        .item("body", AttributeValue::S(body))
        .item("expires_at", AttributeValue::N(expires_at.to_string()))
        .send()
        .await;
    if let Err(err) = result {
        tracing::warn!(error = %super::sdk_error("writing the cache", err), "not cached");
    }
}
