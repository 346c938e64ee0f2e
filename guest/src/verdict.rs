//! Verdicts, how waits end and are reported, and the one mapping between a
//! verdict and the gateway's wire `Decision` (S8): every layer that turns a
//! decision value into a verdict (frames, the host's `deliver`) goes through
//! [`Verdict::from_wire`].

use alloc::string::String;
use approval_proto::Decision;
use futures::channel::oneshot;

/// Longest reviewer name kept with a remembered verdict, in bytes: longer
/// ones are kept cut at a character boundary (S20 bounds what the memory
/// holds; the full name was what a signature covered).
pub const MAX_REVIEWER_KEPT: usize = 256;

/// Who decided a verdict, as its event said (S17): what a host can learn
/// for a decided wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decider {
    /// The reviewer the gateway named ("" = not given); at most
    /// [`MAX_REVIEWER_KEPT`] bytes.
    pub reviewer: String,
    /// The trusted key that signed the verdict ("" = unsigned).
    pub key_id: String,
    /// When the reviewer decided, Unix milliseconds (0 = not given).
    pub resolved_at_unix_ms: i64,
}

impl Decider {
    /// The decider of an event, or `None` when it names nobody (no
    /// allocation for the common unattributed verdict).
    pub fn from_event(reviewer: &str, key_id: &str, resolved_at_unix_ms: i64) -> Option<Self> {
        if reviewer.is_empty() && key_id.is_empty() && resolved_at_unix_ms == 0 {
            return None;
        }
        let mut cut = reviewer.len().min(MAX_REVIEWER_KEPT);
        while !reviewer.is_char_boundary(cut) {
            cut -= 1;
        }
        Some(Decider {
            reviewer: reviewer.get(..cut).unwrap_or_default().into(),
            key_id: key_id.into(),
            resolved_at_unix_ms,
        })
    }
}

/// A reviewer's verdict. Anything else on the wire is rejected (S8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The action may go ahead.
    Approved,
    /// The action must not go ahead.
    Denied,
}

impl Verdict {
    /// The verdict a wire decision value names; `None` for `UNSPECIFIED`,
    /// `PENDING` and unknown values, which are not verdicts (S8).
    pub fn from_wire(decision: i32) -> Option<Verdict> {
        match Decision::try_from(decision) {
            Ok(Decision::Approved) => Some(Verdict::Approved),
            Ok(Decision::Denied) => Some(Verdict::Denied),
            _ => None,
        }
    }

    /// The wire `Decision` of this verdict.
    pub fn decision(self) -> Decision {
        match self {
            Verdict::Approved => Decision::Approved,
            Verdict::Denied => Decision::Denied,
        }
    }
}

impl TryFrom<Decision> for Verdict {
    type Error = Decision;

    /// The verdict a wire decision names; `Pending` and `Unspecified` are
    /// not verdicts (S8) and come back as the error.
    fn try_from(decision: Decision) -> Result<Self, Decision> {
        Verdict::from_wire(decision as i32).ok_or(decision)
    }
}

/// How one wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A reviewer decided.
    Decided(Verdict),
    /// The deadline passed first; never a denial (S3).
    TimedOut,
    /// The waiter was cancelled by its ticket (S7).
    Cancelled,
}

/// One finished batched waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The caller's ticket.
    pub waiter: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// What [`Registry::register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Settled at once (an early verdict was cached); nothing is pending.
    Settled(Outcome),
    /// Pending; the value is the earliest deadline now pending, for the timer.
    Pending(u64),
}

/// How a waiter reports its outcome.
#[derive(Debug)]
pub enum Reply {
    /// Reported through [`Registry::take_done`] (the batched face).
    Batched,
    /// Reported through a oneshot (the async face).
    Async(oneshot::Sender<Outcome>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_approved_and_denied_are_verdicts() {
        for v in [Verdict::Approved, Verdict::Denied] {
            assert_eq!(Verdict::from_wire(v.decision() as i32), Some(v));
        }
        for raw in [0, 3, 4, -1, i32::MAX] {
            assert_eq!(Verdict::from_wire(raw), None, "{raw}");
        }
    }
}
