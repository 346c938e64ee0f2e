//! Per-sink limits and cache settings (S4, S11, S13; SPEC.md §6), with defaults.
//!
//! The limits the guest enforces take their defaults from the guest core's
//! `Config::default()` (the one place they are written); the host-only
//! settings (memory, call budget, crash loops) are defined here.

use crate::error::HostError;
use approval_guest::config::Config as GuestConfig;
use std::time::Duration;

/// The longest `call_budget` accepted: a guest call that runs longer than
/// this holds the sink's mutex for too long to be a budget at all.
pub const MAX_CALL_BUDGET: Duration = Duration::from_secs(3600);
/// The longest `crash_loop_backoff` accepted.
pub const MAX_CRASH_LOOP_BACKOFF: Duration = Duration::from_secs(3600);

/// Limits of one sink. Every field has a documented default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkConfig {
    /// Most waits pending at once; more get `TooManyWaiters`. Default 1,000,000.
    pub max_waiters: u32,
    /// Longest request id in bytes; longer gets `RequestIdTooLong`. Default 256.
    pub max_request_id_bytes: u32,
    /// Largest protobuf frame; larger gets `FrameTooLarge`, and event
    /// sources skip (and count) larger messages. Default 64 KiB.
    pub max_frame_bytes: u32,
    /// Early verdicts kept for ids nobody waits on yet (0 disables). Default 10,000.
    pub verdict_cache_capacity: u32,
    /// How long an early verdict stays usable. Default 60 s.
    pub verdict_cache_ttl: Duration,
    /// Longest timeout honoured; longer ones are capped. Default 24 h.
    pub max_timeout: Duration,
    /// Cap on the guest's linear memory, in bytes. Default 1 GiB.
    pub max_memory_bytes: usize,
    /// Wall-clock budget of one guest call (epoch interruption, 10 ms
    /// granularity); a call over it traps and the instance is reset (S12).
    /// Default 1 s; more than zero and at most [`MAX_CALL_BUDGET`].
    pub call_budget: Duration,
    /// More resets than this within `crash_loop_window` is a crash loop: the
    /// sink then refuses guest calls (`SinkError::CrashLoop`) for a backoff
    /// that starts at `crash_loop_backoff` and doubles up to a minute.
    /// Default 10.
    pub crash_loop_resets: u32,
    /// The window of `crash_loop_resets`. Default 60 s.
    pub crash_loop_window: Duration,
    /// First refusal period of a crash loop. Default 1 s; at most
    /// [`MAX_CRASH_LOOP_BACKOFF`].
    pub crash_loop_backoff: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        let guest = GuestConfig::default();
        SinkConfig {
            max_waiters: guest.max_waiters,
            max_request_id_bytes: guest.max_request_id_bytes,
            max_frame_bytes: guest.max_frame_bytes,
            verdict_cache_capacity: guest.verdict_cache_capacity,
            verdict_cache_ttl: Duration::from_nanos(guest.verdict_cache_ttl_ns),
            max_timeout: Duration::from_nanos(guest.max_timeout_ns),
            max_memory_bytes: 1 << 30,
            call_budget: Duration::from_secs(1),
            crash_loop_resets: 10,
            crash_loop_window: Duration::from_secs(60),
            crash_loop_backoff: Duration::from_secs(1),
        }
    }
}

impl SinkConfig {
    /// Checks the host-side settings (S19); the guest checks its own limits
    /// at `configure` (`HostError::Config`). Durations the guest gets in
    /// nanoseconds saturate, so every `Duration` there is accepted.
    pub(crate) fn validate(&self) -> Result<(), HostError> {
        let invalid = |field, reason| Err(HostError::InvalidConfig { field, reason });
        if self.call_budget.is_zero() || self.call_budget > MAX_CALL_BUDGET {
            return invalid("call_budget", "must be more than zero and at most an hour");
        }
        if self.crash_loop_backoff > MAX_CRASH_LOOP_BACKOFF {
            return invalid("crash_loop_backoff", "must be at most an hour");
        }
        Ok(())
    }
}
