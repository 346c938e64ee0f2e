//! Reviewer keys on the host side of S17: the keys a sink trusts
//! ([`TrustedKey`], read from `.pub` files), the keys reviewers sign with
//! ([`ReviewerKey`], PKCS#8 PEM as `openssl genpkey -algorithm ed25519`
//! writes it), and who decided a wait ([`DecidedBy`]).
//!
//! Verification is not here: the guest verifies every verdict (it is the
//! only parser of untrusted bytes). The host only signs (reviewers' tools,
//! tests, the demo) and hands the guest the trusted public keys.
//!
//! File formats, fixed so operators can script them:
//!
//! * `ID.pub`: one line, `ID ed25519 BASE64`, the standard base64 of the
//!   32-byte public key;
//! * `ID.key`: the private key as a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`);
//!   the key id is the file's stem, since PKCS#8 has no place for it.

use approval_guest::trust::{MAX_KEY_ID_BYTES, PUBLIC_KEY_BYTES, signing_bytes};
use approval_guest::verdict::Verdict;
use approval_proto::ApprovalResolved;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{Signer, SigningKey};
use std::path::{Path, PathBuf};

pub use approval_guest::trust::AuthFailure;

/// Why a key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `.pub` line is not `ID ed25519 BASE64` with a 32-byte key.
    #[error("not a public key line (`ID ed25519 BASE64-OF-32-BYTES`): {0}")]
    BadPublicLine(String),
    /// Not a PKCS#8 PEM Ed25519 private key.
    #[error("not an Ed25519 PKCS#8 PEM private key: {0}")]
    BadPrivateKey(String),
    /// A key id that is empty, over 256 bytes, or has whitespace.
    #[error("key id {0:?} must be 1-256 bytes with no whitespace")]
    BadKeyId(String),
    /// The system's random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

fn check_id(id: &str) -> Result<(), KeyError> {
    if id.is_empty() || id.len() > MAX_KEY_ID_BYTES || id.chars().any(char::is_whitespace) {
        return Err(KeyError::BadKeyId(id.to_owned()));
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A reviewer public key a sink trusts (S17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The id verdicts name in `key_id`.
    pub id: String,
    /// The Ed25519 public key.
    pub public_key: [u8; PUBLIC_KEY_BYTES],
}

impl TrustedKey {
    /// Parses a `.pub` line: `ID ed25519 BASE64` (surrounding whitespace
    /// ignored).
    pub fn parse(line: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::BadPublicLine(line.trim().chars().take(80).collect());
        let mut parts = line.split_whitespace();
        let (Some(id), Some("ed25519"), Some(b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        check_id(id)?;
        let bytes = STANDARD.decode(b64).map_err(|_| bad())?;
        let public_key = bytes.try_into().map_err(|_| bad())?;
        Ok(TrustedKey {
            id: id.to_owned(),
            public_key,
        })
    }

    /// Reads a `.pub` file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        Self::parse(&read(path.as_ref())?)
    }

    /// The `.pub` line of this key (no newline).
    pub fn to_line(&self) -> String {
        format!("{} ed25519 {}", self.id, STANDARD.encode(self.public_key))
    }
}

/// A reviewer's signing key: signs verdicts so sinks with its public key
/// trusted apply them (S17).
pub struct ReviewerKey {
    id: String,
    key: SigningKey,
}

impl std::fmt::Debug for ReviewerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("ReviewerKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ReviewerKey {
    /// A new random key with this id.
    pub fn generate(id: impl Into<String>) -> Result<Self, KeyError> {
        let id = id.into();
        check_id(&id)?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(ReviewerKey {
            id,
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// The key in a PKCS#8 PEM (as `openssl genpkey -algorithm ed25519`
    /// writes it), with this id.
    pub fn from_pem(id: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let id = id.into();
        check_id(&id)?;
        let key =
            SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        Ok(ReviewerKey { id, key })
    }

    /// Reads an `ID.key` file; the key id is the file's stem.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        Self::from_pem(id, &read(path)?)
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The private key as a PKCS#8 v1 PEM (RFC 8410: the seed only, no
    /// public key), byte for byte what `openssl genpkey -algorithm
    /// ed25519` writes, so OpenSSL 3.0 and Python's `cryptography` read it
    /// (they refuse the v2 form with the public key).
    pub fn to_pem(&self) -> Result<String, KeyError> {
        let v1 = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        v1.to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))
    }

    /// The public half, to trust in sinks.
    pub fn trusted(&self) -> TrustedKey {
        TrustedKey {
            id: self.id.clone(),
            public_key: self.key.verifying_key().to_bytes(),
        }
    }

    /// Signs `verdict` in place: sets `key_id` to this key's id and
    /// `signature` over its signing bytes (SPEC.md §5.3). A decision
    /// that is not a verdict is left unsigned (no sink would apply it).
    pub fn sign(&self, verdict: &mut ApprovalResolved) {
        let Some(decision) = Verdict::from_wire(verdict.decision) else {
            return;
        };
        let message = signing_bytes(
            &verdict.request_id,
            decision,
            &verdict.reviewer,
            verdict.resolved_at_unix_ms,
        );
        verdict.key_id = self.id.clone();
        verdict.signature = self.key.sign(&message).to_bytes().to_vec();
    }
}

/// Who decided a wait, as the verdict's event said (S17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedBy {
    /// The verdict.
    pub decision: Verdict,
    /// The reviewer the gateway named, if any (at most 256 bytes kept).
    pub reviewer: Option<String>,
    /// The trusted key that signed the verdict; `None` when unsigned.
    pub key_id: Option<String>,
    /// When the reviewer decided (Unix ms), if the event said.
    pub resolved_at_unix_ms: Option<i64>,
}

/// How a wait ended, and who decided it (S17):
/// [`ApprovalSink::wait_detailed`](crate::ApprovalSink::wait_detailed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// How the wait ended.
    pub outcome: crate::Outcome,
    /// For a decided wait, who decided, while the sink still remembers the
    /// verdict (S15's bound: `verdict_cache_capacity` and `_ttl`); `None`
    /// otherwise, and after a reset (the journal that carries verdicts over
    /// keeps decisions, not attribution).
    pub decided_by: Option<DecidedBy>,
}

/// The longest a guest call may spend verifying signatures, as a share of
/// the call budget: the rest is headroom for a slow or busy machine.
pub(crate) const VERIFY_SHARE_OF_BUDGET: u32 = 4;
/// A pessimistic cost of one Ed25519 verification in the guest (measured
/// 146-176 us under Cranelift, ~410 us with the other core busy).
pub(crate) const VERIFY_COST: std::time::Duration = std::time::Duration::from_micros(500);
/// The smallest signed verdict frame: a one-byte id, a one-byte key id and
/// the 64-byte signature, with the tags and the sequence fields.
pub(crate) const MIN_SIGNED_FRAME_BYTES: usize = 87;

/// How many stream bytes one guest call may take while trusted keys are
/// configured, so that verifying every verdict in them stays well under
/// `call_budget` (S17): a quarter of the budget at a pessimistic cost per
/// verification, for frames as small as a signed verdict can be.
pub(crate) fn signed_chunk_bytes(call_budget: std::time::Duration) -> usize {
    let verifications = (call_budget / VERIFY_SHARE_OF_BUDGET).as_nanos() / VERIFY_COST.as_nanos();
    usize::try_from(verifications)
        .unwrap_or(usize::MAX)
        .max(1)
        .saturating_mul(MIN_SIGNED_FRAME_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pub_lines_round_trip_and_bad_ones_are_typed() {
        let key = ReviewerKey::generate("alice").expect("key");
        let line = key.trusted().to_line();
        assert!(line.starts_with("alice ed25519 "));
        assert_eq!(
            TrustedKey::parse(&format!("  {line}\n")).expect("parse"),
            key.trusted()
        );
        for bad in [
            "",
            "alice",
            "alice rsa AAAA",
            "alice ed25519 !!!",
            "alice ed25519 AAAA",
        ] {
            assert!(TrustedKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signed_chunks_fit_the_call_budget() {
        use std::time::Duration;
        // The default 1 s budget: 500 verifications' worth of bytes.
        assert_eq!(signed_chunk_bytes(Duration::from_secs(1)), 500 * 87);
        // A tiny budget still makes progress, one frame's worth at a time.
        assert_eq!(signed_chunk_bytes(Duration::from_nanos(1)), 87);
        assert!(signed_chunk_bytes(crate::MAX_CALL_BUDGET) > 0);
    }

    /// `tests/vectors/signing.json`: the host signs exactly what the guest
    /// verifies, and writes the key's `.pub` line from its bytes.
    #[test]
    fn reviewer_keys_sign_the_signing_vectors() {
        use crate::golden;
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let vectors = golden::read("signing.json");
        let key = &vectors["key"];
        let seed: [u8; 32] = golden::unhex(key["seed"].as_str().unwrap())
            .try_into()
            .unwrap();
        let pem = SigningKey::from_bytes(&seed)
            .to_pkcs8_pem(Default::default())
            .unwrap();
        let reviewer = ReviewerKey::from_pem(key["id"].as_str().unwrap(), &pem).unwrap();
        let public = golden::unhex(key["public_key"].as_str().unwrap());
        assert_eq!(reviewer.trusted().public_key[..], public[..]);
        assert_eq!(
            TrustedKey::parse(&reviewer.trusted().to_line()).unwrap(),
            reviewer.trusted()
        );
        for v in vectors["verdicts"].as_array().unwrap() {
            let mut resolved = ApprovalResolved {
                request_id: v["request_id"].as_str().unwrap().into(),
                decision: v["decision"].as_i64().unwrap() as i32,
                reviewer: v["reviewer"].as_str().unwrap().into(),
                resolved_at_unix_ms: v["resolved_at_unix_ms"].as_str().unwrap().parse().unwrap(),
                ..Default::default()
            };
            reviewer.sign(&mut resolved);
            assert_eq!(resolved.key_id, reviewer.id());
            assert_eq!(
                golden::hex(&resolved.signature),
                v["signature"].as_str().unwrap()
            );
        }
    }

    #[test]
    fn pem_round_trips() {
        let key = ReviewerKey::generate("bob").expect("key");
        let pem = key.to_pem().expect("pem");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = ReviewerKey::from_pem("bob", &pem).expect("read");
        assert_eq!(back.trusted(), key.trusted());
    }
}
