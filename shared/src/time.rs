//! Times and dates that arrive from clients, bounded to years 1 to 9999: chrono alone reads
//! years such as -10000 or 100000, which Postgres then refuses (a 500 instead of a 400).
//! Used as `#[serde(default, deserialize_with = "...")]` on optional query and body fields,
//! and by the cursor decoder.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Deserializer};

pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

pub fn in_range(time: &DateTime<Utc>) -> bool {
    YEARS.contains(&time.year())
}

/// The first instant of `day` in UTC. Days become instants here, never in SQL: a date cast
/// to `timestamptz` there would take the session's time zone.
pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
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

/// A bound as a client may write it: a day (`YYYY-MM-DD`, UTC) or an RFC 3339 time, within
/// [`YEARS`]. The dashboards speak in days and the lists in times; either is taken everywhere.
enum Bound {
    Day(NaiveDate),
    Time(DateTime<Utc>),
}

fn optional_bound<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Bound>, D::Error> {
    use serde::de::Error;
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let text = text.trim();
    if let Ok(day) = text.parse::<NaiveDate>() {
        return checked(day).map(|day| Some(Bound::Day(day)));
    }
    match text.parse::<DateTime<Utc>>() {
        Ok(time) => checked(time).map(|time| Some(Bound::Time(time))),
        Err(_) => Err(D::Error::custom(format!(
            "{text:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"
        ))),
    }
}

/// An optional lower bound in time: a day means its first instant (00:00 UTC).
pub fn optional_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(optional_bound(deserializer)?.map(|bound| match bound {
        Bound::Day(day) => day_start(day),
        Bound::Time(time) => time,
    }))
}

/// An optional upper bound in time, exclusive: a day means the whole day is included (up to
/// the next day's 00:00 UTC). The last day of [`YEARS`] bounds nothing: the instant after it
/// is outside them, and an export job could not read such a bound back from its filters.
pub fn optional_time_until<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(optional_bound(deserializer)?.and_then(|bound| match bound {
        Bound::Day(day) => day.succ_opt().map(day_start).filter(in_range),
        Bound::Time(time) => Some(time),
    }))
}

/// An optional day: a time means its day in UTC.
pub fn optional_date<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<NaiveDate>, D::Error> {
    Ok(optional_bound(deserializer)?.map(|bound| match bound {
        Bound::Day(day) => day,
        Bound::Time(time) => time.date_naive(),
    }))
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

    #[derive(Deserialize)]
    struct Range {
        #[serde(default, deserialize_with = "optional_time")]
        from: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "optional_time_until")]
        to: Option<DateTime<Utc>>,
    }

    #[test]
    fn a_day_or_a_time_is_taken_for_every_bound() {
        let days: Range =
            serde_json::from_str(r#"{"from":"2026-11-01","to":"2026-11-28"}"#).expect("days");
        assert_eq!(
            days.from.expect("from").to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        // The last day is included: the bound is the next day's first instant.
        assert_eq!(
            days.to.expect("to").to_rfc3339(),
            "2026-11-29T00:00:00+00:00"
        );
        let times: Range = serde_json::from_str(
            r#"{"from":"2026-11-01T08:30:00+02:00","to":"2026-11-28T10:00:00Z"}"#,
        )
        .expect("times");
        assert_eq!(
            times.from.expect("from").to_rfc3339(),
            "2026-11-01T06:30:00+00:00"
        );
        assert_eq!(
            times.to.expect("to").to_rfc3339(),
            "2026-11-28T10:00:00+00:00"
        );
        let last: Range = serde_json::from_str(r#"{"to":"9999-12-31"}"#).expect("the last day");
        assert_eq!(
            last.to, None,
            "no bound, and one a stored filter reads back"
        );
        let day = parse(r#"{"day":"2026-11-28T23:30:00-02:00"}"#).expect("a time as a day");
        assert_eq!(day.day.expect("day").to_string(), "2026-11-29");
        for bad in [
            r#"{"from":"yesterday"}"#,
            r#"{"from":"2026-13-01"}"#,
            r#"{"to":"+10000-01-01"}"#,
        ] {
            assert!(serde_json::from_str::<Range>(bad).is_err(), "{bad}");
        }
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
