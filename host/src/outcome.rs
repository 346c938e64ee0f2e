//! How a wait ended, and the `Decision` it maps to.

pub use approval_proto::Decision;

/// How one wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A reviewer decided (`Approved` or `Denied`).
    Decided(Decision),
    /// The timeout passed with no verdict (S3).
    TimedOut,
    /// The wait was cancelled by its token.
    Cancelled,
    /// The guest failed and its instance was reset (S12).
    Reset,
}

impl Outcome {
    /// The decision the original API returns: the verdict, or `Pending` for
    /// every way of ending without one. Never `Denied` without a reviewer.
    pub fn decision(self) -> Decision {
        match self {
            Outcome::Decided(d) => d,
            Outcome::TimedOut | Outcome::Cancelled | Outcome::Reset => Decision::Pending,
        }
    }
}
