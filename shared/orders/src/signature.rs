//! Stripe's webhook signatures: `Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...]`, where
//! each `v1` is HMAC-SHA256 under one signing secret of `"<t>.<raw body>"`.
//!
//! Checked here rather than with async-stripe's `Webhook::construct_event`, for two reasons:
//! its `Signature::parse` keeps only the last `v1` of a header, so it refuses valid events while
//! a signing secret rotates (Stripe then signs with the old and the new secret and sends both);
//! and it parses the event into its full typed model, which refuses the shorter events of
//! localstripe and of Stripe API versions other than the crate's. Here every `v1` is compared, in
//! constant time, against every configured secret (`AMANAR_STRIPE_WEBHOOK_SECRET` may list the
//! old and the new one during our own rotation), and the event is read into the few fields the
//! purchase flow uses.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far an event's signing time may be from now: Stripe's own default.
pub const TOLERANCE_SECS: i64 = 300;

/// The header Stripe signs with.
pub const HEADER: &str = "stripe-signature";

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the signature is more than {TOLERANCE_SECS} seconds from now")]
    OutOfTolerance,
    #[error("no v1 signature matches the body under any signing secret")]
    NoMatch,
}

/// Webhook signing secrets (`whsec_...`): never printed.
#[derive(Clone)]
pub struct SigningSecrets(Vec<Vec<u8>>);

impl std::fmt::Debug for SigningSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecrets({} secrets)", self.0.len())
    }
}

impl SigningSecrets {
    /// One secret, or several separated by commas (the old and the new during a rotation).
    pub fn parse(list: &str) -> Option<Self> {
        let secrets: Vec<Vec<u8>> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        (!secrets.is_empty()).then_some(Self(secrets))
    }

    /// The secret new signatures are made with (the first).
    pub fn signing(&self) -> &[u8] {
        &self.0[0]
    }
}

fn mac(secret: &[u8], timestamp: &str, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The header value Stripe would send for `payload` signed at `timestamp`.
pub fn sign(payload: &[u8], secret: &[u8], timestamp: i64) -> String {
    let t = timestamp.to_string();
    let signature = hex::encode(mac(secret, &t, payload).finalize().into_bytes());
    format!("t={t},v1={signature}")
}

/// Checks `header` against the raw `payload`: exactly one timestamp within
/// [`TOLERANCE_SECS`] of `now`, and at least one `v1` signature that matches under one of
/// `secrets`. Other schemes (`v0`) and unknown parts are ignored, as Stripe asks.
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secrets: &SigningSecrets,
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        match name {
            "t" if timestamp.is_none() => timestamp = Some(value),
            "t" => return Err(SignatureError::Malformed),
            "v1" => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let (Some(timestamp), false) = (timestamp, signatures.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    let signed_at: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    // abs_diff: a crafted `t` near i64::MIN must not overflow.
    if now.abs_diff(signed_at) > TOLERANCE_SECS as u64 {
        return Err(SignatureError::OutOfTolerance);
    }
    let matches = secrets.0.iter().any(|secret| {
        let expected = mac(secret, timestamp, payload).finalize().into_bytes();
        signatures
            .iter()
            .any(|given| bool::from(given.as_slice().ct_eq(expected.as_slice())))
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    fn secrets(list: &str) -> SigningSecrets {
        SigningSecrets::parse(list).unwrap()
    }

    /// Stripe's documented scheme, computed by hand for a fixed secret, time and body: the
    /// signature any Stripe library produces for these inputs.
    #[test]
    fn a_signature_is_the_hmac_of_time_dot_body() {
        let header = sign(b"{}", b"whsec_test", 1);
        let expected = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
            mac.update(b"1.{}");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(header, format!("t=1,v1={expected}"));
    }

    #[test]
    fn a_valid_signature_passes_and_each_fault_is_named() {
        let good = sign(BODY, b"whsec_a", NOW);
        let s = secrets("whsec_a");
        assert_eq!(verify(BODY, Some(&good), &s, NOW), Ok(()));
        assert_eq!(verify(BODY, Some(&good), &s, NOW + 300), Ok(()));
        assert_eq!(
            verify(BODY, Some(&good), &s, NOW + 301),
            Err(SignatureError::OutOfTolerance)
        );
        assert_eq!(
            verify(BODY, Some(&sign(BODY, b"whsec_a", NOW - 301)), &s, NOW),
            Err(SignatureError::OutOfTolerance)
        );
        let tampered = br#"{"id":"evt_1","type":"payment_intent.succeeded "}"#;
        assert_eq!(
            verify(tampered, Some(&good), &s, NOW),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(BODY, Some(&good), &secrets("whsec_other"), NOW),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(verify(BODY, None, &s, NOW), Err(SignatureError::Missing));
        assert_eq!(
            verify(BODY, Some("t=-9223372036854775808,v1=00"), &s, NOW),
            Err(SignatureError::OutOfTolerance),
            "an extreme timestamp is out of tolerance, not an overflow"
        );
        for malformed in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,t=2,v1=00"] {
            assert_eq!(
                verify(BODY, Some(malformed), &s, NOW),
                Err(SignatureError::Malformed),
                "{malformed:?}"
            );
        }
    }

    /// During a rotation Stripe signs with both secrets; the valid `v1` may come first or last.
    #[test]
    fn any_v1_of_several_may_match_and_any_configured_secret_may_sign() {
        let valid = sign(BODY, b"whsec_new", NOW);
        let valid_sig = valid.split_once(",v1=").unwrap().1;
        let bogus = "5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd";
        let s = secrets("whsec_new");
        for header in [
            format!("t={NOW},v1={valid_sig},v1={bogus}"),
            format!("t={NOW},v1={bogus},v1={valid_sig}"),
            format!("t={NOW},v0={bogus},v1={bogus},v1={valid_sig}"),
        ] {
            assert_eq!(verify(BODY, Some(&header), &s, NOW), Ok(()), "{header}");
        }
        assert_eq!(
            verify(BODY, Some(&valid), &secrets("whsec_old, whsec_new"), NOW),
            Ok(())
        );
        assert!(
            format!("{s:?}").find("whsec").is_none(),
            "secrets never print"
        );
    }
}
