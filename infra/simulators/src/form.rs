//! `application/x-www-form-urlencoded` bodies with bracketed keys (`a[b][0][c]=v`), the way
//! Stripe's clients encode nested parameters. Brackets may arrive raw or percent-encoded. The
//! result is JSON: nested objects, arrays for numeric (or empty, `a[]=`) segments, and strings.

use std::fmt;

use serde_json::{Map, Value};

/// A key used both as a value and as a parent of other keys (`a=1&a[b]=2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormError {
    pub key: String,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conflicting values for the form key {:?}", self.key)
    }
}

impl std::error::Error for FormError {}

/// Decodes one form component: `+` is a space and `%XX` a byte; a `%` without two hex digits
/// stays as it is. Invalid UTF-8 becomes U+FFFD.
pub fn decode(component: &str) -> String {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3).and_then(hex_byte) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(pair).ok()?;
    u8::from_str_radix(text, 16).ok()
}

/// The decoded `(key, value)` pairs of a body, in order (a pair without `=` has an empty value).
pub fn pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// `a[b][0]` → `["a", "b", "0"]`. A key whose brackets do not pair up is one plain name.
fn key_path(key: &str) -> Vec<String> {
    let Some(open) = key.find('[').filter(|&i| i > 0) else {
        return vec![key.to_owned()];
    };
    let mut path = vec![key[..open].to_owned()];
    let mut rest = &key[open..];
    while !rest.is_empty() {
        let Some(close) = rest.find(']').filter(|_| rest.starts_with('[')) else {
            return vec![key.to_owned()];
        };
        path.push(rest[1..close].to_owned());
        rest = &rest[close + 1..];
    }
    path
}

/// Parses a whole body into a JSON object. A repeated scalar key keeps its last value.
pub fn parse(body: &str) -> Result<Map<String, Value>, FormError> {
    let mut root = Map::new();
    for (key, value) in pairs(body) {
        insert(&mut root, &key_path(&key), value).map_err(|()| FormError { key })?;
    }
    Ok(arrays_in_map(root))
}

fn insert(map: &mut Map<String, Value>, path: &[String], value: String) -> Result<(), ()> {
    let (first, rest) = path.split_first().ok_or(())?;
    // `a[]` appends: the next free index of this level.
    let name = if first.is_empty() {
        map.len().to_string()
    } else {
        first.clone()
    };
    if rest.is_empty() {
        if map.get(&name).is_some_and(Value::is_object) {
            return Err(());
        }
        map.insert(name, Value::String(value));
        return Ok(());
    }
    match map.entry(name).or_insert_with(|| Value::Object(Map::new())) {
        Value::Object(child) => insert(child, rest, value),
        _ => Err(()),
    }
}

/// Objects whose keys are all indexes become arrays, ordered by index.
fn arrays(value: Value) -> Value {
    match value {
        Value::Object(map) if !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok()) => {
            let mut items: Vec<(usize, Value)> = map
                .into_iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, arrays(v))))
                .collect();
            items.sort_by_key(|(index, _)| *index);
            Value::Array(items.into_iter().map(|(_, v)| v).collect())
        }
        Value::Object(map) => Value::Object(arrays_in_map(map)),
        other => other,
    }
}

fn arrays_in_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter().map(|(k, v)| (k, arrays(v))).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_keys_arrays_and_escapes() {
        let body = "mode=payment&line_items[0][price_data][currency]=usd\
            &line_items[0][price_data][product_data][name]=100%20credits&line_items[0][quantity]=1\
            &line_items[1][price]=price_1&metadata%5Bpurchase_id%5D=p+1\
            &success_url=https://a.example/ok?session_id%3D{CHECKOUT_SESSION_ID}&tags[]=a&tags[]=b";
        let parsed = parse(body).expect("parses");
        assert_eq!(
            Value::Object(parsed),
            json!({
                "mode": "payment",
                "line_items": [
                    {"price_data": {"currency": "usd", "product_data": {"name": "100 credits"}}, "quantity": "1"},
                    {"price": "price_1"},
                ],
                "metadata": {"purchase_id": "p 1"},
                "success_url": "https://a.example/ok?session_id={CHECKOUT_SESSION_ID}",
                "tags": ["a", "b"],
            })
        );
    }

    #[test]
    fn odd_input() {
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%41"), "%zzA");
        assert_eq!(key_path("a[b"), vec!["a[b"]);
        assert_eq!(key_path("[a]"), vec!["[a]"]);
        assert_eq!(parse("a=1&a[b]=2"), Err(FormError { key: "a[b]".into() }));
        assert_eq!(parse("a[b]=2&a=1").map_err(|e| e.key), Err("a".into()));
        assert_eq!(
            Value::Object(parse("&&x&y=").expect("parses")),
            json!({"x": "", "y": ""})
        );
    }
}
