//! Counters of a sink: the guest's own, plus what only the host sees.
//!
//! The guest's counters are generated from the one list in the guest core
//! (`approval_guest::for_each_stat!`), so a counter added there shows up
//! here with its doc comment and no edit in this file.

use approval_guest::stats::Stats as GuestStats;

/// Counters only the host keeps (they survive a reset of the guest);
/// the sink's core counts them, each only upwards.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HostCounters {
    /// Instances replaced after a fault.
    resets: u64,
    /// Messages sources skipped as over `max_frame_bytes`.
    oversized_frames: u64,
    /// Non-verdicts the direct API refused before any guest call.
    rejected_verdicts: u64,
    /// Guest calls made.
    guest_calls: u64,
}

impl HostCounters {
    /// An instance was replaced after a fault.
    pub(crate) fn reset(&mut self) {
        self.resets += 1;
    }

    /// A source skipped `n` messages over `max_frame_bytes`.
    pub(crate) fn oversized(&mut self, n: u64) {
        self.oversized_frames = self.oversized_frames.saturating_add(n);
    }

    /// The direct API refused a non-verdict (S8).
    pub(crate) fn rejected_verdict(&mut self) {
        self.rejected_verdicts += 1;
    }

    /// A guest call is about to be made.
    pub(crate) fn guest_call(&mut self) {
        self.guest_calls += 1;
    }
}

macro_rules! define_host_stats {
    ([] $($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
        /// A snapshot of one sink's counters.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Stats {
            $($(#[$doc])* pub $name: $ty,)*
            /// Times the guest instance was replaced after a fault (host-side).
            pub resets: u64,
            /// Messages an event source skipped because they were over
            /// `max_frame_bytes` (host-side: they never reach the guest).
            pub oversized_frames: u64,
            /// Calls into the guest (host-side): waits and cancels reach it
            /// in batches, so a burst of waits costs far fewer calls.
            pub guest_calls: u64,
        }

        impl Stats {
            /// The guest's counters, with the host's own added. `malformed`
            /// also counts the non-verdicts the direct API refused before
            /// any guest call (`deliver` of `Pending`/`Unspecified`, S8).
            pub(crate) fn new(guest: GuestStats, host: HostCounters) -> Self {
                let mut stats = Stats {
                    $($name: guest.$name,)*
                    resets: host.resets,
                    oversized_frames: host.oversized_frames,
                    guest_calls: host.guest_calls,
                };
                stats.malformed = stats.malformed.saturating_add(host.rejected_verdicts);
                stats
            }
        }
    };
}

approval_guest::for_each_stat!(define_host_stats);
