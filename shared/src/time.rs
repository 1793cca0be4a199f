//! Times and dates that arrive from clients, bounded to years 1 to 9999: chrono alone reads
//! years such as -10000 or 100000, which Postgres then refuses (a 500 instead of a 400).
//! Used as `#[serde(default, deserialize_with = "...")]` on optional query and body fields,
//! and by the cursor decoder.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};

pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

pub fn in_range(time: &DateTime<Utc>) -> bool {
    YEARS.contains(&time.year())
}

fn checked<E: serde::de::Error, T: Datelike>(value: T) -> Result<T, E> {
    if YEARS.contains(&value.year()) {
        Ok(value)
    } else {
        Err(E::custom(format!(
            "the year {} is outside {}..={}",
            value.year(),
            YEARS.start(),
            YEARS.end()
        )))
    }
}

/// An optional RFC 3339 time within [`YEARS`].
pub fn optional_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<DateTime<Utc>>::deserialize(deserializer)?
        .map(checked::<D::Error, _>)
        .transpose()
}

/// An optional `YYYY-MM-DD` date within [`YEARS`].
pub fn optional_date<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<NaiveDate>, D::Error> {
    Option::<NaiveDate>::deserialize(deserializer)?
        .map(checked::<D::Error, _>)
        .transpose()
}

/// Whether `value` holds, anywhere, a string that reads as an RFC 3339 time outside
/// [`YEARS`] (a forged cursor).
pub fn holds_out_of_range_time(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text
            .parse::<DateTime<Utc>>()
            .is_ok_and(|time| !in_range(&time)),
        serde_json::Value::Array(items) => items.iter().any(holds_out_of_range_time),
        serde_json::Value::Object(fields) => fields.values().any(holds_out_of_range_time),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Query {
        #[serde(default, deserialize_with = "optional_time")]
        from: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "optional_date")]
        day: Option<NaiveDate>,
    }

    fn parse(json: &str) -> Result<Query, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn ordinary_values_and_absence_pass() {
        let q = parse(r#"{"from":"2026-11-28T10:00:00Z","day":"9999-12-31"}"#).expect("ok");
        assert_eq!(q.from.expect("from").year(), 2026);
        assert_eq!(q.day.expect("day").year(), 9999);
        let q = parse("{}").expect("absent");
        assert!(q.from.is_none() && q.day.is_none());
    }

    #[test]
    fn years_postgres_cannot_store_are_refused() {
        for json in [
            r#"{"from":"-10000-01-01T00:00:00Z"}"#,
            r#"{"from":"+100000-01-01T00:00:00Z"}"#,
            r#"{"from":"0000-01-01T00:00:00Z"}"#,
            r#"{"day":"-10000-01-01"}"#,
            r#"{"day":"+10000-01-01"}"#,
        ] {
            let err = parse(json).err();
            assert!(
                err.as_ref()
                    .is_some_and(|e| e.to_string().contains("outside")),
                "{json}: {err:?}"
            );
        }
    }

    #[test]
    fn forged_cursor_times_are_found_anywhere_in_the_value() {
        let ok = serde_json::json!([
            "2026-01-01T00:00:00Z",
            "00000000-0000-0000-0000-000000000000"
        ]);
        assert!(!holds_out_of_range_time(&ok));
        let forged = serde_json::json!([{"at": "-10000-01-01T00:00:00Z"}, 3]);
        assert!(holds_out_of_range_time(&forged));
    }
}
