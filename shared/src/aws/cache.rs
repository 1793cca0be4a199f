//! A best-effort response cache in DynamoDB (the key table, TTL'd items). Keys carry their own
//! version, so an entry is never stale: when the data changes the key does. A cache failure is
//! logged and the caller computes the answer itself.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use serde::{de::IgnoredAny, Deserialize};
use serde_json::json;

use super::{Client, Service};

/// How many answers a process keeps in [`Memory`].
const MEMORY_ENTRIES: usize = 64;

/// The same cache's newest entries in this process, in front of the table: a warm function
/// answers a repeated request without the table's round trip, which can cost more than the
/// reads it saves (a dashboard's rollup reads take about 1 ms at ten million calls; answered
/// from moto's table, the request took 6–8 ms). Its keys are the table's, so an entry is never
/// stale either.
#[derive(Default)]
pub struct Memory {
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

impl Memory {
    /// The text under `key`, if this process stored it and it has not expired.
    pub fn get(&self, key: &str) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (expires_at, body) = entries.get(key)?;
        (*expires_at > Instant::now()).then(|| body.clone())
    }

    /// Keeps `body` under `key` for `ttl`; when full, without the entry that expires first.
    pub fn put(&self, key: &str, body: &str, ttl: Duration) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (expires_at, _)| *expires_at > now);
        if entries.len() >= MEMORY_ENTRIES {
            let first = entries
                .iter()
                .min_by_key(|(_, (expires_at, _))| *expires_at)
                .map(|(key, _)| key.clone());
            if let Some(first) = first {
                entries.remove(&first);
            }
        }
        entries.insert(key.to_owned(), (now + ttl, body.to_owned()));
    }
}

/// A DynamoDB attribute value, as far as these items use them.
#[derive(Deserialize)]
struct Value {
    #[serde(rename = "S")]
    s: Option<String>,
    #[serde(rename = "N")]
    n: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Found {
    item: Option<HashMap<String, Value>>,
}

/// The cached text under `key`, if present and not expired.
pub async fn get(client: &Client, table: &str, key: &str) -> Option<String> {
    let input = json!({"TableName": table, "Key": {"pk": {"S": key}}});
    let output: Found = client
        .json(Service::DynamoDb, "GetItem", &input)
        .await
        .map_err(|err| tracing::warn!(error = %err, "cache miss"))
        .ok()?;
    let mut item = output.item?;
    let expires_at: i64 = item.get("expires_at")?.n.as_deref()?.parse().ok()?;
    if expires_at < chrono::Utc::now().timestamp() {
        return None;
    }
    item.remove("body")?.s
}

/// Stores `body` under `key` for `ttl`.
pub async fn put(client: &Client, table: &str, key: &str, body: String, ttl: Duration) {
    let expires_at = chrono::Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(3600);
    let input = json!({
        "TableName": table,
        "Item": {
            "pk": {"S": key},
            "body": {"S": body},
            "expires_at": {"N": expires_at.to_string()},
        },
    });
    let result = client
        .json::<IgnoredAny>(Service::DynamoDb, "PutItem", &input)
        .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "not cached");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_keeps_entries_until_they_expire_and_drops_the_first_to_expire_when_full() {
        let memory = Memory::default();
        memory.put("gone", "a", Duration::ZERO);
        assert_eq!(memory.get("gone"), None);
        memory.put("soonest", "b", Duration::from_secs(10));
        for i in 1..MEMORY_ENTRIES {
            memory.put(&i.to_string(), "c", Duration::from_secs(60));
        }
        assert_eq!(memory.get("soonest").as_deref(), Some("b"));
        memory.put("newest", "d", Duration::from_secs(60));
        assert_eq!(memory.get("soonest"), None);
        assert_eq!(memory.get("newest").as_deref(), Some("d"));
        assert_eq!(memory.get("1").as_deref(), Some("c"));
    }
}
