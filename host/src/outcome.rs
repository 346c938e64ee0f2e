//! How a wait ended, and the `Decision` it maps to.

/// A reviewer's verdict: exactly `Approved` or `Denied` (the wire
/// `Decision` also has `Pending` and `Unspecified`, which are not
/// verdicts, S8); `Verdict::decision` gives the wire value.
pub use approval_guest::verdict::Verdict;
pub use approval_proto::Decision;

/// How one wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A reviewer decided.
    Decided(Verdict),
    /// The timeout passed with no verdict (S3).
    TimedOut,
    /// The wait was cancelled by its ticket.
    Cancelled,
    /// The guest failed and its instance was reset (S12).
    Reset,
}

impl Outcome {
    /// The decision the original API returns: the verdict, or `Pending` for
    /// every way of ending without one. Never `Denied` without a reviewer.
    pub fn decision(self) -> Decision {
        match self {
            Outcome::Decided(v) => v.decision(),
            Outcome::TimedOut | Outcome::Cancelled | Outcome::Reset => Decision::Pending,
        }
    }
}
