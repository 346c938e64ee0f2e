//! What a gateway request must hold (SPEC.md §6, §9): field lengths and
//! decisions, checked before anything is published (`INVALID_ARGUMENT`).

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

/// A `Resolve` publishes nothing unless every field is in range, so the
/// gateway's own events stay small (`INVALID_ARGUMENT`; SPEC.md §9).
/// Public so a direct publisher (`resolve --nats`) makes the same checks.
pub fn check_resolve(resolved: &ApprovalResolved) -> Result<(), Status> {
    check_len("request_id", &resolved.request_id, 1, MAX_ID_BYTES)?;
    check_len("reviewer", &resolved.reviewer, 0, MAX_ID_BYTES)?;
    check_len("key_id", &resolved.key_id, 0, MAX_ID_BYTES)?;
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
