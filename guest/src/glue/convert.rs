//! Conversions between the guest core's types and the WIT types, and the
//! batch every export that finishes waiters returns.

use super::HostClock;
use super::assembly::approval::types::{
    AuthFailure, Batch, Completion, Decision, Outcome, SinkError,
};
use crate::frames::FrameError;
use crate::ops::{self, OpFailure};
use crate::registry::{Registry, RegistryError};
use crate::trust;
use crate::verdict::{self, Verdict};

impl From<Verdict> for Decision {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Approved => Decision::Approved,
            Verdict::Denied => Decision::Denied,
        }
    }
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Approved => Verdict::Approved,
            Decision::Denied => Verdict::Denied,
        }
    }
}

impl From<verdict::Outcome> for Outcome {
    fn from(o: verdict::Outcome) -> Self {
        match o {
            verdict::Outcome::Decided(v) => Outcome::Decided(v.into()),
            verdict::Outcome::TimedOut => Outcome::TimedOut,
            verdict::Outcome::Cancelled => Outcome::Cancelled,
        }
    }
}

impl From<RegistryError> for SinkError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::RequestIdTooLong(n) => SinkError::RequestIdTooLong(n),
            RegistryError::RequestIdEmpty => SinkError::RequestIdEmpty,
            RegistryError::TooManyWaiters(n) => SinkError::TooManyWaiters(n),
            RegistryError::DuplicateWaiter(w) => SinkError::DuplicateWaiter(w),
            RegistryError::InvalidConfig(why) => SinkError::InvalidConfig(why.into()),
            RegistryError::ConflictingVerdict => SinkError::ConflictingVerdict,
            RegistryError::Unauthenticated(why) => SinkError::Unauthenticated(why.into()),
        }
    }
}

impl From<trust::AuthFailure> for AuthFailure {
    fn from(f: trust::AuthFailure) -> Self {
        match f {
            trust::AuthFailure::Unsigned => AuthFailure::Unsigned,
            trust::AuthFailure::UntrustedKey => AuthFailure::UntrustedKey,
            trust::AuthFailure::BadSignature => AuthFailure::BadSignature,
        }
    }
}

impl From<FrameError> for SinkError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::TooLarge(n) => SinkError::FrameTooLarge(n),
            FrameError::BadPrefix => {
                SinkError::MalformedFrame("length prefix over 10 bytes".into())
            }
            FrameError::Malformed(why) => SinkError::MalformedFrame(why),
            FrameError::UnknownDecision(d) => SinkError::UnknownDecision(d),
            FrameError::BadRequestId(e) => e.into(),
            FrameError::Conflicting => SinkError::ConflictingVerdict,
            FrameError::Unauthenticated(why) => SinkError::Unauthenticated(why.into()),
        }
    }
}

/// The completions finished since the last drain, and the next deadline.
pub(super) fn drain(r: &mut Registry<HostClock>) -> Batch {
    let done = r
        .take_done()
        .into_iter()
        .map(|c| Completion {
            waiter: c.waiter,
            outcome: c.outcome.into(),
        })
        .collect();
    Batch {
        done,
        next_deadline: r.next_deadline(),
        journal: r.take_journal(),
    }
}

/// The typed error of an operation the guest could not read.
fn op_error(e: ops::OpError) -> SinkError {
    match e {
        ops::OpError::BadUtf8 => SinkError::MalformedFrame("operation: id is not UTF-8".into()),
        ops::OpError::UnknownDecision(d) => SinkError::UnknownDecision(i32::from(d)),
        ops::OpError::Truncated => {
            SinkError::MalformedFrame("operation buffer truncated or unknown tag".into())
        }
    }
}

impl From<OpFailure> for SinkError {
    fn from(f: OpFailure) -> Self {
        match f {
            OpFailure::Read(e) => op_error(e),
            OpFailure::Refused(e) => e.into(),
        }
    }
}
