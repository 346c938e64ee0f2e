//! Who may use the gateway (SPEC.md §8): bearer tokens per service,
//! compared in constant time, and, with trusted reviewer keys, the
//! signature check on `Resolve` (S17). Finality (first wins) is the log's
//! (`writer.rs`), with or without keys.
//!
//! # Rules
//!
//! * A service with a token configured answers `UNAUTHENTICATED` to a call
//!   without `authorization: Bearer <that token>`. `Gateway::serve` refuses
//!   to serve without both tokens unless built with `insecure_dev()`.
//! * A token is at least [`MIN_TOKEN_BYTES`] of visible ASCII, so it can be
//!   sent as a header and is not guessable by trying.
//! * With trusted keys, a `Resolve` must be signed by one of them
//!   (`PERMISSION_DENIED` otherwise: defence in depth, the sinks verify
//!   again).

use approval_guest::trust::TrustedKeys;
use approval_guest::verdict::Verdict;
use approval_guest::wire;
use approval_host::TrustedKey;
use approval_proto::ApprovalResolved;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

/// The shortest bearer token a gateway accepts, in bytes.
pub const MIN_TOKEN_BYTES: usize = 16;

/// A bearer token a service requires.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Nothing but whitespace.
    #[error("the token is empty")]
    Empty,
    /// Shorter than [`MIN_TOKEN_BYTES`] (its length).
    #[error("the token is {0} bytes; at least {MIN_TOKEN_BYTES} are required")]
    TooShort(usize),
    /// A character that cannot be sent in a header (a space, a control
    /// character, non-ASCII).
    #[error("the token holds a character other than visible ASCII")]
    NotVisibleAscii,
}

impl Token {
    /// A token (surrounding whitespace trimmed, as read from a file).
    pub fn new(token: &str) -> Result<Self, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotVisibleAscii);
        }
        if token.len() < MIN_TOKEN_BYTES {
            return Err(TokenError::TooShort(token.len()));
        }
        Ok(Token(token.to_owned()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// The body of a call that carries `authorization: Bearer <token>` when
/// `required` is set (compared in constant time for tokens of the same
/// length); `UNAUTHENTICATED` otherwise.
pub(super) fn authorized<T>(required: Option<&Token>, request: Request<T>) -> Result<T, Status> {
    let Some(Token(expected)) = required else {
        return Ok(request.into_inner());
    };
    let presented = bearer_of(request.metadata()).unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(request.into_inner())
    } else {
        Err(Status::unauthenticated(
            "missing or wrong bearer token (authorization: Bearer ...)",
        ))
    }
}

fn bearer_of(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The reviewer keys `Resolve` checks signatures against (and the NATS
/// backend a stored verdict; `resolve --nats` too).
pub struct Reviewers {
    keys: Mutex<TrustedKeys>,
}

impl Reviewers {
    /// Trusts `keys`; `None` when there are none (no checks).
    pub fn new(keys: &[TrustedKey]) -> Result<Option<Self>, &'static str> {
        if keys.is_empty() {
            return Ok(None);
        }
        let mut trusted = TrustedKeys::default();
        trusted
            .set(keys.iter().map(|k| (k.id.as_str(), &k.public_key[..])))
            .map_err(|e| e.reason())?;
        Ok(Some(Reviewers {
            keys: Mutex::new(trusted),
        }))
    }

    /// [`verify`](Self::verify) as a check of a stored verdict: why it
    /// fails, in words.
    pub fn check(&self, stored: &ApprovalResolved) -> Result<(), String> {
        self.verify(stored)
            .map(|_| ())
            .map_err(|status| status.message().to_owned())
    }

    /// Checks the signature of a validated `Resolve` (`PERMISSION_DENIED`).
    pub fn verify(&self, resolved: &ApprovalResolved) -> Result<Verdict, Status> {
        let verdict = Verdict::from_wire(resolved.decision)
            .ok_or_else(|| Status::invalid_argument("not a verdict"))?;
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .verify(&wire::Resolved::from(resolved), verdict)
            .map_err(|why| {
                Status::permission_denied(format!(
                    "verdict not signed by a trusted reviewer key ({why:?})"
                ))
            })?;
        Ok(verdict)
    }
}
