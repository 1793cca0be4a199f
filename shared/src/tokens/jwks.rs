//! The issuer's key set: cached, refetched when stale or when a token names an unknown key id,
//! with refetches rate-limited so a flood of made-up key ids cannot hammer the issuer.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk},
    Algorithm, DecodingKey,
};
use reqwest::Url;
use tokio::sync::{Mutex, RwLock};

use super::AuthError;

/// A verification key and the one algorithm it may be used with. The algorithm comes from the
/// key's type, never from the token, so a token cannot pick HS256 with a public key as secret.
#[derive(Clone)]
pub struct VerificationKey {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    fetched_at: Option<Instant>,
}

pub struct JwksCache {
    url: Url,
    http: reqwest::Client,
    ttl: Duration,
    min_refresh_interval: Duration,
    keys: RwLock<KeySet>,
    /// Held while fetching (single flight); remembers the last attempt for rate limiting, and
    /// why it failed: until the next, a key it would have brought is unavailable, not unknown.
    last_attempt: Mutex<Option<(Instant, Option<String>)>>,
}

impl JwksCache {
    pub fn new(
        url: Url,
        http: reqwest::Client,
        ttl: Duration,
        min_refresh_interval: Duration,
    ) -> Self {
        Self {
            url,
            http,
            ttl,
            min_refresh_interval,
            keys: RwLock::new(KeySet::default()),
            last_attempt: Mutex::new(None),
        }
    }

    pub async fn key(&self, kid: &str) -> Result<Arc<VerificationKey>, AuthError> {
        let (cached, fresh) = self.lookup(kid).await;
        if let (Some(key), true) = (&cached, fresh) {
            return Ok(key.clone());
        }
        match self.refresh().await {
            Ok(()) => {}
            // A stale key still verifies while the issuer is unreachable.
            Err(err) => return cached.ok_or(err),
        }
        self.lookup(kid).await.0.ok_or(AuthError::UnknownKey)
    }

    async fn lookup(&self, kid: &str) -> (Option<Arc<VerificationKey>>, bool) {
        let set = self.keys.read().await;
        let fresh = set.fetched_at.is_some_and(|at| at.elapsed() < self.ttl);
        (set.keys.get(kid).cloned(), fresh)
    }

    async fn refresh(&self) -> Result<(), AuthError> {
        let mut last_attempt = self.last_attempt.lock().await;
        if let Some((at, failed)) = last_attempt.as_ref() {
            if at.elapsed() < self.min_refresh_interval {
                // Someone tried moments ago (possibly while we waited for the lock).
                return match failed {
                    Some(reason) => Err(AuthError::KeysUnavailable(reason.clone())),
                    None => Ok(()),
                };
            }
        }
        let fetched = self.fetch().await.and_then(|keys| {
            // An answer without a usable key is the issuer's failure, not every token's: the
            // keys held stay in use.
            if keys.is_empty() {
                Err(AuthError::KeysUnavailable(
                    "the key set holds no usable key".into(),
                ))
            } else {
                Ok(keys)
            }
        });
        match fetched {
            Ok(keys) => {
                *last_attempt = Some((Instant::now(), None));
                *self.keys.write().await = KeySet {
                    keys,
                    fetched_at: Some(Instant::now()),
                };
                Ok(())
            }
            Err(err) => {
                let reason = match &err {
                    AuthError::KeysUnavailable(reason) => reason.clone(),
                    other => other.to_string(),
                };
                *last_attempt = Some((Instant::now(), Some(reason)));
                Err(err)
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerificationKey>>, AuthError> {
        let response = self
            .http
            .get(self.url.clone())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| AuthError::KeysUnavailable(format!("key set is not JSON: {e}")))?;
        let keys = parse_key_set(&body);
        tracing::info!(url = %self.url, keys = keys.len(), "fetched JWKS");
        Ok(keys)
    }
}

/// Keeps the P-256 and Ed25519 keys that carry a key id; anything else in the set is skipped,
/// not fatal, so one odd key cannot lock every user out.
pub fn parse_key_set(body: &serde_json::Value) -> HashMap<String, Arc<VerificationKey>> {
    let entries = body["keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    entries
        .iter()
        .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                    Algorithm::EdDSA
                }
                _ => return None,
            };
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, Arc::new(VerificationKey { algorithm, key })))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_supported_keys_with_ids() {
        let body = serde_json::json!({"keys": [
            {"kty":"EC","crv":"P-256","kid":"ec1","alg":"ES256",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","crv":"P-256","alg":"ES256",
             "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
            {"kty":"OKP","crv":"Ed25519","kid":"ed1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"weird","kid":"x"},
            "not even an object"
        ]});
        let keys = parse_key_set(&body);
        let mut ids: Vec<_> = keys.keys().cloned().collect();
        ids.sort();
        assert_eq!(ids, ["ec1", "ed1"]);
        assert_eq!(keys["ec1"].algorithm, Algorithm::ES256);
        assert_eq!(keys["ed1"].algorithm, Algorithm::EdDSA);
        assert!(parse_key_set(&serde_json::json!({"nope": 1})).is_empty());
    }

    /// A key-set server answering what `keys` gives at each request.
    async fn issuer(keys: impl Fn() -> serde_json::Value + Clone + Send + Sync + 'static) -> Url {
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let body = keys();
                async move { axum::Json(body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = Url::parse(&format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("addr")
        ))
        .expect("url");
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn one_key() -> serde_json::Value {
        serde_json::json!({"keys": [{"kty":"OKP","crv":"Ed25519","kid":"k1",
            "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})
    }

    /// A key-set server that counts how often it is asked.
    async fn counting_issuer() -> (Url, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let url = issuer(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            one_key()
        })
        .await;
        (url, hits)
    }

    fn client() -> reqwest::Client {
        crate::telemetry::install_crypto_provider();
        reqwest::Client::new()
    }

    #[tokio::test]
    async fn unknown_key_ids_refetch_at_most_once_per_interval() {
        use std::sync::atomic::Ordering;
        let (url, hits) = counting_issuer().await;
        let cache = JwksCache::new(
            url,
            client(),
            Duration::from_secs(3600),
            Duration::from_secs(60),
        );
        assert!(cache.key("k1").await.is_ok());
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert!(cache.key("k1").await.is_ok(), "cached");
        for i in 0..50 {
            let result = cache.key(&format!("made-up-{i}")).await;
            assert!(matches!(result, Err(AuthError::UnknownKey)));
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "made-up key ids did not reach the issuer again"
        );
    }

    #[tokio::test]
    async fn unknown_key_refetches_after_the_interval() {
        use std::sync::atomic::Ordering;
        let (url, hits) = counting_issuer().await;
        let cache = JwksCache::new(url, client(), Duration::from_secs(3600), Duration::ZERO);
        assert!(cache.key("k1").await.is_ok());
        assert!(matches!(cache.key("k2").await, Err(AuthError::UnknownKey)));
        assert_eq!(
            hits.load(Ordering::SeqCst),
            2,
            "a new key id may be a rotated key"
        );
    }

    #[tokio::test]
    async fn an_unreachable_issuer_is_unavailable_not_unauthorized() {
        let url = Url::parse("http://127.0.0.1:9/jwks.json").expect("url");
        for interval in [Duration::ZERO, Duration::from_secs(60)] {
            let cache = JwksCache::new(url.clone(), client(), Duration::from_secs(3600), interval);
            // Asked again within the interval, too: the failure stands until the next try.
            for _ in 0..2 {
                assert!(matches!(
                    cache.key("k1").await,
                    Err(AuthError::KeysUnavailable(_))
                ));
            }
        }
    }

    #[tokio::test]
    async fn a_key_set_without_usable_keys_does_not_replace_the_one_held() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let emptied = Arc::new(AtomicBool::new(false));
        let flag = emptied.clone();
        let url = issuer(move || {
            if flag.load(Ordering::SeqCst) {
                serde_json::json!({"keys": []})
            } else {
                one_key()
            }
        })
        .await;
        // Always stale, always refetched: each lookup asks the issuer.
        let cache = JwksCache::new(url, client(), Duration::ZERO, Duration::ZERO);
        assert!(cache.key("k1").await.is_ok());
        emptied.store(true, Ordering::SeqCst);
        assert!(cache.key("k1").await.is_ok(), "the key held still verifies");
        assert!(matches!(
            cache.key("k2").await,
            Err(AuthError::KeysUnavailable(_))
        ));
    }
}
