//! The async `sink` face of the `approval-plugin` component, driven directly
//! in wasmtime with `run_concurrent` + `call_concurrent` and a `ManualClock`
//! behind `timer.sleep-until`. Deterministic: time moves only by `advance`.

use approval_host::ManualClock;
use approval_tests::plugin::{Decision, Outcome, Plugin};
use std::time::Duration;

const SEC: u64 = 1_000_000_000;

#[tokio::test]
async fn async_wait_gets_verdict_delivered_through_registry_resolve() {
    let mut p = Plugin::embedded(ManualClock::new()).await.unwrap();
    let c = p.calls().unwrap();
    let out = p
        .store
        .run_concurrent(async |acc| {
            let deliver = async {
                c.until_waiters(acc, 1).await;
                c.resolve(acc, "req-1", Decision::Approved).await.unwrap();
            };
            futures::join!(c.wait(acc, 1, "req-1", 30 * SEC), deliver).0
        })
        .await
        .unwrap();
    assert_eq!(out, Ok(Outcome::Decided(Decision::Approved)));
}

#[tokio::test]
async fn async_wait_times_out_when_the_clock_passes_its_deadline() {
    let clock = ManualClock::new();
    let mut p = Plugin::embedded(clock.clone()).await.unwrap();
    let c = p.calls().unwrap();
    let out = p
        .store
        .run_concurrent(async |acc| {
            let tick = async {
                c.until_waiters(acc, 1).await;
                clock.advance(Duration::from_secs(5));
            };
            futures::join!(c.wait(acc, 1, "req-1", 5 * SEC), tick).0
        })
        .await
        .unwrap();
    assert_eq!(out, Ok(Outcome::TimedOut));
}
