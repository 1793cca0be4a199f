//! Timestamped HMAC signatures, as ElevenLabs and Stripe send them:
//! `ElevenLabs-Signature: t=<unix>,v0=<hex>` and `Stripe-Signature: t=<unix>,v1=<hex>[,v1=..]`,
//! where hex = HMAC-SHA256(secret as UTF-8 bytes, "<t>.<raw body>"). Any listed signature of
//! the scheme's version may match (a sender signs once per active secret); other versions are
//! ignored, so a downgrade to a weaker scheme is impossible. Checked in constant time against
//! the current secret and, during a rotation's grace period, the previous one.
//!
//! The cost per request is one HMAC over the body per secret, however many candidates the
//! header lists: each secret's tag is computed once and every candidate compared to it. A
//! header with more than [`MAX_CANDIDATES`] signatures of the scheme's version is malformed
//! (a sender lists one per active secret), so a large body cannot be hashed many times over.

use aws_lc_rs::{constant_time, hmac};

/// More signatures than any honest sender lists (one per secret it signs with).
pub const MAX_CANDIDATES: usize = 5;

/// One sender's flavour of the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    pub header: &'static str,
    /// The signature items that count (`v0` for ElevenLabs, `v1` for Stripe).
    pub version: &'static str,
    /// Older timestamps are refused (a replay window).
    pub max_age_secs: i64,
    /// A timestamp this far ahead of our clock is not believable.
    pub max_future_secs: i64,
}

/// ElevenLabs' own SDK refuses signatures older than 30 minutes.
pub const ELEVENLABS: Scheme = Scheme {
    header: "ElevenLabs-Signature",
    version: "v0",
    max_age_secs: 30 * 60,
    max_future_secs: 5 * 60,
};

/// Stripe's libraries default to a 300 s tolerance.
pub const STRIPE: Scheme = Scheme {
    header: "Stripe-Signature",
    version: "v1",
    max_age_secs: 300,
    max_future_secs: 300,
};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature header")]
    Missing,
    #[error("malformed signature header")]
    Malformed,
    #[error("signature timestamp is outside the accepted window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Malformed => "malformed_signature",
            Self::Stale => "stale_signature",
            Self::Mismatch => "invalid_signature",
        }
    }
}

/// Verifies `header` for `body` at time `now` against any of `secrets` (current first).
pub fn verify(
    scheme: Scheme,
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if timestamp.is_none() => timestamp = Some(value),
            Some((version, value)) if version == scheme.version => {
                if signatures.len() == MAX_CANDIDATES {
                    return Err(SignatureError::Malformed);
                }
                signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?)
            }
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    let seconds: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    if signatures.is_empty() || signatures.iter().any(|s| s.len() != 32) {
        return Err(SignatureError::Malformed);
    }
    if seconds < now - scheme.max_age_secs || seconds > now + scheme.max_future_secs {
        return Err(SignatureError::Stale);
    }
    let matches = secrets.iter().filter(|s| !s.is_empty()).any(|secret| {
        let expected = tag(secret, timestamp, body);
        // Every candidate is compared (no early exit), each in constant time.
        signatures.iter().fold(false, |matched, signature| {
            constant_time::verify_slices_are_equal(expected.as_ref(), signature).is_ok() | matched
        })
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// HMAC-SHA256 of `<timestamp>.<body>`, without copying the body.
fn tag(secret: &str, timestamp: &str, body: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.as_bytes());
    context.update(b".");
    context.update(body);
    context.sign()
}

/// The header value the scheme's sender would send (used by tests and the webhook bench).
pub fn sign(scheme: Scheme, secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = tag(secret, &timestamp.to_string(), body);
    format!(
        "t={timestamp},{}={}",
        scheme.version,
        hex::encode(tag.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_739_537_297;
    const BODY: &[u8] = br#"{"type":"post_call_transcription","data":{}}"#;

    #[test]
    fn more_candidates_than_a_sender_lists_are_malformed_and_a_few_still_match() {
        let good = sign(ELEVENLABS, "wsec_current", NOW, BODY);
        let good_value = good.split_once(",v0=").expect("v0").1.to_owned();
        let junk = format!("v0={}", "ab".repeat(32));
        let header = |junk_count: usize| {
            let mut parts = vec![format!("t={NOW}")];
            parts.extend(std::iter::repeat_n(junk.clone(), junk_count));
            parts.push(format!("v0={good_value}"));
            parts.join(",")
        };
        assert_eq!(
            verify(
                ELEVENLABS,
                Some(&header(MAX_CANDIDATES - 1)),
                BODY,
                &["wsec_current"],
                NOW
            ),
            Ok(()),
            "the matching one is found behind the others"
        );
        assert_eq!(
            verify(ELEVENLABS, Some(&header(140)), BODY, &["wsec_current"], NOW),
            Err(SignatureError::Malformed)
        );
        // Other versions do not count towards the cap (a sender may list several schemes).
        let mut header = header(0);
        header.push_str(&format!(",v1={}", "cd".repeat(32)).repeat(10));
        assert_eq!(
            verify(ELEVENLABS, Some(&header), BODY, &["wsec_current"], NOW),
            Ok(())
        );
    }

    #[test]
    fn accepts_a_good_signature_and_the_previous_secret() {
        let header = sign(ELEVENLABS, "wsec_current", NOW, BODY);
        assert_eq!(
            verify(ELEVENLABS, Some(&header), BODY, &["wsec_current"], NOW),
            Ok(())
        );
        let old = sign(ELEVENLABS, "wsec_old", NOW, BODY);
        assert_eq!(
            verify(
                ELEVENLABS,
                Some(&old),
                BODY,
                &["wsec_current", "wsec_old"],
                NOW
            ),
            Ok(())
        );
        assert_eq!(
            verify(ELEVENLABS, Some(&old), BODY, &["wsec_current"], NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn known_vector_matches_an_independent_hmac() {
        // HMAC-SHA256("secret", "1.{}") computed with Python's hmac module.
        let header = sign(ELEVENLABS, "secret", 1, b"{}");
        assert_eq!(
            header,
            "t=1,v0=1122767b193110cfec322b6f199b599edbf608ed087f2d27afb0b97d99523908"
        );
    }

    #[test]
    fn rejects_each_bad_case() {
        let good = sign(ELEVENLABS, "s", NOW, BODY);
        let check = |header: Option<&str>, now: i64| verify(ELEVENLABS, header, BODY, &["s"], now);
        assert_eq!(check(None, NOW), Err(SignatureError::Missing));
        assert_eq!(check(Some(" "), NOW), Err(SignatureError::Missing));
        assert_eq!(check(Some("garbage"), NOW), Err(SignatureError::Malformed));
        assert_eq!(
            check(Some("t=abc,v0=00"), NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(Some(&format!("t={NOW}")), NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(Some(&format!("t={NOW},v0=zz")), NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(Some(&good), NOW + ELEVENLABS.max_age_secs + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(Some(&good), NOW - ELEVENLABS.max_future_secs - 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(check(Some(&good), NOW + ELEVENLABS.max_age_secs), Ok(()));
        let other_body = verify(ELEVENLABS, Some(&good), b"{}", &["s"], NOW);
        assert_eq!(other_body, Err(SignatureError::Mismatch));
        assert_eq!(
            verify(ELEVENLABS, Some(&good), BODY, &[""], NOW),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = good.clone();
        tampered.pop();
        tampered.push(if good.ends_with('0') { '1' } else { '0' });
        assert_eq!(check(Some(&tampered), NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn stripe_takes_any_v1_ignores_v0_and_allows_300_seconds() {
        let good = sign(STRIPE, "whsec_new", NOW, BODY);
        let v1 = good.split_once(",v1=").expect("v1").1;
        let old = sign(STRIPE, "whsec_old", NOW, BODY);
        let old_v1 = old.split_once(",v1=").expect("v1").1;
        let rolled = format!("t={NOW},v1={old_v1},v1={v1},v0={}", "cd".repeat(32));
        let check =
            |header: &str, now: i64| verify(STRIPE, Some(header), BODY, &["whsec_new"], now);
        assert_eq!(check(&rolled, NOW), Ok(()));
        assert_eq!(check(&good, NOW + 300), Ok(()));
        assert_eq!(check(&good, NOW + 301), Err(SignatureError::Stale));
        assert_eq!(check(&good, NOW - 301), Err(SignatureError::Stale));
        // Only a v0 (ElevenLabs' version, or Stripe's fake test-mode one): nothing to check.
        let only_v0 = sign(ELEVENLABS, "whsec_new", NOW, BODY);
        assert_eq!(check(&only_v0, NOW), Err(SignatureError::Malformed));
        assert_eq!(check(&old, NOW), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_of_several_v0_values_may_match() {
        let good = sign(ELEVENLABS, "s", NOW, BODY);
        let v0 = good.split_once(",v0=").expect("v0").1;
        let header = format!("t={NOW},v0={},v0={v0}", "ab".repeat(32));
        assert_eq!(verify(ELEVENLABS, Some(&header), BODY, &["s"], NOW), Ok(()));
    }
}
