//! Trusted reviewer keys and the verification of signed verdicts (S17).
//!
//! This module owns the signing bytes of a verdict (SPEC.md §5.3, the
//! one definition every signer and verifier uses), the set of trusted
//! Ed25519 keys, and the check a verdict must pass before the registry may
//! apply it once any key is trusted. It runs inside the component, the only
//! parser of untrusted bytes; `ed25519-dalek` is pure Rust and needs no
//! randomness to verify, so the guest gains no import.
//!
//! # Rules
//!
//! * With no key trusted, nothing is checked (unsigned verdicts work as
//!   before S17).
//! * With keys trusted, a verdict is applied only if `key_id` names one of
//!   them and `signature` is a strict (RFC 8032, non-malleable) Ed25519
//!   signature by it over [`signing_bytes`]; anything else is an
//!   [`AuthFailure`]. A verdict with only one of `key_id`/`signature` set is
//!   unsigned.
//! * Bounded (S20): at most [`MAX_TRUSTED_KEYS`] keys, ids of 1 to
//!   [`MAX_KEY_ID_BYTES`] bytes; the key set is a short list scanned per
//!   verdict (operators trust a handful of reviewers, not thousands).

use crate::verdict::Verdict;
use crate::wire;
use alloc::boxed::Box;
use alloc::vec::Vec;
use ed25519_dalek::{Signature, VerifyingKey};

/// The domain separator the signing bytes start with (with a zero byte).
pub const SIGNING_CONTEXT: &[u8] = b"assembly.approval.v1\0";
/// Most keys one sink trusts.
pub const MAX_TRUSTED_KEYS: usize = 256;
/// Longest key id accepted, in bytes.
pub const MAX_KEY_ID_BYTES: usize = 256;
/// Bytes of an Ed25519 public key.
pub const PUBLIC_KEY_BYTES: usize = 32;

/// Why a verdict was not accepted as signed by a trusted reviewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `key_id` or no `signature` (or a direct `deliver`, which cannot
    /// carry one).
    Unsigned,
    /// `key_id` names no trusted key.
    UntrustedKey,
    /// The signature does not verify over the verdict's signing bytes (forged,
    /// moved to another request, or a field changed after signing).
    BadSignature,
}

/// Appends the signing bytes of a verdict to `out` (SPEC.md §5.3):
/// the context and a zero byte; the request id as a big-endian `u32` length
/// and its bytes; the decision as one byte (1 approved, 2 denied); the
/// reviewer as a big-endian `u32` length and its bytes; `resolved_at_unix_ms`
/// as a big-endian `i64`. `key_id` is not covered: it only selects the key.
pub fn write_signing_bytes(
    out: &mut Vec<u8>,
    request_id: &str,
    verdict: Verdict,
    reviewer: &str,
    resolved_at_unix_ms: i64,
) {
    let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes();
    out.extend_from_slice(SIGNING_CONTEXT);
    out.extend_from_slice(&len(request_id));
    out.extend_from_slice(request_id.as_bytes());
    out.push(verdict.decision() as u8);
    out.extend_from_slice(&len(reviewer));
    out.extend_from_slice(reviewer.as_bytes());
    out.extend_from_slice(&resolved_at_unix_ms.to_be_bytes());
}

/// The signing bytes of a verdict, as a new buffer (for signers).
pub fn signing_bytes(
    request_id: &str,
    verdict: Verdict,
    reviewer: &str,
    resolved_at_unix_ms: i64,
) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(SIGNING_CONTEXT.len() + 17 + request_id.len() + reviewer.len());
    write_signing_bytes(&mut out, request_id, verdict, reviewer, resolved_at_unix_ms);
    out
}

/// Why a key could not be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// More than [`MAX_TRUSTED_KEYS`] keys.
    TooManyKeys,
    /// A key id is empty or longer than [`MAX_KEY_ID_BYTES`].
    BadKeyId,
    /// Two keys share an id.
    DuplicateKeyId,
    /// Not 32 bytes, or not a valid Ed25519 point.
    BadPublicKey,
}

impl KeyError {
    /// A short reason, for `invalid-config`.
    pub fn reason(self) -> &'static str {
        match self {
            KeyError::TooManyKeys => "more than 256 trusted keys",
            KeyError::BadKeyId => "a trusted key id is empty or longer than 256 bytes",
            KeyError::DuplicateKeyId => "two trusted keys share an id",
            KeyError::BadPublicKey => "a trusted key is not a 32-byte Ed25519 public key",
        }
    }
}

/// The trusted reviewer keys of one registry.
#[derive(Default)]
pub struct TrustedKeys {
    keys: Vec<(Box<str>, VerifyingKey)>,
    /// Reused for the signing bytes of each verdict checked.
    scratch: Vec<u8>,
}

impl TrustedKeys {
    /// Replaces the trusted set with `keys` (`(id, 32-byte public key)`);
    /// on error nothing changes. An empty list switches checking off.
    pub fn set<'a>(
        &mut self,
        keys: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), KeyError> {
        let mut parsed: Vec<(Box<str>, VerifyingKey)> = Vec::new();
        for (id, key) in keys {
            if parsed.len() >= MAX_TRUSTED_KEYS {
                return Err(KeyError::TooManyKeys);
            }
            if id.is_empty() || id.len() > MAX_KEY_ID_BYTES {
                return Err(KeyError::BadKeyId);
            }
            if parsed.iter().any(|(known, _)| **known == *id) {
                return Err(KeyError::DuplicateKeyId);
            }
            let bytes: &[u8; PUBLIC_KEY_BYTES] =
                key.try_into().map_err(|_| KeyError::BadPublicKey)?;
            let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::BadPublicKey)?;
            // A weak (small-order) key would accept forged signatures.
            if key.is_weak() {
                return Err(KeyError::BadPublicKey);
            }
            parsed.push((Box::from(id), key));
        }
        self.keys = parsed;
        Ok(())
    }

    /// Whether any key is trusted (verdicts must then be signed).
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks a verdict (its decision read as `verdict`) against the
    /// trusted keys (call only when [`TrustedKeys::required`]).
    pub fn verify(
        &mut self,
        fields: &wire::Resolved<'_>,
        verdict: Verdict,
    ) -> Result<(), AuthFailure> {
        if fields.key_id.is_empty() || fields.signature.is_empty() {
            return Err(AuthFailure::Unsigned);
        }
        let key = self
            .keys
            .iter()
            .find(|(id, _)| **id == *fields.key_id)
            .map(|(_, key)| key)
            .ok_or(AuthFailure::UntrustedKey)?;
        let signature =
            Signature::from_slice(fields.signature).map_err(|_| AuthFailure::BadSignature)?;
        self.scratch.clear();
        write_signing_bytes(
            &mut self.scratch,
            fields.request_id,
            verdict,
            fields.reviewer,
            fields.resolved_at_unix_ms,
        );
        key.verify_strict(&self.scratch, &signature)
            .map_err(|_| AuthFailure::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_bytes_are_exactly_the_documented_layout() {
        let bytes = signing_bytes("req-1", Verdict::Denied, "al", -2);
        let mut want = b"assembly.approval.v1\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 5]);
        want.extend_from_slice(b"req-1");
        want.push(2);
        want.extend_from_slice(&[0, 0, 0, 2]);
        want.extend_from_slice(b"al");
        want.extend_from_slice(&(-2i64).to_be_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn bad_key_sets_change_nothing() {
        let mut keys = TrustedKeys::default();
        assert_eq!(
            keys.set([("a", &[1u8; 31][..])]),
            Err(KeyError::BadPublicKey)
        );
        assert_eq!(keys.set([("", &[0u8; 32][..])]), Err(KeyError::BadKeyId));
        // The identity point is a weak key: it must never be trusted.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            keys.set([("a", &identity[..])]),
            Err(KeyError::BadPublicKey)
        );
        assert!(!keys.required());
    }
}
