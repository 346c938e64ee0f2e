//! Time in tests: the units every suite writes, and the one way to let
//! spawned tasks (the sink's timer, a pump) catch up with what a test did.

use std::future::Future;
use std::time::Duration;

/// One second.
pub const SEC: Duration = Duration::from_secs(1);
/// One hour: "longer than any test runs", for waits that must not time out.
pub const HOUR: Duration = Duration::from_secs(3600);
/// One millisecond in the guest's nanoseconds.
pub const MS_NS: u64 = 1_000_000;
/// One second in the guest's nanoseconds.
pub const SEC_NS: u64 = 1_000_000_000;
/// One hour in the guest's nanoseconds.
pub const HOUR_NS: u64 = 3600 * SEC_NS;
/// A guard against hangs in tests over real sockets, not a speed assertion.
pub const GUARD: Duration = Duration::from_secs(60);

/// Lets spawned tasks (the sink's timer) run; on a current-thread runtime a
/// task woken by `ManualClock::advance` runs within one yield.
pub async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// Yields until `done()` holds, for tasks on this runtime to catch up with
/// virtual time (at most 10,000 yields; panics if it never holds).
pub async fn settle_until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the condition never held after 10,000 yields");
}

/// Polls the async `done()` every few milliseconds of real time until it
/// holds, for work over real sockets; panics after [`GUARD`].
pub async fn eventually<F: Future<Output = bool>>(mut done: impl FnMut() -> F) {
    let poll = async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if tokio::time::timeout(GUARD, poll).await.is_err() {
        panic!("the condition never held within {GUARD:?}");
    }
}

/// Whether a bench runs short (`APPROVAL_BENCH_QUICK` set): a smoke run.
pub fn bench_quick() -> bool {
    std::env::var_os("APPROVAL_BENCH_QUICK").is_some()
}
