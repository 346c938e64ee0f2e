//! Host clocks: the time the guest's `clock.now` import reads, and how the
//! sink's timer task sleeps until the next deadline.
//!
//! [`SystemClock`] uses `tokio::time`, so a runtime started with
//! `start_paused = true` drives it deterministically; [`ManualClock`] is
//! virtual and moves only when a test calls [`ManualClock::advance`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A boxed sleep, as returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Monotonic time for a sink, in nanoseconds since the clock's own origin.
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since this clock's origin; never goes backwards.
    fn now_ns(&self) -> u64;
    /// Completes once `now_ns() >= deadline_ns`.
    fn sleep_until(&self, deadline_ns: u64) -> Sleep;
}

/// Converts a duration to nanoseconds, saturating at `u64::MAX` (S11).
pub fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Wall time through `tokio::time` (paused time in tests works).
///
/// The origin is the moment the clock was created; create it inside the
/// runtime whose (possibly paused) time it should follow.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: tokio::time::Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        duration_ns(self.origin.elapsed())
    }

    fn sleep_until(&self, deadline_ns: u64) -> Sleep {
        // `Instant + Duration` can overflow for far deadlines (the guest
        // saturates them at u64::MAX); a century is as good as forever.
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        let at = self
            .origin
            .checked_add(Duration::from_nanos(deadline_ns))
            .unwrap_or_else(|| tokio::time::Instant::now() + far);
        Box::pin(tokio::time::sleep_until(at))
    }
}

/// Virtual time for deterministic tests: starts at zero and moves only by
/// [`advance`](ManualClock::advance), which wakes every sleeper now due.
/// Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<u64>>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        ManualClock {
            now: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Moves time forward by `by` (saturating) and wakes due sleepers.
    pub fn advance(&self, by: Duration) {
        let by = duration_ns(by);
        self.now.send_modify(|now| *now = now.saturating_add(by));
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(*self.now.borrow())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline_ns: u64) -> Sleep {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // `wait_for` returns at once if already due; the sender lives in
            // every clone, so an error means the clock is gone: never wake.
            if rx.wait_for(|now| *now >= deadline_ns).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }

    fn sleep_until(&self, deadline_ns: u64) -> Sleep {
        (**self).sleep_until(deadline_ns)
    }
}
