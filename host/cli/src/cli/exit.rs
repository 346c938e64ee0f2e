//! The CLI's exit codes (SPEC.md §10): distinct, so a script never reads a
//! failure as a verdict.

/// How a command ended, as its process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: `wait` got an approval, `resolve` published (or the same
    /// verdict stood).
    Success = 0,
    /// `wait` got a denial.
    Denied = 1,
    /// `wait` ended Pending: the source was reached and nobody answered in
    /// time.
    Pending = 2,
    /// Not served: bad arguments or files, credentials or TLS refused, or
    /// (`wait`) the source never reached during the whole wait.
    NotServed = 3,
    /// `resolve`: a different verdict already stands.
    Conflict = 4,
    /// `resolve`: the verdict stored for the id is a forgery (it does not
    /// verify with the trusted keys): someone wrote to the log bypassing
    /// the gateways. Nothing was published.
    Forgery = 5,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}
