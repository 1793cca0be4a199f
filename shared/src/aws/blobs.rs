//! S3 objects: recordings and oversized webhook bodies; recordings are served as short-lived
//! presigned URLs.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use reqwest::Method;

use super::{Client, S3Request};
use crate::error::AppResult;

pub async fn put(
    client: &Client,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> AppResult<()> {
    let mut request = S3Request::new("PutObject", Method::PUT, bucket, key);
    request
        .headers
        .push(("content-type", content_type.to_owned()));
    request.body = bytes.into();
    client.s3(request).await?;
    Ok(())
}

pub async fn get(client: &Client, bucket: &str, key: &str) -> AppResult<Vec<u8>> {
    let request = S3Request::new("GetObject", Method::GET, bucket, key);
    Ok(client.s3(request).await?.body.to_vec())
}

/// A GET link to the object, signed as of `signed_at` and valid for `expires_in` from then.
pub async fn presigned_get(
    client: &Client,
    bucket: &str,
    key: &str,
    signed_at: SystemTime,
    expires_in: Duration,
) -> AppResult<String> {
    let endpoint = client.endpoint();
    endpoint.presign(&endpoint.s3_url(bucket, key, &[])?, signed_at, expires_in)
}

/// How many links a process keeps (about 1 KB each, key and link).
const KEPT_LINKS: usize = 2048;

/// Links signed as of one time, by object key: a caller that signs every link of a window as
/// of the window's start (recordings) gets the same link for a key all window long, and keeps
/// it here instead of signing it again (a SigV4 signature, about 14 µs). The frontend polls
/// its page of calls, 20 recording links each time, 304s included (their ETag hashes the page
/// with its links).
pub struct SignedLinks {
    window: Mutex<(SystemTime, HashMap<String, String>)>,
}

impl Default for SignedLinks {
    fn default() -> Self {
        Self {
            window: Mutex::new((SystemTime::UNIX_EPOCH, HashMap::new())),
        }
    }
}

impl SignedLinks {
    /// `key`'s link signed as of `signed_at`, if kept.
    pub fn get(&self, signed_at: SystemTime, key: &str) -> Option<String> {
        let window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.0 != signed_at {
            return None;
        }
        window.1.get(key).cloned()
    }

    /// Keeps `url` as `key`'s link signed as of `signed_at`; links signed as of another time,
    /// or a full set, are dropped first.
    pub fn put(&self, signed_at: SystemTime, key: &str, url: &str) {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if window.0 != signed_at || window.1.len() >= KEPT_LINKS {
            *window = (signed_at, HashMap::new());
        }
        window.1.insert(key.to_owned(), url.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_kept_for_its_signing_time_only_and_a_full_set_starts_over() {
        let links = SignedLinks::default();
        let window = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let next = window + Duration::from_secs(300);
        links.put(window, "a.mp3", "https://a");
        assert_eq!(links.get(window, "a.mp3").as_deref(), Some("https://a"));
        assert_eq!(links.get(window, "b.mp3"), None);
        assert_eq!(links.get(next, "a.mp3"), None, "signed as of another time");

        links.put(next, "b.mp3", "https://b");
        assert_eq!(links.get(next, "b.mp3").as_deref(), Some("https://b"));
        assert_eq!(links.get(window, "a.mp3"), None, "the old window is gone");

        for i in 1..KEPT_LINKS {
            links.put(next, &i.to_string(), "https://c");
        }
        assert_eq!(links.get(next, "b.mp3").as_deref(), Some("https://b"));
        links.put(next, "last.mp3", "https://d");
        assert_eq!(links.get(next, "b.mp3"), None, "full: started over");
        assert_eq!(links.get(next, "last.mp3").as_deref(), Some("https://d"));
    }
}
