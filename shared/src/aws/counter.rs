//! Fixed-window counters in DynamoDB (the key table, TTL'd items), shared by every instance.

use serde::Deserialize;
use serde_json::json;

use super::{Client, Service};
use crate::error::AppResult;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Updated {
    attributes: Option<Hits>,
}

#[derive(Deserialize)]
struct Hits {
    hits: Option<Number>,
}

#[derive(Deserialize)]
struct Number {
    #[serde(rename = "N")]
    n: String,
}

/// Adds one to the counter under `key` (which names its window), kept until `expires_at`
/// (unix seconds); returns the count after the increment.
pub async fn increment(client: &Client, table: &str, key: &str, expires_at: i64) -> AppResult<i64> {
    let input = json!({
        "TableName": table,
        "Key": {"pk": {"S": key}},
        "UpdateExpression": "ADD hits :one SET expires_at = :expires",
        "ExpressionAttributeValues": {
            ":one": {"N": "1"},
            ":expires": {"N": expires_at.to_string()},
        },
        "ReturnValues": "UPDATED_NEW",
    });
    let output: Updated = client.json(Service::DynamoDb, "UpdateItem", &input).await?;
    Ok(output
        .attributes
        .and_then(|a| a.hits?.n.parse::<i64>().ok())
        .unwrap_or(0))
}
