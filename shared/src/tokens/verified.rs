//! Tokens already verified, with their claims, until they expire. A client sends the same
//! access token with every request until it refreshes it, and checking its signature is most
//! of an authenticated request's own time: about 0.5 ms for ES256 with the size-optimized
//! AWS-LC every function links (README, "Reads at scale"). A token is only ever served from
//! here exactly as it was verified (the whole token is the key), never past its `exp` (with
//! the same leeway the check allows), and never longer after its check than the key set is
//! cached, so a key retired from the key set stops being honoured as late as before.

use std::{collections::HashMap, sync::Mutex};

use super::Claims;

/// Distinct tokens kept per process. A Lambda instance serves one request at a time, so it
/// sees few users between two refreshes of their tokens; a flood of distinct valid tokens
/// only empties the cache, it never grows it.
const CAPACITY: usize = 1024;

pub(super) struct VerifiedTokens {
    /// How long after its check a token may be served from here (the key set's cache time).
    keep_for: u64,
    /// How long after `exp` a token is still accepted (the check's leeway).
    leeway: u64,
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

struct Entry {
    claims: Claims,
    /// The last second (Unix time) at which the token is still served from here.
    until: u64,
}

impl VerifiedTokens {
    pub(super) fn new(keep_for: u64, leeway: u64) -> Self {
        Self {
            keep_for,
            leeway,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The claims of `token` if it was verified and is still valid at `now` (Unix seconds).
    pub(super) fn get(&self, token: &str, now: u64) -> Option<Claims> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(token)
            .filter(|entry| now <= entry.until)
            .map(|entry| entry.claims.clone())
    }

    /// Keeps `token`, verified at `now` with these `claims`.
    pub(super) fn keep(&self, token: &str, claims: &Claims, now: u64) {
        let until = claims
            .exp
            .saturating_add(self.leeway)
            .min(now.saturating_add(self.keep_for));
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, entry| now <= entry.until);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            token.into(),
            Entry {
                claims: claims.clone(),
                until,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claims(sub: &str, exp: u64) -> Claims {
        Claims {
            sub: sub.into(),
            exp,
            email: Some(format!("{sub}@example.com")),
            email_verified: true,
            name: None,
            is_anonymous: false,
            is_restricted: false,
        }
    }

    #[test]
    fn a_kept_token_is_served_until_its_expiry_and_leeway_then_not() {
        let verified = VerifiedTokens::new(3600, 30);
        verified.keep("token-a", &claims("a", NOW + 600), NOW);
        let served = verified.get("token-a", NOW + 1).expect("kept");
        assert_eq!(
            (served.sub.as_str(), served.email.as_deref()),
            ("a", Some("a@example.com"))
        );
        assert!(
            verified.get("token-a", NOW + 630).is_some(),
            "within leeway"
        );
        assert!(verified.get("token-a", NOW + 631).is_none(), "past it");
    }

    #[test]
    fn only_the_exact_token_is_served() {
        let verified = VerifiedTokens::new(3600, 30);
        verified.keep("header.claims.signature", &claims("a", NOW + 600), NOW);
        assert!(verified.get("header.claims.signaturf", NOW).is_none());
        assert!(verified.get("header.claims.signatur", NOW).is_none());
        assert!(verified.get("header.claims.signature ", NOW).is_none());
    }

    #[test]
    fn a_long_lived_token_is_checked_again_once_the_key_set_would_be() {
        let verified = VerifiedTokens::new(60, 30);
        verified.keep("long", &claims("a", NOW + 86_400), NOW);
        assert!(verified.get("long", NOW + 60).is_some());
        assert!(verified.get("long", NOW + 61).is_none());
    }

    #[test]
    fn it_never_holds_more_than_its_capacity_and_drops_the_expired_first() {
        let verified = VerifiedTokens::new(3600, 0);
        verified.keep("lasting", &claims("l", NOW + 3000), NOW);
        for i in 1..CAPACITY {
            verified.keep(&format!("short-{i}"), &claims("s", NOW + 10), NOW);
        }
        assert_eq!(verified.len(), CAPACITY);
        // Full: the expired are dropped to make room, the valid kept.
        verified.keep("new", &claims("n", NOW + 3000), NOW + 11);
        assert_eq!(verified.len(), 2);
        assert!(verified.get("lasting", NOW + 11).is_some());
        assert!(verified.get("new", NOW + 11).is_some());
        // Full of valid tokens: emptied rather than grown.
        for i in 0..CAPACITY + 5 {
            verified.keep(&format!("valid-{i}"), &claims("v", NOW + 3000), NOW + 12);
        }
        assert!(verified.len() <= CAPACITY);
    }
}
