//! Counters of one registry, and the one list of their names.
//!
//! [`for_each_stat!`](crate::for_each_stat) is that list. The guest's
//! [`Stats`], its conversion to the WIT `sink-stats` record, the host's
//! `Stats` and its conversion from the WIT record are all generated from it,
//! so adding a counter is one line here (plus its field in the registry that
//! counts it) and one field in `wit/approval.wit`.

/// Calls `$callback! { [$($arg),*] <fields> }` with every counter as
/// `/// doc` `name: type,`. The callback macro builds a struct or a
/// conversion from the list; `$arg`s are passed through (e.g. the name of the
/// value being converted).
#[macro_export]
macro_rules! for_each_stat {
    ($callback:ident $(, $arg:tt)*) => {
        $callback! { [$($arg),*]
            /// Waiters pending now.
            waiters: u32,
            /// Distinct request ids with at least one waiter.
            ids: u32,
            /// Verdicts remembered now, delivered or early (S4, S15).
            cached_verdicts: u32,
            /// Waiters resolved by a verdict.
            delivered: u64,
            /// Waiters that timed out (reported as `Pending`, never `Denied`).
            timed_out: u64,
            /// Waiters cancelled by ticket (dropped futures).
            cancelled: u64,
            /// Registrations settled at once from a remembered verdict.
            early_hits: u64,
            /// Remembered verdicts dropped (capacity or TTL): finality (S15)
            /// ends for their ids.
            evictions: u64,
            /// Verdicts ignored because the other verdict was already final
            /// for their id (S15).
            conflicts: u64,
            /// Verdicts rejected because trusted keys are configured and they
            /// were not signed by one (S17), including refused `deliver`s.
            unauthenticated: u64,
            /// Events or frames rejected as malformed.
            malformed: u64,
            /// Sequenced events ignored as duplicates.
            duplicates: u64,
            /// Highest sequence number applied in the current log's window.
            last_seq: u64,
            /// The log whose window `last_seq` belongs to (0: unknown).
            log_id: u64,
            /// Sequenced events of another log that opened a new window
            /// (S16: the gateway restarted with a fresh log).
            log_changes: u64,
            /// Policy invalidations forwarded to the host.
            invalidations: u64,
        }
    };
}

macro_rules! define_stats {
    ([] $($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
        /// Counters of one registry.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Stats {
            $($(#[$doc])* pub $name: $ty,)*
        }
    };
}

for_each_stat!(define_stats);
