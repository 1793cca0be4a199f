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
/// And how many bytes of them in all (a year's analytics of 50 agents is about 6 MB: 64 such
/// answers would take a 256 MB function's memory). An answer over an eighth of it is not kept.
const MEMORY_BYTES: usize = 16 << 20;
/// A DynamoDB item is at most 400 KB with its key: a bigger answer is not stored in the table
/// (its `PutItem` would only fail).
const TABLE_BODY_BYTES: usize = 380_000;

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

    /// Keeps `body` under `key` for `ttl`; when full (entries or bytes), without the entries
    /// that expire first.
    pub fn put(&self, key: &str, body: &str, ttl: Duration) {
        if body.len() > MEMORY_BYTES / 8 {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (expires_at, _)| *expires_at > now);
        entries.remove(key);
        let mut bytes: usize = entries.values().map(|(_, body)| body.len()).sum();
        while entries.len() >= MEMORY_ENTRIES || bytes + body.len() > MEMORY_BYTES {
            let first = entries
                .iter()
                .min_by_key(|(_, (expires_at, _))| *expires_at)
                .map(|(key, _)| key.clone());
            let Some((_, dropped)) = first.and_then(|first| entries.remove(&first)) else {
                break;
            };
            bytes -= dropped.len();
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

/// Stores `body` under `key` for `ttl`, unless it is too big for an item.
pub async fn put(client: &Client, table: &str, key: &str, body: String, ttl: Duration) {
    if body.len() > TABLE_BODY_BYTES {
        return;
    }
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

    #[test]
    fn memory_keeps_at_most_its_bytes_and_no_answer_over_an_eighth_of_them() {
        let memory = Memory::default();
        let big = "x".repeat(MEMORY_BYTES / 8);
        for i in 0..9 {
            memory.put(&i.to_string(), &big, Duration::from_secs(60 + i));
        }
        // Eight fit; the ninth took the place of the one that expires first.
        assert_eq!(memory.get("0"), None);
        assert!((1..9).all(|i| memory.get(&i.to_string()).is_some()));
        memory.put("huge", &format!("{big}x"), Duration::from_secs(600));
        assert_eq!(memory.get("huge"), None);
        assert!(
            memory.get("1").is_some(),
            "nothing dropped for an answer not kept"
        );
    }
}
