//! What a gateway request must hold (SPEC.md §6, §9): field lengths,
//! decisions, names without control characters, and lookups of at most
//! `MAX_LOOKUP_IDS` ids, checked before anything is published or read
//! (`INVALID_ARGUMENT`).

use crate::limits::MAX_LOOKUP_IDS;
use approval_guest::config::Config as GuestConfig;
use approval_proto::{ApprovalResolved, Decision};
use tonic::Status;

/// Longest request id, reviewer and agent id a gateway accepts, in bytes:
/// the sink's default request-id limit (a longer id would only be rejected
/// by every sink).
pub const MAX_ID_BYTES: usize = GuestConfig::DEFAULT.max_request_id_bytes as usize;

/// Largest request a gateway decodes (`Subscribe` or `ReviewService`): every
/// valid request is far smaller, so a bigger one is refused before it is
/// read whole.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Largest `InvalidationService` request: a `Lookup` of
/// [`MAX_LOOKUP_IDS`] ids of [`MAX_ID_BYTES`] each, with each id's 3 bytes
/// of framing (tag and length).
pub const MAX_LOOKUP_BYTES: usize = MAX_LOOKUP_IDS * (MAX_ID_BYTES + 3);

/// A `Resolve` publishes nothing unless every field is in range, so the
/// gateway's own events stay small (`INVALID_ARGUMENT`; SPEC.md §9).
/// Public so a direct publisher (`resolve --nats`) makes the same checks.
pub fn check_resolve(resolved: &ApprovalResolved) -> Result<(), Status> {
    check_len("request_id", &resolved.request_id, 1, MAX_ID_BYTES)?;
    check_len("reviewer", &resolved.reviewer, 0, MAX_ID_BYTES)?;
    check_len("key_id", &resolved.key_id, 0, MAX_ID_BYTES)?;
    // Names end up in logs and on terminals: a control character could
    // forge a line there.
    check_printable("reviewer", &resolved.reviewer)?;
    check_printable("key_id", &resolved.key_id)?;
    if !(resolved.signature.is_empty() || resolved.signature.len() == 64) {
        return Err(Status::invalid_argument(format!(
            "signature is {} bytes; an Ed25519 signature is 64",
            resolved.signature.len()
        )));
    }
    match Decision::try_from(resolved.decision) {
        Ok(Decision::Approved | Decision::Denied) => Ok(()),
        _ => Err(Status::invalid_argument(format!(
            "decision {} is not DECISION_APPROVED or DECISION_DENIED",
            resolved.decision
        ))),
    }
}

/// `INVALID_ARGUMENT` unless `value` is `min..=max` bytes.
pub(crate) fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), Status> {
    if (min..=max).contains(&value.len()) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "{field} is {} bytes; {min} to {max} accepted",
            value.len()
        )))
    }
}

/// `INVALID_ARGUMENT` if `value` holds a control character (a newline, an
/// escape, ...) or one that reorders or breaks text, naming the first
/// one's position.
pub(crate) fn check_printable(field: &str, value: &str) -> Result<(), Status> {
    match value.char_indices().find(|(_, c)| is_unprintable(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(Status::invalid_argument(format!(
            "{field} holds a control or text-direction character (U+{:04X} at byte {at})",
            u32::from(c)
        ))),
    }
}

/// Controls, and the format characters that reorder or break text
/// (bidirectional marks, embeddings, overrides and isolates; line and
/// paragraph separators): what could forge a line in whatever prints it.
fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// A `Lookup` names 1 to [`MAX_LOOKUP_IDS`] ids, each 1 to
/// [`MAX_ID_BYTES`] bytes (`INVALID_ARGUMENT`).
pub(crate) fn check_lookup(ids: &[String]) -> Result<(), Status> {
    if ids.is_empty() || ids.len() > MAX_LOOKUP_IDS {
        return Err(Status::invalid_argument(format!(
            "a lookup names {} request ids; 1 to {MAX_LOOKUP_IDS} accepted",
            ids.len()
        )));
    }
    ids.iter()
        .try_for_each(|id| check_len("request_id", id, 1, MAX_ID_BYTES))
}
