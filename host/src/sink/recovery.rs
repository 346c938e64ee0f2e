//! [`CrashLoopGuard`]: a guest that keeps faulting is quarantined instead
//! of being re-instantiated in a loop (S12, S19). The reset itself is the
//! core's (`core.rs`): it replaces the instance and then tells this guard.
//!
//! # Invariants
//!
//! * More than `crash_loop_resets` resets within `crash_loop_window` start
//!   a quarantine; its pause starts at `crash_loop_backoff` and doubles per
//!   crash loop up to [`LONGEST_QUARANTINE`], and starts over once a window
//!   passes without resets.
//! * No setting makes it panic: instants saturate.

use crate::config::SinkConfig;
use crate::error::SinkError;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The longest quarantine a crash loop doubles up to.
pub(crate) const LONGEST_QUARANTINE: Duration = Duration::from_secs(60);

/// Detects a crash loop: more than `crash_loop_resets` resets within
/// `crash_loop_window` quarantine the guest for a pause that starts at
/// `crash_loop_backoff` and doubles per crash loop, up to a minute.
#[derive(Debug)]
pub(crate) struct CrashLoopGuard {
    /// When recent resets happened, oldest first.
    recent: VecDeque<Instant>,
    /// Guest calls are refused until then.
    quarantined_until: Option<Instant>,
    /// The next quarantine's length.
    next_pause: Duration,
    max_resets: u32,
    window: Duration,
    backoff: Duration,
}

impl CrashLoopGuard {
    /// A guard with the sink's crash-loop settings and no resets yet.
    pub(crate) fn new(config: &SinkConfig) -> Self {
        CrashLoopGuard {
            recent: VecDeque::new(),
            quarantined_until: None,
            next_pause: config.crash_loop_backoff,
            max_resets: config.crash_loop_resets,
            window: config.crash_loop_window,
            backoff: config.crash_loop_backoff,
        }
    }

    /// `Err(CrashLoop(remaining))` while quarantined at `now()`. Reads the
    /// clock only during a quarantine: this runs before every guest call.
    pub(crate) fn admit(&mut self, now: impl FnOnce() -> Instant) -> Result<(), SinkError> {
        if let Some(until) = self.quarantined_until {
            let now = now();
            if now < until {
                return Err(SinkError::CrashLoop(until - now));
            }
            self.quarantined_until = None;
        }
        Ok(())
    }

    /// Records a reset at `now`; returns the pause if it starts a quarantine.
    pub(crate) fn note_reset(&mut self, now: Instant) -> Option<Duration> {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.is_empty() {
            self.next_pause = self.backoff;
        }
        self.recent.push_back(now);
        if self.recent.len() <= self.max_resets as usize {
            return None;
        }
        let pause = self.next_pause;
        // `Instant + Duration` panics on overflow: a far pause saturates to
        // a year, which is as good as for ever for a quarantine.
        let year = Duration::from_secs(365 * 24 * 3600);
        self.quarantined_until = now
            .checked_add(pause)
            .or_else(|| now.checked_add(year))
            .or(Some(now));
        self.next_pause = pause.saturating_mul(2).min(LONGEST_QUARANTINE);
        self.recent.clear();
        Some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_loop_quarantines_and_doubles_without_overflow() {
        let config = SinkConfig {
            crash_loop_resets: 2,
            crash_loop_backoff: Duration::MAX,
            ..SinkConfig::default()
        };
        let mut guard = CrashLoopGuard::new(&config);
        let t = Instant::now();
        assert_eq!(guard.note_reset(t), None);
        assert_eq!(guard.note_reset(t), None);
        assert_eq!(guard.note_reset(t), Some(Duration::MAX), "third reset");
        assert!(matches!(guard.admit(|| t), Err(SinkError::CrashLoop(_))));
    }
}
